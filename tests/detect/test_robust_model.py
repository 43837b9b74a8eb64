"""Scripted markets through the whole pure model: events in, pressures and transitions out."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
from tape import SETTINGS, Market, Tape, ms, ramp, simulate

from service.config import DetectorSettings
from service.detect import robust_model
from service.detect.robust_model import INITIAL_COST_US, MIN_PER_ROUND, RobustModel
from service.events import Side
from service.scores import ANY, Scope, State

CALM, BUILDING, UNWINDING, CASCADE = State.CALM, State.BUILDING, State.UNWINDING, State.CASCADE
LONG, SHORT = Side.LONG, Side.SHORT
P0, OI0 = 50_000.0, 10_000.0  # $500M of open interest; 1 bp = $50k


def background_liqs(t: float) -> list[tuple[Side, float]]:
    """A quiet market's liquidations: $5k every 30 s, alternating sides."""
    if t % 30 == 0:
        return [(LONG if t % 60 == 0 else SHORT, 5_000.0)]
    return []


def calm_market(liqs=background_liqs) -> Market:  # type: ignore[no-untyped-def]
    return Market(
        price=lambda t: P0 * (1 + 0.0005 * math.sin(t / 40)),
        oi_base=lambda t: OI0 * (1 + 0.001 * math.sin(t / 70)),
        liqs=liqs,
    )


def test_a_calm_market_stays_calm() -> None:
    run = simulate([calm_market()], 0, 1200)
    assert run.transitions == []
    assert {p.state for p in run.pressures.values()} == {CALM}
    assert max(p.score for p in run.pressures.values()) < 50
    last = run.at(1199)
    assert last.data_quality == 1.0
    assert last.side is None
    assert last.features["liq_sampled"] == 0.0
    # every window reports its change and z-score, units in the names
    for label in ("1m", "5m", "15m", "1h", "4h", "1d"):
        assert f"oi_change_base_pct_{label}" in last.features
        assert f"oi_z_{label}" in last.features


def test_burn_in_no_state_before_the_baselines_hold_enough_history() -> None:
    """With the default burn-in, a cascade 400 s into a young instrument's life is not
    called: the 5 m baselines hold a handful of samples; the reason says until when."""
    run = simulate([long_cascade()], 0, 1200, settings=DetectorSettings())
    assert run.transitions == []
    p = run.at(460)
    assert p.state is CALM
    assert p.data_quality == 0.75
    (warming,) = [r for r in p.reasons if r.startswith("warming up until ")]
    assert "5m baselines" in warming
    assert "of 20 samples" in warming
    # 300 s to fill the 5 m window, then a sample every 75 s: ready at ~1,800 s
    assert "~2025-10-09T09:2" in warming  # T0 is 2025-10-09T08:53:20Z


def long_cascade(t0: float = 400, t1: float = 460, oi_every_s: int = 1) -> Market:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(LONG, 300_000.0)] * 2 if t0 < t <= t1 else background_liqs(t)

    return Market(
        price=lambda t: ramp(t, t0, t1, P0, P0 * 0.94),
        oi_base=lambda t: ramp(t, t0, t1, OI0, OI0 * 0.96),
        liqs=liqs,
        oi_every_s=oi_every_s,
    )


def test_a_long_cascade_is_detected_in_seconds_then_calm_returns_without_flapping() -> None:
    run = simulate([long_cascade()], 0, 1200)
    assert run.path() == [(CALM, CASCADE, LONG), (CASCADE, CALM, None)]
    entered, left = run.transitions
    assert 400 < (entered.ts_ms - ms(0)) / 1000 <= 405
    assert any("long liquidations" in r for r in entered.reasons)
    assert entered.features["evidence_liq"] is not None
    assert entered.features["evidence_liq"] > 1
    peak = run.at(460)
    assert (peak.state, peak.side) == (CASCADE, LONG)
    assert peak.forced_share == 1.0  # $36M liquidated for a $19M OI decline: clipped
    assert peak.features["liq_bp_of_oi"] is not None
    assert peak.features["liq_bp_of_oi"] > 300
    assert peak.score > 90
    # the burst leaves the 5 m window at ~760 s; the OI decline stopped long before (the
    # 1 h and 4 h windows still show it, but no shorter window supports them any more)
    assert 740 <= (left.ts_ms - ms(0)) / 1000 <= 800
    assert run.at(1199).state is CALM


