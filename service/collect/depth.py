"""Which instruments get an order book (``book_depth`` events): the venue's configured
``depth.symbols``, else its top N by open interest in USD, re-ranked as the open interest
moves.

The ranking is pure (:func:`rank`); the collector takes it every ``depth.rerank_s`` from the
open interest it already holds (:attr:`~.collector.VenueCollector.latest`) and, when the set
changes, closes the depth connection only, which reconnects with the new set (a book is
latest-state: the new snapshot replaces it). With sharded collectors, each shard ranks its
own instruments: the top N of each shard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def rank(
    oi_usd: Mapping[str, float], current: Iterable[str], n: int, hysteresis: float
) -> frozenset[str]:
    """The ``n`` symbols of ``oi_usd`` to follow, starting from ``current``: a symbol outside
    replaces the smallest inside only when its open interest is larger by more than
    ``hysteresis`` (0.1: 10 %), so a symbol at the edge does not churn. Symbols of
    ``current`` without open interest (delisted, not ours any more) leave; free places go
    to the largest outside. Ties go by symbol: the same input, the same set."""
    if n <= 0:
        return frozenset()

    def size(symbol: str) -> tuple[float, str]:
        return (oi_usd[symbol], symbol)

    inside = sorted((s for s in set(current) if s in oi_usd), key=size, reverse=True)[:n]
    chosen = set(inside)
    outside = sorted((s for s in oi_usd if s not in chosen), key=size, reverse=True)
    while len(inside) < n and outside:
        inside.append(outside.pop(0))
    inside.sort(key=size)  # smallest first
    for i, challenger in enumerate(outside[: len(inside)]):  # largest first
        if oi_usd[challenger] <= oi_usd[inside[i]] * (1 + hysteresis):
            break  # nor will a smaller one beat a larger one inside
        inside[i] = challenger  # the smallest inside goes, the next smallest is next
    return frozenset(inside)
