"""Scenarios as data: phases, looping, and the labelled ground-truth intervals."""

from __future__ import annotations

import itertools

import pytest

from service.events import Side
from service.simulate.scenario import (
    DEFAULT_SCENARIO,
    SCENARIOS,
    Label,
    Phase,
    Regime,
    Scenario,
    get_scenario,
    ground_truth,
)


def test_builtin_scenarios_include_the_default_and_the_variants() -> None:
    assert DEFAULT_SCENARIO == "long_unwind"
    assert {"calm", "long_unwind", "gradual_long_unwind", "short_squeeze"} <= set(SCENARIOS)
    assert all(s.loop for s in SCENARIOS.values())


def test_long_unwind_is_calm_then_long_cascade_then_unwind_then_recovery() -> None:
    sc = SCENARIOS["long_unwind"]
    labels = [(p.name, p.duration_s, p.label.regime, p.label.side) for p in sc.phases]
    assert labels == [
        ("calm", 20.0, Regime.CALM, None),
        ("long_cascade", 40.0, Regime.CASCADE, Side.LONG),
        ("long_unwind", 60.0, Regime.UNWINDING, Side.LONG),
        ("recovery", 40.0, Regime.CALM, None),
    ]
    cascade = sc.phases[1]
    assert cascade.label.assets == ("BTC", "ETH")
    btc, eth = cascade.drift("BTC"), cascade.drift("ETH")
    assert btc.liq_side is Side.LONG
    assert btc.price_pct_per_min < 0
    assert btc.oi_pct_per_min < -3
    assert eth.oi_pct_per_min > btc.oi_pct_per_min  # milder on ETH
    assert cascade.drift("SOL") == sc.phases[0].drift("SOL")  # unaffected: calm


def test_phase_at_walks_the_phases_and_loops() -> None:
    sc = SCENARIOS["long_unwind"]
    assert sc.duration_s == 160.0
    assert sc.phase_at(0).phase.name == "calm"
    assert sc.phase_at(19.99).phase.name == "calm"
    at = sc.phase_at(25.0)
    assert (at.phase.name, at.offset_s, at.cycle) == ("long_cascade", 5.0, 0)
    at = sc.phase_at(160.0 + 70.0)
    assert (at.phase.name, at.offset_s, at.cycle) == ("long_unwind", 10.0, 1)


def test_a_scenario_that_does_not_loop_holds_its_last_phase() -> None:
    sc = Scenario(
        "once",
        "",
        (Phase("a", 10, Label(Regime.CALM)), Phase("b", 5, Label(Regime.CALM))),
        loop=False,
    )
    assert sc.phase_at(1000).phase.name == "b"
    spans = [(i.phase, i.start_s, i.end_s) for i in sc.intervals(40)]
    assert spans == [("a", 0.0, 10.0), ("b", 10.0, 40.0)]


def test_ground_truth_maps_scenario_time_to_wall_ms_with_the_time_scale() -> None:
    spans = ground_truth("long_unwind", 200.0, start_s=10.0, origin_ms=1_000_000, time_scale=10.0)
    assert [(i.phase, i.cycle) for i in spans] == [
        ("calm", 0),
        ("long_cascade", 0),
        ("long_unwind", 0),
        ("recovery", 0),
        ("calm", 1),
        ("long_cascade", 1),
    ]
    first, cascade = spans[0], spans[1]
    assert (first.start_s, first.end_s) == (10.0, 20.0)
    assert (first.start_ms, first.end_ms) == (1_000_000, 1_001_000)  # 10 s at 10x = 1 s
    assert (cascade.start_ms, cascade.end_ms) == (1_001_000, 1_005_000)
    assert cascade.label == Label(Regime.CASCADE, Side.LONG, ("BTC", "ETH"))
    assert spans[-1].end_s == 200.0
    assert all(a.end_ms == b.start_ms for a, b in itertools.pairwise(spans))


def test_invalid_phases_and_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duration_s"):
        Phase("x", 0, Label(Regime.CALM))
    with pytest.raises(ValueError, match="side"):
        Phase("x", 1, Label(Regime.CASCADE))
    with pytest.raises(ValueError, match="side"):
        Phase("x", 1, Label(Regime.CALM, Side.LONG))
    with pytest.raises(KeyError, match="long_unwind"):
        get_scenario("nope")
