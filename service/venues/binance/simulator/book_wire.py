"""The simulator's liquidity streams, both products: ``bookTicker``, ``aggTrade`` and the diff
depth ``<symbol>@depth[@500ms|@100ms]`` with its REST snapshot (``GET <prefix>/depth``), in the
shapes of https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams (and the COIN-M twins, which add ``"ps"``). Pure: no I/O.

The book is shaped from the simulated market's quote as Bybit's simulated book is
(:class:`~service.simulate.bookkit.LevelGrid`): the best bid and ask around the mark
``spread_bp`` apart, then a grid every :data:`LEVEL_STEP_BP` of the first mark seen, each
level holding :data:`LEVEL_SIZE_OF_OI` of the open interest times the quote's depth
multiplier (two significant digits: base coin on USDⓈ-M, whole contracts on COIN-M). So the
spread widens and every level thins as a phase unwinds, and a quiet market sends no diff.

Update ids: each diff covers ``U = pu + 1`` to ``u = pu + <levels changed>``; the snapshot's
``lastUpdateId`` is the ``u`` of the last diff sent (the book's state), so the first diff a
client applies after a snapshot has ``pu == lastUpdateId``. :meth:`DiffBook.skip` advances
``u`` without a diff: the next diff's ``pu`` then skips one (a gap, for the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from ....events import Side
from ....simulate.bookkit import LevelGrid, Levels, sig2
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import book_prices, tape
from .usdm_wire import Contract, fmt

LEVELS: Final = 200
"""Levels a side: with :data:`LEVEL_STEP_BP`, they reach 3 % of mid (the real 1000-level
snapshot of a major reaches 1-2 %)."""
LEVEL_STEP_BP: Final = 1.5
LEVEL_SIZE_OF_OI: Final = 0.0004
"""Each level's size as a share of the open interest, at a depth multiplier of 1."""
DEPTH_SPEEDS: Final = {"": 250, "@500ms": 500, "@100ms": 100}
"""The diff stream's suffixes and their push interval (ms)."""


def tick(c: Contract) -> float:
    return 10.0**-c.price_precision


def inverse(c: Contract) -> bool:
    """A COIN-M contract: its symbol is its pair and a delivery (``BTCUSD_PERP``), where a
    USDⓈ-M symbol is its pair (``BTCUSDT``)."""
    return c.pair != c.symbol


def level_size(q: Quote, c: Contract) -> str:
    """One level's size as the wire writes it: base coin (USDⓈ-M) or whole contracts."""
    if not inverse(c):
        return fmt(sig2(q.oi_base * LEVEL_SIZE_OF_OI * q.depth), c.qty_precision)
    usd = q.oi_base * q.mark * LEVEL_SIZE_OF_OI * q.depth
    return str(max(1, round(sig2(usd / c.contract_size))))


def top(q: Quote, c: Contract) -> tuple[float, float]:
    """The best bid and ask of the simulated market's ``q``."""
    return book_prices(q.mark, q.spread_bp, tick(c))


def _pair(c: Contract) -> dict[str, str]:
    return {"ps": c.pair} if inverse(c) else {}


@dataclass(slots=True)
class DiffBook:
    """One symbol's book as last sent, and its update id."""

    contract: Contract
    u: int = 1_000_000
    key: tuple[float, float, str] | None = None
    grid: LevelGrid | None = None

    def update(self, q: Quote) -> tuple[int, Levels, Levels] | None:
        """Move to ``q``: ``(pu, bids, asks)`` of the levels that changed (size ``"0"``:
        gone), ``None`` when none did. Advances ``u`` by the levels changed."""
        c = self.contract
        if self.grid is None:
            step = max(tick(c), round(q.mark * LEVEL_STEP_BP / 10_000 / tick(c)) * tick(c))
            self.grid = LevelGrid(LEVELS, step, partial(fmt, decimals=c.price_precision))
        bid, ask = top(q, c)
        size = level_size(q, c)
        key = (bid, ask, size)
        if key == self.key:
            return None
        self.key = key
        changed = self.grid.move(bid, ask, size)
        if changed is None:
            return None
        pu = self.u
        self.u += len(changed[0]) + len(changed[1])
        return pu, *changed

    def skip(self) -> None:
        """An update no subscriber gets: the next diff's ``pu`` leaves one out."""
        self.u += 1

    def diff(self, pu: int, bids: Levels, asks: Levels, ts: int) -> dict[str, Any]:
        """``{"e":"depthUpdate","E":...,"T":...,"s":...,"U":...,"u":...,"pu":...,"b":[...],
        "a":[...]}`` (COIN-M: ``ps`` after ``s``)."""
        c = self.contract
        return {"e": "depthUpdate", "E": ts, "T": ts - 2, "s": c.symbol, **_pair(c),
                "U": pu + 1, "u": self.u, "pu": pu, "b": bids, "a": asks}  # fmt: skip

    def snapshot(self, limit: int, now_ms: int) -> dict[str, Any]:
        """``GET <prefix>/depth?symbol=&limit=``: ``{"lastUpdateId":...,"E":...,"T":...,
        "bids":[...],"asks":[...]}`` best first (COIN-M adds ``symbol`` and ``pair``)."""
        assert self.grid is not None, "a snapshot follows the first update"
        bids, asks = self.grid.best_first(limit)
        c = self.contract
        head = {"symbol": c.symbol, "pair": c.pair} if inverse(c) else {}
        return {"lastUpdateId": self.u, "E": now_ms, "T": now_ms - 2, **head,
                "bids": bids, "asks": asks}  # fmt: skip


def book_ticker(q: Quote, c: Contract, update_id: int, ts: int) -> dict[str, Any]:
    """``{"e":"bookTicker","u":...,"E":...,"T":...,"s":...,"b":...,"B":...,"a":...,
    "A":...}`` (COIN-M: ``ps`` after ``s``): the book's best levels."""
    bid, ask = top(q, c)
    size = level_size(q, c)
    p = partial(fmt, decimals=c.price_precision)
    return {"e": "bookTicker", "u": update_id, "E": ts, "T": ts - 2, "s": c.symbol, **_pair(c),
            "b": p(bid), "B": size, "a": p(ask), "A": size}  # fmt: skip


def agg_trades(
    q: Quote, c: Contract, ts: int, liquidations: list[LiquidationPrint], first_id: int
) -> list[dict[str, Any]]:
    """One second's ``aggTrade`` events of a symbol: the liquidations' fills (the liquidated
    position's close is the taker: a long's close sells, so the buyer is the maker, ``m``
    true), then the calm tape (:func:`~service.simulate.wirekit.tape`) as one taker buy at
    the ask and one taker sell at the bid. ``q`` base coin (USDⓈ-M) or whole contracts
    (COIN-M); aggregate ids ``a`` count up from ``first_id``."""
    fills = [(p.side is Side.LONG, p.qty_base, p.price, p.ts_ms) for p in liquidations]
    buy, sell = tape(q)
    bid, ask = top(q, c)
    fills += [(False, buy, ask, ts), (True, sell, bid, ts)]
    out: list[dict[str, Any]] = []
    for maker_buys, qty, price, t in fills:
        if inverse(c):
            text = str(round(qty * price / c.contract_size))
        else:
            text = fmt(qty, c.qty_precision)
        if float(text) <= 0:
            continue
        a = first_id + len(out)
        out.append({"e": "aggTrade", "E": ts, "s": c.symbol, "a": a,
                    "p": fmt(price, c.price_precision), "q": text, "f": a * 3, "l": a * 3 + 2,
                    "T": t, "m": maker_buys})  # fmt: skip
    return out
