"""Gate's futures websocket protocol (v4), server side. Pure: frames in, frames out, no I/O.

What the simulator's server needs to speak like ``wss://fx-ws.gateio.ws/v4/ws/{usdt,btc}``:
the request protocol (``subscribe``/``unsubscribe``, ``futures.ping``) and its answers, the
``futures.tickers`` pushes, the ``futures.public_liquidates`` pushes in both formats, and the
contract listings. Real frames, for reference::

    {"time":1677629168,"time_ms":1677629168840,"channel":"futures.tickers","event":"update",
     "result":[{"contract":"BTC_USDT","last":"23160.2",...,"total_size":"153482780",...,
     "mark_price":"23175.64","funding_rate":"0.0001",...,"index_price":"23173.35",...}]}
    {"time":1545404023,"time_ms":1545404023123,"channel":"futures.pong","event":"",
     "result":null}
    {"channel":"futures.public_liquidates","event":"update","time":1541505434,
     "time_ms":1541505434123,"result":[{"price":"215.1","size":"-124.5",
     "time":1541486601123,"contract":"BTC_USDT"},...]}

Liquidations: ``size`` the signed order size in contracts (negative: a sell closing a long),
an integer unless the client sent ``X-Gate-Size-Decimal: 1``; ``price`` the order price.
The current format batches every liquidation of a contract over one second (20 at most a
frame); the legacy one (before 2026-08-20) sent at most one per contract and second, with
``time`` in seconds.

Not documented by Gate, so chosen here: which liquidation the legacy format keeps (the first
of the second), the error codes and texts (``1`` bad request, ``2`` unknown channel or
contract), and the ticker cadence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ....events import Side
from ....simulate.market import LiquidationPrint, Quote, SymbolSpec
from ....simulate.wirekit import DayRange, recorded
from ....simulate.wirekit import encode as encode  # the wire's encoder, for its callers

SETTLES: Final = ("usdt", "btc")
TICKERS: Final = "futures.tickers"
LIQUIDATES: Final = "futures.public_liquidates"
BOOK_TICKER: Final = "futures.book_ticker"
TRADES: Final = "futures.trades"
BOOK: Final = "futures.obu"
BOOK_LEVELS: Final = ("50", "400")
ALL: Final = "!all"
BATCH_MAX: Final = 20
"""The current format pushes a contract's batch early once it holds this many."""
FOUR_HOUR_SYMBOLS: Final = ("DOGE_USDT",)
"""Served with ``funding_interval`` 14400 (a simulated deviation from the 2023 listing)."""

GATE_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTC_USDT", "BTC", 60_000.0, 20_000.0, 0.0001),
    SymbolSpec("ETH_USDT", "ETH", 3_000.0, 300_000.0, 0.01),
    SymbolSpec("SOL_USDT", "SOL", 150.0, 1_500_000.0, 1.0),
    SymbolSpec("DOGE_USDT", "DOGE", 0.15, 900_000_000.0, 10.0),
    SymbolSpec("BTC_USD", "BTC", 60_000.0, 600.0, 0.0001),
)
"""USDT contracts (``qty_step`` = one contract: ``quanto_multiplier`` coin) and the
BTC-settled inverse ``BTC_USD`` (sizes in whole USD contracts on the wire)."""
GATE_SYMBOLS: Final = tuple(s.symbol for s in GATE_SPECS)


def load_contracts(settle: str) -> list[dict[str, Any]]:
    """The ``/futures/{settle}/contracts`` list as served (``data/gateio``, deviations
    applied)."""
    rows: list[dict[str, Any]] = recorded(
        "service.venues.gateio.simulator", f"data/contracts-{settle}.json"
    )
    return [r | {"funding_interval": 14400} if r["name"] in FOUR_HOUR_SYMBOLS else r for r in rows]


@dataclass(frozen=True, slots=True)
class Contract:
    """What the wire needs about one contract."""

    name: str
    settle: str
    linear: bool
    multiplier: float
    """Base coin a contract (linear); inverse contracts are 1 USD."""
    tick: float
    funding_interval_h: float

    def contracts(self, qty_base: float, price: float) -> int:
        """A base quantity in whole contracts, at least one (what clients without the
        ``X-Gate-Size-Decimal`` header see)."""
        n = qty_base / self.multiplier if self.linear else qty_base * price
        return max(1, round(n))

    def decimal_contracts(self, qty_base: float, price: float) -> float:
        """The same in contracts to one decimal (``X-Gate-Size-Decimal: 1``), at least 0.1."""
        n = qty_base / self.multiplier if self.linear else qty_base * price
        return max(0.1, round(n, 1))


