"""The detector's checkpoint (``service/detect/checkpoint.py``, ``resume.py``): a model
restored from one holds bit for bit what it had; one that cannot be used (corrupt, another
version, other windows, too old, half written) is ignored and counted, and the detector
starts as it did without; a replay needs the hand-off streams to hold its windows.

A shard restarted on the fake clock, with a checkpoint of the round before or rounds older,
and a new shard count: ``test_detector_shards.py``.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
import pytest
import redis.asyncio as aioredis
from market_events import market_events

from service.config import DetectorSettings, StoreSettings
from service.detect import checkpoint as ckpt
from service.detect.baseline import Baseline
from service.detect.robust_model import RobustModel
from service.detect.runner import Detector
from service.events import Event
from service.scores import Pressure
from service.simulate.market import Market
from service.simulate.scenario import SCENARIOS
from service.store import checkpoints, keys
from service.store.writer import write_batch

VENUES = ("binance_usdm", "bybit")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
LATE = "okx"
STEP_S = 0.25
SETTINGS = DetectorSettings(
    window_s=8.0, min_dwell_s=1.0, enter_persist_s=1.0, eval_interval_s=STEP_S,
    stale_after_s=10.0, burn_in_samples=0, checkpoint_interval_s=STEP_S,
)  # fmt: skip


def _steps(n: int, t0_ms: int, late: int | None = None) -> list[tuple[int, list[Event]]]:
    """``n`` steps of two venues' simulated cascade: (time, events); with ``late``, a third
    venue (:data:`LATE`) lists its instruments from that step on."""
    venues = (*VENUES, LATE) if late is not None else VENUES
    markets = {v: Market(SCENARIOS["long_unwind"], symbols=SYMBOLS, seed=3 + i)
               for i, v in enumerate(venues)}  # fmt: skip
    out = []
    for step in range(n):
        now_ms = t0_ms + round((step + 1) * STEP_S * 1000)
        events = [e for v, m in markets.items() if v != LATE or step >= (late or 0)
                  for e in market_events(v, m, 5 * STEP_S, STEP_S, now_ms, step)]  # fmt: skip
        out.append((now_ms, events))
    return out


def _lean(pressures: list[Pressure]) -> list[bytes]:
    return sorted(msgspec.json.encode(p) for p in pressures)


# -- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize("typecode", ["d", "f"])
def test_a_baseline_loaded_with_its_samples_answers_and_learns_as_the_original(
    typecode: Literal["d", "f"],
) -> None:
    """In either precision, through the checkpoint's encoding of the samples."""
    a = Baseline(10, 3, tail=4, fat_tails=True, typecode=typecode)
    for i in range(27):  # wrapped around its ring more than twice
        a.add((i * 7919 % 13) / 3 - 6.5)
    b = Baseline(10, 3, tail=4, fat_tails=True, typecode=typecode)
    ckpt._load(b, ckpt._samples(a))
    assert b.typecode == typecode
    for _ in range(12):
        assert (b.center(), b.scale(0.1, 2.0), b.own_scale(), len(b), b.ready) == (
            a.center(), a.scale(0.1, 2.0), a.own_scale(), len(a), a.ready,
        )  # fmt: skip
        x = a.center() + 50.0  # winsorized the same
        a.add(x)
        b.add(x)
    assert list(a.samples()) == list(b.samples())


