"""Builders for the publish tests: events, snapshots and scores, and how to store them in Redis
the way the service does (``write_batch`` for events; JSON strings for scores and health)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from service.config import StoreSettings
from service.events import (
    KIND_OF,
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    Kind,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    per_hour,
    spread_bp,
)
from service.health import HealthSnapshot
from service.health import encode as encode_snapshot
from service.scores import Pressure, State
from service.scores import encode as encode_pressure
from service.store import keys
from service.store.writer import write_batch

REDIS_URL = os.environ.get("DELEVERAGE_TEST_PUBLISH_REDIS_URL", "redis://127.0.0.1:6379/12")
PROBLEM = "application/problem+json"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def base_of(symbol: str) -> str:
    return symbol.removesuffix("USDT").removesuffix("USD")


def liquidation(
    venue: str, symbol: str, *, side: Side = Side.LONG, price: float = 100.0,
    quantity: float = 1.0, ts_ms: int | None = None, sampled: bool = False,
) -> Liquidation:  # fmt: skip
    ts = now_ms() if ts_ms is None else ts_ms
    return Liquidation(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts, side=side,
        price=price, quantity=quantity, quantity_base=quantity, notional_usd=price * quantity,
        sampled=sampled,
    )  # fmt: skip


def funding(
    venue: str, symbol: str, rate: float, interval_h: float = 8.0, next_ms: int | None = None
) -> FundingRate:
    ts = now_ms()
    return FundingRate(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts,
        funding_rate=rate, interval_h=interval_h, funding_rate_1h=per_hour(rate, interval_h),
        next_funding_ms=next_ms,
    )  # fmt: skip


def open_interest(venue: str, symbol: str, oi_usd: float, price: float = 100.0) -> OpenInterest:
    ts = now_ms()
    return OpenInterest(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts,
        oi_contracts=oi_usd / price, oi_base=oi_usd / price, oi_usd=oi_usd,
    )  # fmt: skip


def mark(venue: str, symbol: str, price: float, index: float | None = None) -> MarkPrice:
    ts = now_ms()
    return MarkPrice(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts,
        mark_price=price, index_price=index,
    )  # fmt: skip


def book_top(
    venue: str, symbol: str, bid: float, ask: float, bid_base: float = 1.0,
    ask_base: float = 1.0,
) -> BookTop:  # fmt: skip
    """A linear instrument's top of book (USD = base x price)."""
    ts = now_ms()
    return BookTop(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts, bid_price=bid,
        ask_price=ask, bid_base=bid_base, ask_base=ask_base, bid_usd=bid_base * bid,
        ask_usd=ask_base * ask, spread_bp=spread_bp(bid, ask),
    )  # fmt: skip


def book_depth(venue: str, symbol: str, mid: float, usd: float, reach_pct: float) -> BookDepth:
    """A book with ``usd`` within 0.5 % of mid on each side, twice that within 1 % and three
    times within 2 %, its levels reaching ``reach_pct`` from mid on each side."""
    ts = now_ms()
    return BookDepth(
        venue=venue, symbol=symbol, base=base_of(symbol), ts_ms=ts, recv_ms=ts, mid=mid,
        bid_usd_0p5=usd, bid_usd_1=2 * usd, bid_usd_2=3 * usd, ask_usd_0p5=usd,
        ask_usd_1=2 * usd, ask_usd_2=3 * usd, bid_reach_pct=reach_pct, ask_reach_pct=reach_pct,
    )  # fmt: skip


def snapshot(venue: str, **overrides: Any) -> HealthSnapshot:
    """A healthy, fresh snapshot; ``overrides`` change any field."""
    now = now_ms()
    fields: dict[str, Any] = {
        "venue": venue, "enabled": True, "connected": True, "ws_url": f"wss://{venue}.test/ws",
        "rest_url": f"https://{venue}.test", "liquidations_sampled": True,
        "connected_since_ms": now - 60_000, "last_message_ms": now - 100,
        "last_event_ms": now - 200, "messages_total": 1000, "events_total": 500,
        "reconnects_total": 2, "parse_errors_total": 3, "parse_errors": {"bad_json": 3},
        "oi_polls_total": 40, "oi_poll_failures_total": 1, "instruments": 300,
        "subscribed_symbols": None, "last_error": None, "updated_ms": now,
    }  # fmt: skip
    fields.update(overrides)
    return HealthSnapshot(**fields)