def test_a_cascade_is_a_cascade_at_once_even_before_a_slow_oi_poll_shows_the_decline() -> None:
    run = simulate([long_cascade(oi_every_s=10)], 0, 470)
    first = run.transitions[0]
    assert (first.from_state, first.to_state, first.side) == (CALM, CASCADE, LONG)
    assert (first.ts_ms - ms(0)) / 1000 <= 405


def test_one_huge_liquidation_in_a_calm_market_is_no_burst() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(LONG, 20e6)] if t == 500 else background_liqs(t)

    run = simulate([calm_market(liqs)], 0, 1200)
    assert run.transitions == []
    assert run.at(501).features["liq_long_usd"] == pytest.approx(20e6 + 5000, rel=0.01)


def test_two_sided_liquidations_without_a_move_are_churn_not_a_cascade() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(LONG, 200_000.0), (SHORT, 200_000.0)] if 500 <= t < 560 else []

    run = simulate([calm_market(liqs)], 0, 800)
    assert all(t.to_state is not CASCADE for t in run.transitions)


def test_a_score_hovering_around_the_threshold_does_not_flap() -> None:
    def oi(t: float) -> float:  # a 1 % step down at 300 s, then +-0.15 % wobble
        return OI0 if t < 300 else OI0 * (0.99 + 0.0015 * math.sin(t / 5))

    run = simulate([Market(price=lambda t: P0, oi_base=oi, oi_every_s=2)], 0, 900)
    assert [(a, b) for a, b, _ in run.path()] == [(CALM, UNWINDING), (UNWINDING, CALM)]


def gradual_unwind() -> Market:
    return Market(
        price=lambda t: ramp(t, 300, 600, P0, P0 * 0.99),
        oi_base=lambda t: ramp(t, 300, 600, OI0, OI0 * 0.98),
    )


def test_a_gradual_unwind_without_liquidations_is_unwinding_long() -> None:
    run = simulate([gradual_unwind()], 0, 620)
    assert run.path() == [(CALM, UNWINDING, LONG)]
    entered = run.transitions[0]
    # open-interest evidence alone must persist for enter_persist_s (20 s)
    assert 320 <= (entered.ts_ms - ms(0)) / 1000 <= 400
    p = run.at(600)
    assert (p.state, p.side) == (UNWINDING, LONG)
    assert p.forced_share == 0.0
    assert p.features["oi_change_base_pct"] == pytest.approx(100 * math.log(0.98), abs=1e-3)
    assert p.reasons[0].startswith("OI -2.00% (base) in 5m")  # plain %, not log %
    assert "price -1.00% in 5m (long flush)" in p.reasons


def test_short_covering_with_few_liquidations_is_unwinding_short() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(SHORT, 10_000.0)] if 300 <= t < 350 else []

    market = Market(
        price=lambda t: ramp(t, 300, 360, P0, P0 * 1.03),
        oi_base=lambda t: ramp(t, 300, 360, OI0, OI0 * 0.98),
        liqs=liqs,
    )
    run = simulate([market], 0, 400)
    p = run.at(380)
    assert (p.state, p.side) == (UNWINDING, SHORT)
    assert p.forced_share is not None
    assert p.forced_share < 0.1
    assert {t.side for t in run.transitions} == {SHORT}


def test_a_short_squeeze_with_dominant_liquidations_is_a_short_cascade() -> None:
    def liqs(t: float) -> list[tuple[Side, float]]:
        return [(SHORT, 400_000.0)] if 300 <= t < 350 else []

    market = Market(
        price=lambda t: ramp(t, 300, 360, P0, P0 * 1.05),
        oi_base=lambda t: ramp(t, 300, 360, OI0, OI0 * 0.97),
        liqs=liqs,
    )
    run = simulate([market], 0, 400)
    assert run.transitions[0].to_state is CASCADE
    assert (run.at(380).state, run.at(380).side) == (CASCADE, SHORT)


