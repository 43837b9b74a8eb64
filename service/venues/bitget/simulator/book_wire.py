"""The simulator's v2 ``books15`` (and ``books1``, ``books5``): the whole book, shaped from the
simulated market's quote, pushed every :data:`BOOK_INTERVAL_S` to each subscriber. Pure: a
quote in, a frame out.

The shape is deterministic (no randomness of its own): the best bid and ask are the ticker's
(:func:`~service.simulate.wirekit.book_prices`: the quote's spread around the mark), and the
levels behind them sit every :data:`LEVEL_STEP_BP` of the mark, each holding the same size
(:data:`LEVEL_SIZE_OF_OI` of the open interest times the quote's depth multiplier, on the
size step). So a phase that unwinds thins every level, and 15 levels reach about 0.7 % of
mid: the 0.5 % band is complete, the 1 and 2 % ones are lower bounds, as on the venue where
15 levels reach less than 2 %.

Real frame, for reference (the docs' example, ``books5``)::

    {"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5","instId":
    "BTCUSDT"},"data":[{"asks":[["27000.5","8.760"],["27001.0","0.400"]],"bids":[["27000.0",
    "2.710"],["26999.5","1.460"]],"checksum":0,"seq":123,"pseq":122,"ts":"1695716059516"}]}
"""

from __future__ import annotations

from typing import Final

from ....simulate.market import Quote
from ....simulate.wirekit import book_prices, encode
from .wire import BOOK_CHANNELS, V2_INST_TYPES, Contract, fmt, price

BOOK_INTERVAL_S: Final = 0.15
"""The docs' default push interval of ``books5`` and ``books15``."""
LEVEL_STEP_BP: Final = 5.0
"""The grid of the levels behind the best one: 15 levels reach about 0.7 % of mid."""
LEVEL_SIZE_OF_OI: Final = 0.0002
"""Each level's size as a share of the open interest (times the quote's depth)."""


def levels(q: Quote, c: Contract, n: int) -> tuple[list[list[str]], list[list[str]]]:
    """The best ``n`` levels a side for ``q``, best first, ``[price, size]`` as text."""
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    step = max(c.tick, q.mark * LEVEL_STEP_BP / 10_000)
    steps = max(1, round(q.oi_base * LEVEL_SIZE_OF_OI * q.depth / c.qty_step))
    size = fmt(steps * c.qty_step, 8)
    bids = [[price(bid - i * step, c), size] for i in range(n) if bid - i * step > 0]
    asks = [[price(ask + i * step, c), size] for i in range(n)]
    return bids, asks


def books_frame(c: Contract, channel: str, q: Quote, ts: int) -> str:
    """One push of ``channel`` for ``c``: its whole book now (``seq`` the push time)."""
    bids, asks = levels(q, c, BOOK_CHANNELS[channel])
    arg = {"instType": V2_INST_TYPES[c.inst_type], "channel": channel, "instId": c.symbol}
    row = {"asks": asks, "bids": bids, "checksum": 0, "seq": ts, "pseq": ts - 1, "ts": str(ts)}
    return encode({"action": "snapshot", "arg": arg, "data": [row], "ts": ts})
