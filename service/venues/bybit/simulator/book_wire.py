"""The simulator's ``orderbook.{depth}.{symbol}``: a book shaped from the simulated market's
quote, a ``snapshot`` to each new subscriber, then ``delta`` frames of the levels that
changed, with the venue's ``u`` sequence (one book per symbol and depth, shared by its
subscribers, as the venue's).

The shape is deterministic (no randomness of its own): the best bid and ask are the ticker's
(:func:`~service.simulate.wirekit.book_prices`: the quote's spread around the mark), and the
other levels sit on a fixed grid every :data:`LEVEL_STEP_BP` of the first mark seen, each
holding the same size, the ticker's top size (:data:`LEVEL_SIZE_OF_OI` of the open interest
times the quote's depth multiplier, to two significant digits). So a phase that unwinds
thins every level as it thins the top, and a quiet market sends no delta at all: a level
moves only when the best price crosses a grid point or the size changes. Cheap: only
subscribed books are kept, and a book is rebuilt only when its key (best prices, size)
changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Final

from ....simulate.bookkit import LevelGrid, Levels, sig2
from ....simulate.market import Quote
from ....simulate.wirekit import book_prices, encode
from .wire import Contract, price

DEPTHS: Final = frozenset({1, 50, 200, 500, 1000})
"""The depths the venue serves on linear and inverse (its docs' versions list 500 or 1000 as
the deepest: both are served here)."""
LEVEL_STEP_BP: Final = 1.5
"""The grid of the levels behind the best one: 200 levels reach 3 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0004
"""Each level's size as a share of the open interest (the ticker's top size) at depth 1."""


@dataclass(slots=True)
class DepthBook:
    """One symbol's book at one depth, as last sent."""

    contract: Contract
    levels: int
    u: int = 0
    seq: int = 0
    key: tuple[float, float, float] | None = None
    grid: LevelGrid | None = None
    """Its levels (from the first quote: the grid's step is set by the first mark)."""

    def update(self, q: Quote) -> tuple[Levels, Levels] | None:
        """Move to ``q``: the levels that changed (bids, asks; size ``"0"``: gone), ``None``
        when none did. Advances ``u`` when some did."""
        c = self.contract
        if self.grid is None:
            step = max(c.tick, round(q.mark * LEVEL_STEP_BP / 10_000 / c.tick) * c.tick)
            self.grid = LevelGrid(self.levels, step, partial(price, c=c))
        bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
        oi = q.oi_base if c.linear else q.oi_base * q.mark  # inverse: USD contracts
        unit = sig2(oi * LEVEL_SIZE_OF_OI * q.depth)
        key = (bid, ask, unit)
        if key == self.key:
            return None
        self.key = key
        qty = f"{unit:.{c.qty_decimals}f}" if c.linear else str(max(1, round(unit)))
        changed = self.grid.move(bid, ask, qty)
        if changed is None:
            return None
        self.u += 1
        self.seq += len(changed[0]) + len(changed[1])
        return changed

    def frame(self, kind: str, ts: int, b: Levels, a: Levels) -> str:
        """``{"topic":"orderbook.<depth>.<symbol>","type":<kind>,"ts":...,"data":{"s":...,
        "b":[...],"a":[...],"u":...,"seq":...},"cts":...}``."""
        symbol = self.contract.symbol
        data = {"s": symbol, "b": b, "a": a, "u": self.u, "seq": self.seq}
        return encode(
            {"topic": f"orderbook.{self.levels}.{symbol}", "type": kind, "ts": ts,
             "data": data, "cts": ts - 1}
        )  # fmt: skip

    def snapshot(self, ts: int) -> str:
        """The whole book, best first on each side."""
        assert self.grid is not None, "a snapshot follows the first update"
        return self.frame("snapshot", ts, *self.grid.best_first())


def parse_topic(topic: str) -> tuple[int, str] | None:
    """``(depth, symbol)`` of an ``orderbook.{depth}.{symbol}`` topic, ``None`` otherwise."""
    name, _, rest = topic.partition(".")
    depth, _, symbol = rest.partition(".")
    if name != "orderbook" or not depth.isdigit() or int(depth) not in DEPTHS:
        return None
    return int(depth), symbol
