"""The Bybit stress parsers on the docs' response examples (fixtures/stress), with the
expected values worked out here from the bodies and Bybit's documented ADL conditions."""

from __future__ import annotations

import json

import pytest
from stress_support import body, doc, markets

from service.events import AdlLevel, AdlRisk, InsuranceFund, Positioning, PositioningMetric
from service.venues.base import ParseStats
from service.venues.bybit import stress

RECV = 1_800_000_000_000


def _bybit_markets(*symbols: str) -> dict[str, object]:
    return markets("bybit", {s: s.removesuffix("USDT") for s in symbols})  # type: ignore[return-value]


def _documented_level(balance: float, pr: float, i_pr: float, tt: float) -> AdlLevel:
    """Bybit's conditions as its docs state them, in thirds of the way to the trigger."""
    if balance <= 0 or (balance > tt and pr < i_pr):
        return AdlLevel.ACTIVE
    progress = pr / i_pr
    return (
        AdlLevel.HIGH if progress >= 2 / 3 else AdlLevel.MEDIUM if progress >= 1 / 3
        else AdlLevel.LOW
    )  # fmt: skip


def test_rest_adl_alert_past_its_trigger_is_active() -> None:
    result = doc("bybit_adl_alert.json")["result"]
    [row] = result["list"]
    stats = ParseStats()
    [ev] = stress.parse_adl_alert(
        body("bybit_adl_alert.json"), _bybit_markets("BTCUSDT"), RECV, stats
    )
    assert isinstance(ev, AdlRisk)
    balance, pr = float(row["balance"]), float(row["pnlRatio"])
    i_pr, tt = float(row["insurancePnlRatio"]), float(row["adlTriggerThreshold"])
    assert ev.level is _documented_level(balance, pr, i_pr, tt) is AdlLevel.ACTIVE
    assert ev.native == row["pnlRatio"]
    assert ev.native_kind == "pnl_drawdown_ratio"
    assert ev.trigger == pytest.approx(i_pr)
    assert ev.pool_balance == pytest.approx(balance)
    assert ev.ts_ms == int(result["updatedTime"])
    assert not stats.errors


def test_websocket_adl_alert_maps_each_row_by_the_documented_conditions() -> None:
    frame = doc("bybit_adl_alert_ws.json")
    symbols = [r["s"] for r in frame["data"]]
    stats = ParseStats()
    events = stress.parse_adl_alert_frame(
        body("bybit_adl_alert_ws.json"), _bybit_markets(*symbols), RECV, stats
    )
    assert [e.symbol for e in events] == symbols
    for ev, row in zip(events, frame["data"], strict=True):
        assert isinstance(ev, AdlRisk)
        assert ev.level is _documented_level(row["b"], row["pr"], row["i_pr"], row["adl_tt"])
        assert ev.ts_ms == frame["ts"]
        assert ev.pool_balance == pytest.approx(row["b"])
    # FWOG's pool is in deficit (b < 0): ADL by pool equity; the two others have no drawdown.
    assert [e.level for e in events if isinstance(e, AdlRisk)] == [
        AdlLevel.ACTIVE, AdlLevel.LOW, AdlLevel.LOW,
    ]  # fmt: skip
    assert not stats.errors


@pytest.mark.parametrize(
    ("balance", "pr", "expected"),
    [
        (20_000.0, -0.05, AdlLevel.LOW),
        (20_000.0, -0.15, AdlLevel.MEDIUM),
        (20_000.0, -0.25, AdlLevel.HIGH),
        (20_000.0, -0.31, AdlLevel.ACTIVE),
        (5_000.0, -0.31, AdlLevel.HIGH),  # below adl_tt the drawdown trigger does not apply
        (0.0, 0.0, AdlLevel.ACTIVE),
    ],
)
def test_adl_level_thirds_of_the_way_to_the_trigger(
    balance: float, pr: float, expected: AdlLevel
) -> None:
    assert stress.adl_level(balance, pr, -0.3, 10_000.0) is expected