@pytest.mark.parametrize(("price_end", "side"), [(P0 * 1.01, LONG), (P0 * 0.99, SHORT)])
def test_rising_open_interest_is_building(price_end: float, side: Side) -> None:
    market = Market(
        price=lambda t: ramp(t, 300, 600, P0, price_end),
        oi_base=lambda t: ramp(t, 300, 600, OI0, OI0 * 1.03),
    )
    run = simulate([market], 0, 620)
    assert run.path() == [(CALM, BUILDING, side)]


def test_funding_stretched_toward_longs_names_the_side_of_a_build_up() -> None:
    market = Market(
        price=lambda t: P0,  # price flat: only funding tells who piles in
        oi_base=lambda t: ramp(t, 300, 600, OI0, OI0 * 1.03),
        funding_1h=lambda t: ramp(t, 250, 300, 1e-5, 1e-4),
    )
    run = simulate([market], 0, 620)
    assert run.path() == [(CALM, BUILDING, LONG)]
    assert run.at(610).features["funding_z"] is not None


def test_a_funding_spike_alone_stays_calm() -> None:
    market = Market(
        price=lambda t: P0, oi_base=lambda t: OI0, funding_1h=lambda t: 1e-5 if t < 300 else 3e-4
    )
    run = simulate([market], 0, 900)
    assert run.transitions == []


def test_stale_feeds_hold_the_state_with_zero_quality_never_a_false_calm() -> None:
    model = RobustModel(DetectorSettings(stale_after_s=60, burn_in_samples=0))
    run = simulate([gradual_unwind()], 0, 620, model=model)
    assert run.at(619).state is UNWINDING
    # every feed stops at 620; long after, the state is held, flagged with quality 0
    run = simulate([gradual_unwind()], 620, 1000, model=model, run=run, feeds_until_s=620)
    for t in (700, 999):
        p = run.at(t)
        assert (p.state, p.side, p.data_quality) == (UNWINDING, LONG, 0.0)
        assert "stale feed: oi, mark" in p.reasons
    assert run.at(650).data_quality > 0
    assert run.path() == [(CALM, UNWINDING, LONG)]


def test_feeds_coming_back_resume_scoring() -> None:
    model = RobustModel(DetectorSettings(stale_after_s=60, burn_in_samples=0))
    run = simulate([gradual_unwind()], 0, 620, model=model)
    run = simulate([gradual_unwind()], 620, 800, model=model, run=run, feeds_until_s=620)
    flat = Market(price=lambda t: P0 * 0.99, oi_base=lambda t: OI0 * 0.98)
    run = simulate([flat], 800, 1400, model=model, run=run)
    assert run.at(1399).data_quality > 0
    assert run.path() == [(CALM, UNWINDING, LONG), (UNWINDING, CALM, None)]


def test_an_instrument_without_required_feeds_is_never_reported_fresh() -> None:
    model = RobustModel(SETTINGS)
    model.update([Tape().funding(0, 1e-5)])
    (p,) = model.evaluate(ms(1)).pressures
    assert p.data_quality == 0.0
    assert "stale feed: oi, mark" in p.reasons


def test_sampled_liquidations_are_flagged() -> None:
    t = Tape()
    model = RobustModel(SETTINGS)
    model.update([t.mark(0, P0), t.oi(0, OI0, P0), *(t.liq(s, LONG, 1e6, sampled=True)
                                                    for s in range(1, 6))])  # fmt: skip
    (p,) = model.evaluate(ms(6)).pressures
    assert p.features["liq_sampled"] == 1.0
    assert "liquidation feed is sampled: totals are a lower bound" in p.reasons


def test_a_late_open_interest_poll_is_taken_not_dropped() -> None:
    t = Tape()
    model = RobustModel(SETTINGS)
    model.update([t.mark(0, P0), t.oi(0, OI0, P0), t.mark(10, P0)])
    model.update([t.oi(8, OI0 * 0.99, P0)])  # stamped before the newest mark
    (p,) = model.evaluate(ms(11)).pressures
    assert p.features["oi_change_base_pct_1m"] == pytest.approx(100 * math.log(0.99), abs=1e-3)


