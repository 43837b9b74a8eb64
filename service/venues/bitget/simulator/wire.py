"""Bitget's public v3 websocket protocol, server side. Pure: frames in, frames out, no I/O.
On the v2 endpoint (``/v2/ws/public``) a session speaks v2's args and serves only the
whole-book channels (``books15``, ``books5``, ``books1``: :mod:`.book_wire`); the others
are refused there as unknown (the venue serves them, the collector does not ask for them).

What the simulator's server needs to speak like ``wss://ws.bitget.com/v3/ws/public``: the
``subscribe``/``unsubscribe`` requests with their per-arg acks and error frames, the
``ticker`` pushes (per symbol), the sampled ``liquidation`` pushes (per instType), the
``publicTrade`` tape (per symbol), and the contract listing. Real frames, for reference::

    {"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"},
     "connId":"xxxxxxxxxx"}
    {"action":"snapshot","arg":{"instType":"usdt-futures","topic":"ticker","symbol":"BTCUSDT"},
     "data":[{"highPrice24h":"78237.7",...,"markPrice":"76631.3","fundingRate":"-0.00003",
     "openInterest":"29539.3825",...,"nextFundingTime":"1777363200000"}],"ts":1777358880084}
    {"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[
     {"symbol":"APEUSDT","side":"buy","price":"0.1649","amount":"13.70319",
     "ts":"1777358886549"}],"ts":1777358897167}

Liquidations (the docs): once a second, per symbol the largest long and the largest short
liquidation of the previous second (:func:`sample`); ``side`` the position side, ``price``
an average fill price, ``amount`` the quote value (size x price).

Not documented by Bitget, so chosen here: error codes and texts (``30001`` unknown channel,
``30002`` over 1000 channels, ``30003`` bad request), and the close codes of the venue's
limits (:data:`TOO_MANY_MESSAGES`, :data:`NO_PING`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.wirekit import DayRange, book_prices, recorded, tape
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers

PRODUCT_TYPES: Final = {"USDT-FUTURES": "usdt-futures", "COIN-FUTURES": "coin-futures"}
INST_TYPES: Final = tuple(PRODUCT_TYPES.values())
TOPICS: Final = ("ticker", "liquidation")
BOOK_CHANNELS: Final = {"books1": 1, "books5": 5, "books15": 15}
"""v2's whole-book channels and their levels a side."""
V2_INST_TYPES: Final = {v3: v2 for v2, v3 in PRODUCT_TYPES.items()}
"""The v3 ``instType`` a session keeps -> v2's spelling (``USDT-FUTURES``)."""
MAX_CHANNELS: Final = 1000
MAX_MESSAGES_PER_S: Final = 10
TOO_MANY_MESSAGES: Final = (1008, "too many messages")
NO_PING: Final = (1000, "no ping")

BITGET_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSDT", "BTC", 60_000.0, 40_000.0, 0.001),
    SymbolSpec("ETHUSDT", "ETH", 3_000.0, 600_000.0, 0.01),
    SymbolSpec("SOLUSDT", "SOL", 150.0, 3_000_000.0, 1.0),
    SymbolSpec("DOGEUSDT", "DOGE", 0.15, 2_000_000_000.0, 1.0),
    SymbolSpec("BTCUSD", "BTC", 60_000.0, 3_000.0, 0.001),
    SymbolSpec("ETHUSD", "ETH", 3_000.0, 30_000.0, 0.1),
)
"""USDT-margined and coin-margined perpetuals of the listing (``qty_step`` = the listing's
``minTradeNum``, base coin for both)."""
BITGET_SYMBOLS: Final = tuple(s.symbol for s in BITGET_SPECS)

Arg = tuple[str, str, str]
"""A subscription: (instType, topic, symbol); ``""`` as the symbol of ``liquidation``."""


