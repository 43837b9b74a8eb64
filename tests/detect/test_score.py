from __future__ import annotations

from collections.abc import Sequence

import pytest
from tape import Tape

from service.config import DetectorSettings
from service.detect.model import State
from service.detect.score import (
    Features,
    assess,
    assess_features,
    compute_features,
    span_text,
    usd_text,
)
from service.detect.windows import InstrumentWindow
from service.events import Side

SETTINGS = DetectorSettings()  # oi 1 %, liq 5 bp, forced share 0.5, price 1 %


def window(
    oi: list[tuple[float, float]],
    marks: list[tuple[float, float]],
    liqs: Sequence[tuple[float, Side, float]] = (),
    sampled: bool = False,
) -> InstrumentWindow:
    t = Tape()
    w = InstrumentWindow("sim", "BTCUSDT", "BTC", 300_000)
    for ts, price in marks:
        w.add_mark(t.mark(ts, price))
    last_price = marks[-1][1] if marks else 100.0
    for ts, base in oi:
        w.add_open_interest(t.oi(ts, base, last_price))
    for ts, side, usd in liqs:
        w.add_liquidation(t.liq(ts, side, usd, sampled=sampled))
    return w


def test_forced_share_is_liquidations_over_the_usd_value_of_the_oi_decline() -> None:
    # OI 1000 -> 900 base at mark 100: $10,000 of OI left; $4,000 of it was liquidated.
    w = window([(0, 1000.0), (60, 900.0)], [(0, 100.0), (60, 100.0)], [(30, Side.LONG, 4000.0)])
    f = compute_features(w)
    assert f.forced_share == pytest.approx(0.4)
    assert f.oi_change_base_pct == pytest.approx(-10.0)
    assert f.liq_bp_of_oi == pytest.approx(4000 / 90_000 * 1e4)
    assert f.liq_long_usd == 4000.0
    assert f.liq_long_count == 1


def test_forced_share_is_clipped_to_one() -> None:
    w = window([(0, 1000.0), (60, 990.0)], [(0, 100.0), (60, 100.0)], [(30, Side.LONG, 5000.0)])
    assert compute_features(w).forced_share == 1.0


def test_forced_share_values_the_decline_at_the_current_mark() -> None:
    # 100 base left while the price fell to 80: $8,000, of which $2,000 forced.
    w = window([(0, 1000.0), (60, 900.0)], [(0, 100.0), (60, 80.0)], [(30, Side.LONG, 2000.0)])
    assert compute_features(w).forced_share == pytest.approx(0.25)


@pytest.mark.parametrize("oi", [[(0, 1000.0), (60, 1000.0)], [(0, 1000.0), (60, 1100.0)]])
def test_forced_share_is_none_when_oi_did_not_fall(oi: list[tuple[float, float]]) -> None:
    w = window(oi, [(0, 100.0), (60, 100.0)], [(30, Side.LONG, 4000.0)])
    assert compute_features(w).forced_share is None


def test_base_units_remove_the_price_effect() -> None:
    w = window([(0, 1000.0), (60, 1000.0)], [(0, 100.0), (60, 90.0)])
    w.oi_usd.values[0] = 100_000.0  # valued at 100 then, at 90 now
    f = compute_features(w)
    assert f.oi_change_base_pct == 0.0
    assert f.oi_change_usd_pct == pytest.approx(-10.0)
    assert f.mark_return_pct == pytest.approx(-10.0)


def test_drawdown_is_measured_from_the_window_peak() -> None:
    w = window([(0, 1000.0), (30, 1100.0), (60, 1045.0)], [(0, 100.0), (60, 100.0)])
    f = compute_features(w)
    assert f.oi_drawdown_pct == pytest.approx(-5.0)
    assert f.oi_change_base_pct == pytest.approx(4.5)


def test_a_single_oi_sample_measures_no_change() -> None:
    f = compute_features(window([(0, 1000.0)], [(0, 100.0)]))
    assert f.oi_change_base_pct is None
    assert f.forced_share is None


def test_funding_features_are_latest_and_change_over_the_window() -> None:
    t = Tape()
    w = window([(0, 1000.0), (60, 1000.0)], [(0, 100.0)])
    w.add_funding(t.funding(0, 1e-5))
    w.add_funding(t.funding(60, -2e-5))
    f = compute_features(w)
    assert f.funding_1h == -2e-5
    assert f.funding_change_1h == pytest.approx(-3e-5)


def test_exactly_one_threshold_scores_fifty() -> None:
    a = assess_features(Features(oi_change_base_pct=-1.0, mark_return_pct=0.0), SETTINGS)
    assert a.score == 50.0
    assert a.candidate is State.UNWINDING


def test_below_every_threshold_is_calm_and_below_fifty() -> None:
    a = assess_features(
        Features(oi_change_base_pct=-0.5, liq_bp_of_oi=2.0, mark_return_pct=-3.0), SETTINGS
    )
    assert a.candidate is State.CALM
    assert a.side is None
    assert a.score < 50