def test_calm_instruments_with_only_price_ticks_are_scored_every_few_rounds() -> None:
    a, b = Tape(symbol="AAAUSDT"), Tape(symbol="BBBUSDT")
    model = RobustModel(DetectorSettings(stale_after_s=120, burn_in_samples=0))
    model.update([a.mark(0, 1.0), a.oi(0, 10.0, 1.0), b.mark(0, 1.0), b.oi(0, 10.0, 1.0)])
    assert len(model.evaluate(ms(1)).pressures) == 2
    assert model.evaluate(ms(2)).pressures == []
    model.update([a.mark(3, 1.0)])
    assert model.evaluate(ms(4)).pressures == []  # a tick, nothing more: wait a few rounds
    assert [p.symbol for p in model.evaluate(ms(6)).pressures] == ["AAAUSDT"]
    model.update([b.liq(7, LONG, 1000.0, price=1.0)])
    assert [p.symbol for p in model.evaluate(ms(8)).pressures] == ["BBBUSDT"]  # at once
    # b's required feeds turn stale at 120 s: evaluated to report it
    stale = [p for p in model.evaluate(ms(121)).pressures if p.symbol == "BBBUSDT"]
    assert stale
    assert stale[0].data_quality == 0.0


def test_instruments_listed_together_come_due_in_different_rounds() -> None:
    """Their first calm wait is CALM_EVERY rounds plus 0 to CALM_EVERY - 1 more by order of
    arrival: ten instruments with price ticks every second are re-scored two a round, not
    all ten in one round every five."""
    tapes = [Tape(symbol=f"S{i}USDT") for i in range(10)]
    model = RobustModel(DetectorSettings(burn_in_samples=0))
    model.update([e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])
    assert len(model.evaluate(ms(1)).pressures) == 10
    scored = []
    for s in range(2, 16):
        model.update([t.mark(s - 0.5, 1.0) for t in tapes])
        scored.append(len(model.evaluate(ms(s)).pressures))
    # rounds 2-5: none due; 6-10: the first looks, two a round; then every 5 rounds each
    assert scored == [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]


def test_a_round_limit_scores_the_most_urgent_first_and_defers_the_rest() -> None:
    a, b, c, d, e = (Tape(symbol=f"{x}USDT") for x in "ABCDE")
    model = RobustModel(DetectorSettings(burn_in_samples=0, max_evaluations_per_round=2))
    model.update([ev for t in (a, b, c, d, e) for ev in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])

    def round_at(t_s: float) -> tuple[set[str], int]:
        out = model.evaluate(ms(t_s))
        return {p.symbol[0] for p in out.pressures}, out.deferred

    # never scored: two a round, in order of arrival, the rest deferred
    assert round_at(1) == ({"A", "B"}, 3)
    assert round_at(2) == ({"C", "D"}, 1)
    assert round_at(3) == ({"E"}, 0)
    # at 11 s: A-D are calm and due, E has a new liquidation: E first, then the longest waiting
    model.update([t.mark(10, 1.0) for t in (a, b, c, d, e)])
    model.update([e.liq(10, LONG, 1000.0, price=1.0)])
    assert round_at(11) == ({"E", "A"}, 3)
    assert round_at(12) == ({"B", "C"}, 1)
    assert round_at(13) == ({"D"}, 0)


def test_a_quarter_of_the_round_limit_goes_to_the_longest_waiting() -> None:
    """While new liquidations alone would fill every round, calm instruments still get
    their regular look: a quarter of the limit (1 of 4 here) takes the longest waiting."""
    tapes = [Tape(symbol=f"{x}USDT") for x in "ABCDEFGH"]
    model = RobustModel(DetectorSettings(burn_in_samples=0, max_evaluations_per_round=4))
    model.update([ev for t in tapes for ev in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])

    def round_at(t_s: float) -> tuple[set[str], int]:
        out = model.evaluate(ms(t_s))
        return {p.symbol[0] for p in out.pressures}, out.deferred

    assert round_at(1) == ({"A", "B", "C", "D"}, 4)
    assert round_at(2) == ({"E", "F", "G", "H"}, 0)
    model.update([t.mark(10, 1.0) for t in tapes])
    model.update([t.liq(10, LONG, 1000.0, price=1.0) for t in tapes[4:]])  # E-H
    # three of E-H's liquidations, and A, calm and waiting since 1 s (the longest)
    assert round_at(11) == ({"E", "F", "G", "A"}, 4)
    assert round_at(12) == ({"H", "B", "C", "D"}, 0)


