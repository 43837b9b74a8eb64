"""BitMEX's realtime websocket protocol, server side. Pure: frames in, frames out, no I/O.

What the simulator's server needs to speak like ``wss://ws.bitmex.com/realtime``: the welcome,
``subscribe``/``unsubscribe`` with one ack per topic, error frames, the ``partial`` snapshot of
each subscribed table followed by ``insert``/``update``/``delete`` rows, the ``instrument``
table (sparse diffs keyed by ``symbol``) and the ``liquidation`` table (keyed by ``orderID``),
and how each kind of contract counts (see :class:`Contract`). Real frames, for reference::

    {"info":"Welcome to the BitMEX Realtime API.","version":"2021-07-14T01:26:29.000Z",
     "timestamp":"2021-07-22T22:36:07.865Z","docs":"https://www.bitmex.com/app/wsAPI",
     "limit":{"remaining":39}}
    {"success":true,"subscribe":"quote:XBTUSD","request":{"op":"subscribe","args":[…]}}
    {"table":"instrument","action":"update","data":[{"symbol":"ETHUSD","openInterest":58922153}]}
    {"table":"liquidation","action":"insert","data":[{"orderID":"dd9cea25-207c-0dab-15b5-
     b88da776f500","symbol":"XBTUSD","side":"Buy","price":10106,"leavesQty":9214}]}
    {"table":"liquidation","action":"delete","data":[{"orderID":"dd9cea25-…","symbol":"XBTUSD"}]}

Not recorded, so chosen here: the texts of the error frames other than "Unknown table" and
"You are already subscribed to this topic"; the instrument ``partial`` carries no ``types``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers
from ....simulate.wirekit import recorded

TABLES: Final = ("instrument", "liquidation", "quote", "trade", "orderBookL2")
PERPETUAL: Final = "FFWCSX"
XBT_REFERENCE: Final = "XBTUSD"
XBT_SATOSHIS: Final = 1e8
SETTLEMENT_UNITS: Final = {"XBt": 1e8, "USDt": 1e6}
FUNDING_OFFSET_MS: Final = 4 * 3_600_000
"""BitMEX funds at 04:00, 12:00 and 20:00 UTC."""
VERSION: Final = "2021-07-14T01:26:29.000Z"
ORDER_IDS: Final = uuid.UUID("3a6f0c1e-5b1d-4c55-9d7e-b17e0000b17e")

BITMEX_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("XBTUSD", "BTC", 60_000.0, 9_000.0, 0.0001),
    SymbolSpec("ETHUSD", "ETH", 3_000.0, 90_000.0, 0.001),
    SymbolSpec("XBTUSDT", "BTC", 60_000.0, 2_500.0, 0.0001),
)
"""Inverse (1 USD contracts), quanto (ETHUSD: 100 XBt per USD of price) and linear
(XBTUSDT: 1e-6 XBT contracts, hand-written listing row) perpetuals."""
BITMEX_SYMBOLS: Final = tuple(s.symbol for s in BITMEX_SPECS)


def load_listing() -> list[dict[str, Any]]:
    """``GET /api/v1/instrument/active`` as served: the 2021 recording with the hand-written
    linear rows after it (see ``data/bitmex/README.md``)."""
    package = "service.venues.bitmex.simulator"
    rows: list[dict[str, Any]] = recorded(package, "data/instrument_active.json")
    linear: list[dict[str, Any]] = recorded(package, "data/instrument_linear.json")
    return rows + linear


def iso(ms: int) -> str:
    """Epoch ms as BitMEX writes times: ``2021-07-22T22:36:05.000Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def next_funding_ms(now_ms: int, interval_h: float) -> int:
    step = int(interval_h * 3_600_000)
    return ((now_ms - FUNDING_OFFSET_MS) // step + 1) * step + FUNDING_OFFSET_MS


@dataclass(frozen=True, slots=True)
class Contract:
    """One perpetual of the listing, and how it counts. Value of one contract, in minor units
    of the settlement currency (XBt, USDt): ``multiplier / price`` when inverse,
    ``multiplier x price`` otherwise (quanto: XBt whatever the quote currency)."""

    symbol: str
    kind: str
    """``inverse``, ``quanto`` or ``linear``."""
    multiplier: float
    """``|multiplier|``."""
    units: float
    """Minor units of the settlement currency per unit (1e8 XBt, 1e6 USDt)."""
    tick: float
    funding_interval_h: float
    row: Mapping[str, Any] = field(repr=False)
    """The listing row: the static part of the instrument table's row."""

    def usd_per_contract(self, price: float, xbt_usd: float) -> float:
        if self.kind == "inverse":
            return self.multiplier / self.units  # quote currency (USD) a contract
        value = self.multiplier * price / self.units  # XBT (quanto) or USDT (linear)
        return value * xbt_usd if self.kind == "quanto" else value

    def contracts(self, qty_base: float, price: float, xbt_usd: float) -> int:
        """``qty_base`` worth at ``price`` in whole contracts (at least one)."""
        return max(1, round(qty_base * price / self.usd_per_contract(price, xbt_usd)))

    def open_value(self, contracts: float, mark: float) -> int:
        """``openValue``: the contracts' value in minor units of the settlement currency."""
        if self.kind == "inverse":
            return round(contracts * self.multiplier / mark)
        return round(contracts * self.multiplier * mark)

    def price(self, x: float) -> float:
        """``x`` on the tick, as a JSON number."""
        decimals = max(0, -math.floor(math.log10(self.tick) + 1e-9))
        return round(round(x / self.tick) * self.tick, decimals)


def _interval_h(text: str | None) -> float:
    if not text:
        return 8.0
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds() / 3600


def contracts(listing: Iterable[Mapping[str, Any]], symbols: Iterable[str]) -> dict[str, Contract]:
    """The open perpetuals of ``listing`` among ``symbols`` that settle in XBt or USDt."""
    rows = {r["symbol"]: r for r in listing}
    out: dict[str, Contract] = {}
    for sym in symbols:
        row = rows.get(sym)
        if row is None or row["typ"] != PERPETUAL or row["settlCurrency"] not in SETTLEMENT_UNITS:
            continue
        kind = "inverse" if row["isInverse"] else "quanto" if row["isQuanto"] else "linear"
        out[sym] = Contract(
            sym,
            kind,
            abs(float(row["multiplier"])),
            SETTLEMENT_UNITS[row["settlCurrency"]],
            float(row["tickSize"]),
            _interval_h(row.get("fundingInterval")),
            row,
        )
    return out


# -- the instrument table --------------------------------------------------------------------


def live_fields(q: Quote, c: Contract, xbt_usd: float, now_ms: int) -> dict[str, Any]:
    """The fields of an instrument row that move with the market."""
    oi = round(q.oi_base * q.mark / c.usd_per_contract(q.mark, xbt_usd))
    rate = q.funding_rate_8h * c.funding_interval_h / 8.0
    mark = c.price(q.mark)
    return {
        "lastPrice": mark,
        "fairPrice": mark,
        "markPrice": mark,
        "indicativeSettlePrice": c.price(q.index),
        "fundingTimestamp": iso(next_funding_ms(now_ms, c.funding_interval_h)),
        "fundingRate": round(rate, 6),
        "indicativeFundingRate": round(rate, 6),
        "openInterest": oi,
        "openValue": c.open_value(oi, q.mark),
    }


OI_FIELDS: Final = ("openInterest", "openValue")


@dataclass(slots=True)
class InstrumentBook:
    """One instrument's row as last pushed, to push only what changed."""

    contract: Contract
    fields: dict[str, Any] = field(default_factory=dict)
    ts: int = 0

    def row(self) -> dict[str, Any]:
        """The whole row, as a ``partial`` carries it."""
        return {**self.contract.row, **self.fields, "timestamp": iso(self.ts)}

    def update(self, q: Quote, xbt_usd: float, now_ms: int) -> list[dict[str, Any]]:
        """Move to ``q``; the diffs to push: prices and funding with the ``timestamp``, and,
        as BitMEX sends it, open interest on its own without one (``[]``: nothing moved)."""
        fresh = live_fields(q, self.contract, xbt_usd, now_ms)
        changed = {k: v for k, v in fresh.items() if self.fields.get(k) != v}
        self.fields, self.ts = fresh, now_ms
        symbol = {"symbol": self.contract.symbol}
        out: list[dict[str, Any]] = []
        prices = {k: v for k, v in changed.items() if k not in OI_FIELDS}
        if prices:
            out.append(symbol | prices | {"timestamp": iso(now_ms)})
        oi = {k: v for k, v in changed.items() if k in OI_FIELDS}
        if oi:
            out.append(symbol | oi)
        return out


# -- the liquidation table -------------------------------------------------------------------


@dataclass(slots=True)
class Order:
    """A liquidation order of the engine, resting in the book."""

    order_id: str
    print: LiquidationPrint
    side: str
    """The order side: ``Sell`` closes a long."""
    price: float
    contracts: int
    """``leavesQty`` when placed."""
    leaves_qty: int
    placed_s: float
    """Monotonic time of the insert."""

    def row(self) -> dict[str, Any]:
        return {
            "orderID": self.order_id,
            "symbol": self.print.symbol,
            "side": self.side,
            "price": self.price,
            "leavesQty": self.leaves_qty,
        }

    def keys(self) -> dict[str, Any]:
        return {"orderID": self.order_id, "symbol": self.print.symbol}


def order_id(p: LiquidationPrint) -> str:
    """A stable, unique id for the print's order (BitMEX's are UUIDs)."""
    return str(uuid.uuid5(ORDER_IDS, f"{p.symbol}:{p.ts_ms}:{p.side}:{p.qty_base}:{p.price}"))


def new_order(p: LiquidationPrint, c: Contract, xbt_usd: float, now_s: float) -> Order:
    """The engine's order for ``p``: the whole position at the bankruptcy price."""
    n = c.contracts(p.qty_base, p.price, xbt_usd)
    side = "Sell" if p.side is Side.LONG else "Buy"
    return Order(order_id(p), p, side, c.price(p.order_price), n, n, now_s)


# -- frames ----------------------------------------------------------------------------------


def welcome(now_ms: int) -> str:
    return encode(
        {
            "info": "Welcome to the BitMEX Realtime API.",
            "version": VERSION,
            "timestamp": iso(now_ms),
            "docs": "https://www.bitmex.com/app/wsAPI",
            "limit": {"remaining": 39},
        }
    )


def table(name: str, action: str, data: list[dict[str, Any]]) -> str:
    return encode({"table": name, "action": action, "data": data})


PARTIAL_META: Final[dict[str, dict[str, Any]]] = {
    "instrument": {
        "keys": ["symbol"],
        "foreignKeys": {"inverseLeg": "instrument", "sellLeg": "instrument"},
        "attributes": {"symbol": "unique"},
    },
    "liquidation": {
        "keys": ["orderID"],
        "types": {
            "orderID": "guid",
            "symbol": "symbol",
            "side": "symbol",
            "price": "float",
            "leavesQty": "long",
        },
        "foreignKeys": {"symbol": "instrument", "side": "side"},
        "attributes": {"orderID": "grouped"},
    },
    "quote": {
        "keys": [],
        "types": {
            "timestamp": "timestamp",
            "symbol": "symbol",
            "bidSize": "long",
            "bidPrice": "float",
            "askPrice": "float",
            "askSize": "long",
        },
        "foreignKeys": {"symbol": "instrument"},
        "attributes": {"timestamp": "sorted", "symbol": "grouped"},
    },
    "trade": {  # as recorded by cryptofeed (2021)
        "keys": [],
        "types": {
            "timestamp": "timestamp",
            "symbol": "symbol",
            "side": "symbol",
            "size": "long",
            "price": "float",
            "tickDirection": "symbol",
            "trdMatchID": "guid",
            "grossValue": "long",
            "homeNotional": "float",
            "foreignNotional": "float",
        },
        "foreignKeys": {"symbol": "instrument", "side": "side"},
        "attributes": {"timestamp": "sorted", "symbol": "grouped"},
    },
    "orderBookL2": {
        "keys": ["symbol", "id", "side"],
        "types": {
            "symbol": "symbol",
            "id": "long",
            "side": "symbol",
            "size": "long",
            "price": "float",
            "timestamp": "timestamp",
            "transactTime": "timestamp",
        },
        "foreignKeys": {"symbol": "instrument", "side": "side"},
        "attributes": {"symbol": "parted", "id": "sorted"},
    },
}


def partial(name: str, symbol: str | None, data: list[dict[str, Any]]) -> str:
    scope = {} if symbol is None else {"symbol": symbol}
    body = {"table": name, "action": "partial", **PARTIAL_META[name], "filter": scope}
    return encode(body | {"data": data})


def error(message: str, request: Any) -> str:
    return encode({"status": 400, "error": message, "meta": {}, "request": request})


Topic = tuple[str, str | None]
"""(table, symbol); ``None``: every symbol."""


def topic_name(t: Topic) -> str:
    return t[0] if t[1] is None else f"{t[0]}:{t[1]}"


@dataclass(slots=True)
class Session:
    """One connection's subscriptions."""

    listed: frozenset[str]
    """Symbols a topic may name."""
    topics: set[Topic] = field(default_factory=set)
    sent: set[Topic] = field(default_factory=set)
    """Topics whose ``partial`` went out: only those get the table's changes (an
    ``orderBookL2`` row before its partial would name levels the client does not hold)."""

    def handle(self, text: str) -> tuple[list[str], list[Topic]]:
        """Answer one client frame: the replies and the topics newly subscribed."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or not isinstance(req.get("args"), list) or not req["args"]:
            msg = "Unrecognized request. See the docs or send 'help' for more details."
            return [error(msg, req if isinstance(req, dict) else {})], []
        op, args = req.get("op"), req["args"]
        if op not in ("subscribe", "unsubscribe"):
            return [error(f"Unknown op: {op}", req)], []
        replies: list[str] = []
        added: list[Topic] = []
        for arg in args:
            name, _, symbol = str(arg).partition(":")
            if name not in TABLES:
                replies.append(error(f"Unknown table: {name}", req))
                continue
            if symbol and symbol not in self.listed:
                replies.append(error(f"Unknown or expired symbol: {symbol}", req))
                continue
            t: Topic = (name, symbol or None)
            if op == "unsubscribe":
                self.topics.discard(t)
                self.sent.discard(t)
            elif t in self.topics:
                msg = f"You are already subscribed to this topic: {topic_name(t)}"
                replies.append(error(msg, req))
                continue
            else:
                self.topics.add(t)
                added.append(t)
            replies.append(encode({"success": True, op: topic_name(t), "request": req}))
        return replies, added

    def wants(self, name: str, symbol: str) -> bool:
        return (name, symbol) in self.topics or (name, None) in self.topics

    def synced(self, name: str, symbol: str) -> bool:
        """Subscribed and sent its ``partial``."""
        return (name, symbol) in self.sent or (name, None) in self.sent
