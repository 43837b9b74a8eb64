"""Hyperliquid's websocket protocol and ``/info`` bodies, server side. Pure: no I/O.

What the simulator needs to speak like ``wss://api.hyperliquid.xyz/ws``: one subscription
per message, each acked on ``subscriptionResponse``; refusals on the ``error`` channel
(``Already subscribed``, unparsable requests; the exact texts of refusals we could not
record are ours); ``{"method":"ping"}`` answered ``{"channel":"pong"}``; the shapes of the
``activeAssetCtx`` and ``userFills`` pushes, and a liquidator vault's fills (the ``bbo``,
``l2Book`` and ``trades`` pushes: :mod:`.book_wire`). Real frames, for reference::

    {"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":
     {"type":"trades","coin":"SOL"}}}
    {"channel":"activeAssetCtx","data":{"coin":"MOODENG","ctx":{"funding":"0.00004863",
     "openInterest":"18617460.0","prevDayPx":"0.20296","dayNtlVlm":"7665220.55613",
     "premium":"0.00008521","oraclePx":"0.1995","markPx":"0.19963","midPx":"0.19957",
     "impactPxs":["0.199517","0.199725"]}}}
    {"channel":"error","data":"Error parsing JSON into valid websocket request: ..."}

No recording of ``/info`` was available: :data:`LISTING` is a synthetic main-dex listing
in the venue's shape (its first sixteen assets in the venue's order, one of them
delisted), and its figures are illustrative.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers

WS_PATH: Final = "/ws"
PONG: Final = '{"channel":"pong"}'
METHODS: Final = frozenset({"subscribe", "unsubscribe", "ping"})
LIQUIDATORS: Final = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",  # HLP Liquidator
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",  # HLP Liquidator 2
)
"""The vaults that take backstop liquidations over in the simulation."""
MAX_PRICE_DECIMALS: Final = 6
"""Perp prices: at most 5 significant figures and ``6 - szDecimals`` decimals."""
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True, slots=True)
class Listed:
    """One asset of the ``meta`` universe."""

    name: str
    sz_decimals: int
    max_leverage: int
    price: float
    """Its (fixed) price when not simulated."""
    delisted: bool = False


LISTING: Final[tuple[Listed, ...]] = (
    Listed("BTC", 5, 40, 60_000.0),
    Listed("ETH", 4, 25, 3_000.0),
    Listed("ATOM", 2, 5, 4.5),
    Listed("MATIC", 1, 20, 0.38, delisted=True),
    Listed("DYDX", 1, 10, 0.6),
    Listed("SOL", 2, 20, 150.0),
    Listed("AVAX", 2, 10, 20.0),
    Listed("BNB", 3, 10, 600.0),
    Listed("APE", 1, 10, 0.5),
    Listed("OP", 1, 10, 0.8),
    Listed("LTC", 2, 10, 80.0),
    Listed("ARB", 1, 10, 0.4),
    Listed("DOGE", 0, 10, 0.15),
    Listed("INJ", 1, 10, 12.0),
    Listed("SUI", 1, 10, 3.0),
    Listed("kPEPE", 0, 10, 0.01),
)

HL_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTC", "BTC", 60_000.0, 25_000.0, 0.00001),
    SymbolSpec("ETH", "ETH", 3_000.0, 600_000.0, 0.0001),
    SymbolSpec("SOL", "SOL", 150.0, 3_000_000.0, 0.01),
    SymbolSpec("DOGE", "DOGE", 0.15, 1_500_000_000.0, 1.0),
)
"""Simulated coins; the quantity step is the listing's ``szDecimals``."""
HL_SYMBOLS: Final = tuple(s.symbol for s in HL_SPECS)


def num(x: float, decimals: int) -> str:
    """Fixed point without trailing zeros but with one decimal, as the venue prints numbers
    (``"77562.0"``, ``"0.0000125"``)."""
    text = f"{x:.{max(0, decimals)}f}"
    if "." in text:
        text = text.rstrip("0")
    text = text + "0" if text.endswith(".") else text if "." in text else text + ".0"
    return "0.0" if text in ("-0.0", "0.0") else text


def price(x: float, sz_decimals: int) -> str:
    """A perp price: 5 significant figures, at most ``6 - szDecimals`` decimals."""
    if x == 0:
        return "0.0"
    sig = 5 - math.floor(math.log10(abs(x))) - 1
    return num(x, min(max(0, sig), MAX_PRICE_DECIMALS - sz_decimals))


