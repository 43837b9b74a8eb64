"""The simulator's liquidity channels: ``bbo`` (the best bid and ask), ``l2Book`` (the whole
book, 20 levels a side, aggregated to ``nSigFigs`` when asked) and ``trades``, shaped from the
simulated market's quote. Pure: a quote in, a frame out (a book's :class:`LevelGrid` aside).

The shape is deterministic (no randomness of its own). The best bid and ask are the quote's
spread around the mark (:func:`~service.simulate.wirekit.book_prices`) on the venue's price
grid (:func:`tick`: 5 significant figures, at most ``6 - szDecimals`` decimals, integers
always allowed) or, for an aggregated book, on the bucket grid of ``nSigFigs`` (bids rounded
down, asks up). The levels behind them sit one bucket apart (:mod:`~service.simulate.bookkit`),
each holding :data:`SIZE_OF_OI_PER_BP` of the open interest per basis point of its width,
times the quote's depth multiplier: so a phase that unwinds widens the spread and thins every
level, and 20 levels reach 20 buckets (BTC at 60,000 aggregated to 4 figures: 10 USD each,
0.33 % of mid: the bands beyond are lower bounds, as on the venue).

Real frames, for reference (tardis-node's recording, ``test/mappers.test.ts``)::

    {"channel":"bbo","data":{"coin":"BTC","time":1750948919838,"bbo":[{"px":"107575.0",
     "sz":"3.87947","n":17}]}}
    {"channel":"l2Book","data":{"coin":"BANANA","time":1730160007687,"levels":[[{"px":"59.8",
     "sz":"3.4","n":1},{"px":"59.778","sz":"1.6","n":1}],[{"px":"59.811","sz":"2.9","n":1},
     {"px":"59.832","sz":"17.6","n":1}]]}}
    {"channel":"trades","data":[{"coin":"BTC","side":"B","px":"69997.0","sz":"0.38111",
     "time":1730160006192,"hash":"0x40d1...f9dd","tid":1016375172059570}]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from ....events import Side
from ....simulate.bookkit import LevelGrid
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import book_prices, tape
from .wire import MAX_PRICE_DECIMALS, digest, num, price, push

BOOK_LEVELS: Final = 20
SIZE_OF_OI_PER_BP: Final = 0.0002
"""A level's size: this share of the open interest per basis point of the level's width."""
SIG_FIGS: Final = frozenset({2, 3, 4, 5})
"""The ``nSigFigs`` the venue accepts (``null``: full precision)."""


def tick(px: float, sz_decimals: int) -> float:
    """The venue's price step at ``px``: 5 significant figures and at most ``6 - szDecimals``
    decimals, an integer price always allowed."""
    five = 10.0 ** (math.floor(math.log10(px)) - 4)
    return min(1.0, max(five, 10.0 ** -(MAX_PRICE_DECIMALS - sz_decimals)))


def bucket(px: float, sz_decimals: int, sig_figs: int | None) -> float:
    """The width of a level at ``px`` aggregated to ``sig_figs`` figures (``None``: a tick)."""
    step = tick(px, sz_decimals)
    if sig_figs is None:
        return step
    return max(step, 10.0 ** (math.floor(math.log10(px)) - sig_figs + 1))


def _level(px: str, sz: str) -> dict[str, Any]:
    return {"px": px, "sz": sz, "n": 1}


def _size(q: Quote, width: float, sz_decimals: int) -> str:
    bp = width / q.mark * 10_000
    return num(q.oi_base * SIZE_OF_OI_PER_BP * bp * q.depth, sz_decimals)


def bbo_levels(q: Quote, sz_decimals: int) -> tuple[str, str, str]:
    """``(bid, ask, size)`` as text: the best prices, each holding one tick's size."""
    step = tick(q.mark, sz_decimals)
    bid, ask = book_prices(q.mark, q.spread_bp, step)
    return price(bid, sz_decimals), price(ask, sz_decimals), _size(q, step, sz_decimals)


def bbo_push(coin: str, ts: int, top: tuple[str, str, str]) -> str:
    """``{"channel":"bbo","data":{"coin":...,"time":...,"bbo":[bid, ask]}}``."""
    bid, ask, size = top
    return push("bbo", {"coin": coin, "time": ts, "bbo": [_level(bid, size), _level(ask, size)]})


@dataclass(slots=True)
class WholeBook:
    """One coin's ``l2Book`` at one precision: its levels as last built."""

    coin: str
    sz_decimals: int
    sig_figs: int | None
    grid: LevelGrid | None = None
    step: float = 0.0
    key: tuple[float, float, str] | None = field(default=None)

    def levels(self, q: Quote) -> tuple[list[list[str]], list[list[str]]]:
        """The best 20 levels a side now, best first, ``[price, size]`` as text."""
        step = bucket(q.mark, self.sz_decimals, self.sig_figs)
        if self.grid is None or step != self.step:  # the mark crossed a power of ten
            self.grid = LevelGrid(BOOK_LEVELS, step, partial(price, sz_decimals=self.sz_decimals))
            self.step = step
        bid, ask = book_prices(q.mark, q.spread_bp, step)
        size = _size(q, step, self.sz_decimals)
        if (bid, ask, size) != self.key:
            self.key = (bid, ask, size)
            self.grid.move(bid, ask, size)
        return self.grid.best_first(BOOK_LEVELS)

    def push(self, q: Quote, ts: int) -> str:
        """``{"channel":"l2Book","data":{"coin":...,"time":...,"levels":[bids, asks]}}``."""
        bids, asks = self.levels(q)
        levels = [[_level(p, s) for p, s in bids], [_level(p, s) for p, s in asks]]
        return push("l2Book", {"coin": self.coin, "time": ts, "levels": levels})


def crossed_push(coin: str, ts: int, q: Quote, sz_decimals: int) -> str:
    """A book whose best bid is above its best ask (a test hook's bad push)."""
    bid, ask, size = bbo_levels(q, sz_decimals)
    levels = [[_level(ask, size)], [_level(bid, size)]]
    return push("l2Book", {"coin": coin, "time": ts, "levels": levels})


def trade_rows(
    q: Quote,
    coin: str,
    sz_decimals: int,
    ts: int,
    prints: list[LiquidationPrint],
    first_tid: int,
) -> list[dict[str, Any]]:
    """One batch of ``trades`` rows of a coin: the liquidations' fills (the liquidated
    position's close is the taker: a long's close sells, ``A``), then the calm tape
    (:func:`~service.simulate.wirekit.tape`) as a taker buy at the ask and a taker sell at
    the bid. ``sz`` in coin on the size step, ``tid`` counting up from ``first_tid``."""
    fills = [("A" if p.side is Side.LONG else "B", p.qty_base, p.price, p.ts_ms)
             for p in prints]  # fmt: skip
    buy, sell = tape(q)
    bid, ask = book_prices(q.mark, q.spread_bp, tick(q.mark, sz_decimals))
    fills += [("B", buy, ask, ts), ("A", sell, bid, ts)]
    out: list[dict[str, Any]] = []
    for n, (side, qty, at, t) in enumerate(fills):
        sz = num(qty, sz_decimals)
        if float(sz) <= 0:
            continue
        tid = first_tid + n
        buyer, seller = digest(coin, tid, "B", length=40), digest(coin, tid, "A", length=40)
        out.append({
            "coin": coin, "side": side, "px": price(at, sz_decimals), "sz": sz, "time": t,
            "hash": digest(coin, tid), "tid": tid, "users": [buyer, seller],
        })  # fmt: skip
    return out


def trades_push(rows: list[dict[str, Any]]) -> str:
    return push("trades", rows)