def test_a_round_scores_what_fits_its_time_budget_at_the_measured_cost() -> None:
    tapes = [Tape(symbol=f"S{i:03d}USDT") for i in range(300)]
    events = [e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))]
    tight = RobustModel(DetectorSettings(burn_in_samples=0, round_budget_ms=0.001))
    tight.update(events)
    out = tight.evaluate(ms(1))
    assert (len(out.pressures), out.deferred) == (MIN_PER_ROUND, 300 - MIN_PER_ROUND)
    assert tight.cost_us != INITIAL_COST_US  # measured on the round's 20
    roomy = RobustModel(DetectorSettings(burn_in_samples=0, round_budget_ms=1000))
    roomy.update(events)
    out = roomy.evaluate(ms(1))
    assert (len(out.pressures), out.deferred) == (300, 0)


class _SlowChoice:
    """A clock for the model (``time``) on which the round's choice takes 10 s: its first
    reading is 0, every later one 10 s on (and a microsecond more each)."""

    def __init__(self) -> None:
        self.readings = 0

    def perf_counter(self) -> float:
        self.readings += 1
        return 0.0 if self.readings == 1 else 10.0 + self.readings * 1e-6


def test_a_round_budget_counts_the_choice_of_what_to_score(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pass over every instrument counts in the round's budget (at 10,000 instruments,
    milliseconds): a choice that took the budget leaves room for the least a round scores,
    and the cost measured per instrument is the scoring's alone."""
    tapes = [Tape(symbol=f"S{i:03d}USDT") for i in range(300)]
    model = RobustModel(DetectorSettings(burn_in_samples=0, round_budget_ms=1000))
    model.update([e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])
    monkeypatch.setattr(robust_model, "time", _SlowChoice())
    out = model.evaluate(ms(1))
    assert (len(out.pressures), out.deferred) == (MIN_PER_ROUND, 300 - MIN_PER_ROUND)
    assert model.cost_us < INITIAL_COST_US  # a microsecond a reading, not the 10 s


def test_without_a_round_limit_every_due_instrument_is_scored() -> None:
    tapes = [Tape(symbol=f"S{i}USDT") for i in range(50)]
    model = RobustModel(
        DetectorSettings(burn_in_samples=0, max_evaluations_per_round=0, round_budget_ms=0)
    )
    model.update([e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])
    out = model.evaluate(ms(1))
    assert (len(out.pressures), out.deferred) == (50, 0)
    # and after a round with an asset and market step (whose time a budget makes room for)
    model.update([t.liq(2, LONG, 1000.0, price=1.0) for t in tapes])
    out = model.evaluate(ms(3))
    assert (len(out.pressures), out.deferred) == (50, 0)


def test_restore_resumes_a_stored_state_without_a_new_transition() -> None:
    first = simulate([long_cascade()], 0, 470)
    stored = first.at(469)
    model = RobustModel(SETTINGS)
    model.restore([stored])
    run = simulate([long_cascade()], 0, 470, model=model)
    assert run.transitions == []
    assert (run.at(469).state, run.at(469).since_ms) == (CASCADE, stored.since_ms)


def test_assets_and_the_market_have_scores_and_transitions_of_their_own() -> None:
    # BTC on two venues, one cascading with 60 % of the open interest; ETH calm
    btc_a = long_cascade()
    btc_b = Market(price=lambda t: P0, oi_base=lambda t: OI0 * 2 / 3,
                   tape=Tape(venue="other"))  # fmt: skip
    eth = Market(price=lambda t: 3000.0, oi_base=lambda t: 1e5,
                 tape=Tape(symbol="ETHUSDT", base="ETH"))  # fmt: skip
    model = RobustModel(SETTINGS)
    aggregates, moves = {}, []
    for t in range(0, 470):
        for m in (btc_a, btc_b, eth):
            model.update(m.events(t))
        ev = model.evaluate(ms(t))
        aggregates.update({(p.scope, p.asset): p for p in ev.aggregates})
        moves += ev.aggregate_transitions
    btc = aggregates[(Scope.ASSET, "BTC")]
    assert (btc.state, btc.side, btc.venue, btc.symbol) == (CASCADE, LONG, ANY, ANY)
    assert btc.features["members_under_pressure"] == 1.0
    assert btc.features["oi_share_under_pressure"] == pytest.approx(0.6, abs=0.05)
    assert aggregates[(Scope.ASSET, "ETH")].state is CALM
    market = aggregates[(Scope.MARKET, ANY)]
    assert market.state is CASCADE
    assert market.features["breadth"] == 0.5
    assert [(t.scope, t.asset, t.to_state) for t in moves] == [
        (Scope.ASSET, "BTC", CASCADE),
        (Scope.MARKET, ANY, CASCADE),
    ]
    assert all(t.reasons for t in moves)


