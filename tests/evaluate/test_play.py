"""Playing scenarios at the wire level (no sockets) through the default model."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import DetectorSettings
from service.detect.factory import make_model
from service.evaluate.play import Pace, play
from service.evaluate.suite import run_one, run_suite
from service.events import Event, HandoffEvent, Liquidation
from service.simulate.library import make_scenario
from service.simulate.scenario import get_scenario
from service.venues import PLAYERS

VENUES = ["binance_usdm", "bybit", "okx"]


@pytest.mark.parametrize("venue", list(PLAYERS))
def test_every_player_sends_every_kind_of_event_through_the_real_parser(venue: str) -> None:
    sc = get_scenario("long_unwind")  # starts calm, then a long cascade on BTC and ETH
    player = PLAYERS[venue](sc, 1, ["BTC", "ETH"])
    events: list[HandoffEvent] = []
    for i in range(1, 61):
        events += player.step(1.0, 1_000_000 + i * 1000, quotes_due=True, online=True)
    assert player.parse_errors == 0
    kinds = Counter(type(e).__name__ for e in events)
    adl = {"AdlRisk"} if venue == "bybit" else set()  # its ADL alerts, polled every minute
    book = {"BookTop"} if venue in ("bybit", "bitget", "deribit") else set()  # in the tickers
    assert set(kinds) == {"MarkPrice", "FundingRate", "OpenInterest", "Liquidation", *adl, *book}
    assert {e.base for e in events} == {"BTC", "ETH"}
    liqs = [e for e in events if isinstance(e, Liquidation) and e.ts_ms > 1_000_000 + 25_000]
    assert liqs
    # a Deribit trade flagged MT also liquidated its maker: the long's twin short is fine
    twins = {e.event_id.removesuffix(":long") for e in liqs if venue == "deribit"}
    big = [e for e in liqs if e.notional_usd > 50_000]
    assert all(e.side.value == "long" or e.event_id.removesuffix(":short") in twins for e in big)


def test_a_player_offline_sends_nothing_and_reconnects_with_fresh_state() -> None:
    player = PLAYERS["bybit"](get_scenario("calm"), 2, ["BTC"])
    assert player.step(1.0, 1_000, quotes_due=True, online=True)
    assert player.step(1.0, 2_000, quotes_due=True, online=False) == []
    back = player.step(1.0, 3_000, quotes_due=True, online=True)
    assert {type(e).__name__ for e in back} >= {"MarkPrice", "OpenInterest"}  # a snapshot


def test_a_long_cascade_is_detected_long_and_the_run_is_clean() -> None:
    scored = run_one("long_cascade", 0, VENUES, make_model(DetectorSettings()))
    assert scored.parse_errors == 0
    assert scored.events > 10_000
    cascade = next(lr for lr in scored.outcome.labels if lr.label.regime.value == "cascade")
    assert cascade.delay_s is not None  # detected (its delay is reported, not asserted)
    first = cascade.first
    assert first is not None
    assert first.side_ok


def test_an_outage_silences_its_venue_for_its_duration() -> None:
    sc = make_scenario("venue_outage", 1, VENUES)
    (outage,) = sc.outages
    seen: list[Event] = []
    run = play(sc, 1, VENUES, make_model(DetectorSettings()), Pace(), 0, seen.extend)
    lo, hi = outage.start_s * 1000, outage.end_s * 1000
    inside = [e for e in seen if e.venue == outage.venue and lo < e.recv_ms < hi]
    assert inside == []
    assert any(e.venue == outage.venue and e.recv_ms >= hi for e in seen)
    assert run.parse_errors == 0


def test_the_suite_summary_has_every_figure_per_kind_and_overall() -> None:
    summary = run_suite(DetectorSettings(), ["short_squeeze"], [2], VENUES)
    kind = summary["kinds"]["short_squeeze"]
    for key in ("recall", "delay_p50_s", "delay_p90_s", "within_target", "side_accuracy",
                "precision", "false_per_day", "calm_instrument_days"):  # fmt: skip
        assert key in kind
        assert key in summary["overall"]
    assert kind["labels"] >= 2  # the squeeze and the short unwind after it
    assert summary["classes"]["cascade"]["detected"] == 1


def test_the_command_prints_json() -> None:
    result = CliRunner().invoke(main, ["evaluate", "--suite", "synthetic", "--seeds", "1",
                                       "--kinds", "long_cascade", "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) == {"synthetic"}
    assert doc["synthetic"]["command"]["kinds"] == ["long_cascade"]
    assert doc["synthetic"]["overall"]["runs"] == 1


def test_the_real_suite_is_its_own_option_and_says_where_its_data_is(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--suite", "real", "--real-data",
                                       str(tmp_path), "--quiet"])  # fmt: skip
    assert result.exit_code != 0
    assert f"real-history data not found: {tmp_path}" in result.output
    # in the default report, missing data skips the real suite and says so
    result = CliRunner().invoke(main, ["evaluate", "--seeds", "1", "--kinds", "calm",
                                       "--real-data", str(tmp_path), "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "real-history suite skipped: real-history data not found" in result.output


def test_the_command_refuses_unknown_kinds() -> None:
    result = CliRunner().invoke(main, ["evaluate", "--kinds", "nope"])
    assert result.exit_code != 0
    assert "unknown kinds" in result.output
