"""Binance USDⓈ-M's wire protocol, server side. Pure: frames in, frames out, no I/O.

What the simulator's server needs to speak like ``fstream.binance.com``: stream names, the
per-connection request protocol (``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``,
``SET_PROPERTY``, ``GET_PROPERTY`` and Binance's error frames), the exact shapes of
``markPriceUpdate`` and ``forceOrder`` events and of the REST bodies, and the venue's
one-liquidation-per-symbol-per-second throttle.

COIN-M (``dstream``/``dapi``) speaks the same protocol with other shapes and units: what
differs is a :class:`Product`; :data:`USDM` is this module's, ``COINM`` is in
:mod:`.coinm_wire`. Real USDⓈ-M frames, for reference::

    {"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1597536008000,
     "s":"BTCUSDT","p":"11857.56000000","i":"11851.86949091","r":"0.00015640",
     "T":1597564800000}}
    {"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1584059031426,"o":{
     "s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04",
     "X":"FILLED","l":"0.015","z":"0.014","T":1584059031421}}}
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers
from ....simulate.wirekit import recorded_text

DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
FOUR_HOUR_SYMBOLS: Final = ("DOGEUSDT", "DOTUSDT")
"""Simulated symbols on a 4 h funding interval (listed by ``/fapi/v1/fundingInfo``)."""
METHODS: Final = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
FORCE_ORDER_WINDOW_MS: Final = 1000


class StreamKind(enum.StrEnum):
    MARK = "markPrice"
    FORCE = "forceOrder"
    BOOK_TICKER = "bookTicker"
    AGG_TRADE = "aggTrade"
    DEPTH = "depth"


PUBLIC_KINDS: Final = frozenset({StreamKind.BOOK_TICKER, StreamKind.DEPTH})
"""The high-frequency streams USDⓈ-M routes to ``/public`` (and to bare paths); the others
are ``/market``'s."""
DEPTH_SPEEDS: Final = {"depth": 250, "depth@500ms": 500, "depth@100ms": 100}
"""The diff depth stream names (after ``<symbol>@``) and their push interval (ms)."""


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream name this server can deliver."""

    name: str
    kind: StreamKind
    symbol: str | None
    """Upper-case symbol, or ``None`` for an all-market (or per-pair) stream."""
    fast: bool = True
    """markPrice: every second (``@1s``) rather than every 3 s."""
    pair: str | None = None
    """COIN-M ``<pair>@markPrice``: the upper-case pair whose symbols it carries."""
    speed_ms: int = 0
    """The diff depth stream's push interval."""


def parse_stream(name: str, product: Product | None = None) -> Stream | None:
    """``!markPrice@arr@1s``, ``!markPrice@arr``, ``<symbol>@markPrice[@1s]``,
    ``!forceOrder@arr``, ``<symbol>@forceOrder``, ``!bookTicker``, ``<symbol>@bookTicker``,
    ``<symbol>@aggTrade`` or ``<symbol>@depth[@500ms|@100ms]``; on COIN-M also
    ``<pair>@markPrice[@1s]`` (a pair has no ``_``: ``btcusd``; its symbols have:
    ``btcusd_perp``), and no
    ``!markPrice@arr``. Anything else (including upper-case symbols, which the venue does
    not deliver) is ``None``."""
    product = product or USDM
    head, _, rest = name.partition("@")
    if head.startswith("!"):
        if head == "!markPrice" and rest in ("arr@1s", "arr") and product.all_market_mark:
            return Stream(name, StreamKind.MARK, None, rest == "arr@1s")
        if head == "!forceOrder" and rest == "arr":
            return Stream(name, StreamKind.FORCE, None)
        if head == "!bookTicker" and not rest:
            return Stream(name, StreamKind.BOOK_TICKER, None)
        return None
    if not head or head != head.lower():
        return None
    if rest in ("markPrice@1s", "markPrice"):
        if product.pair_mark and "_" not in head:
            return Stream(name, StreamKind.MARK, None, rest == "markPrice@1s", head.upper())
        return Stream(name, StreamKind.MARK, head.upper(), rest == "markPrice@1s")
    if rest == "forceOrder":
        return Stream(name, StreamKind.FORCE, head.upper())
    if rest in ("bookTicker", "aggTrade"):
        return Stream(name, StreamKind(rest), head.upper())
    if rest in DEPTH_SPEEDS:
        return Stream(name, StreamKind.DEPTH, head.upper(), speed_ms=DEPTH_SPEEDS[rest])
    return None


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one simulated symbol."""

    symbol: str
    price_precision: int
    qty_precision: int
    funding_interval_h: float = DEFAULT_FUNDING_INTERVAL_H
    contract_size: float = 1.0
    """COIN-M: USD per contract (USDⓈ-M quantities are base coin)."""
    pair: str = ""
    contract_type: str = "PERPETUAL"


def load_exchange_info(product: Product | None = None) -> str:
    """The recorded ``exchangeInfo`` body of ``product`` (default USDⓈ-M), as text (see
    ``docs/simulator-data.md``)."""
    return recorded_text("service.venues.binance.simulator", (product or USDM).exchange_info)


def contracts(
    exchange_info: Mapping[str, Any], symbols: Iterable[str], four_hour: Collection[str]
) -> dict[str, Contract]:
    """Contracts of ``symbols`` from an ``exchangeInfo`` body; each must be listed."""
    listed = {s["symbol"]: s for s in exchange_info["symbols"]}
    out: dict[str, Contract] = {}
    for sym in symbols:
        if sym not in listed:
            raise ValueError(f"{sym} is not listed in exchangeInfo")
        row = listed[sym]
        hours = 4.0 if sym in four_hour else DEFAULT_FUNDING_INTERVAL_H
        out[sym] = Contract(
            sym,
            int(row["pricePrecision"]),
            int(row["quantityPrecision"]),
            hours,
            float(row.get("contractSize", 1.0)),
            str(row.get("pair", sym)),
            str(row.get("contractType", "PERPETUAL")),
        )
    return out


def fmt(x: float, decimals: int) -> str:
    """Fixed-point text as Binance prints it (never ``-0.000``)."""
    text = f"{x:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def next_funding_ms(now_ms: int, interval_h: float) -> int:
    """The next funding time: the next multiple of the interval since 00:00 UTC."""
    step = int(interval_h * 3_600_000)
    return (now_ms // step + 1) * step


def funding_rate(q: Quote, c: Contract) -> float:
    """The rate per the contract's own interval (the market quotes it per 8 h)."""
    return q.funding_rate_8h * c.funding_interval_h / 8.0