def test_seeded_history_gives_long_windows_and_baselines_at_once() -> None:
    model = RobustModel(SETTINGS)
    now = ms(0)
    # two hours of 5-minute OI points, falling 0.5 % per hour, and 30 funding settlements
    oi = [(now - k * 300_000, OI0 * math.exp(0.005 * k / 12), OI0 * P0) for k in range(24, 0, -1)]
    funding = [(now - k * 8 * 3_600_000, 1e-5) for k in range(30, 0, -1)]
    added = model.seed("sim", "BTCUSDT", "BTC", oi, funding)
    assert added > 0
    samples = model.baseline_samples("sim", "BTCUSDT")
    assert samples["oi_300s"] == 23
    assert samples["funding"] == 30
    assert samples["oi_60s"] == 0
    t = Tape()
    model.update([t.mark(0, P0), t.oi(0, OI0 * 0.999, P0)])
    (p,) = model.evaluate(ms(1)).pressures
    assert p.features["oi_change_base_pct_1h"] == pytest.approx(-0.6, abs=0.05)


class _InSlices:
    """A model whose every round runs through :meth:`RobustModel.evaluate_steps`, with a
    pause after each slice (``pause_s`` of sleep: time that is not the model's)."""

    def __init__(self, model: RobustModel, slice_s: float, pause_s: float = 0.0) -> None:
        self.model, self.slice_s, self.pause_s = model, slice_s, pause_s
        self.yields = 0

    def update(self, events):  # type: ignore[no-untyped-def]
        self.model.update(events)

    def restore(self, pressures):  # type: ignore[no-untyped-def]
        self.model.restore(pressures)

    def evaluate(self, now_ms, held=None):  # type: ignore[no-untyped-def]
        steps = self.model.evaluate_steps(now_ms, held, self.slice_s)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value
            self.yields += 1
            time.sleep(self.pause_s)


def test_a_round_in_slices_scores_what_the_round_in_one_go_scores() -> None:
    """Slices of (nearly) nothing: a pause after every instrument, the same pressures and
    transitions second by second through a cascade."""
    markets = [
        replace(m, tape=Tape(symbol=f"M{i}USDT"))
        for i, m in enumerate((long_cascade(), calm_market(), gradual_unwind()))
    ]
    whole = simulate(markets, 0, 700, model=RobustModel(SETTINGS))
    sliced = _InSlices(RobustModel(SETTINGS), slice_s=1e-9)
    parts = simulate(markets, 0, 700, model=sliced)
    assert sliced.yields > 700
    assert parts.pressures == whole.pressures
    assert parts.transitions == whole.transitions
    assert parts.transitions  # (the cascade was called)


def test_a_round_budget_counts_the_slices_not_the_pauses_between_them() -> None:
    tapes = [Tape(symbol=f"S{i:03d}USDT") for i in range(60)]
    model = RobustModel(DetectorSettings(burn_in_samples=0, round_budget_ms=300))
    model.update([e for t in tapes for e in (t.mark(0, 1.0), t.oi(0, 10.0, 1.0))])
    sliced = _InSlices(model, slice_s=1e-9, pause_s=0.01)  # 60 pauses: 600 ms of wall time
    out = sliced.evaluate(ms(1))
    assert (len(out.pressures), out.deferred) == (60, 0)
    assert model.cost_us < 300_000 / 60  # measured without the pauses
