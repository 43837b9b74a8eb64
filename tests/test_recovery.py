"""Redis faults under a running service: its own redis-server is killed and restarted in the
middle of a burst, or frozen (SIGSTOP) for seconds. Writes resume within a second of Redis
answering, nothing is lost or written twice, ``/readyz`` answers within a second at every
moment (and says not ready until the backlog is written), and the detector does not read the
missing data as calm."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from own_redis import OwnRedis

from service.config import StoreSettings, load_settings
from service.events import (
    Event,
    FundingRate,
    Kind,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    decode,
    decode_many,
)
from service.runtime import Component, Runtime
from service.scores import State
from service.store import keys
from service.store.writer import EventSink
from service.venues import REGISTRY

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
READYZ_EVERY_S = 0.1
READYZ_TIMEOUT_S = 1.0


@pytest.fixture
def durable_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(durable=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    if server.frozen:
        server.thaw()
    server.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int
    body: dict[str, Any]


@dataclass
class Probe:
    """``/readyz`` probed every 0.1 s (each probe on its own, so that a slow answer does not
    delay the next) with a 1 s client timeout: every answer, or the failure."""

    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def run(self, base_url: str) -> None:
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=READYZ_TIMEOUT_S) as http,
            asyncio.TaskGroup() as tg,
        ):
            while True:
                tg.create_task(self._one(http))
                await asyncio.sleep(READYZ_EVERY_S)

    async def _one(self, http: httpx.AsyncClient) -> None:
        sent = time.monotonic()
        try:
            r = await http.get("/readyz")
        except httpx.HTTPError as exc:
            self.failures.append(f"after {time.monotonic() - sent:.3f} s: {exc!r}")
        else:
            self.answers.append(Answer(sent, time.monotonic(), r.status_code, r.json()))

    def slowest_s(self) -> float:
        return max(a.received - a.sent for a in self.answers)

    def in_order(self) -> list[Answer]:
        return sorted(self.answers, key=lambda a: a.sent)


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[str]:
    task = asyncio.create_task(runtime.run())
    try:
        yield await asyncio.wait_for(runtime.serving(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def probing(base_url: str) -> AsyncIterator[Probe]:
    probe = Probe()
    task = asyncio.create_task(probe.run(base_url))
    try:
        yield probe
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _events(start: int, n: int) -> list[Event]:
    """``n`` liquidations and ``n`` marks, each with an identity of its own (``start + i``)."""
    now = _now_ms()
    out: list[Event] = []
    for i in range(start, start + n):
        symbol, base = (SYMBOLS[i % 2], SYMBOLS[i % 2][:3])
        common = {"venue": VENUE, "symbol": symbol, "base": base, "ts_ms": now, "recv_ms": now}
        out.append(Liquidation(**common, side=Side.LONG, price=50_000.0, quantity=0.01,
                               quantity_base=0.01, notional_usd=500.0, sampled=False,
                               event_id=f"liq-{i}"))  # fmt: skip
        out.append(MarkPrice(**{**common, "ts_ms": i}, mark_price=50_000.0, index_price=None))
    return out


def _identity(e: Event) -> str:
    return e.event_id if isinstance(e, Liquidation) else f"mark-{e.ts_ms}"


async def _stored(client: aioredis.Redis) -> tuple[Counter[str], Counter[str]]:
    """How many times each event is in its instrument's streams, and in the hand-off."""
    streams: Counter[str] = Counter()
    for symbol in SYMBOLS:
        for kind in (Kind.LIQUIDATION, Kind.MARK):
            for _, fields in await client.xrange(keys.events(VENUE, symbol, kind)):
                streams[_identity(decode(fields[b"e"]))] += 1
    handoff: Counter[str] = Counter()
    for _, fields in await client.xrange(keys.handoff(VENUE)):
        handoff.update(_identity(e) for e in decode_many(fields[b"e"]))
    return streams, handoff


