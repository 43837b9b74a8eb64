"""The features of one instrument (:mod:`service.detect.features`), each worked out by hand from
the events fed to a real history: open-interest and price changes in log %, the liquidated
notional trimmed of its largest second, the forced share of an OI decline, which windows the
data's spacing can measure, when a baseline learns, and the burn-in's reason."""

from __future__ import annotations

import math

import pytest
from tape import Tape

from service.config import DetectorSettings
from service.detect.features import (
    Baselines,
    liq_floor,
    oi_floor,
    price_floor,
    resolution,
    sample_baselines,
    snapshot,
    window_features,
)
from service.detect.rings import LIQ_LONG, MARK, OI_BASE, InstrumentHistory, make_rings
from service.events import Side
from service.scores import WARMING

T0 = 1_760_000_000_000
S = DetectorSettings()
TAPE = Tape(t0_ms=0)
"""Events at absolute times: ``TAPE.oi(ms / 1000, ...)``."""
SPANS = S.windows_s()  # 1 m, 5 m, 15 m, 1 h, 4 h, 1 d


def history() -> InstrumentHistory:
    fine, coarse = make_rings(SPANS)
    return InstrumentHistory("sim", "BTCUSDT", "BTC", fine, coarse)


def steady(h: InstrumentHistory, *, seconds: int, every_s: int, base: float, price: float) -> int:
    """Open interest and mark held at ``base`` and ``price`` from ``T0``, every ``every_s``;
    returns the time of the last update."""
    ms = T0
    for t in range(0, seconds + 1, every_s):
        ms = T0 + t * 1000
        h.add_open_interest(TAPE.oi(ms / 1000, base, price))
        h.add_mark(TAPE.mark(ms / 1000, price))
    return ms


def covered(h: InstrumentHistory) -> tuple[int | None, int | None, int | None]:
    return h.covered_since(OI_BASE), h.covered_since(MARK), h.covered_since(LIQ_LONG)


def test_changes_are_log_percent_over_the_window_and_its_last_quarter() -> None:
    h = history()
    last = steady(h, seconds=600, every_s=1, base=1000.0, price=100.0)
    now = last + 300_000
    for t in range(1, 301):  # over the next 5 minutes: OI to 900, price to 95
        ms = last + t * 1000
        h.add_open_interest(TAPE.oi(ms / 1000, 1000.0 - t / 3, 100.0 - t / 60))
        h.add_mark(TAPE.mark(ms / 1000, 100.0 - t / 60))
    f = window_features(h, 300.0, now, S, True, covered(h))
    assert f.full
    assert f.oi == pytest.approx(100 * math.log(900 / 1000))
    assert f.ret == pytest.approx(100 * math.log(95 / 100))
    assert f.oi_usd == pytest.approx(100 * math.log(900 * 95 / (1000 * 100)))
    quarter_ago = 1000.0 - 225 / 3  # 75 s before the end
    assert f.oi_recent == pytest.approx(100 * math.log(900 / quarter_ago))
    assert f.label == "5m"


def test_a_window_longer_than_the_data_is_measured_from_its_start_and_is_not_full() -> None:
    h = history()
    last = steady(h, seconds=120, every_s=1, base=1000.0, price=100.0)
    h.add_open_interest(TAPE.oi((last + 1000) / 1000, 950.0, 100.0))
    f = window_features(h, 900.0, last + 1000, S, True, covered(h))
    assert not f.full  # 15 m asked, 2 m of data
    assert f.oi == pytest.approx(100 * math.log(950 / 1000))  # from the first value


def test_the_burst_is_trimmed_of_its_largest_second_and_the_forced_share_is_of_the_decline() -> (
    None
):
    h = history()
    last = steady(h, seconds=600, every_s=1, base=1000.0, price=100.0)
    for t in range(1, 61):
        ms = last + t * 1000
        h.add_open_interest(TAPE.oi(ms / 1000, 1000.0 - t, 100.0))  # -60 base: $6,000 of OI gone
        h.add_mark(TAPE.mark(ms / 1000, 100.0))
        h.add_liquidation(TAPE.liq(ms / 1000, Side.LONG, 50.0))  # $50 a second for 60 s
        if t == 30:
            h.add_liquidation(TAPE.liq((ms + 500) / 1000, Side.LONG, 1000.0))  # one large print
        if t == 40:
            h.add_liquidation(TAPE.liq(ms / 1000, Side.SHORT, 20.0))
    now = last + 60_000
    f = window_features(h, 60.0, now, S, True, covered(h))
    assert f.liq_long_usd == pytest.approx(60 * 50 + 1000)
    assert f.liq_short_usd == pytest.approx(20)
    assert f.active_s == pytest.approx(60)
    total = 60 * 50 + 1000 + 20
    assert f.liq_trimmed_usd == pytest.approx(total - 1050)  # less second 30 (1000 + 50)
    oi_usd = 940 * 100.0
    assert f.liq_y == pytest.approx(math.log(f.liq_trimmed_usd / oi_usd * 1e4 + liq_floor(S, 60)))
    assert f.forced_share == pytest.approx(total / (60 * 100.0))
    assert f.liq_recent_usd == pytest.approx(15 * 50)  # the last quarter: 15 s


def test_the_forced_share_is_capped_and_absent_when_open_interest_rose() -> None:
    h = history()
    last = steady(h, seconds=120, every_s=1, base=1000.0, price=100.0)
    h.add_open_interest(TAPE.oi((last + 1000) / 1000, 999.0, 100.0))  # $100 of OI gone
    h.add_liquidation(TAPE.liq((last + 1000) / 1000, Side.LONG, 5000.0))
    assert window_features(h, 60.0, last + 1000, S, True, covered(h)).forced_share == 1.0
    h.add_open_interest(TAPE.oi((last + 2000) / 1000, 1100.0, 100.0))
    assert window_features(h, 60.0, last + 2000, S, True, covered(h)).forced_share is None


