"""The simulator's ``quote``, ``orderBookL2`` and ``trade`` tables: a book shaped from the
simulated market's quote, its top of book, and one second's prints.

The book (one per symbol, shared by its subscribers, as the venue's) has its best bid and ask
where the market quotes them (:func:`~service.simulate.wirekit.book_prices`) and
:data:`LEVELS` - 1 more a side on a fixed grid every :data:`LEVEL_STEP_BP` of the first mark
seen (about 3 % of mid, so the 2 % band is complete), each holding the same number of
contracts: :data:`LEVEL_SIZE_OF_OI` of the open interest times the quote's depth multiplier,
to two significant digits. A phase that unwinds thins every level and widens the spread; a
quiet market sends nothing (:class:`~service.simulate.bookkit.LevelGrid`). Each level has an
arbitrary ``id`` (as BitMEX's since 2023), kept while the level lives: a level that appears is
an ``insert``, one whose size changed an ``update``, one gone a ``delete``, each row with its
``price``. :meth:`L2Book.forget_ids` renames every level without a word to the subscribers:
their next row of the book names ids they never saw (the test hook of a gap).

Real rows, for reference (2026-02-22)::

    {"table":"orderBookL2","action":"update","data":[{"symbol":"ARBUSDT","id":186898796284,
     "side":"Buy","size":535200,"price":0.088,"timestamp":"2026-02-22T00:55:59.948Z",
     "transactTime":"2026-02-22T00:55:59.943Z"}]}
    {"table":"quote","action":"insert","data":[{"timestamp":"2026-02-22T00:55:57.903Z",
     "symbol":"BCHUSDT","bidSize":3727000,"bidPrice":563.55,"askPrice":563.6,"askSize":1000}]}
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.bookkit import LevelGrid, sig2
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import book_prices, tape
from .wire import Contract, iso

LEVELS: Final = 150
"""Levels a side."""
LEVEL_STEP_BP: Final = 2.0
"""The grid behind the best levels: 150 levels reach 3 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0004
"""Each level's size as a share of the open interest (the top's size, as Bybit's ticker)."""
FIRST_ID: Final = 186_898_796_000
"""The first level id (arbitrary, BitMEX's size)."""
TRADE_IDS: Final = uuid.UUID("7a1b2c3d-4e5f-4a6b-8c7d-b17e0000b17e")
Row = dict[str, Any]


def level_contracts(q: Quote, c: Contract, xbt_usd: float) -> int:
    """Contracts at each level of ``q``'s book (two significant digits, at least one)."""
    qty_base = q.oi_base * LEVEL_SIZE_OF_OI * q.depth
    return max(1, round(sig2(c.contracts(qty_base, q.mark, xbt_usd))))


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


@dataclass(slots=True)
class L2Book:
    """One symbol's ``orderBookL2``, as last sent."""

    contract: Contract
    grid: LevelGrid | None = None
    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    """Each level's id, by (``Buy``/``Sell``, price text)."""
    next_id: int = FIRST_ID
    key: tuple[float, float, int] | None = None
    quote: Row | None = None
    """The last ``quote`` row (the top of this book)."""

    def update(self, q: Quote, xbt_usd: float, ts: int) -> dict[str, list[Row]] | None:
        """Move to ``q``: the rows by action (``delete``, ``update``, ``insert``), ``None``
        when no level changed. The top's ``quote`` row is renewed when it changed."""
        c = self.contract
        if self.grid is None:
            step = max(c.tick, round(q.mark * LEVEL_STEP_BP / 10_000 / c.tick) * c.tick)
            self.grid = LevelGrid(LEVELS, step, lambda p: repr(c.price(p)))
        bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
        size = level_contracts(q, c, xbt_usd)
        key = (bid, ask, size)
        if key == self.key:
            return None
        self.key = key
        self.quote = {
            "timestamp": iso(ts), "symbol": c.symbol, "bidSize": size,
            "bidPrice": c.price(bid), "askPrice": c.price(ask), "askSize": size,
        }  # fmt: skip
        changed = self.grid.move(bid, ask, str(size))
        if changed is None:
            return None
        # Deletes first, inserts last, as the engine's events come (an order that crosses
        # trades the other side's levels away before it rests): a client applying each
        # frame as it comes never holds a crossed book.
        out: dict[str, list[Row]] = {"delete": [], "update": [], "insert": []}
        for side, levels in (("Buy", changed[0]), ("Sell", changed[1])):
            for price, qty in levels:
                action, row = self._row(side, price, qty, ts)
                out[action].append(row)
        return {action: rows for action, rows in out.items() if rows}

    def _row(self, side: str, price: str, qty: str, ts: int) -> tuple[str, Row]:
        at = iso(ts)
        key = (side, price)
        row: Row = {"symbol": self.contract.symbol, "id": 0, "side": side}
        if qty == "0":
            row["id"] = self.ids.pop(key)
            action = "delete"
        else:
            known = self.ids.get(key)
            action = "insert" if known is None else "update"
            if known is None:
                known = self.ids[key] = self.next_id
                self.next_id += 1
            row |= {"id": known, "size": int(qty)}
        return action, row | {"price": _number(price), "timestamp": at, "transactTime": at}

    def rows(self, ts: int) -> list[Row]:
        """Every level, asks from the highest then bids from the highest (as the venue's
        partials list them), for a ``partial``."""
        assert self.grid is not None, "a partial follows the first update"
        bids, asks = self.grid.best_first()
        at = iso(ts)
        return [
            {"symbol": self.contract.symbol, "id": self.ids[(side, price)], "side": side,
             "size": int(qty), "price": _number(price), "timestamp": at, "transactTime": at}
            for side, levels in (("Sell", asks[::-1]), ("Buy", bids))
            for price, qty in levels
        ]  # fmt: skip

    def forget_ids(self) -> None:
        """Give every level a new id and tell nobody (see the module docstring)."""
        for key in self.ids:
            self.ids[key] = self.next_id
            self.next_id += 1


def trade_rows(
    q: Quote, c: Contract, xbt_usd: float, ts: int, liquidations: list[LiquidationPrint],
    first_id: int,
) -> list[Row]:  # fmt: skip
    """One second's ``trade`` rows of a symbol: the liquidations' fills (the liquidated
    position's close is the taker: a long's close sells), then the calm tape
    (:func:`~service.simulate.wirekit.tape`) as one taker buy at the ask and one taker sell
    at the bid. ``side`` is the taker's, ``size`` contracts; ``grossValue`` (minor units of
    the settlement currency), ``homeNotional`` (base coin) and ``foreignNotional`` (quote
    currency) as BitMEX values them."""
    fills = [
        ("Sell" if p.side is Side.LONG else "Buy", p.qty_base, p.price, p.ts_ms)
        for p in liquidations
    ]
    buy, sell = tape(q)
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    fills += [("Buy", buy, ask, ts), ("Sell", sell, bid, ts)]
    out: list[Row] = []
    for n, (side, qty, at, t) in enumerate(fills):
        if qty <= 0:
            continue
        price = c.price(at)
        size = c.contracts(qty, price, xbt_usd)
        usd = size * c.usd_per_contract(price, xbt_usd)
        gross = c.open_value(size, price)
        out.append({
            "timestamp": iso(t), "symbol": c.symbol, "side": side, "size": size,
            "price": price, "tickDirection": "PlusTick" if side == "Buy" else "MinusTick",
            "trdMatchID": str(uuid.uuid5(TRADE_IDS, f"{c.symbol}:{first_id + n}")),
            "grossValue": gross, "homeNotional": usd / price, "foreignNotional": usd,
        })  # fmt: skip
    return out
