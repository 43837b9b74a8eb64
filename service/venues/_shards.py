"""Symbols spread over a venue's connections, for the venues that subscribe symbol by symbol
(Bybit, Bitget, Gate).

A symbol's connection is fixed by a stable hash of its name, so a new listing moves no other
symbol; and the number of connections of each group (a category, an instType, a settlement)
is fixed by the first spread: the collector starts one supervisor per connection once and
re-reads a connection by name at each reconnect, so after a metadata refresh the names must
stay the same and the symbols must not move between connections (a new listing joins one
shard, at that shard's next reconnect).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence

import structlog

log = structlog.get_logger(__name__)


def spread(
    symbols: Sequence[str],
    per_connection: int,
    count: int = 0,
    fits: Callable[[list[str]], bool] | None = None,
) -> tuple[int, dict[int, list[str]]]:
    """``symbols`` (in the order given) over ``count`` connections (by default one per
    ``per_connection``) by a stable hash of the name: the count used (more while a
    connection's symbols do not ``fit`` its venue's limits) and, by connection index, its
    symbols. Empty shards are left out; the other indexes do not move."""
    n = count or max(1, math.ceil(len(symbols) / per_connection))
    while True:
        out: dict[int, list[str]] = {}
        for s in symbols:
            out.setdefault(zlib.crc32(s.encode()) % n, []).append(s)
        if fits is None or all(fits(group) for group in out.values()):
            return n, dict(sorted(out.items()))
        n += 1


class Shards:
    """A venue's connections by group, their number per group fixed by the first call."""

    def __init__(
        self,
        venue: str,
        per_connection: int,
        fits: Callable[[list[str]], bool] | None = None,
    ) -> None:
        self.venue = venue
        self.per_connection = per_connection
        self.fits = fits
        self._counts: dict[str, int] = {}

    def __call__(self, group: str, symbols: Sequence[str]) -> dict[int, list[str]]:
        """The symbols of ``group``'s connections by index (see :func:`spread`). When they no
        longer fit the first count (a venue's limit per connection), the count grows and a
        warning says so: the connections added open at the next start."""
        before = self._counts.get(group, 0)
        count, out = spread(symbols, self.per_connection, before, self.fits)
        if before and count != before:
            log.warning(
                "more connections needed than at start; restart to open them",
                venue=self.venue,
                group=group,
                connections=count,
            )
        self._counts[group] = count
        return out
