"""Detector shards (``detect.shard: I/N``) on one fake clock: two shards score the same
instruments, assets and market as one detector of everything, on the single Redis and on a
real Redis Cluster; a shard that dies and starts again loses nothing and counts nothing twice.

Nothing depends on the wall clock (as ``tests/test_cluster_same_outcome.py``): two venues'
simulated markets (the long deleveraging on BTC and ETH, calm SOL and DOGE) are stepped by
hand, each step's events written by the store's writer; then each detector reads its input
and evaluates one round, shard 1 before shard 0 (the market's owner reads what shard 1 wrote
that round), all at the same fake time.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
from market_events import market_events

from service.config import DetectorSettings, StoreSettings
from service.detect.runner import Detector
from service.scores import Pressure
from service.shard import Shard, asset_owner
from service.simulate.market import Market
from service.simulate.scenario import SCENARIOS
from service.store import keys
from service.store.client import flush, xreadgroup
from service.store.writer import write_batch

pytestmark = pytest.mark.integration

VENUES = ("binance_usdm", "bybit")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
STEP_S = 0.25
TIME_SCALE = 5.0
DETECTOR = DetectorSettings(
    window_s=8.0, min_dwell_s=1.0, enter_persist_s=1.0, eval_interval_s=STEP_S,
    stale_after_s=10.0, burn_in_samples=0, checkpoint_interval_s=STEP_S,
)  # fmt: skip
"""A checkpoint every round: a shard restarted before a round resumes from the one before."""
STEPS = 100
"""25 s of the fake clock, 125 s of the scenario: its calm, the cascade and the unwind."""


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_test_assets_fall_to_both_shards() -> None:
    """What the comparisons below rely on: BTC and ETH (the two under pressure) are scored
    by different shards, and each shard has a calm asset too."""
    owners = {s[:-4]: asset_owner(s[:-4], 2) for s in SYMBOLS}
    assert owners == {"BTC": 0, "ETH": 1, "SOL": 1, "DOGE": 0}


def _markets() -> dict[str, Market]:
    base = SCENARIOS["long_unwind"]
    scenario = replace(base, phases=(*base.phases[:-1], replace(base.phases[-1], duration_s=60.0)))
    return {v: Market(scenario, symbols=SYMBOLS, seed=11 + i) for i, v in enumerate(VENUES)}


Row = tuple[int, str, str, str, str, str | None, float, float]
"""(step, scope, venue, symbol or asset, state, side, score, data quality)."""


def _rows(step: int, pressures: list[Pressure]) -> list[Row]:
    return [
        (step, p.scope.value, p.venue, p.symbol if p.scope.value == "instrument" else p.asset,
         p.state.value, p.side and p.side.value, p.score, p.data_quality)
        for p in pressures
    ]  # fmt: skip


async def _drain(detector: Detector, started: bool) -> None:
    """The step's entries (one per venue): one read, which does not wait (an empty read
    would wait for Redis's timer, up to 100 ms); none for a detector ``started`` this step
    (it read them while it started)."""
    got = await detector._read(block_ms=1)
    while any(c != ">" for c in detector._cursors.values()):  # reading what was pending
        got |= await detector._read(block_ms=1)
    assert got == (set() if started else set(VENUES))


async def _play(
    client: aioredis.Redis,
    t0_ms: int,
    shards: list[Shard | None],
    restart: tuple[int, int] | None = None,
    lost: tuple[int, int] | None = None,
    *,
    reshard: tuple[int, list[Shard | None]] | None = None,
    settings: DetectorSettings = DETECTOR,
) -> dict[str, Any]:
    """Every round's scores of every detector, and what they stored at the end. ``restart``
    (step, shard index): that shard dies there (its object dropped, nothing acknowledged,
    and entries delivered to it that it never folded in) and a new one starts. ``lost``
    (step, shard index): a read's reply to that shard is lost on the way (Redis delivered
    the step's entries, the shard never saw them) and its read fails. ``reshard`` (step,
    shards): every detector stops there and those shards start instead (another count)."""
    markets = _markets()
    clock = Clock(t0_ms / 1000)

    def make(shard: Shard | None) -> Detector:
        return Detector(client, settings, list(VENUES), clock=clock, shard=shard)

    # shard 0 last: the market's owner reads what the others wrote in the same round
    detectors = sorted((make(s) for s in shards), key=lambda d: -_index(d))
    for d in detectors:
        await d._start()
    rows: list[Row] = []
    for step in range(STEPS):
        clock.t += STEP_S
        now_ms = round(clock.t * 1000)
        for venue, market in markets.items():
            await write_batch(
                client,
                market_events(venue, market, STEP_S * TIME_SCALE, STEP_S, now_ms, step),
                StoreSettings(),
                now_ms,
            )
        restarted: Detector | None = None
        if reshard is not None and step == reshard[0]:
            detectors = sorted((make(s) for s in reshard[1]), key=lambda d: -_index(d))
            for d in detectors:
                await d._start()
        if restart is not None and step == restart[0]:
            i = next(n for n, d in enumerate(detectors) if _index(d) == restart[1])
            dead = detectors[i]
            if dead.shard is not None:  # a read delivered the step, never folded in
                await _deliver(client, dead.shard)
            detectors[i] = restarted = make(dead.shard)
            await restarted._start()
        if lost is not None and step == lost[0]:
            d = next(d for d in detectors if _index(d) == lost[1])
            assert d.shard is not None
            await _deliver(client, d.shard)
            d._cursors.update(d._last_ids)  # what its handler of a failed read does
        for d in detectors:
            await _drain(d, d is restarted or (reshard is not None and step == reshard[0]))
            evaluation = await d.evaluate_round()
            rows += _rows(step, [*evaluation.pressures, *evaluation.aggregates])
    events_by_asset: dict[str, int] = {}
    for d in detectors:  # the restarted shard's count: its rebuild and what it read after
        for asset, n in d.events_by_asset.items():
            events_by_asset[asset] = events_by_asset.get(asset, 0) + n
    return {
        "rows": rows,
        "events_by_asset": events_by_asset,
        "handoff": await _handoff_counts(client),
        "stored": await _stored(client),
        "detectors": detectors,
    }


async def _deliver(client: aioredis.Redis, shard: Shard) -> None:
    """What a shard's read gets from Redis (its group's position moves), never to reach it."""
    delivered = await xreadgroup(
        client, keys.detect_group(str(shard)), keys.DETECT_CONSUMER,
        {keys.handoff(v): ">" for v in VENUES}, 100, None,
    )  # fmt: skip
    assert sum(len(entries) for _, entries in delivered) == len(VENUES)


def _index(d: Detector) -> int:
    return d.shard.index if d.shard else 0


async def _handoff_counts(client: aioredis.Redis) -> dict[str, int]:
    """Events per asset in the hand-off streams: what the detectors had to fold in."""
    counts: dict[str, int] = {}
    for venue in VENUES:
        for _, fields in await client.xrange(keys.handoff(venue)):
            for e in msgspec.json.decode(fields[b"e"]):
                counts[e["base"]] = counts.get(e["base"], 0) + 1
    return counts


async def _stored(client: aioredis.Redis) -> dict[str, Any]:
    pairs = [(v, s) for v in VENUES for s in SYMBOLS]
    async with client.pipeline(transaction=False) as pipe:
        for pair in pairs:
            pipe.get(keys.pressure(*pair))
        pipe.hgetall(keys.ASSET_PRESSURE)
        pipe.get(keys.MARKET_PRESSURE)
        for scope in ("instrument", "asset", "market"):
            pipe.xrange(keys.transitions(scope))
        *instruments, assets, market, t_inst, t_asset, t_market = await pipe.execute()
    decode = msgspec.json.decode

    def lean(raw: bytes) -> dict[str, Any]:
        p = decode(raw)
        return {k: p[k] for k in ("score", "state", "side", "since_ms", "data_quality")}

    def transitions(entries: list[Any]) -> list[Any]:
        out = [decode(f[b"e"]) for _, f in entries]
        return sorted(
            [(t["scope"], t["asset"], t["venue"], t["symbol"], t["from_state"], t["to_state"],
              t["ts_ms"]) for t in out]
        )  # fmt: skip

    return {
        "instruments": {p: lean(r) for p, r in zip(pairs, instruments, strict=True) if r},
        "assets": {a.decode(): lean(r) for a, r in assets.items()},
        "market": lean(market) if market else None,
        "transitions": [transitions(t_inst), transitions(t_asset), transitions(t_market)],
    }


def _same(sharded: list[Row], single: list[Row]) -> None:
    """The same rows; the market's score to 0.1 (it sums the assets' evidence in another
    order: a last-bit difference may round the other way)."""
    key = lambda r: r[:4]  # noqa: E731
    a, b = sorted(sharded, key=key), sorted(single, key=key)
    assert [key(r) for r in a] == [key(r) for r in b]
    for x, y in zip(a, b, strict=True):
        if x[1] == "market":
            assert (x[:6], x[7]) == (y[:6], y[7])
            assert x[6] == pytest.approx(y[6], abs=0.1), (x, y)
        else:
            assert x == y


async def _both(
    client: aioredis.Redis,
    *,
    restart: tuple[int, int] | None = None,
    lost: tuple[int, int] | None = None,
    settings: DetectorSettings = DETECTOR,
) -> None:
    t0_ms = time.time_ns() // 1_000_000
    single = await _play(client, t0_ms, [None])
    await flush(client)
    sharded = await _play(
        client, t0_ms, [Shard(0, 2), Shard(1, 2)], restart, lost, settings=settings
    )
    states = {r[4] for r in single["rows"] if r[1] == "asset" and r[3] == "BTC"}
    assert {"calm", "cascade"} <= states or {"calm", "unwinding"} <= states, states
    assert {r[4] for r in single["rows"] if r[1] == "market"} - {"calm"}, "the market never moved"
    # nothing lost, nothing counted twice: every asset's events folded in once
    assert sharded["events_by_asset"] == sharded["handoff"]
    assert single["detectors"][0].events_total == sum(single["handoff"].values())
    # With a checkpoint every round, a shard restarted before a round resumes from the
    # round before: with its windows rebuilt from the hand-off, it scores every instrument,
    # asset and the market exactly as if it had never stopped; so does a detector of
    # everything (the unsharded path) restarted at the same step.
    _same(sharded["rows"], single["rows"])
    assert sharded["stored"] == single["stored"]
    if restart is None:
        return
    assert [d.checkpoints.counts["restored"] for d in sharded["detectors"]].count(1) == 1
    await flush(client)
    single_restarted = await _play(client, t0_ms, [None], (restart[0], 0), settings=settings)
    assert single_restarted["detectors"][0].events_total == sum(single["handoff"].values())
    assert single_restarted["detectors"][0].checkpoints.counts["restored"] == 1
    assert single_restarted["rows"] == single["rows"]
    assert single_restarted["stored"] == single["stored"]


def _asset(row: Row) -> str:
    return row[3] if row[1] == "asset" else row[3].removesuffix("USDT")


async def test_two_shards_score_as_one_detector(redis_client: aioredis.Redis) -> None:
    await _both(redis_client)


async def test_a_shard_whose_read_failed_reads_what_redis_had_delivered(
    redis_client: aioredis.Redis,
) -> None:
    """The group's position moved when Redis delivered; the shard reads its own pending
    entries after the last one it folded in, and scores as if nothing had happened."""
    await _both(redis_client, lost=(30, 1))


@pytest.mark.parametrize("index", [0, 1], ids=["market owner", "shard 1"])
async def test_a_shard_that_dies_and_starts_again_loses_nothing_and_counts_nothing_twice(
    redis_client: aioredis.Redis, index: int
) -> None:
    # step 50: in the cascade, 12.5 s in (the rebuild's 18 s cover every event before it)
    await _both(redis_client, restart=(50, index))


@pytest.mark.parametrize("index", [0, 1], ids=["market owner", "shard 1"])
async def test_a_shard_restarted_rounds_after_its_checkpoint_replays_them_and_scores_the_same(
    redis_client: aioredis.Redis, index: int
) -> None:
    """A checkpoint every 4 rounds (the last at step 48, or 52): restarted at step 51 (or
    53), the shard restores it, replays the rounds logged after it on the entries they had
    read, and scores every round from then on exactly as if it had never stopped."""
    every_4 = DETECTOR.model_copy(update={"checkpoint_interval_s": 4 * STEP_S})
    for step in (51, 53):
        await _both(redis_client, restart=(step, index), settings=every_4)
        await flush(redis_client)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([Shard(0, 2), Shard(1, 2)], [None]),
        ([None], [Shard(0, 2), Shard(1, 2)]),
        ([Shard(0, 2), Shard(1, 2)], [Shard(0, 3), Shard(1, 3), Shard(2, 3)]),
    ],
    ids=["2 to 1", "1 to 2", "2 to 3"],
)
async def test_a_new_shard_count_restores_each_asset_from_the_checkpoint_of_its_old_owner(
    redis_client: aioredis.Redis, before: list[Shard | None], after: list[Shard | None]
) -> None:
    """Every detector stops at step 50 and another count starts: each asset's record is
    restored by its new owner (from the header of the shard that wrote it), and every
    instrument, asset and market score from then on is the undisturbed detector's."""
    t0_ms = time.time_ns() // 1_000_000
    single = await _play(redis_client, t0_ms, [None])
    await flush(redis_client)
    resharded = await _play(redis_client, t0_ms, before, reshard=(50, after))
    _same(resharded["rows"], single["rows"])
    assert resharded["stored"] == single["stored"]
    restored = sum(d.checkpoints.counts["restored"] for d in resharded["detectors"])
    assert restored == len(after) * len(before)  # each read every old header
    assert not any(d.checkpoints.counts["ignored"] for d in resharded["detectors"])


