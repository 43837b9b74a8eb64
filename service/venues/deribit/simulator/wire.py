"""Deribit's JSON-RPC websocket protocol, server side. Pure: frames in, frames out, no I/O.

What the simulator's server needs to speak like ``wss://www.deribit.com/ws/api/v2``: the
JSON-RPC envelope (every answer carries the request's ``id`` and ``usIn``/``usOut``/
``usDiff``/``testnet``), ``public/subscribe``/``unsubscribe`` (the result lists the
channels), ``public/set_heartbeat``/``disable_heartbeat``, ``public/test``,
``public/get_time``, the JSON-RPC errors, the subscribe rate limit, and the ``ticker`` and
``trades`` notifications. Real frames, for reference::

    {"jsonrpc":"2.0","id":0,"result":["trades.ETH-30JUL21-2800-C.raw",...],
     "usIn":1626993723846980,"usOut":1626993723847561,"usDiff":581,"testnet":false}
    {"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw",
     "data":[{"trade_seq":40781986,"trade_id":"66460463","timestamp":1584058044032,
     "tick_direction":3,"price":4469.5,"liquidation":"T","instrument_name":"BTC-PERPETUAL",
     "index_price":4805.41,"direction":"sell","amount":1120}]}}
    {"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}

Chosen here, not documented by Deribit: a subscribe request naming an unknown channel
subscribes the others and leaves it out of the result; a ``.raw`` channel refuses the whole
request (13778, as for a client that is not authenticated).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.bookkit import sig2
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.wirekit import book_prices, recorded, tape
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers

VERSION: Final = "1.2.26"
MIN_HEARTBEAT_S: Final = 10
SUBSCRIBE_COST: Final = 3_000
MAX_CREDITS: Final = 30_000
CREDITS_PER_S: Final = 10_000
"""Subscribe requests: 3,000 credits each from a pool of 30,000 refilled at 10,000 a second
(a burst of 10, then ~3.3 a second)."""
CHANNEL_KINDS: Final = ("ticker", "trades", "book")
INTERVALS: Final = ("100ms", "agg2", "raw")

DERIBIT_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTC-PERPETUAL", "BTC", 60_000.0, 18_000.0, 0.0001),
    SymbolSpec("ETH-PERPETUAL", "ETH", 3_000.0, 100_000.0, 0.001),
    SymbolSpec("BTC_USDC-PERPETUAL", "BTC", 60_000.0, 600.0, 0.001),
    SymbolSpec("ETH_USDC-PERPETUAL", "ETH", 3_000.0, 8_000.0, 0.01),
)
"""Two inverse perpetuals (amounts and open interest in USD) and two linear USDC ones (in
coin; ``qty_step`` = the listing's ``contract_size``)."""
DERIBIT_SYMBOLS: Final = tuple(s.symbol for s in DERIBIT_SPECS)


def load_listing() -> dict[str, dict[str, Any]]:
    """The recorded ``public/get_instruments`` bodies by ``currency`` (futures only; see
    ``data/deribit/README.md``)."""
    body: dict[str, dict[str, Any]] = recorded(
        "service.venues.deribit.simulator", "data/get_instruments_future.json"
    )
    return body


def rows(listing: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r for body in listing.values() for r in body["result"]]


def only(listing: Mapping[str, Mapping[str, Any]], names: Iterable[str]) -> dict[str, Any]:
    """``listing`` with only the instruments ``names``."""
    keep = set(names)
    return {
        cur: {**body, "result": [r for r in body["result"] if r["instrument_name"] in keep]}
        for cur, body in listing.items()
    }


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one simulated perpetual."""

    name: str
    base: str
    linear: bool
    contract_size: float
    """The step of ``amount``: USD (inverse) or coin (linear)."""
    tick: float

    def amount(self, qty_base: float, at: float) -> float:
        """``qty_base`` as an amount: coin (linear) or USD at ``at`` (inverse), in whole
        steps of the contract size, at least one."""
        native = qty_base if self.linear else qty_base * at
        return _steps(max(native, self.contract_size), self.contract_size)

    def price(self, x: float) -> float:
        return _steps(x, self.tick)


def _steps(x: float, step: float) -> float:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return round(round(x / step) * step, decimals)


def contracts(
    listing: Mapping[str, Mapping[str, Any]], symbols: Iterable[str]
) -> dict[str, Contract]:
    """Contracts of those ``symbols`` that ``listing`` has as perpetuals."""
    by_name = {r["instrument_name"]: r for r in rows(listing)}
    out: dict[str, Contract] = {}
    for sym in symbols:
        row = by_name.get(sym)
        if row is None or row.get("settlement_period") != "perpetual":
            continue
        out[sym] = Contract(
            sym,
            row["base_currency"],
            row.get("future_type") == "linear" or row["quote_currency"] != "USD",
            float(row["contract_size"]),
            float(row["tick_size"]),
        )
    return out


# -- frames ----------------------------------------------------------------------------------


def _us(now_us: int) -> dict[str, Any]:
    return {"usIn": now_us, "usOut": now_us + 150, "usDiff": 150, "testnet": False}


def _head(req_id: Any) -> dict[str, Any]:
    """The envelope's start: an answer over HTTP, or to a request without a readable id,
    has no ``id``."""
    return {"jsonrpc": "2.0"} if req_id is None else {"jsonrpc": "2.0", "id": req_id}


def response(req_id: Any, result: Any, now_us: int) -> str:
    return encode(_head(req_id) | {"result": result} | _us(now_us))


def error(req_id: Any, code: int, message: str, now_us: int, data: Any = None) -> str:
    err: dict[str, Any] = {"message": message, "code": code}
    if data is not None:
        err["data"] = data
    return encode(_head(req_id) | {"error": err} | _us(now_us))


def notification(channel: str, data: Any) -> str:
    return encode(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )


def heartbeat(kind: str) -> str:
    """``kind``: ``heartbeat`` or ``test_request`` (key order as recorded)."""
    return encode({"params": {"type": kind}, "method": "heartbeat", "jsonrpc": "2.0"})


TOP_SIZE_OF_OI: Final = 0.0002
"""The amount at the best bid and ask (and at each level of the book behind them) as a share
of the open interest, times the quote's depth multiplier."""


def top(q: Quote, c: Contract) -> tuple[float, float, float]:
    """The best bid and ask (the quote's spread around the mark, on the tick grid) and the
    amount resting there: USD (inverse) or coin (linear), two significant digits (a size that
    does not move with every open-interest step) in whole contract steps. The ticker's top
    and the ``book`` channel's best levels (:mod:`.book_wire`)."""
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    amount = c.amount(sig2(q.oi_base * TOP_SIZE_OF_OI * q.depth), q.mark)
    return c.price(bid), c.price(ask), amount


def ticker_data(q: Quote, c: Contract, ts_ms: int, funding_8h: float) -> dict[str, Any]:
    """The ``ticker`` notification's ``data``, in today's shape: open interest in USD
    (inverse) or coin (linear), ``current_funding`` the market's rate per 8 h now,
    ``funding_8h`` its trailing 8 h average (kept by the server)."""
    last = c.price(q.mark)
    oi = c.amount(q.oi_base, q.mark)
    bid, ask, book = top(q, c)
    return {
        "timestamp": ts_ms,
        "state": "open",
        "stats": {"high": c.price(last * 1.02), "low": c.price(last * 0.98), "volume": 1000.0},
        "index_price": round(q.index, 2),
        "instrument_name": c.name,
        "last_price": last,
        "settlement_price": last,
        "min_price": c.price(q.mark * 0.985),
        "max_price": c.price(q.mark * 1.015),
        "open_interest": oi,
        "mark_price": round(q.mark, 4),
        "interest_value": 0.0,
        "best_ask_price": ask,
        "best_bid_price": bid,
        "estimated_delivery_price": round(q.index, 2),
        "best_ask_amount": book,
        "best_bid_amount": book,
        "current_funding": round(q.funding_rate_8h, 8),
        "funding_8h": round(funding_8h, 8),
    }


def flag(p: LiquidationPrint) -> str:
    """Whose liquidation a print's trade is, fixed per print: mostly the taker's (``T``: the
    liquidation engine takes liquidity), sometimes the maker's (``M``), rarely both (``MT``:
    a liquidated position on the other side was the maker)."""
    n = p.ts_ms % 20
    return "T" if n < 14 else "M" if n < 19 else "MT"


def liquidated_sides(p: LiquidationPrint) -> tuple[Side, ...]:
    """Every position side the trade carrying ``p`` closed: ``p.side``, and for ``MT`` also
    the opposite side (the liquidated maker), for the full amount."""
    other = Side.SHORT if p.side is Side.LONG else Side.LONG
    return (p.side, other) if flag(p) == "MT" else (p.side,)


def trade_row(
    p: LiquidationPrint, c: Contract, trade_id: int, seq: int, index: float
) -> dict[str, Any]:
    """A liquidation trade: the liquidated position's order sells a long and buys back a
    short; ``direction`` is the taker's, so the liquidated side's order direction when it
    took (``T``, ``MT``) and the opposite when it was the maker (``M``)."""
    sells = p.side is Side.LONG
    taker_sells = sells if flag(p) != "M" else not sells
    return {
        "trade_seq": seq,
        "trade_id": str(trade_id),
        "timestamp": p.ts_ms,
        "tick_direction": 2 if taker_sells else 0,
        "price": c.price(p.price),
        "mark_price": c.price(p.price),
        "liquidation": flag(p),
        "instrument_name": c.name,
        "index_price": round(index, 2),
        "direction": "sell" if taker_sells else "buy",
        "amount": c.amount(p.qty_base, p.price),
    }


def plain_trade_row(q: Quote, c: Contract, ts_ms: int, trade_id: int, seq: int) -> dict[str, Any]:
    """An ordinary trade (no ``liquidation`` field) of one contract step at the mark."""
    return {
        "trade_seq": seq,
        "trade_id": str(trade_id),
        "timestamp": ts_ms,
        "tick_direction": 1,
        "price": c.price(q.mark),
        "mark_price": round(q.mark, 4),
        "instrument_name": c.name,
        "index_price": round(q.index, 2),
        "direction": "buy" if trade_id % 2 else "sell",
        "amount": c.contract_size,
    }


def tape_rows(
    q: Quote, c: Contract, ts_ms: int, ids: Iterable[tuple[int, int]]
) -> list[dict[str, Any]]:
    """One second's ordinary trades of one contract: the calm tape
    (:func:`~service.simulate.wirekit.tape`) as a taker buy at the ask and a taker sell at
    the bid (``amount``: USD on inverse, coin on linear contracts, on the contract's step);
    ``ids``: a ``(trade_id, trade_seq)`` for each row."""
    buy, sell = tape(q)
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    out: list[dict[str, Any]] = []
    for (direction, qty, at), (trade_id, seq) in zip(
        (("buy", buy, ask), ("sell", sell, bid)), ids, strict=False
    ):
        out.append({
            "trade_seq": seq, "trade_id": str(trade_id), "timestamp": ts_ms,
            "tick_direction": 0 if direction == "buy" else 2, "price": c.price(at),
            "mark_price": round(q.mark, 4), "instrument_name": c.name,
            "index_price": round(q.index, 2), "direction": direction,
            "amount": c.amount(qty, at),
        })  # fmt: skip
    return out


# -- requests --------------------------------------------------------------------------------


@dataclass(slots=True)
class Session:
    """One connection's protocol state: subscriptions, heartbeat, subscribe credits."""

    listed: frozenset[str]
    """Instruments whose channels can be subscribed."""
    channels: dict[str, None] = field(default_factory=dict)
    heartbeat_s: float | None = None
    """The interval asked with ``public/set_heartbeat`` (``None``: heartbeats off)."""
    test_pending: bool = False
    """A ``test_request`` was sent and no ``public/test`` came since."""
    tests: int = 0
    """``public/test`` requests answered."""
    ids: set[str] = field(default_factory=set)
    reused_ids: int = 0
    """Requests whose id an earlier request of this connection had: the docs want ids
    "unique within the connection context" (what the venue does with a reused one is not
    documented: the simulator answers it, and counts it)."""
    credits: float = MAX_CREDITS
    credits_at: float = 0.0

    def valid(self, channel: str) -> bool:
        parts = channel.split(".")
        return (
            len(parts) == 3
            and parts[0] in CHANNEL_KINDS
            and parts[1] in self.listed
            and parts[2] in INTERVALS
        )

    def handle(self, text: str | bytes, now_s: float, now_us: int) -> tuple[str, list[str]]:
        """Answer one request frame: the answer and the channels newly subscribed."""
        try:
            req = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return error(None, -32700, "Parse error", now_us), []
        if not isinstance(req, dict) or "id" not in req:
            return error(None, -32600, "Invalid Request", now_us), []
        req_id, method, params = req["id"], req.get("method"), req.get("params", {})
        key = json.dumps(req_id)
        if key in self.ids:
            self.reused_ids += 1
        self.ids.add(key)
        if not isinstance(params, dict):
            return error(req_id, -32602, "Invalid params", now_us), []
        if method in ("public/subscribe", "public/unsubscribe"):
            return self._subscription(req_id, method, params, now_s, now_us)
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if not isinstance(interval, int | float) or interval < MIN_HEARTBEAT_S:
                reason = f"interval must be at least {MIN_HEARTBEAT_S}"
                data = {"reason": reason, "param": "interval"}
                return error(req_id, -32602, "Invalid params", now_us, data), []
            self.heartbeat_s, self.test_pending = float(interval), False
            return response(req_id, "ok", now_us), []
        if method == "public/disable_heartbeat":
            self.heartbeat_s, self.test_pending = None, False
            return response(req_id, "ok", now_us), []
        if method == "public/test":
            self.test_pending, self.tests = False, self.tests + 1
            return response(req_id, {"version": VERSION}, now_us), []
        if method == "public/get_time":
            return response(req_id, now_us // 1000, now_us), []
        return error(req_id, -32601, "Method not found", now_us), []

    def _subscription(
        self, req_id: Any, method: str, params: Mapping[str, Any], now_s: float, now_us: int
    ) -> tuple[str, list[str]]:
        wanted = params.get("channels")
        if not isinstance(wanted, list) or not all(isinstance(c, str) for c in wanted):
            data = {"reason": "must be a list of strings", "param": "channels"}
            return error(req_id, -32602, "Invalid params", now_us, data), []
        self.credits = min(MAX_CREDITS, self.credits + (now_s - self.credits_at) * CREDITS_PER_S)
        self.credits_at = now_s
        if self.credits < SUBSCRIBE_COST:
            return error(req_id, 10028, "too_many_requests", now_us), []
        self.credits -= SUBSCRIBE_COST
        if method == "public/unsubscribe":
            gone = [c for c in dict.fromkeys(wanted) if c in self.channels]
            for c in gone:
                del self.channels[c]
            return response(req_id, gone, now_us), []
        if any(c.endswith(".raw") for c in wanted):
            msg = "raw_subscriptions_not_available_for_unauthorized"
            return error(req_id, 13778, msg, now_us), []
        ok = [c for c in dict.fromkeys(wanted) if self.valid(c)]
        added = [c for c in ok if c not in self.channels]
        self.channels.update(dict.fromkeys(added))
        return response(req_id, ok, now_us), added
