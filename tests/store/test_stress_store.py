"""The stress writer and readers (service/store/stress.py) against the real Redis: newest
state per field, history streams trimmed by time, stale fields pruned, undecodable entries
skipped, a Redis that is down counted and the batch kept."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import redis.asyncio as aioredis
from waits import until

from service.events import (
    AdlLevel,
    AdlRisk,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
    StressKind,
)
from service.store import keys
from service.store.stress import ReadStats, StressWriter, insurance_before, read_latest

pytestmark = pytest.mark.integration

VENUE = "bybit"


def _now() -> int:
    return time.time_ns() // 1_000_000


def _fund(balance: float, recv_ms: int, pool: str = "BTCUSDT") -> InsuranceFund:
    return InsuranceFund(
        venue=VENUE, symbol=pool, base="BTC", ts_ms=recv_ms, recv_ms=recv_ms, pool=pool,
        asset="USDT", balance=balance, balance_usd=balance,
    )  # fmt: skip


def _adl(level: AdlLevel, recv_ms: int, symbol: str = "BTCUSDT") -> AdlRisk:
    return AdlRisk(
        venue=VENUE, symbol=symbol, base="BTC", ts_ms=recv_ms, recv_ms=recv_ms, level=level,
        native="-0.1", native_kind="pnl_drawdown_ratio", trigger=-0.3,
    )  # fmt: skip


async def test_the_newest_state_per_field_wins_and_every_event_is_history(
    redis_client: aioredis.Redis,
) -> None:
    writer = StressWriter(redis_client, retention_s=3600)
    now = _now()
    ratio = Positioning(
        venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now,
        metric=PositioningMetric.ACCOUNTS, period_s=300, long_short_ratio=2.0, long_share=2 / 3,
    )  # fmt: skip
    await writer.write([_fund(100.0, now - 2000), _adl(AdlLevel.LOW, now - 2000), ratio])
    await writer.write([_fund(80.0, now - 1000), _adl(AdlLevel.HIGH, now - 1000)])

    states = (await read_latest(redis_client, [VENUE]))[VENUE]
    assert sorted(states) == [
        "adl_risk|BTCUSDT", "insurance|BTCUSDT|USDT", "positioning|BTCUSDT|accounts|300",
    ]  # fmt: skip
    fund = states["insurance|BTCUSDT|USDT"]
    assert isinstance(fund, InsuranceFund)
    assert fund.balance == 80.0
    adl = states["adl_risk|BTCUSDT"]
    assert isinstance(adl, AdlRisk)
    assert adl.level is AdlLevel.HIGH
    assert await redis_client.xlen(keys.stress_events(VENUE, StressKind.INSURANCE)) == 2
    assert await redis_client.xlen(keys.stress_events(VENUE, StressKind.POSITIONING)) == 1
    assert 3590 <= await redis_client.ttl(keys.stress_latest(VENUE)) <= 3600

    before = await insurance_before(redis_client, [VENUE], now - 3_600_000)
    assert before[(VENUE, "BTCUSDT", "USDT")].balance == 100.0  # the oldest in the window


async def test_stale_fields_are_pruned_and_bad_entries_skipped(
    redis_client: aioredis.Redis,
) -> None:
    writer = StressWriter(redis_client, retention_s=60)
    now = _now()
    await writer.write([_adl(AdlLevel.LOW, now - 120_000, "OLDUSDT"), _adl(AdlLevel.LOW, now)])
    await redis_client.hset(keys.stress_latest(VENUE), "adl_risk|BADUSDT", b"{not json")
    stats = ReadStats()
    states = (await read_latest(redis_client, [VENUE], stats))[VENUE]
    assert sorted(states) == ["adl_risk|BTCUSDT", "adl_risk|OLDUSDT"]
    assert stats.decode_errors == 1

    assert await writer.prune([VENUE]) == 1
    states = (await read_latest(redis_client, [VENUE]))[VENUE]
    assert sorted(states) == ["adl_risk|BTCUSDT"]


async def test_a_reader_that_keeps_what_it_decoded_decodes_only_what_changed(
    redis_client: aioredis.Redis,
) -> None:
    writer = StressWriter(redis_client, retention_s=3600)
    now = _now()
    await writer.write([_adl(AdlLevel.LOW, now, "AUSDT"), _adl(AdlLevel.LOW, now, "BUSDT")])
    await redis_client.hset(keys.stress_latest(VENUE), "adl_risk|BADUSDT", b"{not json")
    known: dict[bytes | str, StressEvent] = {}
    stats = ReadStats()
    first = (await read_latest(redis_client, [VENUE], stats, known))[VENUE]
    assert first == (await read_latest(redis_client, [VENUE]))[VENUE]  # what a plain read gives
    assert len(known) == 2  # the unusable entry is not kept
    await writer.write([_adl(AdlLevel.HIGH, now + 1, "BUSDT")])
    second = (await read_latest(redis_client, [VENUE], stats, known))[VENUE]
    assert second["adl_risk|AUSDT"] is first["adl_risk|AUSDT"]  # unchanged: not decoded again
    b = second["adl_risk|BUSDT"]
    assert isinstance(b, AdlRisk)
    assert b.level is AdlLevel.HIGH
    assert stats.decode_errors == 2  # the bad entry, at each read
    assert len(known) == 2  # B's old bytes forgotten


async def test_a_redis_that_is_down_is_counted_and_the_batch_kept(
    redis_client: aioredis.Redis,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=None)
    writer = StressWriter(down, retention_s=60, max_pending=3, retry_s=0.1)
    task = asyncio.create_task(writer.run())
    try:
        now = _now()
        writer.put([_adl(AdlLevel.LOW, now, s) for s in ("AUSDT", "BUSDT")])
        await until(lambda: writer.write_failures > 0, within=5)
        writer.put([_adl(AdlLevel.LOW, now, s) for s in ("CUSDT", "DUSDT")])
        # retried after the pause: the batch was put back before C, D; the oldest dropped
        await until(lambda: writer.write_failures >= 2, within=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await down.aclose()
    assert writer.write_failures >= 1
    assert writer.written_events == 0
    assert writer.pending <= 3
    assert writer.events_dropped >= 1