def test_a_model_restored_from_a_checkpoint_scores_every_round_after_as_the_original() -> None:
    """Capture after round 40, resume into a new model (before its windows are rebuilt),
    rebuild them from the same events, then 40 more rounds: identical pressures; and the
    checkpoint taken again from the restored model is the same bytes."""
    steps = _steps(80, 1_700_000_000_000)
    fp = ckpt.fingerprint(SETTINGS)
    original = RobustModel(SETTINGS)
    for now_ms, events in steps[:40]:
        original.update(events)
        original.evaluate(now_ms)
    header, records = ckpt.capture(original, steps[39][0], "0/1", {}, fp)
    raw = {r.asset: ckpt.encode(r) for r in records}
    decoded = ckpt.decode_header(ckpt.encode(header), fp)
    restored = RobustModel(SETTINGS)
    resumed = ckpt.resume(
        restored, decoded, [ckpt.decode_asset(r, fp) for r in raw.values()], lambda _: True,
        recent=True, market=True,
    )  # fmt: skip
    assert (resumed.assets, resumed.instruments) == (3, 6)
    for _, events in steps[:40]:  # the rebuild
        restored.update(events)
    resumed.finish()
    again = ckpt.capture(restored, steps[39][0], "0/1", {}, fp)
    assert [ckpt.encode(r) for r in again[1]] == list(raw.values())
    assert ckpt.encode(again[0]) == ckpt.encode(header)
    scored = 0
    for now_ms, events in steps[40:]:
        original.update(events)
        restored.update(events)
        a, b = original.evaluate(now_ms), restored.evaluate(now_ms)
        assert _lean(a.pressures) == _lean(b.pressures)
        assert _lean(a.aggregates) == _lean(b.aggregates)
        assert [t.to_state for t in a.transitions] == [t.to_state for t in b.transitions]
        scored += len(a.pressures)
    assert scored > 40


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda raw: raw[:-7], "undecodable"),
        (lambda raw: b"\x00garbage", "undecodable"),
        (lambda raw: raw.replace(b"version", b"versiom"), "undecodable"),
    ],
    ids=["truncated", "garbage", "renamed field"],
)
def test_a_damaged_header_is_refused_with_its_reason(damage: object, why: str) -> None:
    model = RobustModel(SETTINGS)
    header, _ = ckpt.capture(model, 1, "0/1", {}, ckpt.fingerprint(SETTINGS))
    raw = damage(ckpt.encode(header))  # type: ignore[operator]
    with pytest.raises(ckpt.Incompatible, match=why):
        ckpt.decode_header(raw, ckpt.fingerprint(SETTINGS))


def test_another_version_or_other_windows_are_refused() -> None:
    model = RobustModel(SETTINGS)
    fp = ckpt.fingerprint(SETTINGS)
    header, _ = ckpt.capture(model, 1, "0/1", {}, fp)
    newer = msgspec.structs.replace(header, version=ckpt.VERSION + 1)
    with pytest.raises(ckpt.Incompatible, match="version"):
        ckpt.decode_header(ckpt.encode(newer), fp)
    other = ckpt.fingerprint(SETTINGS.model_copy(update={"window_factors": [1.0, 3.0]}))
    assert other != fp
    with pytest.raises(ckpt.Incompatible, match="windows"):
        ckpt.decode_header(ckpt.encode(header), other)
    # what does not change a baseline's meaning does not refuse it
    assert ckpt.fingerprint(SETTINGS.model_copy(update={"enter_score": 60.0})) == fp


def test_the_newest_deployment_is_chosen_when_this_shard_has_no_checkpoint() -> None:
    fp = ckpt.fingerprint(SETTINGS)
    model = RobustModel(SETTINGS)

    def header(shard: str, round_ms: int) -> bytes:
        h, _ = ckpt.capture(model, round_ms, shard, {}, fp)
        return ckpt.encode(h)

    raw = {"0/1": header("0/1", 1_000), "0/2": header("0/2", 5_000),
           "1/2": header("1/2", 4_900), "2/3": b"junk"}  # fmt: skip
    chosen, ignored = ckpt.choose(raw, "1/3", fp, now_ms=6_000, max_age_ms=60_000)
    assert [h.shard for h in chosen] == ["1/2", "0/2"]
    assert [name for name, _ in ignored] == ["2/3"]
    mine, _ = ckpt.choose(raw, "0/1", fp, now_ms=6_000, max_age_ms=60_000)
    assert [h.shard for h in mine] == ["0/1"]
    old, ignored = ckpt.choose(raw, "0/1", fp, now_ms=6_000, max_age_ms=4_000)
    assert [h.shard for h in old] == ["1/2", "0/2"]
    assert ("0/1", "5 s old") in ignored


# -- with Redis ------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _run(
    client: aioredis.Redis, steps: list[tuple[int, list[Event]]], clock: Clock
) -> tuple[Detector, list[list[bytes]]]:
    """A detector of everything through ``steps`` (written, read, one round each)."""
    detector = Detector(client, SETTINGS, list(VENUES), clock=clock)
    await detector._start()
    rounds = []
    for now_ms, events in steps:
        clock.t = now_ms / 1000
        await write_batch(client, events, StoreSettings(), now_ms)
        await detector._read(block_ms=1)
        evaluation = await detector.evaluate_round()
        rounds.append(_lean([*evaluation.pressures, *evaluation.aggregates]))
    return detector, rounds


