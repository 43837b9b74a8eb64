"""Bybit v5's public linear/inverse wire protocol, server side. Pure: frames in, frames out.

What the simulator's server needs to speak like ``stream.bybit.com/v5/public/{linear,inverse}``:
the request protocol (``subscribe``, ``unsubscribe``, ``ping``) and its answers, the
``tickers.{symbol}`` snapshot-then-delta stream, the batched ``allLiquidation.{symbol}``
frames, the ``publicTrade.{symbol}`` tape, and the instrument list. Real frames, for reference::

    {"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"",
     "op":"subscribe"}
    {"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260",
     "req_id":"","op":"ping"}
    {"topic":"tickers.BTCUSD","type":"delta","data":{"symbol":"BTCUSD",
     "price24hPcnt":"0.023362","openInterest":"449736674","fundingRate":"0.0001",...},
     "cs":20856433603,"ts":1680673822776}

Since 2026-06-11 (Bybit's docs and announcement "Update to the Open Interest (OI)
calculation method"), tickers carry ``openInterest``/``openInterestValue`` for both sides and
``singleOpenInterest``/``singleOpenInterestValue`` for one side: the simulator sends all four,
the single ones being the market's open interest (so ``openInterest`` is twice it).
    {"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,
     "data":[{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}

Not documented by Bybit, so chosen here: a refused subscription answers
``"success":false`` with ``ret_msg`` naming the refused topics (``Invalid symbol :[...]``,
the text client libraries report) while the valid topics of the same request are kept;
subscribing twice to a topic is a no-op; a malformed request answers ``"success":false``.
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

CATEGORIES: Final = ("linear", "inverse")
MAX_ARGS_CHARS: Final = 21_000
FUNDING_CAP: Final = "0.005"
PERPETUALS: Final = {"LinearPerpetual": "linear", "InversePerpetual": "inverse"}

BYBIT_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSDT", "BTC", 60_000.0, 55_000.0, 0.001),
    SymbolSpec("ETHUSDT", "ETH", 3_000.0, 900_000.0, 0.01),
    SymbolSpec("SOLUSDT", "SOL", 150.0, 4_000_000.0, 0.1),
    SymbolSpec("DOGEUSDT", "DOGE", 0.15, 3_000_000_000.0, 1.0),
    SymbolSpec("BTCUSD", "BTC", 60_000.0, 7_500.0, 0.0001),
    SymbolSpec("ETHUSD", "ETH", 3_000.0, 50_000.0, 0.001),
)
"""Linear (``*USDT``: OI in base coin) and inverse (``*USD``: OI shown in USD contracts)
perpetuals; ``qty_step`` rounds liquidation sizes in base coin before the wire converts
inverse sizes to whole USD contracts."""

BYBIT_SYMBOLS: Final = tuple(s.symbol for s in BYBIT_SPECS)


def load_instruments(category: str) -> dict[str, Any]:
    """The ``instruments-info`` body of ``category`` (see ``data/bybit/README.md``)."""
    body: dict[str, Any] = recorded(
        "service.venues.bybit.simulator", f"data/instruments-info-{category}.json"
    )
    return body


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one perpetual."""

    symbol: str
    category: str
    tick: float
    price_decimals: int
    qty_decimals: int
    """Decimals of a linear size (base coin); inverse sizes are whole USD contracts."""
    funding_interval_h: float

    @property
    def linear(self) -> bool:
        return self.category == "linear"


def _decimals(step: str) -> int:
    return len(step.partition(".")[2])


def contracts(listings: Mapping[str, Mapping[str, Any]]) -> dict[str, Contract]:
    """The perpetuals in trading of ``instruments-info`` bodies, by category."""
    out: dict[str, Contract] = {}
    for category, body in listings.items():
        for row in body["result"]["list"]:
            if PERPETUALS.get(row["contractType"]) != category or row["status"] != "Trading":
                continue
            tick = row["priceFilter"]["tickSize"]
            out[row["symbol"]] = Contract(
                row["symbol"],
                category,
                float(tick),
                int(row["priceScale"]),
                _decimals(row["lotSizeFilter"]["qtyStep"]),
                row["fundingInterval"] / 60,
            )
    return out


def fmt(x: float, decimals: int) -> str:
    """Fixed-point text (never ``-0.00``)."""
    text = f"{x:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def price(x: float, c: Contract) -> str:
    """``x`` on the contract's tick, as Bybit prints prices (``"28560.50"``)."""
    return fmt(round(x / c.tick) * c.tick, c.price_decimals)