def pressure(
    venue: str, symbol: str, score: float, state: State = State.CALM, **overrides: Any
) -> Pressure:
    now = now_ms()
    fields: dict[str, Any] = {
        "venue": venue, "symbol": symbol, "asset": base_of(symbol), "score": score,
        "state": state, "side": None, "updated_ms": now, "since_ms": now - 30_000,
        "forced_share": None, "data_quality": 1.0, "features": {"oi_change_base_pct": -1.5},
        "reasons": ["OI -1.5% in 5m"],
    }  # fmt: skip
    fields.update(overrides)
    return Pressure(**fields)


async def store_events(client: aioredis.Redis, events: Sequence[Event]) -> None:
    """Write ``events`` exactly as the service's sink does."""
    await write_batch(client, events, StoreSettings(), now_ms())


async def store_pressure(client: aioredis.Redis, *scores: Pressure) -> None:
    for p in scores:
        await client.set(keys.pressure(p.venue, p.symbol), encode_pressure(p))
        await client.sadd(keys.INSTRUMENTS, keys.instrument_id(p.venue, p.symbol))


async def store_health(client: aioredis.Redis, *snapshots: HealthSnapshot) -> None:
    for s in snapshots:
        await client.set(keys.health(s.venue), encode_snapshot(s))
        await client.sadd(keys.VENUES, s.venue)


async def store_small_market(client: aioredis.Redis) -> None:
    """Three instruments on two venues, each with three liquidations, funding, open interest,
    a mark and a score, and both venues' health."""
    pairs = [("binance_usdm", "BTCUSDT"), ("bybit", "BTCUSDT"), ("bybit", "ETHUSDT")]
    for batch in range(3):
        await store_events(client, [
            e for i, (v, s) in enumerate(pairs)
            for e in (liquidation(v, s, price=100.0 + 10 * batch + i), funding(v, s, 1e-4 * i),
                      open_interest(v, s, 1e8 * (i + 1)), mark(v, s, 100.0 + i))
        ])  # fmt: skip
    await store_pressure(client, *(pressure(v, s, 10.0 * i) for i, (v, s) in enumerate(pairs)))
    await store_health(client, snapshot("binance_usdm"), snapshot("bybit"))


@dataclass
class MemorySource:
    """A :class:`~service.publish.metrics.MetricsSource` over plain attributes."""

    snapshots: list[HealthSnapshot] = field(default_factory=list)
    scores: list[Pressure] = field(default_factory=list)
    events: dict[tuple[str, str], dict[Kind, Event]] = field(default_factory=dict)
    totals: dict[tuple[str, str, Side], tuple[int, float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)

    def add(self, *events: Event) -> None:
        for e in events:
            kind = KIND_OF[type(e)]
            self.events.setdefault((e.venue, e.symbol), {})[kind] = e

    def health(self) -> list[HealthSnapshot]:
        return self.snapshots

    def pressures(self) -> list[Pressure]:
        return self.scores

    def latest(self) -> Mapping[tuple[str, str], Mapping[Kind, Event]]:
        return self.events

    def liquidation_totals(self) -> Mapping[tuple[str, str, Side], tuple[int, float]]:
        return self.totals

    def sink_stats(self) -> Mapping[str, float]:
        return self.stats


async def index_liquidation(
    client: aioredis.Redis, venue: str, symbol: str, stream_id: bytes | str
) -> None:
    """Add the position of a liquidation stream entry written by hand (not through the store
    script, which indexes what it stores) to the liquidation indexes, as the script would."""
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = sid.partition("-")
    position = keys.liquidation_position(int(ms), int(seq), keys.instrument_id(venue, symbol))
    for index in (keys.liquidation_index(), keys.liquidation_index(venue)):
        await client.zadd(index, {position: 0})