async def test_two_shards_score_as_one_detector_on_a_cluster(
    cluster_client: aioredis.Redis,
) -> None:
    await _both(cluster_client)
    await flush(cluster_client)
    await _both(cluster_client, restart=(50, 1))


async def test_a_shard_that_is_down_holds_the_market_then_weighs_nothing(
    redis_client: aioredis.Redis,
) -> None:
    """Shard 1 (ETH, under pressure) stops in the cascade: for ``SHARD_GAP_S`` the market
    uses its members as they were; then ETH holds the market (no move toward calm); once
    ``stale_after_s`` old, ETH weighs nothing (quality 0), as stale data does."""
    settings = DETECTOR.model_copy(update={"stale_after_s": 30.0})
    markets = _markets()
    clock = Clock(time.time())
    d0, d1 = (
        Detector(redis_client, settings, list(VENUES), clock=clock, shard=Shard(i, 2))
        for i in (0, 1)
    )
    for d in (d1, d0):
        await d._start()
    rounds: list[tuple[float, Pressure]] = []
    died = 0.0
    for step in range(40 + 140):
        clock.t += STEP_S
        now_ms = round(clock.t * 1000)
        for venue, market in markets.items():
            await write_batch(
                redis_client,
                market_events(venue, market, STEP_S * TIME_SCALE, STEP_S, now_ms, step),
                StoreSettings(),
                now_ms,
            )
        alive = [d1, d0] if step < 40 else [d0]
        died = died if step < 40 else died or clock.t - STEP_S
        for d in alive:
            await _drain(d, False)
            evaluation = await d.evaluate_round()
        rounds += [(clock.t - died if died else 0.0, p) for p in evaluation.aggregates
                   if p.scope.value == "market"]  # fmt: skip
    eth = (await d0._other_members(round(died * 1000)))["ETH"]
    assert eth.part is not None
    assert eth.part.state.value != "calm", "ETH calm when its shard died: nothing to hold"
    assert not eth.held
    assert eth.part.quality > 0
    missing = (await d0._other_members(round((died + 15) * 1000)))["ETH"]
    assert missing.held
    assert missing.part == eth.part
    stale = (await d0._other_members(round((died + 31) * 1000)))["ETH"]
    assert not stale.held
    assert stale.part is not None
    assert stale.part.quality == 0
    holding = "a member under pressure has no fresh data: holding the last state"
    for since_death, p in rounds:
        held = holding in p.reasons
        if 0 < since_death <= 10 or since_death > 30.5:
            assert not held, (since_death, p.reasons)
        elif 10.5 < since_death <= 30:
            assert held, (since_death, p.reasons)
    assert any(holding in p.reasons for _, p in rounds)
