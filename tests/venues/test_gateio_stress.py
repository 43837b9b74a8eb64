"""The Gate.io contract statistics parser on the docs' response example (fixtures/stress)."""

from __future__ import annotations

import pytest
from stress_support import body, doc, linear

from service.events import Positioning, PositioningMetric
from service.venues.base import ParseStats
from service.venues.gateio import stress

RECV = 1_800_000_000_000
BTC = linear("gateio", "BTC_USDT", "BTC")

FIELDS = {
    PositioningMetric.TAKER_VOLUME: "lsr_taker",
    PositioningMetric.ACCOUNTS: "lsr_account",
    PositioningMetric.TOP_ACCOUNTS: "top_lsr_account",
    PositioningMetric.TOP_POSITIONS: "top_lsr_size",
}


def test_contract_stats_give_four_ratios_per_row_stamped_in_milliseconds() -> None:
    [row] = doc("gateio_contract_stats.json")
    stats = ParseStats()
    events = stress.parse_contract_stats(
        body("gateio_contract_stats.json"), BTC, RECV, stats, stress.PERIOD_S["5m"]
    )
    assert len(events) == len(FIELDS)
    by_metric = {e.metric: e for e in events if isinstance(e, Positioning)}
    assert by_metric.keys() == FIELDS.keys()
    for metric, field in FIELDS.items():
        ev = by_metric[metric]
        r = float(row[field])
        assert ev.long_short_ratio == ev.native_ratio == pytest.approx(r)
        assert ev.long_share == pytest.approx(r / (1 + r))
        assert ev.ts_ms == row["time"] * 1000
        assert (ev.symbol, ev.base) == ("BTC_USDT", "BTC")
    assert not stats.errors


def test_a_time_already_in_milliseconds_is_kept() -> None:
    rows = doc("gateio_contract_stats.json")
    rows[0]["time"] = 1_755_000_000_000
    events = stress.parse_contract_stats(rows, BTC, RECV, ParseStats(), 300)
    assert {e.ts_ms for e in events} == {1_755_000_000_000}


def test_a_negative_ratio_is_dropped_and_counted() -> None:
    rows = doc("gateio_contract_stats.json")
    rows[0]["lsr_account"] = -1
    stats = ParseStats()
    events = stress.parse_contract_stats(rows, BTC, RECV, stats, 300)
    assert len(events) == len(FIELDS) - 1
    assert stats.errors == {"bad_ratio": 1}