def rate(x: float) -> str:
    """A funding rate as Bybit prints it: 6 decimals, no trailing zeros (``"0.0001"``)."""
    text = fmt(x, 6).rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def next_funding_ms(now_ms: int, interval_h: float) -> int:
    """The next funding time: the next multiple of the interval since 00:00 UTC."""
    step = int(interval_h * 3_600_000)
    return (now_ms // step + 1) * step


def size(qty_base: float, at: float, c: Contract) -> str:
    """A size on the wire: base coin (linear) or whole USD contracts valued at ``at``."""
    if c.linear:
        return fmt(qty_base, c.qty_decimals)
    return str(max(1, round(qty_base * at)))


def _amount(x: float, c: Contract) -> str:
    """An amount of the contract's unit: base coin (linear) or whole contracts (inverse)."""
    return fmt(x, c.qty_decimals) if c.linear else str(round(x))


@dataclass(slots=True)
class TickerBook:
    """One symbol's ticker as last pushed, to send deltas of what changed since."""

    contract: Contract
    cs: int
    fields: dict[str, str] = field(default_factory=dict)
    ts: int = 0
    day: DayRange = field(default_factory=DayRange)

    def update(self, q: Quote, now_ms: int) -> dict[str, str]:
        """Move to ``q`` at ``now_ms``; the fields that changed (``{}``: none), symbol first."""
        c, fresh = self.contract, self._fields(q, now_ms)
        changed = {k: v for k, v in fresh.items() if self.fields.get(k) != v}
        self.fields, self.ts = fresh, now_ms
        if not changed:
            return {}
        self.cs += len(changed)
        return {"symbol": c.symbol} | changed

    def _fields(self, q: Quote, now_ms: int) -> dict[str, str]:
        c = self.contract
        day = self.day
        last = day.last(q.mark, c.tick)
        before = float(self.fields.get("lastPrice", last))
        if last != before:
            direction = "Plus" if last > before else "Minus"
        else:  # unchanged: Zero, then the direction of the last change
            previous = self.fields.get("tickDirection", "ZeroPlusTick")
            direction = "ZeroPlus" if "Plus" in previous else "ZeroMinus"
        oi = q.oi_base if c.linear else q.oi_base * q.mark  # inverse: USD contracts
        book_size = oi * 0.0004 * q.depth
        bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
        return {
            "symbol": c.symbol,
            "tickDirection": f"{direction}Tick",
            "price24hPcnt": fmt(last / day.open - 1, 6),
            "lastPrice": price(last, c),
            "prevPrice24h": price(day.open, c),
            "highPrice24h": price(day.high, c),
            "lowPrice24h": price(day.low, c),
            "markPrice": price(q.mark, c),
            "indexPrice": fmt(q.index, c.price_decimals),
            # Since 2026-06-11 openInterest and openInterestValue count both sides, the
            # single* fields one side (what the market holds, and what other venues report).
            "openInterest": _amount(2 * oi, c),
            "openInterestValue": fmt(2 * (oi * q.mark if c.linear else oi / q.mark), 2),
            "singleOpenInterest": _amount(oi, c),
            "singleOpenInterestValue": fmt(oi * q.mark if c.linear else oi / q.mark, 2),
            "nextFundingTime": str(next_funding_ms(now_ms, c.funding_interval_h)),
            "fundingRate": rate(q.funding_rate_8h * c.funding_interval_h / 8),
            "bid1Price": price(bid, c),
            "bid1Size": _amount(book_size, c),
            "ask1Price": price(ask, c),
            "ask1Size": _amount(book_size * 0.8, c),
            "fundingIntervalHour": str(round(c.funding_interval_h)),
            "fundingCap": FUNDING_CAP,
        }


def ticker_frame(kind: str, data: Mapping[str, str], cs: int, ts: int, symbol: str) -> str:
    """``{"topic":"tickers.<symbol>","type":<kind>,"data":{...},"cs":...,"ts":...}``"""
    return encode({"topic": f"tickers.{symbol}", "type": kind, "data": data, "cs": cs, "ts": ts})


def liquidation_row(p: LiquidationPrint, c: Contract) -> dict[str, Any]:
    """One ``allLiquidation`` entry: ``S`` is the position side, ``p`` the bankruptcy price,
    ``v`` the size (base coin, or USD contracts valued at the fill price)."""
    return {
        "T": p.ts_ms,
        "s": p.symbol,
        "S": "Buy" if p.side is Side.LONG else "Sell",
        "v": size(p.qty_base, p.price, c),
        "p": price(p.order_price, c),
    }


def liquidation_frame(symbol: str, rows: list[dict[str, Any]], ts: int) -> str:
    return encode({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": ts, "data": rows})


def trade_rows(
    q: Quote, c: Contract, ts: int, liquidations: list[LiquidationPrint], first_id: int
) -> list[dict[str, Any]]:
    """One second's ``publicTrade`` entries of a symbol: the liquidations' fills (the
    liquidated position's close is the taker: a long's close sells), then the calm tape
    (:func:`~service.simulate.wirekit.tape`) as one taker buy and one taker sell at the top
    of book. ``S`` is the taker's side; ``v`` base coin (linear) or USD contracts
    (inverse); ids count up from ``first_id``."""
    fills = [
        ("Sell" if p.side is Side.LONG else "Buy", p.qty_base, p.price, p.ts_ms)
        for p in liquidations
    ]
    buy, sell = tape(q)
    bid, ask = book_prices(q.mark, q.spread_bp, c.tick)
    fills += [("Buy", buy, ask, ts), ("Sell", sell, bid, ts)]
    return [
        {"T": t, "s": c.symbol, "S": side, "v": size(qty, at, c), "p": price(at, c),
         "L": "ZeroPlusTick" if side == "Buy" else "ZeroMinusTick",
         "i": f"{c.symbol}-{first_id + n}", "BT": False}
        for n, (side, qty, at, t) in enumerate(fills)
        if qty > 0
    ]  # fmt: skip


def trade_frame(symbol: str, rows: list[dict[str, Any]], ts: int) -> str:
    """``{"topic":"publicTrade.<symbol>","type":"snapshot","ts":...,"data":[{"T":...,"s":...,
    "S":"Buy","v":"0.01","p":"60000.10","L":"PlusTick","i":"...","BT":false}]}``"""
    return encode({"topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": ts, "data": rows})


def answer(conn_id: str, op: str, req_id: str, *, success: bool = True, msg: str = "") -> str:
    """An answer to a request, in the linear/inverse shape."""
    return encode(
        {"success": success, "ret_msg": msg, "conn_id": conn_id, "req_id": req_id, "op": op}
    )


ADL_COINS: Final = {"linear": ("USDT", "USDC"), "inverse": ("inverse",)}
"""The ``adlAlert.{coin}`` topics each category's path serves."""


def adl_alert_frame(coin: str, rows: list[dict[str, Any]], ts: int) -> str:
    """``{"topic":"adlAlert.USDT","type":"snapshot","ts":...,"data":[{"c":"USDT","s":...,
    "b":...,"mb":...,"i_pr":...,"pr":...,"adl_tt":...,"adl_sr":...}]}``: numbers, as the
    docs' example sends them (their table says strings; the parser reads both)."""
    return encode({"topic": f"adlAlert.{coin}", "type": "snapshot", "ts": ts, "data": rows})


@dataclass(slots=True)
class Session:
    """One connection's protocol state."""

    category: str
    conn_id: str
    listed: frozenset[str]
    """Symbols of this category whose topics can be subscribed."""
    topics: set[str] = field(default_factory=set)
    snapshotted: set[str] = field(default_factory=set)
    """``tickers`` and ``orderbook`` topics whose snapshot went out: only those get
    deltas."""

    def valid(self, topic: str) -> bool:
        name, _, symbol = topic.partition(".")
        if name == "adlAlert":
            return symbol in ADL_COINS[self.category]
        if name == "orderbook":  # orderbook.{depth}.{symbol}
            depth, _, symbol = symbol.partition(".")
            return depth in ("1", "50", "200", "500", "1000") and symbol in self.listed
        return name in ("tickers", "allLiquidation", "publicTrade") and symbol in self.listed

    def handle(self, text: str | bytes) -> tuple[str, list[str]]:
        """Answer one client frame; also the topics it newly subscribed."""
        try:
            req = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return answer(self.conn_id, "", "", success=False, msg="error:invalid json"), []
        if not isinstance(req, dict):
            return answer(self.conn_id, "", "", success=False, msg="error:invalid request"), []
        req_id, op = str(req.get("req_id") or ""), req.get("op")
        if op == "ping":
            return answer(self.conn_id, "ping", req_id, msg="pong"), []
        if op not in ("subscribe", "unsubscribe"):
            return answer(self.conn_id, str(op or ""), req_id, success=False, msg="error:op"), []
        args = req.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return answer(self.conn_id, op, req_id, success=False, msg="error:args"), []
        if op == "unsubscribe":
            self.topics.difference_update(args)
            self.snapshotted.difference_update(args)
            return answer(self.conn_id, op, req_id), []
        if len(encode(sorted(self.topics | set(args)))) > MAX_ARGS_CHARS:  # per connection
            msg = f"error:args length exceeds {MAX_ARGS_CHARS}"
            return answer(self.conn_id, op, req_id, success=False, msg=msg), []
        refused = [a for a in args if not self.valid(a)]
        new = [a for a in dict.fromkeys(args) if self.valid(a) and a not in self.topics]
        self.topics.update(new)
        if refused:
            msg = f"Invalid symbol :[{','.join(refused)}]"
            return answer(self.conn_id, op, req_id, success=False, msg=msg), new
        return answer(self.conn_id, op, req_id), new

    def wants(self, topic: str) -> bool:
        return topic in self.topics


def listed(listings: Mapping[str, Mapping[str, Any]], category: str) -> frozenset[str]:
    """Every symbol of ``category`` in trading (perpetual or not)."""
    rows = listings[category]["result"]["list"]
    return frozenset(r["symbol"] for r in rows if r["status"] == "Trading")


def only(body: Mapping[str, Any], symbols: Iterable[str]) -> dict[str, Any]:
    """``body`` listing only ``symbols``."""
    keep = set(symbols)
    result = {**body["result"], "list": [r for r in body["result"]["list"] if r["symbol"] in keep]}
    return {**body, "result": result}
