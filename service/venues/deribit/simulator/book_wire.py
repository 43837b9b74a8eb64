"""The simulator's ``book.{instrument}.{interval}``: a book shaped from the simulated market's
quote, the whole book (``type`` ``snapshot``, every level ``["new", price, amount]``) to each
new subscriber, then every push a ``change`` of the levels that changed (``new``, ``change``,
or ``delete`` with amount 0), chained by ``prev_change_id``/``change_id`` (one book per
instrument, shared by its subscribers, as the venue's). Real frame, for reference (the docs'
snapshot, https://docs.deribit.com/subscriptions/orderbook/bookinstrument_nameinterval)::

    {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms",
     "data":{"type":"snapshot","timestamp":1554373962454,"instrument_name":"BTC-PERPETUAL",
     "change_id":297217,"bids":[["new",5042.34,30],["new",5041.94,20]],
     "asks":[["new",5042.64,40],["new",5043.3,40]]}}}

The shape is the other simulators' (:mod:`~service.simulate.bookkit`): the best bid and ask
are the ticker's (:func:`.wire.top`), the other levels sit on a fixed grid every
:data:`LEVEL_STEP_BP` of the first mark seen, each holding the ticker's top amount (a share
of the open interest times the quote's depth multiplier, in whole steps of the contract size:
USD on inverse, coin on linear perpetuals), so a phase that unwinds thins every level as it
thins the top. ``change_id``
steps by the levels a change carries (the venue's steps are not one either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ....simulate.bookkit import LevelGrid, Levels
from ....simulate.market import Quote
from .wire import Contract, notification, top

KIND: Final = "book"
LEVELS: Final = 200
"""Levels a side (the venue sends its whole book; 200 on the grid reach 3 % of mid)."""
LEVEL_STEP_BP: Final = 1.5
FIRST_CHANGE_ID: Final = 297_217


def _row(action: str, price: str, amount: str) -> list[Any]:
    return [action, float(price), float(amount)]


@dataclass(slots=True)
class DepthBook:
    """One instrument's book, as last sent."""

    contract: Contract
    change_id: int = FIRST_CHANGE_ID
    """The ``change_id`` of the last notification sent (a snapshot's is the book's now)."""
    key: tuple[float, float, float] | None = None
    grid: LevelGrid | None = None
    """Its levels (from the first quote: the grid's step is set by the first mark)."""

    def update(self, q: Quote) -> tuple[list[list[Any]], list[list[Any]]] | None:
        """Move to ``q``: the ``[action, price, amount]`` rows that changed (bids, asks),
        ``None`` when none did."""
        c = self.contract
        if self.grid is None:
            step = max(c.tick, c.price(q.mark * LEVEL_STEP_BP / 10_000))
            self.grid = LevelGrid(LEVELS, step, lambda p: repr(c.price(p)))
        key = top(q, c)
        if key == self.key:
            return None
        self.key = key
        bid, ask, amount = key
        before = (dict(self.grid.bids), dict(self.grid.asks))
        moved = self.grid.move(bid, ask, repr(amount))
        if moved is None:
            return None
        return _rows(moved[0], before[0]), _rows(moved[1], before[1])

    def data(self, kind: str, ts: int, bids: list[list[Any]], asks: list[list[Any]]) -> Any:
        """A notification's ``data``: a ``change`` advances ``change_id`` by its rows and
        names the last one as ``prev_change_id``; a ``snapshot`` has none."""
        out: dict[str, Any] = {"type": kind, "timestamp": ts,
                               "instrument_name": self.contract.name}  # fmt: skip
        if kind == "change":
            out["prev_change_id"] = self.change_id
            self.change_id += max(1, len(bids) + len(asks))
        out |= {"change_id": self.change_id, "bids": bids, "asks": asks}
        return out

    def frame(self, channel: str, kind: str, ts: int, bids: Any, asks: Any) -> str:
        return notification(channel, self.data(kind, ts, bids, asks))

    def snapshot(self, channel: str, ts: int) -> str:
        """The whole book, best first on each side, every level ``new``."""
        assert self.grid is not None, "a snapshot follows the first update"
        bids, asks = self.grid.best_first()
        return self.frame(
            channel,
            "snapshot",
            ts,
            [_row("new", *b) for b in bids],
            [_row("new", *a) for a in asks],
        )


def _rows(changed: Levels, before: dict[str, str]) -> list[list[Any]]:
    """The grid's changed ``[price, amount]`` levels as the venue's rows: ``delete`` (amount
    0) for a level gone, ``change`` for one that was there, ``new`` otherwise."""
    return [
        _row("delete" if q == "0" else "change" if p in before else "new", p, q) for p, q in changed
    ]