class Feeder:
    """Puts events into a sink in rounds, as collectors do, and remembers when."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.identities = 0
        self.put_at: list[tuple[float, int]] = []
        """``(when, events put so far)`` after each round."""

    @property
    def events(self) -> int:
        return 2 * self.identities

    async def burst(self, rounds: int, per_round: int = 25, every_s: float = 0.02) -> None:
        for _ in range(rounds):
            self.sink.put_nowait(_events(self.identities, per_round))
            self.identities += per_round
            self.put_at.append((time.monotonic(), self.events))
            await asyncio.sleep(every_s)

    def put_by(self, t: float) -> int:
        return max((n for when, n in self.put_at if when <= t), default=0)


async def test_redis_killed_mid_burst_loses_nothing_and_writes_resume_within_a_second(
    durable_redis: OwnRedis,
) -> None:
    settings = load_settings(
        set(REGISTRY), [], redis_url=durable_redis.url, api={"port": 0},
        venues={VENUE: {"enabled": False}},  # events are put into the sink by the test
    )  # fmt: skip
    runtime = Runtime(settings, {Component.COLLECT, Component.API})
    sink = runtime.sink
    feeder = Feeder(sink)
    written: list[tuple[float, int]] = []  # (when, events written so far)

    async def watch_writes() -> None:
        while True:
            written.append((time.monotonic(), sink.written_events))
            await asyncio.sleep(0.005)

    async with running(runtime) as base_url, probing(base_url) as probe:
        watcher = asyncio.create_task(watch_writes())
        await feeder.burst(40)  # 0.8 s of traffic, written as it comes
        assert sink.written_events > 0
        durable_redis.kill()
        killed = time.monotonic()
        await feeder.burst(80)  # 1.6 s more while Redis is gone
        assert sink.write_failures >= 1
        answered = await asyncio.to_thread(durable_redis.start)
        await feeder.burst(40)  # and on, as Redis answers again
        async with asyncio.timeout(10):
            while sink.written_events < feeder.events:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a few more probes once all is written
        watcher.cancel()

    # writes resumed, and the backlog was written, within a second of Redis answering
    before = max(n for t, n in written if t <= answered)
    resumed = min(t for t, n in written if t > answered and n > before)
    backlog = feeder.put_by(answered)
    caught_up = min(t for t, n in written if n >= backlog)
    print(f"Redis answered; writes resumed after {resumed - answered:.3f} s, and the "
          f"{backlog - before} events that waited were written after "
          f"{caught_up - answered:.3f} s")  # fmt: skip
    assert resumed - answered < 1.0
    assert caught_up - answered < 1.0

    # nothing lost, nothing twice: in the instruments' streams and in the detector's hand-off
    client = aioredis.Redis.from_url(durable_redis.url)
    try:
        streams, handoff = await _stored(client)
    finally:
        await client.aclose()
    assert sink.written_events == feeder.events
    assert len(streams) == feeder.events
    assert set(streams.values()) == {1}
    assert len(handoff) == feeder.events
    assert set(handoff.values()) == {1}

    # /readyz answered every probe within a second; not ready from the kill until the backlog
    # was written, ready before and after
    assert not probe.failures, probe.failures
    answers = probe.in_order()
    print(f"slowest /readyz: {probe.slowest_s():.3f} s over {len(answers)} probes")
    assert probe.slowest_s() < READYZ_TIMEOUT_S
    # "until the backlog was written": until the watcher last saw it unwritten (it samples
    # every 5 ms, so a probe answered between the write and the next sample is after it)
    behind_until = max(t for t, n in written if n < backlog)
    during = [a.status for a in answers if a.sent > killed and a.received < behind_until]
    assert len(during) >= 15
    assert set(during) == {503}
    assert answers[0].status == 200, answers[0].body
    assert answers[-1].status == 200, answers[-1].body


def _cascade_tick(i: int) -> list[Event]:
    """One quarter second of a long cascade on BTCUSDT: the price falls 0.25 %, open interest
    0.125 %, and $500k of longs are liquidated."""
    now = _now_ms()
    price, oi = 50_000 * (1 - 0.0025 * i), 10_000 * (1 - 0.00125 * i)
    common = {"venue": VENUE, "symbol": "BTCUSDT", "base": "BTC", "ts_ms": now, "recv_ms": now}
    return [
        MarkPrice(**common, mark_price=price, index_price=price),
        OpenInterest(**common, oi_contracts=oi, oi_base=oi, oi_usd=oi * price),
        FundingRate(**common, funding_rate=8e-5, interval_h=8.0, funding_rate_1h=1e-5,
                    next_funding_ms=None),
        Liquidation(**common, side=Side.LONG, price=price, quantity=10 / price,
                    quantity_base=500_000 / price, notional_usd=500_000.0, sampled=False,
                    event_id=f"c-{i}"),
    ]  # fmt: skip


async def test_a_redis_freeze_keeps_readyz_answering_and_the_detector_off_calm(
    own_redis: OwnRedis,
) -> None:
    settings = load_settings(
        set(REGISTRY), [], redis_url=own_redis.url, api={"port": 0},
        venues={VENUE: {"ws_url": "ws://127.0.0.1:1", "rest_url": "http://127.0.0.1:1"}},
        detector={"window_s": 8.0, "min_dwell_s": 1.0, "enter_persist_s": 0.0,
                  "eval_interval_s": 0.25, "stale_after_s": 30.0, "warmup": False,
                  "burn_in_samples": 0},
    )  # fmt: skip
    runtime = Runtime(settings, {Component.DETECT, Component.API})  # the collector: the test
    detector = runtime.detector
    assert detector is not None
    client = aioredis.Redis.from_url(own_redis.url, socket_timeout=30)
    sink = EventSink(client, StoreSettings())
    seen: list[tuple[float, str, State, list[str]]] = []  # (when, scope, state, reasons)

    async def feed() -> None:
        for i in itertools.count():
            sink.put_nowait(_cascade_tick(i))
            await asyncio.sleep(0.25)

    async def watch() -> None:
        while True:
            now = time.monotonic()
            seen.extend((now, p.symbol, p.state, p.reasons) for p in detector.snapshot().values())
            seen.extend(
                (now, f"{scope}:{asset}", p.state, p.reasons)
                for (asset, scope), p in detector.aggregates().items()
            )
            await asyncio.sleep(0.05)

    async with running(runtime) as base_url:
        tasks = [asyncio.create_task(t()) for t in (sink.run, feed, watch)]
        try:
            async with asyncio.timeout(20):
                while not any(st is State.CASCADE for _, _, st, _ in seen):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            async with probing(base_url) as probe:
                await asyncio.sleep(0.5)
                own_redis.freeze()
                frozen = time.monotonic()
                await asyncio.sleep(6.0)
                own_redis.thaw()
                thawed = time.monotonic()
                events_then = detector.events_total
                await asyncio.sleep(4.0)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

    assert detector.events_total > events_then  # the data flows again after the freeze
    # the detector held its states while it had no data, and never went calm
    first_hot = {name: min(t for t, n, st, _ in seen if n == name and st is not State.CALM)
                 for name in ("BTCUSDT", "asset:BTC", "market:*")}  # fmt: skip
    calm_after = [(name, t - frozen) for t, name, st, _ in seen
                  if st is State.CALM and t > first_hot[name]]  # fmt: skip
    assert not calm_after, calm_after
    assert not [k for k, n in detector.transitions_total.items() if k[2] == "calm" and n]
    held = [t for t, _, _, reasons in seen if any("holding the last state" in r for r in reasons)]
    assert any(frozen < t < thawed for t in held), "the detector never noticed the freeze"
    # /readyz answered every probe within a second, and said what was wrong meanwhile
    assert not probe.failures, probe.failures
    answers = probe.in_order()
    print(f"slowest /readyz: {probe.slowest_s():.3f} s over {len(answers)} probes")
    assert probe.slowest_s() < READYZ_TIMEOUT_S
    during = [a for a in answers if frozen < a.sent < thawed - 1]
    assert len(during) >= 40
    no_answer = {"name": "redis", "ok": False, "detail": "unreachable: no answer within 0.5 s"}
    assert all(a.status == 503 and a.body["checks"][0] == no_answer for a in during)
