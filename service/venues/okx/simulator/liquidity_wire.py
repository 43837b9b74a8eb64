"""The simulator's ``tickers`` and ``trades``: the top of book and the tape of the simulated
market, in OKX's shapes (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-
tickers-channel and ...-ws-trades-channel, their push examples)::

    {"arg":{"channel":"tickers","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",
     "instId":"BTC-USDT-SWAP","last":"9999.99","lastSz":"1","askPx":"9999.99","askSz":"11",
     "bidPx":"8888.88","bidSz":"5","open24h":"9000","high24h":"10000","low24h":"8888.88",
     "volCcy24h":"2222","vol24h":"2222","sodUtc0":"2222","sodUtc8":"2222",
     "ts":"1597026383085"}]}
    {"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",
     "tradeId":"130639474","px":"42219.9","sz":"1","side":"buy","ts":"1630048897897",
     "count":"3","source":"0","seqId":1234}]}

The ticker's best bid and ask are the ``books`` channel's best level (:func:`.book_wire.top`),
so both widen and thin together as a phase unwinds. Sizes are whole **contracts** of ``ctVal``
(linear: coin; inverse: USD).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import DayRange, tape
from .book_wire import top
from .wire import INST_TYPE, Contract, fmt

TICKERS: Final = "tickers"
TRADES: Final = "trades"


def ticker_row(q: Quote, c: Contract, ts_ms: int, day: DayRange) -> dict[str, Any]:
    """One ``tickers`` row: the whole ticker (OKX sends no deltas), ``vol24h`` in contracts
    and ``volCcy24h`` in coin (a calm day trades about the open interest)."""
    bid, ask, size = top(q, c)
    d = c.price_decimals
    last = day.last(q.mark, 10.0**-d)
    oi = q.oi_base / c.ct_val if c.linear else q.oi_base * q.mark / c.ct_val
    return {
        "instType": INST_TYPE,
        "instId": c.inst_id,
        "last": fmt(last, d),
        "lastSz": "1",
        "askPx": fmt(ask, d),
        "askSz": str(size),
        "bidPx": fmt(bid, d),
        "bidSz": str(size),
        "open24h": fmt(day.open, d),
        "high24h": fmt(day.high, d),
        "low24h": fmt(day.low, d),
        "volCcy24h": fmt(q.oi_base, 4),
        "vol24h": fmt(oi, 0),
        "sodUtc0": fmt(day.open, d),
        "sodUtc8": fmt(day.open, d),
        "ts": str(ts_ms),
    }


def trade_rows(
    q: Quote, c: Contract, ts_ms: int, liquidations: Iterable[LiquidationPrint], first_id: int
) -> list[dict[str, Any]]:
    """One second's ``trades`` rows of a swap: each liquidation's fill (the liquidated
    position's close takes liquidity: a long's close is a taker sell), then the calm tape
    (:func:`~service.simulate.wirekit.tape`) as one taker buy at the ask and one taker sell
    at the bid. ``side`` is the taker's, ``sz`` whole contracts (at least one), ``tradeId``
    and ``seqId`` count up from ``first_id``."""
    fills = [
        ("sell" if p.side is Side.LONG else "buy", p.qty_base, p.price, p.ts_ms)
        for p in liquidations
    ]
    buy, sell = tape(q)
    bid, ask, _ = top(q, c)
    fills += [("buy", buy, ask, ts_ms), ("sell", sell, bid, ts_ms)]
    rows: list[dict[str, Any]] = []
    for side, qty, at, t in fills:
        if qty <= 0:
            continue
        n = first_id + len(rows)
        rows.append({
            "instId": c.inst_id, "tradeId": str(n), "px": fmt(at, c.price_decimals),
            "sz": str(c.contracts(qty, at)), "side": side, "ts": str(t), "count": "1",
            "source": "0", "seqId": n,
        })  # fmt: skip
    return rows