def load_contracts(product_type: str) -> dict[str, Any]:
    """The ``/api/v2/mix/market/contracts`` body of ``product_type`` (``data/bitget``)."""
    body: dict[str, Any] = recorded(
        "service.venues.bitget.simulator", f"data/contracts-{product_type}.json"
    )
    return body


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one perpetual."""

    symbol: str
    inst_type: str
    price_decimals: int
    tick: float
    qty_step: float
    funding_interval_h: float


def contracts(listings: Mapping[str, Mapping[str, Any]]) -> dict[str, Contract]:
    """The trading perpetuals of contract listings, by product type."""
    out: dict[str, Contract] = {}
    for product_type, body in listings.items():
        for r in body["data"]:
            if r["symbolType"] != "perpetual" or r["symbolStatus"] != "normal":
                continue
            places = int(r["pricePlace"])
            out[r["symbol"]] = Contract(
                r["symbol"],
                PRODUCT_TYPES[product_type],
                places,
                int(r["priceEndStep"]) * 10.0**-places,
                float(r["sizeMultiplier"]),
                float(r["fundInterval"]),
            )
    return out


def listed(listings: Mapping[str, Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """instType -> every symbol it lists (a ticker of any of them can be subscribed)."""
    return {
        PRODUCT_TYPES[pt]: frozenset(r["symbol"] for r in body["data"])
        for pt, body in listings.items()
    }


def only(body: Mapping[str, Any], symbols: Iterable[str]) -> dict[str, Any]:
    keep = set(symbols)
    return {**body, "data": [r for r in body["data"] if r["symbol"] in keep]}


def fmt(x: float, decimals: int) -> str:
    """Fixed-point text without trailing zeros ("0.4705", "76631.3")."""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{x:.0f}"
    return "0" if text in ("-0", "") else text


def price(x: float, c: Contract) -> str:
    return fmt(round(x / c.tick) * c.tick, c.price_decimals)


def next_funding_ms(now_ms: int, interval_h: float) -> int:
    step = int(interval_h * 3_600_000)
    return (now_ms // step + 1) * step


@dataclass(slots=True)
class TickerBook:
    """One symbol's 24 h figures, kept across pushes."""

    contract: Contract
    day: DayRange = field(default_factory=DayRange)
    volume: float = 0.0

    def row(self, q: Quote, now_ms: int) -> dict[str, str]:
        """The v3 ticker row for ``q`` (every field, as the venue sends them)."""
        c = self.contract
        day = self.day
        last = day.last(q.mark, c.tick)
        self.volume += q.oi_base * 1e-5
        book = max(c.qty_step, round(q.oi_base * 1e-4 * q.depth / c.qty_step) * c.qty_step)
        bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
        qty_decimals = max(0, len(f"{c.qty_step:g}".partition(".")[2]))
        return {
            "highPrice24h": price(day.high, c),
            "lowPrice24h": price(day.low, c),
            "openPrice24h": price(day.open, c),
            "lastPrice": price(last, c),
            "turnover24h": fmt(self.volume * last, 5),
            "volume24h": fmt(self.volume, 4),
            "bid1Price": price(bid, c),
            "ask1Price": price(ask, c),
            "bid1Size": fmt(book, qty_decimals),
            "ask1Size": fmt(book * 0.8, qty_decimals),
            "price24hPcnt": fmt(last / day.open - 1, 4),
            "indexPrice": fmt(q.index, 16),
            "markPrice": price(q.mark, c),
            "fundingRate": fmt(q.funding_rate_8h * c.funding_interval_h / 8, 6),
            "openInterest": fmt(q.oi_base, 4),
            "deliveryTime": "",
            "deliveryStartTime": "",
            "deliveryStatus": "",
            "nextFundingTime": str(next_funding_ms(now_ms, c.funding_interval_h)),
        }


def ticker_frame(action: str, c: Contract, row: Mapping[str, str], ts: int) -> str:
    arg = {"instType": c.inst_type, "topic": "ticker", "symbol": c.symbol}
    return encode({"action": action, "arg": arg, "data": [row], "ts": ts})


def sample(prints: Iterable[LiquidationPrint]) -> list[LiquidationPrint]:
    """What one second of liquidations shows: per symbol, the largest long and the largest
    short (by quantity), in time order."""
    best: dict[tuple[str, Side], LiquidationPrint] = {}
    for p in prints:
        key = (p.symbol, p.side)
        if key not in best or p.qty_base > best[key].qty_base:
            best[key] = p
    return sorted(best.values(), key=lambda p: (p.ts_ms, p.symbol))


def liquidation_row(p: LiquidationPrint, c: Contract) -> dict[str, str]:
    """``side`` the position side (``buy``: a long), ``price`` the average fill price (12
    decimals, as the venue prints it), ``amount`` the quote value of the size on its step."""
    size = max(1, round(p.qty_base / c.qty_step)) * c.qty_step
    fill = float(fmt(p.price, 12))
    return {
        "symbol": p.symbol,
        "side": "buy" if p.side is Side.LONG else "sell",
        "price": fmt(fill, 12),
        "amount": fmt(size * fill, 12),
        "ts": str(p.ts_ms),
    }


def liquidation_frame(inst_type: str, rows: list[dict[str, str]], ts: int) -> str:
    arg = {"instType": inst_type, "topic": "liquidation"}
    return encode({"action": "update", "arg": arg, "data": rows, "ts": ts})


def trade_rows(
    q: Quote, c: Contract, ts: int, liquidations: list[LiquidationPrint], first_id: int
) -> list[dict[str, str]]:
    """One second's ``publicTrade`` rows of a symbol: the liquidations' fills (every one,
    unlike the sampled ``liquidation`` channel; the liquidated position's close is the
    taker: a long's close sells), then the calm tape
    (:func:`~service.simulate.wirekit.tape`) as a taker buy at the ask and a taker sell at
    the bid. ``S`` the taker's side, ``v`` base coin on the size step, ``T`` text."""
    fills = [("sell" if p.side is Side.LONG else "buy", p.qty_base, p.price, p.ts_ms)
             for p in liquidations]  # fmt: skip
    buy, sell = tape(q)
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    fills += [("buy", buy, ask, ts), ("sell", sell, bid, ts)]
    out = []
    for n, (side, qty, at, t) in enumerate(fills):
        steps = round(qty / c.qty_step)
        if steps > 0:
            out.append({
                "i": str(first_id + n), "p": price(at, c), "v": fmt(steps * c.qty_step, 8),
                "S": side, "T": str(t), "L": str(first_id + n), "isRPI": "no",
            })  # fmt: skip
    return out


