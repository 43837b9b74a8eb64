"""Book depth in the detector (``service.detect.liquidity``): the depth within 1 % of mid
against its own baseline, a reason when it thins, and fragility: a thin or wide book while
open interest moves is a warning beside the state, never a state of its own."""

from __future__ import annotations

import pytest
from tape import T0_MS, Tape

from service.config import DetectorSettings
from service.detect.factory import make_model
from service.detect.liquidity import (
    FRAGILE_EVIDENCE,
    MINUTE_MS,
    InstrumentLiquidity,
    fragility,
    liquidity_features,
    liquidity_reasons,
)
from service.events import BookDepth, HandoffEvent

T0 = 1_780_000_020_000 - 1_780_000_020_000 % MINUTE_MS


def depth(ts_ms: int, usd: float, symbol: str = "BTCUSDT", reach_pct: float = 3.0) -> BookDepth:
    """``usd`` within 1 % of mid on each side (the other bands in proportion)."""
    return BookDepth(
        venue="bybit", symbol=symbol, base=symbol.removesuffix("USDT"), ts_ms=ts_ms,
        recv_ms=ts_ms, mid=50_000.0, bid_usd_0p5=usd / 2, bid_usd_1=usd, bid_usd_2=2 * usd,
        ask_usd_0p5=usd / 2, ask_usd_1=usd, ask_usd_2=2 * usd, bid_reach_pct=reach_pct,
        ask_reach_pct=reach_pct,
    )  # fmt: skip


def feed(liq: InstrumentLiquidity, minutes: int, usd: float, start: int = T0) -> int:
    """One depth a second for ``minutes``, wobbling 5 % around ``usd`` a side; the next ms."""
    ts = start
    for i in range(minutes * 60):
        liq.add_depth(depth(ts, usd * (1.05 if i % 2 else 0.95)))
        ts += 1000
    return ts


def test_depth_within_1pct_is_both_sides_summed_with_no_z_before_its_baseline() -> None:
    liq = InstrumentLiquidity()
    liq.add_depth(depth(T0, 7e6))
    features = liquidity_features(liq, T0 + 10)
    assert features["depth_1pct_usd"] == pytest.approx(14e6)
    assert features["depth_1pct_exact"] == 1.0
    assert features["depth_1pct_z"] is None
    assert features["depth_1pct_change_pct"] is None
    assert "spread_bp" not in features  # no top of book sent
    assert liquidity_reasons(liq, T0 + 10) == []


def test_thinning_depth_stands_out_with_its_change_over_15_minutes() -> None:
    liq = InstrumentLiquidity()
    ts = feed(liq, 40, 10e6)  # forty calm minutes of $20M within 1 %
    calm = liquidity_features(liq, ts)
    assert calm["depth_1pct_z"] is not None
    assert abs(calm["depth_1pct_z"]) < 3
    assert liquidity_reasons(liq, ts) == []
    ts = feed(liq, 15, 5.5e6, start=ts)  # the book thins to $11M
    liq.add_depth(depth(ts, 5.5e6))  # the next minute's first book samples the last one
    thin = liquidity_features(liq, ts)
    assert thin["depth_1pct_usd"] == pytest.approx(11e6)
    assert thin["depth_1pct_z"] <= -3
    assert thin["depth_1pct_change_pct"] == pytest.approx(-45.0, abs=0.5)
    (reason,) = liquidity_reasons(liq, ts)
    assert reason.startswith("depth within 1 % -45 % in 15m (z -")
    assert reason.endswith("): thinning")


def test_a_lower_bound_is_reported_as_such_and_never_sampled() -> None:
    liq = InstrumentLiquidity()
    ts = feed(liq, 30, 10e6)
    means = list(liq.depth.means)
    for i in range(120):  # two minutes of a book that reaches only 0.3 % of mid: thin-looking
        liq.add_depth(depth(ts + i * 1000, 1e5, reach_pct=0.3))
    ts += 120_000
    features = liquidity_features(liq, ts)
    assert features["depth_1pct_exact"] == 0.0
    assert features["depth_1pct_usd"] == pytest.approx(2e5)
    assert list(liq.depth.means) == means  # not a minute sampled
    assert liquidity_reasons(liq, ts) == []


@pytest.mark.parametrize(
    ("down", "up", "fragile"),
    [
        (FRAGILE_EVIDENCE, 0.0, "while open interest falls"),
        (0.0, 0.8, "while leverage builds"),
        (0.2, 0.3, None),  # open interest not moving: a thin book alone is no warning
    ],
)
def test_fragile_needs_a_thin_book_and_open_interest_on_the_move(
    down: float, up: float, fragile: str | None
) -> None:
    liq = InstrumentLiquidity()
    ts = feed(liq, 40, 10e6)
    evidence: dict[str, float | None] = {"evidence_oi_down": down, "evidence_oi_up": up}
    assert fragility(liq, evidence, ts) is None  # a calm book
    ts = feed(liq, 15, 5.5e6, start=ts)
    liq.add_depth(depth(ts, 5.5e6))
    out = fragility(liq, evidence, ts)
    if fragile is None:
        assert out is None
    else:
        assert out is not None
        assert out.startswith("fragile: depth within 1 % -45 % in 15m")
        assert out.endswith(fragile)
    assert fragility(None, evidence, ts) is None


def _market(minutes: int) -> list[HandoffEvent]:
    tape = Tape(venue="bybit")
    events: list[HandoffEvent] = []
    for i in range(0, minutes * 60, 5):
        events += [tape.mark(i, 50_000.0), tape.oi(i, 10_000.0, 50_000.0)]
    return events


def test_depth_moves_neither_a_score_nor_a_state_and_alone_is_no_instrument() -> None:
    settings = DetectorSettings(burn_in_samples=0)
    with_depth, without = make_model(settings), make_model(settings)
    events = _market(60)
    t_ms = T0_MS + 3_600_000
    # fifty minutes of a $20M book, then ten at a tenth of it
    depths = [depth(T0_MS + 1000 * s, 1e7 if s < 3000 else 1e6) for s in range(0, 3600)]
    with_depth.update([*events, *depths, depth(t_ms, 1e6, "ETHUSDT")])
    without.update(events)
    [p] = with_depth.evaluate(t_ms).pressures  # BTCUSDT only: ETHUSDT has only a book
    [q] = without.evaluate(t_ms).pressures
    assert (p.symbol, p.score, p.state) == (q.symbol, q.score, q.state)
    assert p.features["depth_1pct_z"] <= -3
    assert p.features["depth_1pct_change_pct"] == pytest.approx(-90.0)
    assert p.features["fragile"] == 0.0  # open interest flat: no warning
    added = {k: v for k, v in p.features.items() if k not in q.features}
    assert set(added) == {
        "depth_1pct_usd", "depth_1pct_exact", "depth_1pct_z", "depth_1pct_change_pct", "fragile"
    }  # fmt: skip
    assert {k: p.features[k] for k in q.features} == q.features
