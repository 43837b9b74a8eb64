"""The frames ``deleverage bench wire`` sends: the venues' real wire shapes, pure and seeded.

One *round* is one second of venue time; a plan is rounds until at least ``frames`` frames.
A round carries, per venue, what the venue pushes in a second of a liquidation cascade:

* Binance USDⓈ-M (combined-stream envelope, ``/market/stream``): one ``!markPrice@arr@1s``
  array over every listed symbol, then ``liquidations`` ``!forceOrder@arr`` frames::

    {"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1584059031426,"o":{"s":"BTCUSDT",
    "S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED",
    "l":"0.015","z":"0.014","T":1584059031421}}}

* Bybit v5: ``tickers.<symbol>`` of ``symbols`` symbols (a snapshot in the first round,
  deltas of mark, index, open interest and funding afterwards), and ``liquidations``
  ``allLiquidation.<symbol>`` frames of one row::

    {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,
    "data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}

* OKX v5: ``mark-price`` and ``open-interest`` of ``symbols`` swaps, and ``liquidations``
  ``liquidation-orders`` pushes of one detail::

    {"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":
    "0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",
    "ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",
    "instType":"SWAP","uly":"IOST-USDT"}]}

Each frame is tagged with the subscription that receives it (:attr:`Frame.topic`), so the
loopback server (:mod:`.blaster`) sends it on the connection that asked for it. Times are
milliseconds from ``t0_ms``, increasing, and every liquidation is distinct: nothing in a plan
is a duplicate the service may drop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..venues.base import Instrument

BINANCE, BYBIT, OKX = "binance_usdm", "bybit", "okx"
VENUES = (BINANCE, BYBIT, OKX)
MARK_ARRAY = "!markPrice@arr@1s"
FORCE_ORDERS = "!forceOrder@arr"
OKX_LIQUIDATIONS = "liquidation-orders:SWAP"
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Frame:
    venue: str
    topic: str
    """The subscription that receives it (see :func:`topics_of`)."""
    text: str


@dataclass(frozen=True, slots=True)
class Mix:
    """What one round carries per venue."""

    liquidations: int = 500
    """Liquidation frames per venue per round (a cascade)."""
    symbols: int = 50
    """Bybit and OKX symbols with a ticker / mark / open-interest push per round."""


def _text(obj: Any) -> str:
    return _encode(obj).decode()


def _price(i: int, rnd: int) -> float:
    return round(10.0 + (i % 97) * 3.1 + rnd * 0.01, 4)


def binance_round(
    symbols: Sequence[str], rnd: int, ts_ms: int, liquidations: int
) -> Iterator[Frame]:
    arr = [
        {"e": "markPriceUpdate", "E": ts_ms, "s": s, "p": f"{_price(i, rnd):.8f}",
         "i": f"{_price(i, rnd) * 0.999:.8f}", "P": f"{_price(i, rnd):.8f}",
         "r": "0.00010000", "T": ts_ms - ts_ms % 28_800_000 + 28_800_000}
        for i, s in enumerate(symbols)
    ]  # fmt: skip
    yield Frame(BINANCE, MARK_ARRAY, _text({"stream": MARK_ARRAY, "data": arr}))
    for j in range(liquidations):
        s = symbols[j % len(symbols)]
        px = _price(j, rnd)
        qty = f"{1 + j % 7}.000"
        order = {"s": s, "S": "SELL" if j % 3 else "BUY", "o": "LIMIT", "f": "IOC", "q": qty,
                 "p": f"{px * 0.999:.4f}", "ap": f"{px:.4f}", "X": "FILLED", "l": qty, "z": qty,
                 "T": ts_ms + j}  # fmt: skip
        data = {"e": "forceOrder", "E": ts_ms + j, "o": order}
        yield Frame(BINANCE, FORCE_ORDERS, _text({"stream": FORCE_ORDERS, "data": data}))


def bybit_round(symbols: Sequence[str], rnd: int, ts_ms: int, liquidations: int) -> Iterator[Frame]:
    for i, s in enumerate(symbols):
        px = _price(i, rnd)
        oi = 1_000_000 + i * 1000 + rnd
        data = {"symbol": s, "markPrice": f"{px:.4f}", "indexPrice": f"{px * 0.999:.4f}",
                "openInterest": f"{2 * oi}", "singleOpenInterest": f"{oi}",
                "fundingRate": f"{0.0001 + (rnd % 5) * 1e-6:.6f}"}  # fmt: skip
        kind = "delta"
        if rnd == 0:
            kind = "snapshot"
            data |= {"lastPrice": f"{px:.4f}", "fundingIntervalHour": "8",
                     "nextFundingTime": str(ts_ms - ts_ms % 28_800_000 + 28_800_000)}  # fmt: skip
        frame = {"topic": f"tickers.{s}", "type": kind, "data": data, "cs": rnd + 1, "ts": ts_ms}
        yield Frame(BYBIT, f"tickers.{s}", _text(frame))
    for j in range(liquidations):
        s = symbols[j % len(symbols)]
        row = {"T": ts_ms + j, "s": s, "S": "Sell" if j % 3 else "Buy", "v": f"{1 + j % 7}",
               "p": f"{_price(j, rnd):.4f}"}  # fmt: skip
        topic = f"allLiquidation.{s}"
        frame = {"topic": topic, "type": "snapshot", "ts": ts_ms + j, "data": [row]}
        yield Frame(BYBIT, topic, _text(frame))


def okx_round(
    markets: Sequence[Instrument], rnd: int, ts_ms: int, liquidations: int
) -> Iterator[Frame]:
    for i, inst in enumerate(markets):
        iid, px = inst.symbol, _price(i, rnd)
        mark = {"instId": iid, "instType": "SWAP", "markPx": f"{px:.4f}", "ts": str(ts_ms)}
        arg = {"channel": "mark-price", "instId": iid}
        yield Frame(OKX, f"mark-price:{iid}", _text({"arg": arg, "data": [mark]}))
        oi = 500_000 + i * 100 + rnd
        base = oi * inst.contract_size
        row = {"instId": iid, "instType": "SWAP", "oi": str(oi), "oiCcy": f"{base:.4f}",
               "oiUsd": f"{base * px:.2f}", "ts": str(ts_ms + 1)}  # fmt: skip
        arg = {"channel": "open-interest", "instId": iid}
        yield Frame(OKX, f"open-interest:{iid}", _text({"arg": arg, "data": [row]}))
    arg = {"channel": "liquidation-orders", "instType": "SWAP"}
    for j in range(liquidations):
        inst = markets[j % len(markets)]
        family = inst.symbol.removesuffix("-SWAP")
        long = bool(j % 3)
        detail = {"bkLoss": "0", "bkPx": f"{_price(j, rnd):.4f}", "ccy": "",
                  "posSide": "net", "side": "sell" if long else "buy", "sz": str(1 + j % 7),
                  "ts": str(ts_ms + j)}  # fmt: skip
        entry = {"details": [detail], "instFamily": family, "instId": inst.symbol,
                 "instType": "SWAP", "uly": family}  # fmt: skip
        yield Frame(OKX, OKX_LIQUIDATIONS, _text({"arg": arg, "data": [entry]}))


def plan(
    markets: dict[str, dict[str, Instrument]], frames: int, mix: Mix, t0_ms: int
) -> list[Frame]:
    """At least ``frames`` frames: whole rounds over the venues in ``markets`` (each venue's
    instruments by symbol; linear perpetuals are used for Bybit and OKX)."""
    binance = sorted(markets.get(BINANCE, {}))
    bybit = [s for s, i in sorted(markets.get(BYBIT, {}).items()) if i.linear][: mix.symbols]
    okx = [i for _, i in sorted(markets.get(OKX, {}).items()) if i.linear][: mix.symbols]
    out: list[Frame] = []
    rnd = 0
    while len(out) < frames:
        ts = t0_ms + rnd * 1000
        if binance:
            out += binance_round(binance, rnd, ts, mix.liquidations)
        if bybit:
            out += bybit_round(bybit, rnd, ts, mix.liquidations)
        if okx:
            out += okx_round(okx, rnd, ts, mix.liquidations)
        if not (binance or bybit or okx):
            raise ValueError("no instruments to send frames for")
        rnd += 1
    return out


def topics_of(venue: str, message: str) -> list[str]:
    """The topics a client's subscribe request asks for (``[]``: not a subscribe request),
    in the form of :attr:`Frame.topic`."""
    try:
        msg = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return []  # OKX's text "ping"
    if not isinstance(msg, dict):
        return []
    if venue == BINANCE and msg.get("method") == "SUBSCRIBE":
        return [str(p) for p in msg.get("params", [])]
    if venue == BYBIT and msg.get("op") == "subscribe":
        return [str(a) for a in msg.get("args", [])]
    if venue == OKX and msg.get("op") == "subscribe":
        return [
            f"{a.get('channel')}:{a.get('instId') or a.get('instType')}"
            for a in msg.get("args", [])
            if isinstance(a, dict)
        ]
    return []
