"""How detections are matched to labels: pure unit tests on hand-made transitions."""

from __future__ import annotations

import pytest

from service.evaluate.matching import (
    InstrumentRef,
    Label,
    Rules,
    labels_of,
    match,
    score,
    spans_of,
)
from service.evaluate.report import Scored, figures, summarize, table
from service.events import Side
from service.scores import State, Transition
from service.simulate.scenario import Drift, Phase, Regime, Scenario
from service.simulate.scenario import Label as PhaseLabel

MIN = 60_000
RULES = Rules(grace_s=300, warmup_s=600)
BTC_BIN = InstrumentRef("binance_usdm", "BTCUSDT", "BTC")
BTC_BYB = InstrumentRef("bybit", "BTCUSDT", "BTC")
ETH_BIN = InstrumentRef("binance_usdm", "ETHUSDT", "ETH")
INSTRUMENTS = [BTC_BIN, BTC_BYB, ETH_BIN]


def tr(
    inst: InstrumentRef, ts: int, to: State, side: Side | None = Side.LONG, frm: State = State.CALM
) -> Transition:
    return Transition(
        venue=inst.venue,
        symbol=inst.symbol,
        asset=inst.asset,
        from_state=frm,
        to_state=to,
        side=side,
        score=60.0,
        ts_ms=ts,
    )


def phase(name: str, minutes: float, regime: Regime, side: Side | None, *assets: str) -> Phase:
    drifts = dict.fromkeys(assets, Drift())
    return Phase(name, minutes * 60, PhaseLabel(regime, side, tuple(assets)), drifts)


def test_labels_merge_consecutive_phases_of_one_regime_per_asset() -> None:
    sc = Scenario(
        "t",
        "",
        (
            phase("calm", 10, Regime.CALM, None),
            phase("c1", 2, Regime.CASCADE, Side.LONG, "BTC"),
            phase("c2", 3, Regime.CASCADE, Side.LONG, "BTC", "ETH"),
            phase("after", 10, Regime.UNWINDING, Side.LONG, "BTC", "ETH"),
            phase("recovery", 5, Regime.CALM, None),
        ),
        loop=False,
    )
    labels = labels_of(sc, 0)
    assert labels == [
        Label("BTC", Regime.CASCADE, Side.LONG, 10 * MIN, 15 * MIN),
        Label("ETH", Regime.CASCADE, Side.LONG, 12 * MIN, 15 * MIN),
        Label("BTC", Regime.UNWINDING, Side.LONG, 15 * MIN, 25 * MIN, after_cascade=True),
        Label("ETH", Regime.UNWINDING, Side.LONG, 15 * MIN, 25 * MIN, after_cascade=True),
    ]
    assert [lb.group for lb in labels][2] == "unwinding after cascade"


def test_spans_run_from_transition_to_transition_and_calm_ends_them() -> None:
    trs = [
        tr(BTC_BIN, 10 * MIN, State.CASCADE),
        tr(BTC_BIN, 14 * MIN, State.UNWINDING, frm=State.CASCADE),
        tr(BTC_BIN, 30 * MIN, State.CALM, None, frm=State.UNWINDING),
        tr(ETH_BIN, 40 * MIN, State.BUILDING, Side.SHORT),
    ]
    spans = spans_of(trs, INSTRUMENTS, end_ms=60 * MIN)
    assert [(s.symbol, s.state, s.start_ms, s.end_ms) for s in spans] == [
        ("BTCUSDT", State.CASCADE, 10 * MIN, 14 * MIN),
        ("BTCUSDT", State.UNWINDING, 14 * MIN, 30 * MIN),
        ("ETHUSDT", State.BUILDING, 40 * MIN, 60 * MIN),
    ]