def test_without_a_liquidation_feed_no_burst_intensity_is_reported() -> None:
    h = history()
    last = steady(h, seconds=120, every_s=1, base=1000.0, price=100.0)
    h.add_liquidation(TAPE.liq(last / 1000, Side.LONG, 500.0))
    f = window_features(h, 60.0, last, S, False, covered(h))
    assert f.liq_long_usd == pytest.approx(500.0)
    assert f.liq_y is None


def test_the_floors_scale_with_the_window() -> None:
    assert liq_floor(S, S.window_s) == S.liq_floor_bp
    assert liq_floor(S, 4 * S.window_s) == pytest.approx(4 * S.liq_floor_bp)  # a sum: linear
    assert oi_floor(S, 4 * S.window_s) == pytest.approx(2 * S.oi_floor_pct)  # a walk: sqrt
    assert price_floor(S, 4 * S.window_s) == pytest.approx(2 * S.price_floor_pct)


def test_hourly_data_measures_only_windows_of_an_hour_or_more_and_refers_to_the_hour() -> None:
    h = history()
    steady(h, seconds=6 * 3600, every_s=3600, base=1000.0, price=100.0)
    res = resolution(h, SPANS, S.window_s)
    assert res.cadence_s == 3600
    assert res.measurable == (False, False, False, True, True, True)
    assert res.ref == 3
    assert SPANS[3] == 3600


def test_live_data_refers_to_the_configured_window_and_daily_data_to_the_day() -> None:
    live = history()
    steady(live, seconds=60, every_s=1, base=1000.0, price=100.0)
    assert resolution(live, SPANS, S.window_s).ref == 1  # 5 m
    daily = history()
    steady(daily, seconds=5 * 86400, every_s=86400, base=1000.0, price=100.0)
    assert resolution(daily, SPANS, S.window_s).ref == 5  # 1 d
    weekly = history()
    steady(weekly, seconds=21 * 86400, every_s=7 * 86400, base=1000.0, price=100.0)
    res = resolution(weekly, SPANS, S.window_s)
    assert res.ref is None
    assert not res.known
    assert resolution(history(), SPANS, S.window_s).cadence_s is None  # nothing yet


def test_a_window_that_is_not_full_or_not_measurable_teaches_its_baseline_nothing() -> None:
    b = Baselines.for_settings(S)
    h = history()
    last = steady(h, seconds=400, every_s=1, base=1000.0, price=100.0)  # 6.7 minutes
    snap = snapshot(h, b, last, S)
    sample_baselines(b, snap, last)
    counts = [len(wb.oi) for wb in b.windows]
    assert counts == [1, 1, 0, 0, 0, 0]  # 1 m and 5 m are covered; 15 m and up are not
    assert b.sampled == 2
    sample_baselines(b, snap, last)  # not due again yet
    assert [len(wb.oi) for wb in b.windows] == counts

    hourly = history()
    last = steady(hourly, seconds=30 * 3600, every_s=3600, base=1000.0, price=100.0)
    b = Baselines.for_settings(S)
    sample_baselines(b, snapshot(hourly, b, last, S), last)
    assert [len(wb.oi) for wb in b.windows][:3] == [0, 0, 0]  # blind on hourly bars
    assert len(b.windows[3].oi) == 1


def test_funding_that_was_extreme_and_came_half_way_back_is_normalising() -> None:
    b = Baselines.for_settings(S)
    for i in range(40):  # a baseline of ordinary funding: about 0.001 %/h
        b.funding.add(0.00001 * (1 + (i % 5) / 10))
    h = history()
    last = steady(h, seconds=3 * 3600, every_s=60, base=1000.0, price=100.0)
    slow_s = b.slow().span_s
    h.add_funding(
        TAPE.funding((last - int(slow_s * 1000) - 60_000) / 1000, 0.002)
    )  # extreme a slow window ago
    h.add_funding(TAPE.funding(last / 1000, 0.00002))
    snap = snapshot(h, b, last, S)
    assert snap.funding_1h == 0.00002
    assert snap.funding_change_1h == pytest.approx(0.00002 - 0.002)
    assert snap.funding_normalising
    assert not snap.funding_flip


def test_the_burn_in_names_what_it_waits_for() -> None:
    b = Baselines.for_settings(S)
    h = history()
    h.add_open_interest(TAPE.oi(T0 / 1000, 1000.0, 100.0))
    reason = _burn_in(b, h, T0)
    assert reason is not None
    assert reason.startswith(WARMING)
    assert "spacing" in reason

    weekly = history()
    last = steady(weekly, seconds=21 * 86400, every_s=7 * 86400, base=1000.0, price=100.0)
    reason = _burn_in(Baselines.for_settings(S), weekly, last)
    assert reason is not None
    assert "never" in reason
    assert "7d" in reason

    live = history()
    last = steady(live, seconds=400, every_s=1, base=1000.0, price=100.0)
    reason = _burn_in(Baselines.for_settings(S), live, last)
    assert reason is not None
    assert "5m baselines: 0 of 20 samples" in reason

    b = Baselines.for_settings(S)
    for i in range(S.burn_in_samples):
        b.windows[1].oi.add(0.01 * i)
        b.windows[1].ret.add(0.01 * i)
    assert _burn_in(b, live, last) is None


def _burn_in(b: Baselines, h: InstrumentHistory, now_ms: int) -> str | None:
    from service.detect.features import burn_in

    return burn_in(b, snapshot(h, b, now_ms, S), now_ms, S)
