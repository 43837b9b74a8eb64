"""The detector against the real Redis: hand-off streams in, pressure keys and transitions out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from tape import Tape, ms

from service.config import DetectorSettings, StoreSettings
from service.detect import runner
from service.detect.robust_model import RobustModel
from service.detect.runner import Detector
from service.events import Event, Side
from service.scores import (
    Pressure,
    Scope,
    State,
    Transition,
    decode_pressure,
    decode_transition,
)
from service.store import keys
from service.store.writer import write_batch

pytestmark = pytest.mark.integration

SETTINGS = DetectorSettings(
    window_s=20,
    eval_interval_s=0.05,
    stale_after_s=30,
    min_dwell_s=0,
    enter_persist_s=0,
    burn_in_samples=0,
)
VENUE = "sim"


async def write(client: aioredis.Redis, events: list[Event]) -> None:
    await write_batch(client, events, StoreSettings(), int(time.time() * 1000))


def cascade(tape: Tape, t0: float, t1: float) -> list[Event]:
    """A long cascade: each second price -1 %, OI -0.5 %, $2M of longs liquidated."""
    out: list[Event] = []
    for i, t in enumerate(range(int(t0), int(t1))):
        price, oi = 50_000 * (1 - 0.01 * i), 10_000 * (1 - 0.005 * i)
        out += [tape.mark(t, price), tape.oi(t, oi, price), tape.funding(t, 1e-5)]
        if i:
            out.append(tape.liq(t, Side.LONG, 2e6, price))
    return out


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def pressure_in(client: aioredis.Redis, symbol: str, state: State) -> Callable[[], Awaitable[Any]]:
    async def check() -> Pressure | None:
        raw = await client.get(keys.pressure(VENUE, symbol))
        p = decode_pressure(raw) if raw else None
        return p if p is not None and p.state is state else None

    return check


async def transitions(client: aioredis.Redis) -> list[Transition]:
    return [decode_transition(f[b"e"]) for _, f in await client.xrange(keys.TRANSITIONS)]


@contextlib.asynccontextmanager
async def running(detector: Detector) -> AsyncIterator[Detector]:
    task = asyncio.create_task(detector.run())
    try:
        yield detector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_detector_rebuilds_from_history_then_scores_live_events(
    redis_client: aioredis.Redis,
) -> None:
    now = time.time()
    btc = Tape(venue=VENUE, t0_ms=int(now * 1000))
    eth = Tape(venue=VENUE, symbol="ETHUSDT", base="ETH", t0_ms=int(now * 1000))
    # written before the detector starts: it must read them back from the hand-off history
    await write(
        redis_client, [*cascade(btc, -10, 0), eth.mark(-10, 3000.0), eth.oi(-10, 1e5, 3000.0)]
    )

    async with running(Detector(redis_client, SETTINGS, [VENUE])) as detector:
        p = await until(pressure_in(redis_client, "BTCUSDT", State.CASCADE))
        assert p.side is Side.LONG
        assert p.data_quality == 1.0  # fresh feeds (no burn-in in these settings)
        assert p.forced_share is not None
        assert p.forced_share > 0.5

        # live: ETH open interest falls 3 % with the price, no liquidations
        await write(redis_client, [eth.mark(-1, 2950.0), eth.oi(-1, 0.97e5, 2950.0)])
        p = await until(pressure_in(redis_client, "ETHUSDT", State.UNWINDING))
        assert p.side is Side.LONG

        got = await transitions(redis_client)
        assert [(t.symbol, t.from_state, t.to_state, t.side) for t in got] == [
            ("BTCUSDT", State.CALM, State.CASCADE, Side.LONG),
            ("ETHUSDT", State.CALM, State.UNWINDING, Side.LONG),
        ]
        assert detector.ready
        assert set(detector.snapshot()) == {(VENUE, "BTCUSDT"), (VENUE, "ETHUSDT")}
        assert detector.transitions_total[(VENUE, "calm", "cascade")] == 1
        assert detector.transitions_total[(VENUE, "calm", "unwinding")] == 1

        # the assets and the market have scores and transitions of their own
        btc_asset = decode_pressure((await redis_client.hget(keys.ASSET_PRESSURE, "BTC")) or b"")
        assert (btc_asset.scope, btc_asset.state, btc_asset.side) == (
            Scope.ASSET,
            State.CASCADE,
            Side.LONG,
        )
        market = decode_pressure((await redis_client.get(keys.MARKET_PRESSURE)) or b"")
        assert market.scope is Scope.MARKET
        assert market.state is not State.CALM
        asset_moves = [decode_transition(f[b"e"])
                       for _, f in await redis_client.xrange(keys.ASSET_TRANSITIONS)]  # fmt: skip
        assert ("BTC", State.CALM, State.CASCADE) in [
            (t.asset, t.from_state, t.to_state) for t in asset_moves
        ]
        assert all(t.scope is Scope.ASSET and t.venue == "*" for t in asset_moves)
        assert await redis_client.xlen(keys.MARKET_TRANSITIONS) >= 1
        assert set(detector.aggregates()) >= {("BTC", "asset"), ("ETH", "asset"), ("*", "market")}


async def test_a_restart_resumes_the_state_without_announcing_it_again(
    redis_client: aioredis.Redis,
) -> None:
    btc = Tape(venue=VENUE, t0_ms=int(time.time() * 1000))
    await write(redis_client, cascade(btc, -10, 0))
    async with running(Detector(redis_client, SETTINGS, [VENUE])):
        first = await until(pressure_in(redis_client, "BTCUSDT", State.CASCADE))

    async with running(Detector(redis_client, SETTINGS, [VENUE])) as second:

        async def a_few_rounds() -> bool:
            return second.rounds_total > 3

        await until(a_few_rounds)
        again = second.snapshot()[(VENUE, "BTCUSDT")]
    assert (again.state, again.since_ms) == (State.CASCADE, first.since_ms)
    assert len(await transitions(redis_client)) == 1


async def test_transitions_stream_is_trimmed_by_time(redis_client: aioredis.Redis) -> None:
    old_ms = int(time.time() * 1000) - 8 * 86400 * 1000
    old = 1000  # older than the 7-day retention; MINID ~ drops whole stream nodes only
    async with redis_client.pipeline(transaction=False) as pipe:
        for i in range(old):
            pipe.xadd(keys.TRANSITIONS, {"e": b"{}"}, id=f"{old_ms}-{i}")
        await pipe.execute()
    btc = Tape(venue=VENUE, t0_ms=int(time.time() * 1000))
    await write(redis_client, cascade(btc, -10, 0))
    async with running(Detector(redis_client, SETTINGS, [VENUE])):
        await until(pressure_in(redis_client, "BTCUSDT", State.CASCADE))
        await until(lambda: redis_client.xlen(keys.TRANSITIONS))
    remaining = await redis_client.xrange(keys.TRANSITIONS, min="-", max=f"{old_ms}-{old}")
    assert len(remaining) < old


async def test_a_key_of_the_wrong_type_costs_its_own_writes_only(
    redis_client: aioredis.Redis,
) -> None:
    await redis_client.set(keys.ASSET_PRESSURE, b"not a hash")
    btc = Tape(venue=VENUE, t0_ms=int(time.time() * 1000))
    await write(redis_client, cascade(btc, -10, 0))
    async with running(Detector(redis_client, SETTINGS, [VENUE])) as detector:
        await until(pressure_in(redis_client, "BTCUSDT", State.CASCADE))
        rounds = detector.rounds_total

        async def more_rounds() -> bool:
            return detector.rounds_total > rounds + 5

        await until(more_rounds)
    # the instrument's transition was written once, not again at every round
    assert [(t.symbol, t.to_state) for t in await transitions(redis_client)] == [
        ("BTCUSDT", State.CASCADE)
    ]
    assert await redis_client.get(keys.MARKET_PRESSURE) is not None
    assert await redis_client.get(keys.ASSET_PRESSURE) == b"not a hash"


async def test_every_round_publishes_its_scores_and_samples_the_assets_history(
    redis_client: aioredis.Redis,
) -> None:
    """What the live stream and the page's charts read: one ``dlv:scores`` entry per round
    with the scores written (every scope, no features), and each asset's and the market's
    score sampled every ``score_history_s``."""
    btc = Tape(venue=VENUE, t0_ms=int(time.time() * 1000))
    await write(redis_client, cascade(btc, -10, 0))
    settings = SETTINGS.model_copy(update={"score_history_s": 0.2})
    async with running(Detector(redis_client, settings, [VENUE])) as detector:
        await until(pressure_in(redis_client, "BTCUSDT", State.CASCADE))

        async def sampled() -> bool:
            return bool(await redis_client.xlen(keys.score_history("BTC")) >= 3)

        await until(sampled)
    rounds = await redis_client.xrange(keys.SCORES)
    assert 1 <= len(rounds) <= detector.rounds_total
    written = [p for _, f in rounds for p in msgspec.json.decode(f[b"e"], type=list[Pressure])]
    assert {p.scope for p in written} == {Scope.INSTRUMENT, Scope.ASSET, Scope.MARKET}
    assert all(p.features == {} for p in written)
    stored = decode_pressure((await redis_client.get(keys.pressure(VENUE, "BTCUSDT"))) or b"")
    newest = [p for p in written if p.scope is Scope.INSTRUMENT][-1]
    assert (newest.score, newest.state, newest.updated_ms) == (
        stored.score, stored.state, stored.updated_ms
    )  # fmt: skip
    samples = [json.loads(f[b"e"]) for _, f in await redis_client.xrange(keys.score_history("BTC"))]
    assert samples[-1]["state"] == "cascade"
    assert samples[-1]["side"] == "long"
    assert await redis_client.xlen(keys.score_history("*")) >= 3
    assert detector.scores_unpublished == 0


async def test_the_heap_is_settled_once_the_detector_is_rebuilt(
    redis_client: aioredis.Redis,
) -> None:
    """What the process holds once the model is rebuilt leaves the garbage collector's
    reach (a full collection scans every tracked object: 1.4 s at 10,000 instruments)."""
    held_before = [object()]  # a container the collector tracks, alive all along
    assert any(o is held_before for o in gc.get_objects())
    try:
        async with running(Detector(redis_client, SETTINGS, [VENUE])) as detector:
            await until(lambda: _ready(detector))
            assert not any(o is held_before for o in gc.get_objects())
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_a_round_gives_the_event_loop_turns_between_its_slices(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round of many instruments does not hold the loop for its whole length: another task
    runs between its slices; the round's time is the model's (the slices'), and it scores
    what a round in one go scores."""
    monkeypatch.setattr(runner, "SLICE_S", 1e-9)  # a pause after every instrument
    tapes = [Tape(symbol=f"S{i:03d}USDT") for i in range(50)]
    events = [e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))]
    settings = SETTINGS.model_copy(update={"round_budget_ms": 0.0})
    whole = RobustModel(settings)
    whole.update(events)
    expected = whole.evaluate(ms(1))
    model = RobustModel(settings)
    model.update(events)
    detector = Detector(redis_client, settings, [VENUE], model=model, clock=lambda: ms(1) / 1000)
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            until = time.perf_counter() + 0.001  # each turn holds the loop 1 ms, busy:
            while time.perf_counter() < until:  # not the round's time
                pass
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    turns = 0
    started = time.perf_counter()
    try:
        evaluation = await detector.evaluate_round()
    finally:
        task.cancel()
    wall_s = time.perf_counter() - started
    assert turns >= 40  # 50 slices: the other task ran between them
    assert evaluation.pressures == expected.pressures
    assert detector.round_seconds.count == 1
    assert detector.round_seconds.sum_s < wall_s - 0.03  # the turns' 40+ ms are not in it


async def _ready(detector: Detector) -> bool:
    return detector.ready
