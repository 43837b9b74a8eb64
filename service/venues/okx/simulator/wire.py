"""OKX v5's public websocket protocol, server side. Pure: frames in, frames out, no I/O.

What the simulator's server needs to speak like ``wss://ws.okx.com:443/ws/v5/public``: the
``subscribe``/``unsubscribe`` requests and their per-arg acks, OKX's error frames (60012
invalid request, 60018 unknown channel or instrument, 60019 invalid op, 60014 over the
480 requests per connection per hour), and the exact shapes of the ``mark-price``,
``open-interest``, ``funding-rate`` and ``liquidation-orders`` pushes (``books``:
:mod:`.book_wire`; ``tickers`` and ``trades``: :mod:`.liquidity_wire`). Real frames, for
reference::

    {"id":"1512","event":"subscribe","arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},
     "connId":"a4d3ae55"}
    {"event":"error","msg":"channel:tickers,instId:LTC-USD doesn't exist","code":"60018"}
    {"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{
     "bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",
     "ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",
     "instType":"SWAP","uly":"IOST-USDT"}]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers
from ....simulate.wirekit import recorded_text

INST_TYPE: Final = "SWAP"
PER_INSTRUMENT: Final = (
    "mark-price", "open-interest", "funding-rate", "books", "tickers", "trades",
)  # fmt: skip
LIQUIDATIONS: Final = "liquidation-orders"
INST_TYPES: Final = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
FOUR_HOUR_SYMBOLS: Final = ("ETH-USD-SWAP",)
"""Simulated swaps on a 4 h funding interval (a simulated deviation, to exercise OKX's
variable intervals; the 2022 listing has no funding interval field)."""
MAX_REQUEST_BYTES: Final = 65_536
""""The total length of multiple channels cannot exceed 64 KB": beyond, close 1009."""
MAX_OPS_PER_HOUR: Final = 480

Arg = tuple[str, str]
"""A subscription: (channel, instId) or, for ``liquidation-orders``, (channel, instType)."""


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one simulated swap."""

    inst_id: str
    family: str
    linear: bool
    ct_val: float
    """Base coin per contract (linear) or USD per contract (inverse)."""
    price_decimals: int
    funding_interval_h: float = DEFAULT_FUNDING_INTERVAL_H

    def contracts(self, qty_base: float, price: float) -> int:
        """A base quantity in whole contracts (lot size 1), at least one."""
        size = qty_base / self.ct_val if self.linear else qty_base * price / self.ct_val
        return max(1, round(size))


def load_instruments() -> str:
    """The recorded ``/api/v5/public/instruments?instType=SWAP`` body (``data/okx``)."""
    return recorded_text("service.venues.okx.simulator", "data/instruments_swap.json")


def _decimals(tick: str) -> int:
    return max(0, -math.floor(math.log10(float(tick)) + 1e-9))


def contracts(
    listing: Mapping[str, Any], symbols: Iterable[str], four_hour: Iterable[str]
) -> dict[str, Contract]:
    """Contracts of those ``symbols`` that ``listing`` (an instruments body) lists."""
    rows = {r["instId"]: r for r in listing["data"]}
    four = set(four_hour)
    out: dict[str, Contract] = {}
    for sym in symbols:
        if (row := rows.get(sym)) is None:
            continue
        out[sym] = Contract(
            sym,
            row["uly"],
            row["ctType"] == "linear",
            float(row["ctVal"]),
            _decimals(row["tickSz"]),
            4.0 if sym in four else DEFAULT_FUNDING_INTERVAL_H,
        )
    return out


def fmt(x: float, decimals: int) -> str:
    """Fixed-point text without trailing zeros, as OKX prints prices ("0.55205", "36.2")."""
    text = f"{x:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{x:.0f}"
    return "0" if text in ("-0", "") else text


def push(arg: Mapping[str, str], data: list[dict[str, Any]]) -> str:
    return encode({"arg": arg, "data": data})


def arg_of(a: Arg) -> dict[str, str]:
    channel, key = a
    return {"channel": channel, "instType" if channel == LIQUIDATIONS else "instId": key}


def mark_price(q: Quote, c: Contract, ts_ms: int) -> dict[str, Any]:
    return {
        "instId": c.inst_id,
        "instType": INST_TYPE,
        "markPx": fmt(q.mark, c.price_decimals),
        "ts": str(ts_ms),
    }


def open_interest(q: Quote, c: Contract, ts_ms: int) -> dict[str, Any]:
    """``oi`` contracts (fractional, as the venue prints them), ``oiCcy`` coin, ``oiUsd``."""
    usd = q.oi_base * q.mark
    contracts = q.oi_base / c.ct_val if c.linear else usd / c.ct_val
    return {
        "instId": c.inst_id,
        "instType": INST_TYPE,
        "oi": fmt(contracts, 8),
        "oiCcy": fmt(q.oi_base, 8),
        "oiUsd": fmt(usd, 8),
        "ts": str(ts_ms),
    }


