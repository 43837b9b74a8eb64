"""The real-history suite's labels and scoring rules (no data needed)."""

from __future__ import annotations

from service.backtest.bars import Bar, to_ms
from service.evaluate.real import SETS, Span, calm_bars, judge, load_labels
from service.evaluate.real_report import real_table
from service.scores import State

H = 3_600_000
T0 = to_ms("2025-10-10T00:00:00Z")


def test_the_labels_carry_their_source_window_side_and_rationale() -> None:
    labels = load_labels()
    assert {e.set for e in labels.episodes} == set(SETS)
    for e in labels.episodes:
        ds = labels.datasets[e.dataset]
        assert ds.files or ds.source in labels.datasets, e.id
        assert e.start_ms < e.end_ms
        assert e.side in ("long", "short")
        assert e.assets
        assert len(e.rationale) > 30, e.id
    cascade = [e for e in labels.episodes if e.state == "cascade"]
    assert [(e.id, e.start_ms, e.end_ms) for e in cascade] == [
        ("2025-10-10-tariff-cascade", T0 + 21 * H, T0 + 22 * H)
    ]
    # the calm: OI moved < 1 % (per hour) and liquidations < 2x the median bar
    assert (labels.oi_move_pct, labels.liq_vs_median) == (1.0, 2.0)
    assert {bar for d in labels.datasets.values() for bar in [d.bar_s]} == {300, 3600, 86400}


def test_an_asset_the_data_cannot_show_is_labelled_not_judgeable_with_its_reason() -> None:
    labels = load_labels()
    for e in labels.episodes:
        assert set(e.not_judgeable) <= set(e.assets), e.id
        for reason in e.not_judgeable.values():
            assert len(reason) > 80, e.id


def test_the_report_prints_not_judgeable_with_its_reason_outside_the_counts() -> None:
    row = {"set": "tuning", "dataset": "d", "window": ["a", "b"], "expected_side": "long",
           "expected_state": None, "delay_s": None, "side": None, "peak": "calm",
           "instrument": {"flagged": False, "delay_s": None, "peak": "calm"}}  # fmt: skip
    rows = [
        row | {"episode": "e", "asset": "BTC", "flagged": False,
               "not_judgeable": "open interest rose over the window"},
        row | {"episode": "e", "asset": "ETH", "flagged": True, "delay_s": 60.0,
               "side": "long", "peak": "unwinding", "not_judgeable": None},
    ]  # fmt: skip
    text = real_table({"episodes": rows, "calm": [], "pooled": []})
    assert "not judgeable: open interest rose over the window" in text
    assert "tuning: 1 of 1 flagged with the right side (1 not judgeable)" in text
    assert " NO " not in text


def span(state: State, side: str | None, start_h: float, end_h: float) -> Span:
    return Span("asset", "BTC", state, side, T0 + int(start_h * H), T0 + int(end_h * H))


def test_an_episode_is_flagged_by_an_unwinding_or_cascade_of_its_side_within_its_window() -> None:
    lo, hi = T0 + 21 * H, T0 + 22 * H + 60_000
    wrong_side = [span(State.UNWINDING, "short", 21.0, 23.0)]
    assert judge(wrong_side, lo, hi, "long")["flagged"] is False
    late = [span(State.CASCADE, "long", 22.1, 23.0)]
    assert judge(late, lo, hi, "long")["flagged"] is False
    building = [span(State.BUILDING, "long", 21.0, 22.0)]
    assert judge(building, lo, hi, "long") == {
        "flagged": False, "delay_s": None, "side": None, "peak": "building"
    }  # fmt: skip
    hit = [span(State.UNWINDING, "long", 20.0, 22.0), span(State.CASCADE, "long", 22.0, 22.5)]
    got = judge(hit, lo, hi, "long")
    assert got == {"flagged": True, "delay_s": 0.0, "side": "long", "peak": "cascade"}
    at_close = [span(State.CASCADE, "long", 22.0 + 21 / 3600, 23.0)]  # the close's evaluation
    assert judge(at_close, lo, hi, "long")["delay_s"] == 3621.0


def test_a_calm_bar_moved_open_interest_less_than_1_percent_per_hour_with_few_liquidations() -> (
    None
):
    oi = [100.0, 100.5, 102.0, 102.1, 102.2, 102.3]
    liq = [10.0, 10.0, 10.0, 50.0, 10.0, 10.0]
    bars = [Bar(T0 + i * H, "v", "BTC", oi_base=o, liq_long_usd=x) for i, (o, x) in
            enumerate(zip(oi, liq, strict=True))]  # fmt: skip
    calm = calm_bars(bars, 3600, 1.0, 2.0)[("v", "BTC")]
    # +0.5 % calm; +1.5 % not; +0.1 % with 5x the median liquidations not; the rest calm
    assert calm == {T0 + 1 * H, T0 + 4 * H, T0 + 5 * H}
    days = [Bar(T0 + i * 24 * H, "v", "BTC", oi_usd=o * 1e6, price=1.0) for i, o in
            enumerate([100.0, 104.0, 110.0])]  # fmt: skip
    # a day's bar may move 1 % x sqrt(24) = 4.9 %: +4 % is calm, +5.6 % is not
    assert calm_bars(days, 86_400, 1.0, 2.0)[("v", "BTC")] == {T0 + 24 * H}
