"""A simulated order book's levels, shared by the venues' simulators that serve a book channel
(Bybit ``orderbook``, OKX ``books``): the best bid and ask, and behind each a fixed grid every
``step`` holding the same size; moved to a new best price and size, it answers the levels that
changed, as a venue's incremental channel sends them. The venue's own module sets the shape
(step, size and its units, price text) and writes the frames.

A level moves only when a best price crosses a grid point or the size changes, so a quiet
market sends no update; a side's grid is rebuilt only when its first point or the size moved.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

Levels = list[list[str]]
"""``[[price, size], ...]`` as text; a size ``"0"``: the level is gone."""


def sig2(x: float) -> float:
    """``x`` to two significant digits: a size that does not move with every open-interest
    step."""
    return float(f"{x:.2g}")


@dataclass(slots=True)
class LevelGrid:
    """One book's levels, as last sent (``price`` writes a price as the venue does)."""

    levels: int
    """Levels a side."""
    step: float
    price: Callable[[float], str]
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)
    grids: dict[int, tuple[tuple[int, str], dict[str, str]]] = field(default_factory=dict)
    """Per side (-1 bids, 1 asks), the grid levels behind the best one and what they were
    built for (the first grid point, the size)."""

    def move(self, bid: float, ask: float, size: str) -> tuple[Levels, Levels] | None:
        """To best prices ``bid`` and ``ask``, each level holding ``size``: the levels that
        changed (bids, asks), ``None`` when none did."""
        bids, asks = self._side(bid, -1, size), self._side(ask, 1, size)
        changed = (_diff(self.bids, bids), _diff(self.asks, asks))
        self.bids, self.asks = bids, asks
        if not changed[0] and not changed[1]:
            return None
        return changed

    def best_first(self, depth: int | None = None) -> tuple[Levels, Levels]:
        """The whole book (or its best ``depth`` levels a side), best first on each side."""
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:depth]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:depth]
        return [list(x) for x in bids], [list(x) for x in asks]

    def _side(self, best: float, way: int, size: str) -> dict[str, str]:
        """``best`` and the grid points beyond it (``way`` -1: below, bids; 1: above)."""
        step = self.step
        start = (math.floor if way < 0 else math.ceil)(best / step)
        if start * step == best:
            start += way
        built = self.grids.get(way)
        if built is None or built[0] != (start, size):
            points = [(start + way * i) * step for i in range(self.levels - 1)]
            grid = {self.price(p): size for p in points if p > 0}
            built = self.grids[way] = ((start, size), grid)
        return {self.price(best): size, **built[1]}


def _diff(old: dict[str, str], new: dict[str, str]) -> Levels:
    """The levels of ``new`` that differ from ``old``, and ``old``'s gone ones at ``"0"``."""
    out = [[p, q] for p, q in new.items() if old.get(p) != q]
    out += [[p, "0"] for p in old if p not in new]
    return out
