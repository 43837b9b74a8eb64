"""The passive drift monitor, pure: which frames it samples, when a channel is silent, and the
fields a sampled frame lacks or adds (Bybit's ticker in its documented shape)."""

from __future__ import annotations

import json

from service.collect.drift import SAMPLE_EVERY, SAMPLE_FIRST, DriftMonitor
from service.events import Kind
from service.health import DriftSuspicion
from service.venues import SHAPES

HOUR_MS = 3_600_000
NOW = 1_781_150_000_000
SNAPSHOT = {
    "topic": "tickers.BTCUSDT", "type": "snapshot", "cs": 1, "ts": NOW,
    "data": {"symbol": "BTCUSDT", "markPrice": "100010.00", "indexPrice": "100020.00",
             "openInterest": "52664.642", "singleOpenInterest": "26332.321",
             "openInterestValue": "5266990846.42", "singleOpenInterestValue": "2633495423.21",
             "fundingRate": "0.0001", "nextFundingTime": "1781164800000",
             "fundingIntervalHour": "8", "lastPrice": "100000.00"},
}  # fmt: skip


def test_the_first_frames_of_a_period_then_one_in_a_thousand_are_sampled() -> None:
    monitor = DriftMonitor("bybit", SHAPES["bybit"])
    for _ in range(SAMPLE_FIRST + 10 * SAMPLE_EVERY):
        monitor.observe(json.dumps(SNAPSHOT))
    assert monitor.sampled == SAMPLE_FIRST + 10
    assert monitor.fields["tickers"].rows == SAMPLE_FIRST + 10
    assert monitor.evaluate(NOW, {Kind.MARK: NOW}, NOW - HOUR_MS) == []  # as documented
    assert (monitor.frames, monitor.sampled, monitor.fields) == (0, 0, {})  # a new period


def test_a_renamed_field_is_missing_and_unknown() -> None:
    monitor = DriftMonitor("bybit", SHAPES["bybit"])
    data = dict(SNAPSHOT["data"])  # type: ignore[call-overload]
    data["markPx"] = data.pop("markPrice")
    for _ in range(3):
        monitor.observe(json.dumps(SNAPSHOT | {"data": data}))
    delta = {**SNAPSHOT, "type": "delta", "data": {"symbol": "BTCUSDT", "fundingRate": "0.0002"}}
    monitor.observe(json.dumps(delta))  # a delta lacks fields by design: not missing
    assert monitor.evaluate(NOW, {Kind.MARK: NOW}, NOW - HOUR_MS) == [
        DriftSuspicion("tickers", "missing_fields", "markPrice (3 of 4 sampled rows)"),
        DriftSuspicion("tickers", "unknown_fields", "markPx (3 of 4 sampled rows)"),
    ]


def test_a_periodic_channel_is_silent_only_after_its_documented_rate_allows() -> None:
    monitor = DriftMonitor("okx", SHAPES["okx"])
    fresh = {Kind.MARK: NOW, Kind.FUNDING: NOW - 100_000, Kind.LIQUIDATION: NOW - 5 * HOUR_MS}
    # open-interest: documented every 3 s, silent after max(60 s, 10 x 3 s) = 60 s.
    found = monitor.evaluate(NOW, fresh | {Kind.OPEN_INTEREST: NOW - 61_000}, NOW - HOUR_MS)
    assert found == [
        DriftSuspicion(
            "open-interest", "silent", "no event for 61 s; documented: every 3 s when it changes"
        )
    ]  # funding (every 30-90 s: silent after 900 s) and liquidations (event-driven) are not
    assert monitor.evaluate(NOW, fresh | {Kind.OPEN_INTEREST: NOW - 59_000}, NOW - HOUR_MS) == []
    # Connected for less than the allowance, or not connected: nothing can be told.
    assert monitor.evaluate(NOW, fresh, NOW - 30_000) == []
    assert monitor.evaluate(NOW, fresh, None) == []
    (never,) = monitor.evaluate(NOW, fresh, NOW - 120_000)
    assert never.detail == (
        "no event for 120 s (none since connected); documented: every 3 s when it changes"
    )
