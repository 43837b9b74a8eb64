"""The scenario library: every kind builds, seeds randomize it, labels are where they belong."""

from __future__ import annotations

import pytest

from service.evaluate.matching import labels_of
from service.events import Side
from service.simulate.library import DEFAULT_VENUES, KINDS, LIQUIDITY_KINDS, make_scenario
from service.simulate.market import Market
from service.simulate.scenario import SCENARIOS, Regime

CALM_KINDS = {"calm", "noisy_calm", "funding_spike", "isolated_liquidation"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_builds_the_same_story_for_a_seed_and_another_for_another(kind: str) -> None:
    a, b, c = make_scenario(kind, 3), make_scenario(kind, 3), make_scenario(kind, 4)
    assert a == b
    assert a != c
    assert not a.loop
    labels = labels_of(a, 0)
    if kind in CALM_KINDS:
        assert labels == []
    else:
        assert labels
        assert min(lb.start_ms for lb in labels) >= 45 * 60_000  # a calm lead-in first


def test_liquidity_moves_minutes_before_open_interest_in_the_liquidity_kinds() -> None:
    assert not set(LIQUIDITY_KINDS) & set(KINDS)  # not in the default suite
    for seed in range(5):
        scenario = make_scenario("thin_book_unwind", seed)
        assert scenario == make_scenario("thin_book_unwind", seed)
        _, thinning, unwind, _ = scenario.phases
        [(asset, thin)] = thinning.drifts.items()
        assert thinning.label.regime is Regime.CALM
        assert 180 <= thinning.duration_s <= 480
        assert thin.oi_pct_per_min == 0.0
        assert thin.spread_mult is not None
        assert thin.spread_mult >= 2.5
        assert thin.depth_mult is not None
        assert thin.depth_mult <= 0.6
        assert unwind.drifts[asset].oi_pct_per_min < 0  # open interest falls after
        assert unwind.drifts[asset].depth_mult == thin.depth_mult  # on the thin book
        [label] = labels_of(scenario, 0)
        assert label.regime is Regime.UNWINDING


def test_the_demo_scenarios_are_still_there() -> None:
    assert {"calm", "long_unwind", "gradual_long_unwind", "short_squeeze"} <= set(SCENARIOS)


def test_unknown_kind_names_the_kinds() -> None:
    with pytest.raises(KeyError, match="long_cascade"):
        make_scenario("nope", 0)


def test_magnitudes_durations_and_assets_vary_with_the_seed() -> None:
    cascades = [labels_of(make_scenario("long_cascade", s), 0)[0] for s in range(12)]
    assert len({lb.start_ms for lb in cascades}) > 6
    assert len({lb.end_ms - lb.start_ms for lb in cascades}) > 6
    assert {lb.asset for lb in cascades} == {"BTC", "ETH"}
    assert all(lb.side is Side.LONG and lb.regime is Regime.CASCADE for lb in cascades)
    squeezes = [labels_of(make_scenario("short_squeeze", s), 0) for s in range(6)]
    assert all(any(lb.regime is Regime.CASCADE for lb in ls) for ls in squeezes)
    assert all(lb.side is Side.SHORT for ls in squeezes for lb in ls)


def test_gradual_unwinds_last_hours() -> None:
    for seed in range(5):
        (unwind,) = [
            lb
            for lb in labels_of(make_scenario("gradual_long_unwind", seed), 0)
            if lb.regime is Regime.UNWINDING
        ]
        assert 2 * 3_600_000 <= unwind.end_ms - unwind.start_ms <= 4 * 3_600_000
        assert unwind.group == "unwinding"  # gradual, not the aftermath of a cascade
    aftermath = labels_of(make_scenario("long_cascade", 0), 0)[1]
    assert aftermath.group == "unwinding after cascade"


def test_several_assets_start_within_two_minutes() -> None:
    for seed in range(5):
        cascades = [
            lb
            for lb in labels_of(make_scenario("multi_asset", seed), 0)
            if lb.regime is Regime.CASCADE
        ]
        assert len(cascades) in (2, 3)
        starts = [lb.start_ms for lb in cascades]
        assert max(starts) - min(starts) <= 120_000


def test_an_outage_hits_one_venue_inside_the_episode() -> None:
    for seed in range(5):
        sc = make_scenario("venue_outage", seed)
        (outage,) = sc.outages
        assert outage.venue in DEFAULT_VENUES
        labels = labels_of(sc, 0)
        onset, end = min(lb.start_ms for lb in labels), max(lb.end_ms for lb in labels)
        assert onset < outage.start_s * 1000 < outage.end_s * 1000 <= end


def test_the_isolated_liquidation_prints_once_at_its_time() -> None:
    sc = make_scenario("isolated_liquidation", 1)
    (shock,) = sc.shocks
    market = Market(sc, symbols=["BTCUSDT", "ETHUSDT"], seed=1)
    big = []
    for _ in range(int(sc.duration_s // 10)):
        big += [p for p in market.step(10.0) if p.notional_usd > 1e6]
    assert len(big) == 1
    (p,) = big
    assert p.base == shock.asset
    assert p.side is shock.side
    assert p.notional_usd == pytest.approx(shock.notional_usd, rel=0.01)
    assert p.ts_ms == pytest.approx(shock.at_s * 1000, abs=1)