def meta(listing: Iterable[Listed]) -> dict[str, Any]:
    """The ``meta`` body: ``{"universe":[...],"marginTables":[...],"collateralToken":0}``."""
    universe: list[dict[str, Any]] = []
    for a in listing:
        row: dict[str, Any] = {
            "szDecimals": a.sz_decimals,
            "name": a.name,
            "maxLeverage": a.max_leverage,
            "marginTableId": a.max_leverage,
        }
        if a.delisted:
            row |= {"onlyIsolated": True, "isDelisted": True}
        universe.append(row)
    tables = sorted({a.max_leverage for a in listing})
    margin = [
        [n, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": n}]}]
        for n in tables
    ]
    return {"universe": universe, "marginTables": margin, "collateralToken": 0}


def ctx(q: Quote, sz_decimals: int, prev_day_px: float) -> dict[str, Any]:
    """One asset context: ``funding`` per hour (the market quotes it per 8 h), open
    interest in coin, mark, oracle (the index) and the rest of the venue's fields."""
    px = price(q.mark, sz_decimals)
    half_spread = q.mark * 0.0001
    return {
        "funding": num(q.funding_rate_8h / 8.0, 10),
        "openInterest": num(q.oi_base, sz_decimals),
        "prevDayPx": price(prev_day_px, sz_decimals),
        "dayNtlVlm": num(q.oi_base * q.mark * 0.8, 2),
        "premium": num(q.mark / q.index - 1.0, 10),
        "oraclePx": price(q.index, sz_decimals),
        "markPx": px,
        "midPx": px,
        "impactPxs": [
            price(q.mark - half_spread, sz_decimals),
            price(q.mark + half_spread, sz_decimals),
        ],
        "dayBaseVlm": num(q.oi_base * 0.8, sz_decimals),
    }


def idle_ctx(a: Listed) -> dict[str, Any]:
    """The context of a listed asset nobody trades (delisted ones look like this)."""
    px = price(a.price, a.sz_decimals)
    return {
        "funding": "0.0",
        "openInterest": "0.0",
        "prevDayPx": px,
        "dayNtlVlm": "0.0",
        "premium": None,
        "oraclePx": px,
        "markPx": px,
        "midPx": None,
        "impactPxs": None,
        "dayBaseVlm": "0.0",
    }


def push(channel: str, data: Any) -> str:
    return encode({"channel": channel, "data": data})


def ctx_push(coin: str, body: dict[str, Any]) -> str:
    return push("activeAssetCtx", {"coin": coin, "ctx": body})


def fills_push(user: str, fills: list[dict[str, Any]], *, snapshot: bool = False) -> str:
    data: dict[str, Any] = {"isSnapshot": True} if snapshot else {}
    return push("userFills", data | {"user": user, "fills": fills})


def digest(*parts: object, length: int = 64) -> str:
    """A deterministic hex string (``0x`` + ``length`` digits) for hashes and addresses."""
    text = "|".join(map(str, parts)).encode()
    return "0x" + hashlib.sha256(text).hexdigest()[:length]


def _direction(start: float, size: float, buy: bool) -> str:
    """The venue's ``dir`` of a fill from position ``start``."""
    if buy:
        if start >= 0:
            return "Open Long"
        return "Close Short" if size <= -start else "Short > Long"
    if start <= 0:
        return "Open Short"
    return "Close Long" if size <= start else "Long > Short"


@dataclass(slots=True)
class Vault:
    """A liquidator vault: its positions and the fills it makes, numbered from ``tid``."""

    address: str
    tid: int
    oid: int
    positions: dict[str, float] = field(default_factory=dict)

    def fill(
        self,
        coin: str,
        buy: bool,
        px: str,
        sz: str,
        ts_ms: int,
        liquidation: dict[str, str] | None,
    ) -> dict[str, Any]:
        """The vault's fill (buying when ``buy``), with the ``liquidation`` object of a
        backstop takeover or, for its own trades, without one."""
        start = self.positions.get(coin, 0.0)
        size = float(sz)
        self.positions[coin] = round(start + (size if buy else -size), 10)
        self.tid += 1
        self.oid += 1
        row: dict[str, Any] = {
            "coin": coin,
            "px": px,
            "sz": sz,
            "side": "B" if buy else "A",
            "time": ts_ms,
            "startPosition": num(start, 10),
            "dir": _direction(start, size, buy),
            "closedPnl": "0.0",
            "hash": digest(self.address, self.tid),
            "oid": self.oid,
            "crossed": liquidation is None,
            "fee": "0.0",
            "tid": self.tid,
        }
        if liquidation is not None:
            row["liquidation"] = liquidation
        return row | {"feeToken": "USDC", "twapId": None}


def backstop(
    vault: Vault, p: LiquidationPrint, mark: float, sz_decimals: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The vault's two fills for print ``p``: taking the liquidated position over (it buys
    a liquidated long, sells a liquidated short), then trading it out on the book."""
    long = p.side is Side.LONG
    px, sz = price(p.price, sz_decimals), num(p.qty_base, sz_decimals)
    victim = digest(p.symbol, p.ts_ms, p.qty_base, length=40)
    liquidation = {
        "liquidatedUser": victim,
        "markPx": price(mark, sz_decimals),
        "method": "backstop",
    }
    takeover = vault.fill(p.symbol, long, px, sz, p.ts_ms, liquidation)
    unwind = vault.fill(p.symbol, not long, price(mark, sz_decimals), sz, p.ts_ms + 1, None)
    return takeover, unwind


Sub = tuple[str, str]
"""A subscription: ("activeAssetCtx", coin), ("bbo", coin), ("trades", coin), ("l2Book",
coin) or ("userFills", lower-case address)."""
COIN_CHANNELS: Final = frozenset({"activeAssetCtx", "bbo", "trades", "l2Book"})
BOOK_SIG_FIGS: Final = frozenset({2, 3, 4, 5})
"""``l2Book``'s ``nSigFigs`` (``null``: full precision); ``mantissa`` is not simulated."""


def _error(text: str) -> str:
    return push("error", text)


@dataclass(slots=True)
class Session:
    """One connection's subscriptions."""

    coins: frozenset[str]
    """Coins the per-coin channels accept (the listed ones)."""
    subs: dict[Sub, None] = field(default_factory=dict)
    sig_figs: dict[str, int | None] = field(default_factory=dict)
    """Per coin with an ``l2Book``, its ``nSigFigs`` (one precision per coin here: a second
    ``l2Book`` of the coin is refused as already subscribed)."""

    def handle(self, text: str) -> tuple[list[str], list[Sub]]:
        """Answer one request frame: the reply frames and the subscriptions added."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            req = None
        method = req.get("method") if isinstance(req, dict) else None
        if not isinstance(method, str) or method not in METHODS:
            return [_error(f"Error parsing JSON into valid websocket request: {text}")], []
        if method == "ping":
            return [PONG], []
        sub_body = req.get("subscription")
        sub = self._sub(sub_body)
        if isinstance(sub, str):
            return [_error(sub)], []
        shown = encode(sub_body)
        if method == "subscribe":
            if sub in self.subs:
                return [_error(f"Already subscribed: {shown}")], []
            self.subs[sub] = None
            if sub[0] == "l2Book":
                self.sig_figs[sub[1]] = sub_body.get("nSigFigs")
            added = [sub]
        else:
            if sub not in self.subs:
                return [_error(f"Already unsubscribed: {shown}")], []
            del self.subs[sub]
            if sub[0] == "l2Book":
                del self.sig_figs[sub[1]]
            added = []
        ack = {"method": method, "subscription": sub_body}
        return [push("subscriptionResponse", ack)], added

    def _sub(self, body: Any) -> Sub | str:
        """The subscription ``body`` names, or the refusal's text."""
        if not isinstance(body, dict):
            return f"Invalid subscription: {body}"
        kind = body.get("type")
        if kind in COIN_CHANNELS:
            coin = body.get("coin")
            if not isinstance(coin, str) or coin not in self.coins:
                return f"Invalid subscription: unknown coin {coin}"
            if kind == "l2Book" and (
                body.get("nSigFigs") not in (None, *BOOK_SIG_FIGS) or body.get("mantissa")
            ):
                return f"Invalid subscription: nSigFigs {body.get('nSigFigs')}"
            return (kind, coin)
        if kind == "userFills":
            user = body.get("user")
            if isinstance(user, str) and _ADDRESS.fullmatch(user):
                return (kind, user.lower())
            return f"Invalid subscription: invalid user {user}"
        return f"Invalid subscription: type {kind} is not simulated"