def contracts(listings: Mapping[str, list[dict[str, Any]]]) -> dict[str, Contract]:
    """The contracts the service collects (USDT ``direct``, BTC ``inverse``), by name."""
    out: dict[str, Contract] = {}
    for settle, rows in listings.items():
        for r in rows:
            linear = settle == "usdt" and r["type"] == "direct"
            if not linear and not (settle == "btc" and r["type"] == "inverse"):
                continue
            out[r["name"]] = Contract(
                r["name"],
                settle,
                linear,
                float(r["quanto_multiplier"]) if linear else 1.0,
                float(r["order_price_round"]),
                r["funding_interval"] / 3600,
            )
    return out


def fmt(x: float, tick: float) -> str:
    """``x`` on the tick, as Gate prints prices ("23175.64", "0.071083")."""
    decimals = max(0, -math.floor(math.log10(tick) + 1e-9))
    text = f"{round(x / tick) * tick:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def frame(channel: str, event: str, result: Any, now_ms: int, **extra: Any) -> str:
    body = {"time": now_ms // 1000, "time_ms": now_ms, "channel": channel, "event": event}
    return encode(body | extra | {"result": result})


def pong(now_ms: int) -> str:
    return frame("futures.pong", "", None, now_ms)


@dataclass(slots=True)
class TickerBook:
    """One contract's 24 h figures, kept across pushes."""

    contract: Contract
    day: DayRange = field(default_factory=DayRange)
    volume: int = 0

    def ticker(self, q: Quote) -> dict[str, str]:
        c = self.contract
        day = self.day
        last = day.last(q.mark, c.tick)
        oi = c.contracts(q.oi_base, q.mark)
        self.volume += max(1, oi // 10_000)
        base_volume = self.volume * c.multiplier if c.linear else self.volume / last
        return {
            "contract": c.name,
            "last": fmt(last, c.tick),
            "change_percentage": f"{(last / day.open - 1) * 100:.4f}",
            "total_size": str(oi),
            "volume_24h": str(self.volume),
            "volume_24h_base": f"{base_volume:.0f}",
            "volume_24h_quote": f"{base_volume * last:.0f}",
            "volume_24h_settle": f"{base_volume * last if c.linear else base_volume:.0f}",
            "mark_price": fmt(q.mark, c.tick),
            "funding_rate": f"{q.funding_rate_8h * c.funding_interval_h / 8:.6f}",
            "funding_rate_indicative": f"{q.funding_rate_8h * c.funding_interval_h / 8:.6f}",
            "index_price": fmt(q.index, c.tick / 10),
            "quanto_base_rate": "",
            "low_24h": fmt(day.low, c.tick),
            "high_24h": fmt(day.high, c.tick),
        }


def liquidation_row(
    p: LiquidationPrint, c: Contract, *, decimal_sizes: bool = False, legacy: bool = False
) -> dict[str, Any]:
    """One ``futures.public_liquidates`` row: negative size for a long (closed by a sell),
    the order price, ``time`` in ms (in s in the legacy format)."""
    n: float = (
        c.decimal_contracts(p.qty_base, p.price)
        if decimal_sizes
        else c.contracts(p.qty_base, p.price)
    )
    signed = -n if p.side is Side.LONG else n
    return {
        "price": fmt(p.order_price, c.tick),
        "size": str(signed) if decimal_sizes else signed,
        "time": p.ts_ms // 1000 if legacy else p.ts_ms,
        "contract": c.name,
    }


def legacy_sample(prints: Iterable[LiquidationPrint]) -> list[LiquidationPrint]:
    """The legacy format's second: the first liquidation of each contract."""
    first: dict[str, LiquidationPrint] = {}
    for p in sorted(prints, key=lambda p: p.ts_ms):
        first.setdefault(p.symbol, p)
    return list(first.values())


def error(channel: str, event: str, code: int, message: str, now_ms: int, **extra: Any) -> str:
    return frame(
        channel,
        event,
        {"status": "fail"},
        now_ms,
        error={"code": code, "message": message},
        **extra,
    )


@dataclass(slots=True)
class Session:
    """One connection's protocol state."""

    settle: str
    listed: frozenset[str]
    """Contract names of this settlement (subscribable)."""
    tickers: set[str] = field(default_factory=set)
    liquidations: set[str] = field(default_factory=set)
    """Contract names, or ``!all``."""
    book_tickers: set[str] = field(default_factory=set)
    trades: set[str] = field(default_factory=set)
    books: set[str] = field(default_factory=set)
    """``futures.obu`` streams (``ob.<contract>.<levels>``)."""
    books_sent: set[str] = field(default_factory=set)
    """Streams whose whole book was sent: they get the updates."""
    new_books: list[str] = field(default_factory=list)
    """Streams subscribed by the last frame handled: each is owed its whole book."""

    def wants_liquidations(self, name: str) -> bool:
        return ALL in self.liquidations or name in self.liquidations

    def handle(self, text: str | bytes, now_ms: int) -> list[str]:
        """The answers to one client frame."""
        self.new_books = []
        try:
            req = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return [error("", "", 1, "invalid argument: not json", now_ms)]
        if not isinstance(req, dict):
            return [error("", "", 1, "invalid argument", now_ms)]
        channel, event, payload = req.get("channel"), req.get("event"), req.get("payload")
        if channel == "futures.ping":
            return [pong(now_ms)]
        mine = {
            TICKERS: self.tickers, LIQUIDATES: self.liquidations,
            BOOK_TICKER: self.book_tickers, TRADES: self.trades, BOOK: self.books,
        }.get(str(channel))  # fmt: skip
        if mine is None:
            return [error(str(channel), str(event), 2, f"Unknown channel {channel}", now_ms)]
        if event not in ("subscribe", "unsubscribe") or not isinstance(payload, list):
            return [error(str(channel), str(event), 1, "invalid argument", now_ms)]
        names = [str(x) for x in payload]
        if channel == BOOK:
            return self._books(event, names, now_ms)
        allowed = self.listed | ({ALL} if channel == LIQUIDATES else set())
        unknown = [n for n in names if n not in allowed]
        if unknown:
            msg = f"unknown contract {','.join(unknown)}"
            return [error(str(channel), event, 2, msg, now_ms, payload=names)]
        if event == "subscribe":
            mine.update(names)
        else:
            mine.difference_update(names)
        return [frame(str(channel), event, {"status": "success"}, now_ms, payload=names)]

    def _books(self, event: str, streams: list[str], now_ms: int) -> list[str]:
        """``futures.obu``: a stream of an unknown contract or depth is acknowledged and
        never served (as the venue did when probed); a stream subscribed twice is refused
        ("Alert sub", the docs' error)."""
        if event == "subscribe":
            again = [s for s in streams if s in self.books]
            if again:
                return [error(BOOK, event, 2, f"Alert sub {again[0]}", now_ms, payload=streams)]
            self.books.update(streams)
            self.new_books = list(streams)
        else:
            self.books.difference_update(streams)
            self.books_sent.difference_update(streams)
        return [frame(BOOK, event, {"status": "success"}, now_ms, payload=streams)]


def parse_stream(stream: str) -> tuple[str, int] | None:
    """``(contract, levels)`` of an ``ob.<contract>.<levels>`` stream the venue serves."""
    prefix, _, rest = stream.partition(".")
    name, _, levels = rest.rpartition(".")
    if prefix != "ob" or not name or levels not in BOOK_LEVELS:
        return None
    return name, int(levels)


def contract_stats(q: Quote, c: Contract, time_s: int) -> dict[str, Any]:
    """One ``contract_stats`` row as the docs show it: even ratios, the open interest in
    contracts and USD, the mark, no liquidated size."""
    oi = q.oi_base / c.multiplier if c.linear else q.oi_base * q.mark
    return {
        "time": time_s, "lsr_taker": 1, "lsr_account": 1, "long_liq_size": 0,
        "short_liq_size": 0, "open_interest": round(oi), "short_liq_usd": 0,
        "mark_price": fmt(q.mark, c.tick), "top_lsr_size": 1, "short_liq_amount": 0,
        "long_liq_amount": 0, "open_interest_usd": round(q.oi_base * q.mark, 2),
        "top_lsr_account": 1, "long_liq_usd": 0,
    }  # fmt: skip
