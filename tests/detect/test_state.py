from __future__ import annotations

from collections.abc import Sequence

from service.detect.state import StateMachine, data_quality
from service.events import Side
from service.scores import State

CALM, BUILDING, UNWINDING, CASCADE = State.CALM, State.BUILDING, State.UNWINDING, State.CASCADE
LONG, SHORT = Side.LONG, Side.SHORT
DWELL_MS = 10_000


def machine() -> StateMachine:
    return StateMachine(enter_score=50.0, exit_score=30.0, min_dwell_ms=DWELL_MS, since_ms=0)


Change = tuple[int, State, State, Side | None]


def drive(m: StateMachine, steps: Sequence[tuple[State, Side | None, float]]) -> list[Change]:
    """One step per second; the changes as (t, from, to, side)."""
    changes: list[Change] = []
    for i, (candidate, side, score) in enumerate(steps):
        now = 1_000_000 + i * 1000
        before = m.step(candidate, side, score, now)
        if before is not None:
            changes.append((i, before[0], m.state, m.side))
    return changes


def test_calm_enters_a_candidate_at_the_enter_score_at_once() -> None:
    m = machine()
    assert drive(m, [(CALM, None, 20.0), (CASCADE, LONG, 50.0)]) == [(1, CALM, CASCADE, LONG)]
    assert m.since_ms == 1_001_000


def test_below_enter_score_stays_calm() -> None:
    m = machine()
    assert drive(m, [(UNWINDING, LONG, 49.9), (CALM, None, 45.0)]) == []
    assert m.state is CALM


def test_no_flapping_around_the_threshold() -> None:
    m = machine()
    scores = [55, 45, 51, 35, 49, 31, 52, 40] * 5 + [29]
    steps = [(UNWINDING if s >= 50 else CALM, LONG, float(s)) for s in scores]
    changes = drive(m, steps)
    assert changes == [(0, CALM, UNWINDING, LONG), (40, UNWINDING, CALM, None)]


def test_calm_again_only_after_score_below_exit_and_the_dwell() -> None:
    m = machine()
    changes = drive(m, [(CASCADE, LONG, 80.0)] + [(CALM, None, 5.0)] * 12)
    assert changes == [(0, CALM, CASCADE, LONG), (10, CASCADE, CALM, None)]


def test_re_entering_after_calm_is_not_delayed() -> None:
    m = machine()
    steps = [(CASCADE, LONG, 80.0)] + [(CALM, None, 5.0)] * 10 + [(CASCADE, LONG, 60.0)]
    assert drive(m, steps)[-1] == (11, CALM, CASCADE, LONG)


def test_an_escalation_is_at_once_and_a_de_escalation_waits_for_the_dwell() -> None:
    m = machine()
    steps = [(UNWINDING, LONG, 55.0), (CASCADE, LONG, 70.0)] + [(UNWINDING, LONG, 60.0)] * 11
    assert drive(m, steps) == [
        (0, CALM, UNWINDING, LONG),
        (1, UNWINDING, CASCADE, LONG),
        (11, CASCADE, UNWINDING, LONG),
    ]


def test_a_weak_other_candidate_does_not_change_an_active_state() -> None:
    m = machine()
    steps = [(CASCADE, LONG, 80.0)] + [(BUILDING, SHORT, 45.0)] * 20
    assert drive(m, steps) == [(0, CALM, CASCADE, LONG)]


def test_a_side_flip_after_the_dwell_is_a_transition_and_unknown_side_is_filled() -> None:
    m = machine()
    steps = [(UNWINDING, None, 55.0), (UNWINDING, LONG, 60.0)] + [(UNWINDING, SHORT, 60.0)] * 10
    changes = drive(m, steps)
    assert changes == [(0, CALM, UNWINDING, None), (10, UNWINDING, UNWINDING, SHORT)]


def test_data_quality_is_one_when_every_feed_is_fresh() -> None:
    q = data_quality(
        100_000,
        60_000,
        oi_ms=99_000,
        mark_ms=99_000,
        funding_ms=99_000,
        venue_liq_ms=90_000,
        oi_samples=5,
    )
    assert (q.value, q.hold, q.reasons) == (1.0, False, ())


def test_a_stale_required_feed_drops_quality_to_zero_and_holds() -> None:
    q = data_quality(
        200_000,
        60_000,
        oi_ms=100_000,
        mark_ms=None,
        funding_ms=199_000,
        venue_liq_ms=None,
        oi_samples=5,
    )
    assert (q.value, q.hold) == (0.0, True)
    assert q.reasons == ("stale feed: oi, mark",)


def test_stale_optional_feeds_lower_quality_without_holding() -> None:
    q = data_quality(
        300_000,
        60_000,
        oi_ms=299_000,
        mark_ms=299_000,
        funding_ms=100_000,
        venue_liq_ms=120_000,
        oi_samples=5,
    )
    assert (q.value, q.hold) == (0.5, False)
    assert q.reasons == ("funding feed stale", "no liquidations on the venue for 3m")


def test_warming_up_halves_quality() -> None:
    q = data_quality(
        1000, 60_000, oi_ms=1000, mark_ms=1000, funding_ms=None, venue_liq_ms=None, oi_samples=1
    )
    assert (q.value, q.hold) == (0.5, False)