def settlement_ms(now_ms: int, interval_h: float) -> int:
    """The coming settlement: the next multiple of the interval since 00:00 UTC."""
    step = int(interval_h * 3_600_000)
    return (now_ms // step + 1) * step


def funding_rate(q: Quote, c: Contract, ts_ms: int) -> dict[str, Any]:
    """Today's shape (``method`` current_period, ``nextFundingRate`` empty); the rate is
    per the contract's own interval (the market quotes it per 8 h)."""
    step = int(c.funding_interval_h * 3_600_000)
    settle = settlement_ms(ts_ms, c.funding_interval_h)
    rate = q.funding_rate_8h * c.funding_interval_h / 8.0
    return {
        "formulaType": "withRate",
        "fundingRate": fmt(rate, 16),
        "fundingTime": str(settle),
        "impactValue": "20000.0000000000000000",
        "instId": c.inst_id,
        "instType": INST_TYPE,
        "interestRate": "0.0001000000000000",
        "maxFundingRate": "0.00375",
        "method": "current_period",
        "minFundingRate": "-0.00375",
        "nextFundingRate": "",
        "nextFundingTime": str(settle + step),
        "premium": fmt(q.mark / q.index - 1.0, 16),
        "prevFundingTime": str(settle - step),
        "settFundingRate": fmt(rate, 16),
        "settState": "settled",
        "ts": str(ts_ms),
    }


def hedge_mode(p: LiquidationPrint) -> bool:
    """Whether the liquidated account was in hedge mode (``posSide`` long/short) or net mode
    (``posSide`` net): about half of each, fixed per print so a re-send is identical."""
    return p.ts_ms % 2 == 0


def liquidation_detail(p: LiquidationPrint, c: Contract) -> dict[str, str]:
    """One ``details[]`` row: ``side`` the order side (a sell closes a long), ``sz`` in
    contracts, ``bkPx`` the bankruptcy price (the print's limit, beyond its fill)."""
    long = p.side is Side.LONG
    return {
        "bkLoss": "0",
        "bkPx": fmt(p.order_price, c.price_decimals),
        "ccy": "",
        "posSide": ("long" if long else "short") if hedge_mode(p) else "net",
        "side": "sell" if long else "buy",
        "sz": str(c.contracts(p.qty_base, p.price)),
        "ts": str(p.ts_ms),
    }


def liquidation_data(
    prints: Iterable[LiquidationPrint], contracts: Mapping[str, Contract]
) -> list[dict[str, Any]]:
    """``data[]`` of a ``liquidation-orders`` push: one entry per instrument, in order of
    first appearance, each with its ``details[]`` in the order given."""
    entries: dict[str, dict[str, Any]] = {}
    for p in prints:
        c = contracts[p.symbol]
        entry = entries.get(p.symbol)
        if entry is None:
            entry = entries[p.symbol] = {
                "details": [],
                "instFamily": c.family,
                "instId": c.inst_id,
                "instType": INST_TYPE,
                "uly": c.family,
            }
        entry["details"].append(liquidation_detail(p, c))
    return list(entries.values())


def error(code: str, msg: str, conn_id: str, req_id: str | None = None) -> str:
    body: dict[str, str] = {} if req_id is None else {"id": req_id}
    return encode(body | {"event": "error", "msg": msg, "code": code, "connId": conn_id})


@dataclass(slots=True)
class Session:
    """One connection's protocol state: its subscriptions and its request budget."""

    conn_id: str
    listed: frozenset[str]
    """instIds a per-instrument channel accepts (others: 60018)."""
    max_ops: int = MAX_OPS_PER_HOUR
    args: dict[Arg, None] = field(default_factory=dict)
    ops: list[float] = field(default_factory=list)
    """Times (s) of the requests of the last hour."""

    def handle(self, text: str, now_s: float) -> tuple[list[str], list[Arg]]:
        """Answer one request frame: the reply frames and the args newly subscribed."""
        try:
            req = json.loads(text)
        except json.JSONDecodeError:
            return [error("60012", f"Invalid request: {text}", self.conn_id)], []
        req_id = req.get("id") if isinstance(req, dict) else None
        req_id = req_id if isinstance(req_id, str) else None
        if not isinstance(req, dict) or not isinstance(req.get("args"), list) or not req["args"]:
            return [error("60012", f"Invalid request: {text}", self.conn_id, req_id)], []
        op = req.get("op")
        if op not in ("subscribe", "unsubscribe"):
            return [error("60019", f"Invalid op: {op}", self.conn_id, req_id)], []
        self.ops = [t for t in self.ops if now_s - t < 3600.0]
        if len(self.ops) >= self.max_ops:
            return [error("60014", "Requests too frequent.", self.conn_id, req_id)], []
        self.ops.append(now_s)
        replies: list[str] = []
        added: list[Arg] = []
        for raw in req["args"]:
            a = self._arg(raw)
            if isinstance(a, str):
                replies.append(error("60018", a, self.conn_id, req_id))
                continue
            if op == "subscribe":
                if a not in self.args:
                    added.append(a)
                self.args[a] = None
            else:
                self.args.pop(a, None)
            ack = {"event": op, "arg": arg_of(a), "connId": self.conn_id}
            replies.append(encode(({} if req_id is None else {"id": req_id}) | ack))
        return replies, added

    def _arg(self, raw: Any) -> Arg | str:
        """The subscription an arg names, or the 60018 message."""
        if not isinstance(raw, dict):
            return f"Wrong URL or channel:{raw} doesn't exist."
        channel = str(raw.get("channel", ""))
        if channel == LIQUIDATIONS:
            inst_type = str(raw.get("instType", ""))
            if inst_type in INST_TYPES:
                return (channel, inst_type)
            return f"Wrong URL or channel:{channel},instType:{inst_type} doesn't exist."
        inst_id = str(raw.get("instId", ""))
        if channel in PER_INSTRUMENT and inst_id in self.listed:
            return (channel, inst_id)
        return (
            f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use the "
            "correct URL, channel and parameters referring to API document."
        )
