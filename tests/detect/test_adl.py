"""Observed ADL in the detector: a venue's ADL level, handed off by the stress writer, makes a
forced unwind a cascade with the bankrupt side, with or without a liquidation burst; an ADL
state without a decline (a pool in deficit) makes nothing; and the evaluation's ADL episodes
go through the Bybit player's real adlAlert bodies and parser."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from tape import Tape
from test_runner import SETTINGS, VENUE, pressure_in, running, transitions, until, write

from service.config import DetectorSettings
from service.detect.base import Evaluation, PressureModel
from service.detect.factory import make_replay_model
from service.detect.runner import Detector
from service.evaluate.play import play
from service.evaluate.suite import run_one
from service.events import AdlLevel, AdlRisk, HandoffEvent, Side
from service.scores import State
from service.simulate.scenario import Drift, Label, Phase, Regime, Scenario
from service.store.stress import StressWriter
from service.validate import NON_FINITE, problem

VENUES = ("binance_usdm", "bybit", "okx")


def _adl(symbol: str, base: str, level: AdlLevel, recv_ms: int) -> AdlRisk:
    return AdlRisk(
        venue=VENUE, symbol=symbol, base=base, ts_ms=recv_ms, recv_ms=recv_ms, level=level,
        native="-0.36", native_kind="pnl_drawdown_ratio", trigger=-0.3,
    )  # fmt: skip


@pytest.mark.integration
async def test_adl_handed_off_by_the_stress_writer_makes_a_forced_decline_a_cascade(
    redis_client: aioredis.Redis,
) -> None:
    now_ms = int(time.time() * 1000)
    eth = Tape(venue=VENUE, symbol="ETHUSDT", base="ETH", t0_ms=now_ms)
    btc = Tape(venue=VENUE, t0_ms=now_ms)
    await write(redis_client, [eth.mark(-10, 3000.0), eth.oi(-10, 1e5, 3000.0),
                               btc.mark(-10, 60_000.0), btc.oi(-10, 1e4, 60_000.0)])  # fmt: skip
    stress = StressWriter(redis_client, retention_s=3600, handoff_retention_s=3600)
    # both pools past their trigger; only ETH's open interest then falls (no liquidation)
    await stress.write([_adl("ETHUSDT", "ETH", AdlLevel.ACTIVE, now_ms - 5000),
                        _adl("BTCUSDT", "BTC", AdlLevel.ACTIVE, now_ms - 5000)])  # fmt: skip
    await write(redis_client, [eth.mark(-1, 2950.0), eth.oi(-1, 0.97e5, 2950.0),
                               btc.mark(-1, 60_000.0), btc.oi(-1, 1e4, 60_000.0)])  # fmt: skip

    async with running(Detector(redis_client, SETTINGS, [VENUE])) as detector:
        p = await until(pressure_in(redis_client, "ETHUSDT", State.CASCADE))
        assert p.side is Side.LONG
        assert p.reasons[0].startswith(
            f"ADL active on {VENUE} (pnl drawdown ratio -0.36, trigger -0.3): profitable "
            "shorts closed against bankrupt longs; open interest -3.05% since"
        )
        assert p.forced_share == 1.0  # the whole decline came while ADL was active
        assert p.features["adl_level"] == 4.0

        async def btc_scored() -> bool:
            return (VENUE, "BTCUSDT") in detector.snapshot()

        await until(btc_scored)
        calm = detector.snapshot()[(VENUE, "BTCUSDT")]
        assert calm.state is State.CALM  # ADL armed, nothing unwinding: nothing to say
        assert calm.features["adl_level"] == 4.0
        assert [(t.symbol, t.to_state) for t in await transitions(redis_client)] == [
            ("ETHUSDT", State.CASCADE)
        ]


class _WithoutAdl:
    """A model that never sees the ADL levels (what the detector says without them)."""

    def __init__(self, model: PressureModel) -> None:
        self.model = model

    def update(self, events: list[HandoffEvent]) -> None:
        self.model.update([e for e in events if type(e) is not AdlRisk])

    def evaluate(self, now_ms: int, held: dict[str, str] | None = None) -> Evaluation:
        return self.model.evaluate(now_ms, held)

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)


@pytest.mark.parametrize("seed", [1, 9])
def test_an_adl_episode_is_a_cascade_of_the_bankrupt_side_only_with_the_adl_levels(
    seed: int,
) -> None:
    with_adl = run_one("adl_unwind", seed, VENUES, make_replay_model(DetectorSettings()))
    label = with_adl.outcome.labels[0]
    assert label.label.group == "cascade by ADL"
    by_venue = {t.instrument.venue: t for t in label.trials}
    assert by_venue["bybit"].detected_ms is not None  # the venue that publishes ADL
    assert by_venue["bybit"].side is label.label.side
    assert by_venue["binance_usdm"].detected_ms is None  # its tape shows no burst

    model = _WithoutAdl(make_replay_model(DetectorSettings()))
    without = run_one("adl_unwind", seed, VENUES, model)  # type: ignore[arg-type]
    trials = {t.instrument.venue: t for t in without.outcome.labels[0].trials}
    assert trials["bybit"].detected_ms is None  # an unwinding at most, not a cascade


def test_an_adl_state_without_a_decline_moves_nothing() -> None:
    """Bybit says ADL is active on BTC for two hours (a pool in deficit) while its market is
    calm: no transition."""
    armed = Drift(adl=True)
    scenario = Scenario(
        "armed", "ADL armed, nobody unwinds.",
        (Phase("calm", 7200.0, Label(Regime.CALM), {"BTC": armed}),), loop=False,
    )  # fmt: skip
    seen: list[AdlRisk] = []

    def adl_of(events: list[HandoffEvent]) -> None:
        seen.extend(e for e in events if type(e) is AdlRisk and e.base == "BTC")

    run = play(scenario, 3, ["bybit"], make_replay_model(DetectorSettings()), on_events=adl_of)
    assert len(seen) >= 100  # every minute, from the player's adlAlert bodies
    assert {e.level for e in seen} == {AdlLevel.ACTIVE}
    assert [t for t in run.transitions if t.asset == "BTC"] == []


def test_an_adl_level_with_an_impossible_trigger_is_dropped() -> None:
    bad = _adl("BTCUSDT", "BTC", AdlLevel.ACTIVE, 1_760_000_000_000)
    assert problem(bad) is None
    assert problem(bad.__class__(**{**_fields(bad), "trigger": float("nan")})) == NON_FINITE


def _fields(ev: AdlRisk) -> dict[str, object]:
    return {f: getattr(ev, f) for f in ev.__struct_fields__}