@pytest.mark.integration
async def test_a_corrupt_or_incompatible_checkpoint_is_ignored_counted_and_replaced(
    redis_client: aioredis.Redis,
) -> None:
    t0_ms = time.time_ns() // 1_000_000
    steps = _steps(30, t0_ms)
    clock = Clock(t0_ms / 1000)
    first, _ = await _run(redis_client, steps[:20], clock)
    assert first.checkpoints.counts["written"] == 20
    assert await redis_client.hexists(keys.DETECT_CHECKPOINTS, "0/1")
    # one asset's record damaged, another's from another round (a write that half failed)
    await redis_client.set(keys.detect_checkpoint("BTC"), b"\xc1not msgpack")
    eth = ckpt.decode_asset(
        await redis_client.get(keys.detect_checkpoint("ETH")), ckpt.fingerprint(SETTINGS)
    )
    stale = msgspec.structs.replace(eth, round_ms=eth.round_ms - 250)
    await redis_client.set(keys.detect_checkpoint("ETH"), ckpt.encode(stale))
    second = Detector(redis_client, SETTINGS, list(VENUES), clock=clock)
    await second._start()
    assert second.checkpoints.counts == {"restored": 1, "ignored": 2}
    assert second.checkpoints.counts["replayed"] == 0
    # the whole header unusable: nothing restored, the detector starts as without
    await redis_client.hset(keys.DETECT_CHECKPOINTS, "0/1", b"\x00")
    third = Detector(redis_client, SETTINGS, list(VENUES), clock=clock)
    await third._start()
    assert third.checkpoints.counts == {"ignored": 1}
    assert third.ready
    await third._read(block_ms=1)
    clock.t += STEP_S
    evaluation = await third.evaluate_round()
    assert evaluation.pressures, "a detector without its checkpoint scores as before"
    assert third.checkpoints.counts["written"] == 1  # and writes a new one
    header = await checkpoints.headers(redis_client)
    assert ckpt.decode_header(header["0/1"], ckpt.fingerprint(SETTINGS)).round_ms == round(
        clock.t * 1000
    )
    # other windows: the checkpoint is another model's
    other = SETTINGS.model_copy(update={"window_factors": [0.5, 1.0, 3.0]})
    fourth = Detector(redis_client, other, list(VENUES), clock=clock)
    await fourth._start()
    assert fourth.checkpoints.counts == {"ignored": 1}


@pytest.mark.integration
async def test_a_restart_replays_the_rounds_after_its_checkpoint_only_while_the_streams_hold_them(
    redis_client: aioredis.Redis,
) -> None:
    """Checkpoints every 2 s (8 rounds): restarted after round 19, the detector replays the
    rounds since round 16 (a venue listed at round 18 included: its instruments arrive in
    the replay where they arrived) and scores the next ten as the original; once the
    hand-off is trimmed past the checkpoint's windows, it restores the checkpoint without a
    replay."""
    every_2s = SETTINGS.model_copy(update={"checkpoint_interval_s": 2.0})
    t0_ms = time.time_ns() // 1_000_000
    steps = _steps(30, t0_ms, late=18)
    venues = [*VENUES, LATE]
    clock = Clock(t0_ms / 1000)
    original = Detector(redis_client, every_2s, venues, clock=clock)
    await original._start()
    compared = late_scored = 0
    for n, (now_ms, events) in enumerate(steps):
        clock.t = now_ms / 1000
        await write_batch(redis_client, events, StoreSettings(), now_ms)
        if n == 20:  # (the original's rounds up to 19 were sent; it "died" after)
            restarted = Detector(redis_client, every_2s, venues, clock=clock)
            await restarted._start()
        elif n > 20:
            await restarted._read(block_ms=1)
        await original._read(block_ms=1)
        evaluation = await original.evaluate_round()
        if n >= 20:
            again = await restarted.evaluate_round()
            assert _lean([*again.pressures, *again.aggregates]) == _lean(
                [*evaluation.pressures, *evaluation.aggregates]
            )
            compared += 1
            late_scored += sum(p.venue == LATE for p in again.pressures)
    assert compared == 10
    assert late_scored > 0
    assert restarted.checkpoints.counts["replayed"] == 3  # rounds 17, 18, 19
    # every entry trimmed: the windows as of the checkpoint are gone
    for venue in VENUES:
        await redis_client.xtrim(keys.handoff(venue), maxlen=0, approximate=False)
    late = Detector(redis_client, every_2s, venues, clock=clock)
    await late._start()
    assert late.checkpoints.counts == {"restored": 1}