def test_rest_insurance_keeps_the_venue_usd_value_and_names_the_coin_pool() -> None:
    result = doc("bybit_insurance.json")["result"]
    [row] = result["list"]
    [ev] = stress.parse_insurance(body("bybit_insurance.json"), {}, RECV, ParseStats())
    assert isinstance(ev, InsuranceFund)
    assert ev.pool == ev.symbol == row["coin"]
    assert ev.asset == row["coin"]
    assert ev.balance == pytest.approx(float(row["balance"]))
    assert ev.balance_usd == pytest.approx(float(row["value"]))
    assert ev.ts_ms == int(result["updatedTime"])


def test_rest_insurance_with_the_newer_symbols_field_names_the_pool_by_its_symbols() -> None:
    answer = doc("bybit_insurance.json")
    answer["result"]["list"][0] |= {"coin": "USDT", "symbols": "SOLUSDT,BTCUSDT"}
    [ev] = stress.parse_insurance(
        json.dumps(answer), _bybit_markets("BTCUSDT", "SOLUSDT"), RECV, ParseStats()
    )
    assert isinstance(ev, InsuranceFund)
    assert ev.symbols == ("BTCUSDT", "SOLUSDT")
    assert ev.pool == "BTCUSDT"
    assert ev.base == "*"


def test_websocket_insurance_one_event_per_isolated_pool() -> None:
    frame = doc("bybit_insurance_ws.json")
    events = stress.parse_insurance_frame(
        body("bybit_insurance_ws.json"), _bybit_markets(*(r["symbols"] for r in frame["data"])),
        RECV, ParseStats(),
    )  # fmt: skip
    assert len(events) == len(frame["data"])
    for ev, row in zip(events, frame["data"], strict=True):
        assert isinstance(ev, InsuranceFund)
        assert ev.pool == row["symbols"]
        assert ev.base == row["symbols"].removesuffix("USDT")
        assert ev.balance == ev.balance_usd == pytest.approx(float(row["balance"]))
        assert ev.ts_ms == int(row["updateTime"])


def test_account_ratio_from_the_two_shares() -> None:
    [row] = doc("bybit_account_ratio.json")["result"]["list"]
    [ev] = stress.parse_account_ratio(
        body("bybit_account_ratio.json"), _bybit_markets("BTCUSDT"), RECV, ParseStats(),
        stress.PERIOD_S["1d"],
    )  # fmt: skip
    assert isinstance(ev, Positioning)
    buy, sell = float(row["buyRatio"]), float(row["sellRatio"])
    assert ev.metric is PositioningMetric.ACCOUNTS
    assert ev.long_short_ratio == pytest.approx(buy / sell)
    assert ev.long_share == pytest.approx(buy / (buy + sell))
    assert ev.period_s == 86_400
    assert ev.ts_ms == int(row["timestamp"])


def test_an_error_answer_is_counted_as_a_venue_error() -> None:
    stats = ParseStats()
    answer = b'{"retCode":10001,"retMsg":"params error","result":{},"time":1}'
    assert stress.parse_adl_alert(answer, {}, RECV, stats) == []
    assert stats.errors == {"venue_error": 1}


def test_a_frame_of_another_topic_is_an_invalid_frame() -> None:
    stats = ParseStats()
    frame = body("bybit_insurance_ws.json")
    assert stress.parse_adl_alert_frame(frame, {}, RECV, stats) == []
    assert stats.errors == {"invalid_frame": 1}


def test_a_bad_row_is_counted_and_the_others_kept() -> None:
    frame = doc("bybit_adl_alert_ws.json")
    frame["data"][0]["pr"] = "lots"
    symbols = [r["s"] for r in frame["data"]]
    stats = ParseStats()
    events = stress.parse_adl_alert_frame(json.dumps(frame), _bybit_markets(*symbols), RECV, stats)
    assert [e.symbol for e in events] == symbols[1:]
    assert stats.errors == {"invalid_row": 1}
