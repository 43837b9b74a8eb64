"""Scenarios through the whole pure model: events in, pressures and transitions out."""

from __future__ import annotations

import math

import pytest
from tape import Market, Tape, ms, ramp, simulate

from service.config import DetectorSettings
from service.detect.model import State
from service.detect.threshold_model import ThresholdModel
from service.events import Side

CALM, BUILDING, UNWINDING, CASCADE = State.CALM, State.BUILDING, State.UNWINDING, State.CASCADE
LONG, SHORT = Side.LONG, Side.SHORT
P0, OI0 = 50_000.0, 10_000.0  # $500M of open interest; 5 bp = $250k


def background_liqs(t: float) -> list[tuple[Side, float]]:
    """A quiet market's liquidations: $5k every 30 s, alternating sides (1 bp per 5 min)."""
    if t % 30 == 0:
        return [(LONG if t % 60 == 0 else SHORT, 5_000.0)]
    return []


def calm_market() -> Market:
    return Market(
        price=lambda t: P0 * (1 + 0.0005 * math.sin(t / 40)),
        oi_base=lambda t: OI0 * (1 + 0.001 * math.sin(t / 70)),
        liqs=background_liqs,
    )


def test_a_calm_market_stays_calm() -> None:
    run = simulate([calm_market()], 0, 1200)
    assert run.transitions == []
    assert {p.state for p in run.pressures.values()} == {CALM}
    assert max(p.score for p in run.pressures.values()) < 30
    last = run.at(1199)
    assert last.data_quality == 1.0
    assert last.side is None
    assert last.features["liq_sampled"] == 0.0


def long_cascade(t0: float = 400, t1: float = 460, oi_every_s: int = 1) -> Market:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(LONG, 300_000.0)] * 2 if t0 < t <= t1 else background_liqs(t)

    return Market(
        price=lambda t: ramp(t, t0, t1, P0, P0 * 0.94),
        oi_base=lambda t: ramp(t, t0, t1, OI0, OI0 * 0.96),
        liqs=liqs,
        oi_every_s=oi_every_s,
    )


def test_a_long_cascade_is_detected_then_calm_returns_without_flapping() -> None:
    run = simulate([long_cascade()], 0, 1000)
    assert run.path() == [(CALM, CASCADE, LONG), (CASCADE, CALM, None)]
    entered, left = run.transitions
    assert 400 <= (entered.ts_ms - ms(0)) / 1000 < 430
    assert any("long liquidations" in r for r in entered.reasons)
    peak = run.at(460)
    assert (peak.state, peak.side) == (CASCADE, LONG)
    assert peak.forced_share is not None
    assert peak.forced_share > 0.9
    assert peak.features["liq_bp_of_oi"] is not None
    assert peak.features["liq_bp_of_oi"] > 300
    assert peak.score > 80
    # the cascade leaves the 300 s window at ~760 s; calm follows once the score is low
    assert 700 <= (left.ts_ms - ms(0)) / 1000 <= 770
    assert run.at(999).state is CALM


def test_a_cascade_seen_before_lagging_oi_escalates_from_unwinding() -> None:
    # OI polled every 10 s: the liquidations arrive before the OI decline is visible
    run = simulate([long_cascade(oi_every_s=10)], 0, 1000)
    assert run.path() == [
        (CALM, UNWINDING, LONG),
        (UNWINDING, CASCADE, LONG),
        (CASCADE, CALM, None),
    ]
    first, escalated, _ = run.transitions
    assert "liquidations heavy but OI not (yet) falling" in first.reasons
    assert (escalated.ts_ms - first.ts_ms) / 1000 == pytest.approx(10, abs=1)


def test_a_score_hovering_around_the_threshold_does_not_flap() -> None:
    def oi(t: float) -> float:  # a 1 % step down at 300 s, then +-0.15 % wobble
        return OI0 if t < 300 else OI0 * (0.99 + 0.0015 * math.sin(t / 5))

    market = Market(price=lambda t: P0, oi_base=oi, oi_every_s=2)
    run = simulate([market], 0, 700)
    scores = [run.pressures[t].score for t in range(320, 590)]
    assert min(scores) < 50 < max(scores)  # the score does cross the threshold, repeatedly
    assert run.path() == [(CALM, UNWINDING, None), (UNWINDING, CALM, None)]


def gradual_unwind() -> Market:
    return Market(
        price=lambda t: ramp(t, 300, 600, P0, P0 * 0.99),
        oi_base=lambda t: ramp(t, 300, 600, OI0, OI0 * 0.98),
    )


def test_a_gradual_unwind_without_liquidations_is_unwinding_long() -> None:
    run = simulate([gradual_unwind()], 0, 620)
    assert run.path() == [(CALM, UNWINDING, LONG)]
    p = run.at(600)
    assert (p.state, p.side) == (UNWINDING, LONG)
    assert p.forced_share == 0.0
    assert p.features["oi_change_base_pct"] == pytest.approx(-2.0)
    assert "OI -2.0% (base) in 5m" in p.reasons