def mark_price_update(q: Quote, c: Contract, event_ms: int) -> dict[str, Any]:
    return {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": q.symbol,
        "p": fmt(round(q.mark, c.price_precision), 8),
        "i": fmt(q.index, 8),
        "P": fmt(q.index, 8),
        "r": fmt(funding_rate(q, c), 8),
        "T": next_funding_ms(event_ms, c.funding_interval_h),
    }


def force_order(
    p: LiquidationPrint, c: Contract, event_ms: int, qty: str | None = None, **extra: str
) -> dict[str, Any]:
    """A ``forceOrder`` event; ``qty`` (default: the print's base quantity) as the wire
    text, and ``extra`` order fields (COIN-M's ``ps``) after the symbol, as the venue sends."""
    qty = fmt(p.qty_base, c.qty_precision) if qty is None else qty
    return {
        "e": "forceOrder",
        "E": event_ms,
        "o": {
            "s": p.symbol,
            **extra,
            "S": "SELL" if p.side is Side.LONG else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": qty,
            "p": fmt(p.order_price, c.price_precision),
            "ap": fmt(p.price, c.price_precision),
            "X": "FILLED",
            "l": qty,
            "z": qty,
            "T": p.ts_ms,
        },
    }


def premium_index(q: Quote, c: Contract, now_ms: int) -> dict[str, Any]:
    return {
        "symbol": q.symbol,
        "markPrice": fmt(round(q.mark, c.price_precision), 8),
        "indexPrice": fmt(q.index, 8),
        "estimatedSettlePrice": fmt(q.index, 8),
        "lastFundingRate": fmt(funding_rate(q, c), 8),
        "nextFundingTime": next_funding_ms(now_ms, c.funding_interval_h),
        "interestRate": fmt(0.0001 * c.funding_interval_h / 8.0, 8),
        "time": now_ms,
    }


def open_interest(q: Quote, c: Contract, now_ms: int) -> dict[str, Any]:
    return {"openInterest": fmt(q.oi_base, c.qty_precision), "symbol": q.symbol, "time": now_ms}


def funding_info(contracts: Iterable[Contract]) -> list[dict[str, Any]]:
    """Only symbols whose interval (or caps) differ from the default are listed."""
    return [
        {
            "symbol": c.symbol,
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": int(c.funding_interval_h),
            "disclaimer": False,
        }
        for c in contracts
        if c.funding_interval_h != DEFAULT_FUNDING_INTERVAL_H
    ]


@dataclass(frozen=True, slots=True)
class Product:
    """What differs between Binance's futures products, on the wire and over REST."""

    name: str
    rest_prefix: str
    """``/fapi/v1`` or ``/dapi/v1``."""
    exchange_info: str
    """The recorded ``exchangeInfo`` body, a resource of ``service.simulate``."""
    market_path: str | None
    """USDⓈ-M ``/market``: the only path that delivers markPrice and forceOrder (bare and
    ``/public`` paths accept, answer, and never deliver them). ``None``: every path does."""
    all_market_mark: bool
    """``!markPrice@arr[@1s]`` exists (USDⓈ-M)."""
    pair_mark: bool
    """``<pair>@markPrice[@1s]`` and ``premiumIndex?pair=`` exist (COIN-M)."""
    premium_index_as_list: bool
    """``premiumIndex?symbol=`` answers a one-row list (COIN-M), not an object."""
    premium_index_weight: tuple[int, int]
    """Request weight of ``premiumIndex`` with a symbol, and without."""
    mark_price_update: Callable[[Quote, Contract, int], dict[str, Any]]
    force_order: Callable[[LiquidationPrint, Contract, int], dict[str, Any]]
    premium_index: Callable[[Quote, Contract, int], dict[str, Any]]
    open_interest: Callable[[Quote, Contract, int], dict[str, Any]]