def trade_frame(action: str, c: Contract, rows: list[dict[str, str]], ts: int) -> str:
    """``{"action":"update","arg":{"instType":"usdt-futures","topic":"publicTrade","symbol":
    "BTCUSDT"},"data":[{"i":"...","p":"76631.3","v":"0.01","S":"buy","T":"...","L":"...",
    "isRPI":"no"}],"ts":...}``; a ``snapshot`` (the latest trades) follows a subscribe."""
    arg = {"instType": c.inst_type, "topic": "publicTrade", "symbol": c.symbol}
    return encode({"action": action, "arg": arg, "data": rows, "ts": ts})


def arg_of(a: Arg) -> dict[str, str]:
    inst_type, topic, symbol = a
    return {"instType": inst_type, "topic": topic} | ({"symbol": symbol} if symbol else {})


@dataclass(slots=True)
class Session:
    """One connection's protocol state: its subscriptions and the times of its messages."""

    conn_id: str
    listed: Mapping[str, frozenset[str]]
    v2: bool = False
    """A session of the v2 endpoint: v2 args (``channel``, ``instId``), books only."""
    args: dict[Arg, None] = field(default_factory=dict)
    sent_s: list[float] = field(default_factory=list)
    """Times (s) of the client's messages in the last second, pings included."""

    def over_rate(self, now_s: float) -> bool:
        """Count one client message at ``now_s``; true beyond 10 in a second (the venue
        then closes the connection)."""
        self.sent_s = [t for t in self.sent_s if now_s - t < 1.0] + [now_s]
        return len(self.sent_s) > MAX_MESSAGES_PER_S

    def handle(self, text: str) -> tuple[list[str], list[Arg]]:
        """Answer one request: the reply frames, and the args newly subscribed."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            return [self._error("30003", f"Invalid request: {text[:100]}")], []
        if not isinstance(req, dict) or not isinstance(req.get("args"), list):
            return [self._error("30003", f"Invalid request: {text[:100]}")], []
        op = req.get("op")
        if op not in ("subscribe", "unsubscribe"):
            return [self._error("30003", f"Invalid op: {op}")], []
        replies: list[str] = []
        added: list[Arg] = []
        for raw in req["args"]:
            a = self._arg(raw)
            if isinstance(a, str):
                replies.append(self._error("30001", a, raw))
                continue
            if op == "unsubscribe":
                self.args.pop(a, None)
            elif a not in self.args:
                if len(self.args) >= MAX_CHANNELS:
                    replies.append(self._error("30002", "channel limit exceeded", raw))
                    continue
                self.args[a] = None
                added.append(a)
            ack = v2_arg_of(a) if self.v2 else arg_of(a)
            replies.append(encode({"event": op, "arg": ack, "connId": self.conn_id}))
        return replies, added

    def _arg(self, raw: Any) -> Arg | str:
        if not isinstance(raw, dict):
            return f"{raw} doesn't exist"
        if self.v2:
            return self._v2_arg(raw)
        inst_type, topic = str(raw.get("instType", "")), str(raw.get("topic", ""))
        symbol = str(raw.get("symbol", ""))
        if inst_type in self.listed and topic == "liquidation" and not symbol:
            return (inst_type, topic, "")
        if (
            inst_type in self.listed
            and topic in ("ticker", "publicTrade")
            and symbol in self.listed[inst_type]
        ):
            return (inst_type, topic, symbol)
        return f"instType:{inst_type},topic:{topic},symbol:{symbol} doesn't exist"

    def _v2_arg(self, raw: dict[str, Any]) -> Arg | str:
        """A v2 arg, kept as (v3 instType, channel, symbol): the whole-book channels only."""
        v2_type, channel = str(raw.get("instType", "")), str(raw.get("channel", ""))
        symbol = str(raw.get("instId", ""))
        inst_type = PRODUCT_TYPES.get(v2_type, "")
        if channel in BOOK_CHANNELS and symbol in self.listed.get(inst_type, ()):
            return (inst_type, channel, symbol)
        return f"instType:{v2_type},channel:{channel},instId:{symbol} doesn't exist"

    def _error(self, code: str, msg: str, arg: Any = None) -> str:
        body = {"event": "error"} | ({"arg": arg} if isinstance(arg, dict) else {})
        return encode(body | {"code": code, "msg": msg, "connId": self.conn_id})


def v2_arg_of(a: Arg) -> dict[str, str]:
    inst_type, channel, symbol = a
    return {"instType": V2_INST_TYPES[inst_type], "channel": channel, "instId": symbol}