def test_a_detection_needs_the_labels_class_and_its_delay_counts_from_onset() -> None:
    label = Label("BTC", Regime.CASCADE, Side.LONG, 10 * MIN, 15 * MIN)
    trs = [
        tr(BTC_BIN, 10 * MIN + 5_000, State.UNWINDING),  # wrong class: not a detection
        tr(BTC_BIN, 10 * MIN + 20_000, State.CASCADE, frm=State.UNWINDING),
        tr(BTC_BYB, 10 * MIN + 8_000, State.CASCADE, Side.SHORT),  # first, wrong side
    ]
    (result,) = match([label], spans_of(trs, INSTRUMENTS, 60 * MIN), INSTRUMENTS, RULES)
    by_venue = {t.instrument.venue: t for t in result.trials}
    assert by_venue["binance_usdm"].detected_ms == 10 * MIN + 20_000
    assert by_venue["binance_usdm"].side_ok is True
    assert by_venue["bybit"].side_ok is False
    assert result.delay_s == 8.0  # the earliest instrument
    assert len(result.trials) == 2  # ETH's instrument is not a trial of a BTC label


def test_a_state_already_held_at_onset_detects_at_onset_and_grace_allows_late_ones() -> None:
    unwind = Label("BTC", Regime.UNWINDING, Side.LONG, 15 * MIN, 25 * MIN)
    trs = [
        tr(BTC_BIN, 12 * MIN, State.UNWINDING),  # entered during the cascade before
        tr(BTC_BYB, 29 * MIN, State.UNWINDING),  # after the end, within the 5 min grace
    ]
    (result,) = match([unwind], spans_of(trs, INSTRUMENTS, 60 * MIN), INSTRUMENTS, RULES)
    times = sorted(t.detected_ms or 0 for t in result.trials)
    assert times == [15 * MIN, 29 * MIN]
    assert result.delay_s == 0.0
    late = [tr(BTC_BYB, 31 * MIN, State.UNWINDING)]  # beyond the grace
    (missed,) = match([unwind], spans_of(late, INSTRUMENTS, 60 * MIN), INSTRUMENTS, RULES)
    assert missed.delay_s is None


def test_precision_false_transitions_and_calm_exposure() -> None:
    labels = [Label("BTC", Regime.CASCADE, Side.LONG, 20 * MIN, 25 * MIN)]
    trs = [
        tr(ETH_BIN, 5 * MIN, State.UNWINDING),  # in the warm-up: not counted
        tr(ETH_BIN, 6 * MIN, State.CALM, None, frm=State.UNWINDING),
        tr(BTC_BIN, 20 * MIN + 3_000, State.CASCADE),  # true
        tr(BTC_BIN, 40 * MIN, State.CALM, None, frm=State.CASCADE),
        tr(BTC_BYB, 45 * MIN, State.BUILDING),  # false: after label end + grace
        tr(ETH_BIN, 22 * MIN, State.UNWINDING),  # false: ETH has no label
    ]
    out = score(labels, trs, INSTRUMENTS, 0, 60 * MIN, RULES)
    assert (out.spans_total, out.spans_true, out.false_transitions) == (3, 1, 2)
    # calm time after the 10 min warm-up: BTC instruments 50 - 10 (label + grace) min each,
    # ETH 50 min
    assert out.calm_instrument_days == pytest.approx((40 + 40 + 50) * MIN / 86_400_000)


def test_figures_and_table_over_runs() -> None:
    labels = [Label("BTC", Regime.CASCADE, Side.LONG, 20 * MIN, 25 * MIN)]
    hit = score(labels, [tr(BTC_BIN, 20 * MIN + 40_000, State.CASCADE)], INSTRUMENTS, 0,
                60 * MIN, RULES)  # fmt: skip
    miss = score(labels, [], INSTRUMENTS, 0, 60 * MIN, RULES)
    runs = [Scored("long_cascade", s, o, 3600, 1.0, 10, 0) for s, o in enumerate((hit, miss))]
    f = figures(runs)
    assert f["recall"] == 0.5
    assert f["delay_p50_s"] == 40.0
    assert f["within_target"] == 0.0  # 40 s is beyond the 30 s cascade target
    assert f["side_accuracy"] == 1.0
    summary = summarize(runs)
    assert summary["classes"]["cascade"]["labels"] == 2
    text = table(summary)
    assert "long_cascade" in text
    assert "overall" in text