USDM: Final = Product(
    name="usdm",
    rest_prefix="/fapi/v1",
    exchange_info="data/usdm/exchangeInfo.json",
    market_path="/market",
    all_market_mark=True,
    pair_mark=False,
    premium_index_as_list=False,
    premium_index_weight=(1, 10),
    mark_price_update=mark_price_update,
    force_order=force_order,
    premium_index=premium_index,
    open_interest=open_interest,
)


def frame(stream: str, data: str, combined: bool) -> str:
    """``data`` (encoded JSON) as sent on a combined or raw connection."""
    return f'{{"stream":{encode(stream)},"data":{data}}}' if combined else data


def error(code: int, msg: str, req_id: Any = None) -> str:
    return encode({"error": {"code": code, "msg": msg}, "id": req_id})


@dataclass(slots=True)
class Session:
    """One connection's protocol state."""

    combined: bool
    streams: dict[str, Stream | None] = field(default_factory=dict)
    """Subscribed names in order, with what they deliver (``None``: nothing)."""
    product: Product = USDM

    def subscribe(self, names: Iterable[str]) -> None:
        for name in names:
            self.streams.setdefault(name, parse_stream(name, self.product))

    def wanted(self) -> list[Stream]:
        return [s for s in self.streams.values() if s is not None]

    def handle(self, text: str | bytes) -> str:
        """Answer one client request frame (Binance's texts for its errors)."""
        try:
            req = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = (
                f" at line {exc.lineno} column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            return error(3, f"Invalid JSON: expected value{where}")
        end = len(text)
        if not isinstance(req, dict):
            return error(
                2, f"Invalid request: invalid type, expected struct at line 1 column {end}"
            )
        req_id = req.get("id")
        if isinstance(req_id, bool) or not isinstance(req_id, int) or req_id < 0:
            return error(2, "Invalid request: request ID must be an unsigned integer")
        method = req.get("method")
        if method is None:
            return error(
                2, f"Invalid request: missing field `method` at line 1 column {end}", req_id
            )
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            return error(
                2,
                f"Invalid request: unknown variant `{method}`, expected one of "
                f"{expected} at line 1 column {end}",
                req_id,
            )
        params = req.get("params", [])
        if not isinstance(params, list):
            return error(2, "Invalid request: params must be an array", req_id)
        return self._apply(method, params, req_id)

    def _apply(self, method: str, params: list[Any], req_id: int) -> str:
        if method == "LIST_SUBSCRIPTIONS":
            return encode({"result": list(self.streams), "id": req_id})
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or not isinstance(params[0], str):
                return error(2, "Invalid request: property name must be a string", req_id)
            if params[0] != "combined":
                return error(0, "Unknown property", req_id)
            if method == "GET_PROPERTY":
                return encode({"result": self.combined, "id": req_id})
            if len(params) != 2 or not isinstance(params[1], bool):
                return error(1, "Invalid value type: expected Boolean", req_id)
            self.combined = params[1]
            return encode({"result": None, "id": req_id})
        if not all(isinstance(p, str) for p in params):
            return error(2, "Invalid request: stream names must be strings", req_id)
        if method == "SUBSCRIBE":
            self.subscribe(params)
        else:
            for name in params:
                self.streams.pop(name, None)
        return encode({"result": None, "id": req_id})


class ForceOrderThrottle:
    """Per symbol, only the latest liquidation within each window is pushed (the venue's
    rule: "only the latest one liquidation order within 1000ms will be pushed")."""

    def __init__(self, window_ms: int = FORCE_ORDER_WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._pending: dict[str, LiquidationPrint] = {}
        self._last_push: dict[str, int] = {}

    def offer(self, prints: Iterable[LiquidationPrint]) -> None:
        for p in prints:
            held = self._pending.get(p.symbol)
            if held is None or p.ts_ms >= held.ts_ms:
                self._pending[p.symbol] = p

    def due(self, now_ms: int) -> list[LiquidationPrint]:
        """Prints to push now; each symbol at most once per window."""
        out: list[LiquidationPrint] = []
        for sym in list(self._pending):
            if now_ms - self._last_push.get(sym, -self.window_ms) >= self.window_ms:
                out.append(self._pending.pop(sym))
                self._last_push[sym] = now_ms
        return out


class WeightCounter:
    """REST request weight used per IP in the current minute (``X-MBX-USED-WEIGHT-1M``)."""

    def __init__(self, limit: int = 2400) -> None:
        self.limit = limit
        self._minute = -1
        self._used: dict[str, int] = {}

    def add(self, ip: str, weight: int, now_ms: int) -> int:
        minute = now_ms // 60_000
        if minute != self._minute:
            self._minute, self._used = minute, {}
        self._used[ip] = self._used.get(ip, 0) + weight
        return self._used[ip]