def test_the_quadrant_amplifies_only_above_the_threshold() -> None:
    flat = assess_features(Features(oi_change_base_pct=-2.0, mark_return_pct=0.0), SETTINGS)
    moving = assess_features(Features(oi_change_base_pct=-2.0, mark_return_pct=-1.0), SETTINGS)
    assert flat.score == pytest.approx(100 * 2 / 3, abs=0.1)
    assert moving.score == pytest.approx(100 * 2.5 / 3.5, abs=0.1)
    at_threshold = assess_features(
        Features(oi_change_base_pct=-1.0, mark_return_pct=-5.0), SETTINGS
    )
    assert at_threshold.score == 50.0


def test_cascade_needs_intense_liquidations_that_dominate_the_decline() -> None:
    heavy = Features(oi_change_base_pct=-2.0, liq_long_usd=8e6, liq_bp_of_oi=10.0, forced_share=0.8)
    assert assess_features(heavy, SETTINGS).candidate is State.CASCADE
    voluntary = Features(
        oi_change_base_pct=-2.0, liq_long_usd=8e6, liq_bp_of_oi=10.0, forced_share=0.3
    )
    assert assess_features(voluntary, SETTINGS).candidate is State.UNWINDING


def test_heavy_liquidations_before_oi_falls_read_as_unwinding() -> None:
    f = Features(oi_change_base_pct=0.0, liq_short_usd=1e6, liq_bp_of_oi=10.0)
    a = assess_features(f, SETTINGS)
    assert a.candidate is State.UNWINDING
    assert a.side is Side.SHORT
    assert "liquidations heavy but OI not (yet) falling" in a.reasons


@pytest.mark.parametrize(
    ("oi_pct", "ret_pct", "state", "side"),
    [
        (-2.0, -1.0, State.UNWINDING, Side.LONG),  # long flush
        (-2.0, +1.0, State.UNWINDING, Side.SHORT),  # short covering
        (-2.0, 0.0, State.UNWINDING, None),
        (+2.0, +1.0, State.BUILDING, Side.LONG),  # new longs
        (+2.0, -1.0, State.BUILDING, Side.SHORT),  # new shorts
        (+2.0, 0.0, State.BUILDING, None),
    ],
)
def test_side_from_the_quadrant_without_liquidations(
    oi_pct: float, ret_pct: float, state: State, side: Side | None
) -> None:
    a = assess_features(Features(oi_change_base_pct=oi_pct, mark_return_pct=ret_pct), SETTINGS)
    assert (a.candidate, a.side) == (state, side)


def test_material_liquidations_name_the_side_over_the_quadrant() -> None:
    f = Features(oi_change_base_pct=-2.0, mark_return_pct=-1.0, liq_short_usd=2e6, liq_bp_of_oi=2.0)
    assert assess_features(f, SETTINGS).side is Side.SHORT
    noise = Features(
        oi_change_base_pct=-2.0, mark_return_pct=-1.0, liq_short_usd=2e4, liq_bp_of_oi=0.1
    )
    assert assess_features(noise, SETTINGS).side is Side.LONG


def test_reasons_are_short_and_human_readable() -> None:
    w = window(
        [(0, 1000.0), (300, 968.0)],
        [(0, 100.0), (300, 98.0)],
        [(100, Side.LONG, 2000.0)],
        sampled=True,
    )
    a = assess(w, SETTINGS)
    assert a.candidate is State.CASCADE
    assert a.reasons == [
        "OI -3.2% (base) in 5m",
        "price -2.0% in 5m",
        "long liquidations $2.0k = 211 bp of OI",
        "liquidation feed is sampled: totals are a lower bound",
        "forced liquidations = 64% of the OI decline",
    ]
    assert a.features.as_dict()["liq_sampled"] == 1.0


def test_a_minor_liquidation_side_is_left_out_of_the_reasons() -> None:
    w = window(
        [(0, 1000.0), (300, 968.0)],
        [(0, 100.0), (300, 98.0)],
        [(100, Side.LONG, 2000.0), (120, Side.SHORT, 100.0)],
    )
    reasons = assess(w, SETTINGS).reasons
    assert not any(r.startswith("short liquidations") for r in reasons)


def test_calm_has_no_reasons() -> None:
    w = window([(0, 1000.0), (300, 1001.0)], [(0, 100.0), (300, 100.0)])
    assert assess(w, SETTINGS).reasons == []


@pytest.mark.parametrize(
    ("seconds", "text"), [(300, "5m"), (60, "1m"), (90, "90s"), (3600, "1h"), (7.5, "7.5s")]
)
def test_span_text(seconds: float, text: str) -> None:
    assert span_text(seconds) == text


@pytest.mark.parametrize(
    ("usd", "text"),
    [(4_100_000, "$4.1M"), (850_000, "$850k"), (12_345, "$12.3k"), (512, "$512"), (2e9, "$2.0B")],
)
def test_usd_text(usd: float, text: str) -> None:
    assert usd_text(usd) == text