def test_short_covering_is_unwinding_short() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(SHORT, 40_000.0)] if 300 <= t < 350 else []

    market = Market(
        price=lambda t: ramp(t, 300, 360, P0, P0 * 1.03),
        oi_base=lambda t: ramp(t, 300, 360, OI0, OI0 * 0.98),
        liqs=liqs,
    )
    run = simulate([market], 0, 400)
    p = run.at(380)
    assert (p.state, p.side) == (UNWINDING, SHORT)
    assert p.features["liq_short_usd"] == pytest.approx(2e6)
    assert p.forced_share == pytest.approx(2e6 / (200 * P0 * 1.03))
    assert {t.side for t in run.transitions} == {SHORT}


def test_a_short_squeeze_with_dominant_liquidations_is_a_short_cascade() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(SHORT, 400_000.0)] if 300 <= t < 350 else []

    market = Market(
        price=lambda t: ramp(t, 300, 360, P0, P0 * 1.05),
        oi_base=lambda t: ramp(t, 300, 360, OI0, OI0 * 0.97),
        liqs=liqs,
    )
    p = simulate([market], 0, 400).at(380)
    assert (p.state, p.side) == (CASCADE, SHORT)


@pytest.mark.parametrize(("price_end", "side"), [(P0 * 1.01, LONG), (P0 * 0.99, SHORT)])
def test_rising_open_interest_is_building(price_end: float, side: Side) -> None:
    market = Market(
        price=lambda t: ramp(t, 300, 600, P0, price_end),
        oi_base=lambda t: ramp(t, 300, 600, OI0, OI0 * 1.03),
    )
    run = simulate([market], 0, 620)
    assert run.path() == [(CALM, BUILDING, side)]
    assert run.at(610).state is BUILDING


def test_stale_feeds_hold_the_state_with_zero_quality_never_a_false_calm() -> None:
    settings = DetectorSettings(stale_after_s=60)
    model = ThresholdModel(settings)
    run = simulate([gradual_unwind()], 0, 620, model=model)
    assert run.at(619).state is UNWINDING
    # every feed stops at 620; 5 minutes later the window holds no movement at all
    run = simulate([gradual_unwind()], 620, 1000, model=model, run=run, feeds_until_s=620)
    for t in (700, 999):
        p = run.at(t)
        assert (p.state, p.side, p.data_quality) == (UNWINDING, LONG, 0.0)
        assert "stale feed: oi, mark" in p.reasons
    assert run.at(650).data_quality > 0
    assert run.path() == [(CALM, UNWINDING, LONG)]


def test_feeds_coming_back_resume_scoring() -> None:
    model = ThresholdModel(DetectorSettings(stale_after_s=60))
    run = simulate([gradual_unwind()], 0, 620, model=model)
    run = simulate([gradual_unwind()], 620, 800, model=model, run=run, feeds_until_s=620)
    flat = Market(price=lambda t: P0 * 0.99, oi_base=lambda t: OI0 * 0.98)
    run = simulate([flat], 800, 1200, model=model, run=run)
    assert run.at(1199).data_quality == 1.0
    assert run.path() == [(CALM, UNWINDING, LONG), (UNWINDING, CALM, None)]


def test_an_instrument_without_required_feeds_is_never_reported_fresh() -> None:
    model = ThresholdModel(DetectorSettings())
    model.update([Tape().funding(0, 1e-5)])
    (p,) = model.evaluate(ms(1)).pressures
    assert p.data_quality == 0.0
    assert "stale feed: oi, mark" in p.reasons


def test_sampled_liquidations_are_flagged() -> None:
    t = Tape()
    model = ThresholdModel(DetectorSettings())
    model.update([t.mark(0, P0), t.oi(0, OI0, P0), t.liq(1, LONG, 1e6, sampled=True)])
    (p,) = model.evaluate(ms(2)).pressures
    assert p.features["liq_sampled"] == 1.0
    assert "liquidation feed is sampled: totals are a lower bound" in p.reasons


def test_only_instruments_with_news_or_a_moving_window_are_evaluated() -> None:
    a, b = Tape(symbol="AAAUSDT"), Tape(symbol="BBBUSDT")
    model = ThresholdModel(DetectorSettings(window_s=60, stale_after_s=120))
    model.update([a.mark(0, 1.0), a.oi(0, 10.0, 1.0), b.mark(0, 1.0), b.oi(0, 10.0, 1.0)])
    assert len(model.evaluate(ms(1)).pressures) == 2
    assert model.evaluate(ms(2)).pressures == []
    model.update([a.mark(3, 1.0)])
    assert [p.symbol for p in model.evaluate(ms(4)).pressures] == ["AAAUSDT"]
    model.update([a.mark(10, 1.0), a.oi(10, 10.0, 1.0)])
    model.evaluate(ms(11))
    assert model.evaluate(ms(30)).pressures == []
    # a's baseline moves when its 10 s samples are a window old
    assert [p.symbol for p in model.evaluate(ms(70)).pressures] == ["AAAUSDT"]
    # b's required feeds turn stale at 120 s: evaluated once to report it
    stale = [p for p in model.evaluate(ms(121)).pressures if p.symbol == "BBBUSDT"]
    assert stale
    assert stale[0].data_quality == 0.0


def test_restore_resumes_a_stored_state_without_a_new_transition() -> None:
    first = simulate([long_cascade()], 0, 470)
    stored = first.at(469)
    model = ThresholdModel(DetectorSettings())
    model.restore([stored])
    run = simulate([long_cascade()], 0, 470, model=model)
    assert run.transitions == []
    assert (run.at(469).state, run.at(469).since_ms) == (CASCADE, stored.since_ms)
