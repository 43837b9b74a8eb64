"""Venues polled through ccxt: configuration checked at start-up, the perpetuals taken from
ccxt's markets, and ccxt's unified funding and open-interest structures turned into events
with the right units (linear, inverse, contracts or coin, amount or value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.errors import ConfigError
from service.events import FundingRate, MarkPrice
from service.preflight import load_checked
from service.simulate.ccxt_bitget_rest import RECORDED, v2_row
from service.venues.base import Instrument, ParseStats
from service.venues.ccxt_polled import (
    PolledMarket,
    _rebase,
    funding_events,
    interval_h,
    open_interest_event,
    perpetuals,
)

RECV = 1_700_000_000_500


def load(**venue: Any) -> Any:
    # through the start-up checks, as the commands load settings: ccxt is checked there
    return load_checked([], venues={"longtail": venue})


def test_a_ccxt_venue_needs_no_native_module_and_takes_its_defaults() -> None:
    v = load(ccxt={"exchange": "bitget"}).venues["longtail"]
    assert v.ccxt is not None
    assert (v.ccxt.exchange, v.ccxt.poll_interval_s, v.ccxt.oi_amount_unit) == (
        "bitget", 60.0, "contracts"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("venue", "message"),
    [
        ({"ccxt": {"exchange": "bitgett"}}, r"venues\.longtail\.ccxt\.exchange: .*unknown ccxt"),
        # ccxt's krakenfutures has funding rates but no open-interest call
        ({"ccxt": {"exchange": "krakenfutures"}}, r"venues\.longtail\.ccxt\.exchange: .*Open"),
        ({"ccxt": {}}, r"venues\.longtail\.ccxt\.exchange: Field required"),
        ({"ccxt": {"exchange": "bitget", "poll_interval_s": 0.5}}, r"poll_interval_s"),
        ({"ccxt": {"exchange": "bitget"}, "ws_url": "wss://x.test"}, r"has no websocket"),
        ({"ccxt": {"exchange": "bitget", "poll_interval_s": 150}}, r"stale_after_s"),
        ({}, r"venues\.longtail: unknown venue .*ccxt\.exchange"),
    ],
)
def test_bad_ccxt_configuration_fails_at_start_naming_the_key(
    venue: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(**venue)


def test_rest_url_replaces_the_host_of_every_api_url_keeping_paths() -> None:
    urls = {"public": "https://api.{hostname}/v2/", "nested": {"x": "https://other.test/a"}}
    assert _rebase(urls, "bitget.com", "http://127.0.0.1:9") == {
        "public": "http://127.0.0.1:9/v2/", "nested": {"x": "http://127.0.0.1:9/a"}
    }  # fmt: skip


def market(**kw: Any) -> dict[str, Any]:
    base = {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT",
            "settle": "USDT", "swap": True, "active": True, "linear": True, "inverse": False,
            "contractSize": 1.0}  # fmt: skip
    return base | kw


def test_only_active_perpetual_swaps_are_taken() -> None:
    got = perpetuals(
        "v",
        [
            market(),
            market(
                id="BTCUSD",
                symbol="BTC/USD:BTC",
                quote="USD",
                settle="BTC",
                linear=False,
                inverse=True,
                contractSize=100.0,
            ),
            market(id="BTCUSDT", symbol="BTC/USDT"),  # the same id again (spot): first wins
            market(id="ETHUSDT", swap=False),  # a dated future or spot
            market(id="LUNAUSDT", active=False),
        ],
        8.0,
    )
    assert sorted(got) == ["BTCUSD", "BTCUSDT"]
    assert got["BTCUSD"].instrument == Instrument("v", "BTCUSD", "BTC", "USD", False, 100.0, 8.0)
    assert (got["BTCUSD"].group, got["BTCUSDT"].group) == ("inverse", "linear:USDT")
    assert got["BTCUSDT"].unified == "BTC/USDT:USDT"


LINEAR = PolledMarket(Instrument("v", "BTC-USDT-SWAP", "BTC", "USDT", True, 0.01), "L", "")
INVERSE = PolledMarket(Instrument("v", "BTCUSD_PERP", "BTC", "USD", False, 100.0), "I", "")


@pytest.mark.parametrize(
    ("pm", "unit", "amount", "value", "expected"),
    [
        # ccxt's convention: contracts x contractSize = coin (linear) or USD (inverse)
        (LINEAR, "contracts", 2_000.0, None, (2_000.0, 20.0, 20.0 * 50_000)),
        (INVERSE, "contracts", 3_000.0, None, (3_000.0, 300_000 / 50_000, 300_000.0)),
        # the amount in coin (Bitget): native units are coin, on inverse swaps too
        (INVERSE, "base", 6.0, None, (6.0, 6.0, 300_000.0)),
        # only a value in the quote currency
        (LINEAR, "contracts", None, 1_000_000.0, (2_000.0, 20.0, 1_000_000.0)),
        (INVERSE, "contracts", None, 300_000.0, (3_000.0, 6.0, 300_000.0)),
    ],
)
def test_open_interest_units(
    pm: PolledMarket,
    unit: Any,
    amount: float | None,
    value: float | None,
    expected: tuple[float, float, float],
) -> None:
    oi = {"symbol": pm.unified, "openInterestAmount": amount, "openInterestValue": value,
          "timestamp": 1_700_000_000_000}  # fmt: skip
    ev = open_interest_event(oi, pm, 50_000.0, unit, RECV, ParseStats())
    assert ev is not None
    assert (ev.oi_contracts, ev.oi_base, ev.oi_usd) == pytest.approx(expected, rel=1e-12)
    assert (ev.ts_ms, ev.recv_ms, ev.base) == (1_700_000_000_000, RECV, "BTC")


def test_open_interest_without_amount_or_value_is_counted_and_dropped() -> None:
    stats = ParseStats()
    oi = {"symbol": "L", "openInterestAmount": None, "openInterestValue": None}
    assert open_interest_event(oi, LINEAR, 50_000.0, "contracts", RECV, stats) is None
    assert stats.errors == {"open_interest_without_amount": 1}


def test_funding_structure_gives_funding_per_interval_and_mark() -> None:
    rate = {"symbol": "L", "markPrice": 60001.0, "indexPrice": 59990.0, "timestamp": None,
            "fundingRate": 0.0004, "interval": "4h", "fundingTimestamp": None,
            "nextFundingTimestamp": 1_700_003_600_000}  # fmt: skip
    funding, mark = funding_events(rate, LINEAR, RECV, ParseStats())
    assert funding == FundingRate(
        venue="v", symbol="BTC-USDT-SWAP", base="BTC", ts_ms=RECV, recv_ms=RECV,
        funding_rate=0.0004, interval_h=4.0, funding_rate_1h=0.0001,
        next_funding_ms=1_700_003_600_000,
    )  # fmt: skip
    assert mark == MarkPrice(venue="v", symbol="BTC-USDT-SWAP", base="BTC", ts_ms=RECV,
                             recv_ms=RECV, mark_price=60001.0, index_price=59990.0)  # fmt: skip


def test_funding_without_rate_is_counted_and_a_missing_interval_takes_the_default() -> None:
    stats = ParseStats()
    events = funding_events({"symbol": "L", "fundingRate": None}, LINEAR, RECV, stats)
    assert events == []
    assert stats.errors == {"funding_without_rate": 1}
    assert [interval_h(i, 8.0) for i in ("1h", "30m", None, "8 hours", "0h")] == [
        1.0, 0.5, 8.0, 8.0, 8.0
    ]  # fmt: skip


def test_simulator_contracts_are_the_recorded_bitget_rows(captures: Path) -> None:
    recorded: dict[str, dict[str, Any]] = {}
    for line in (captures / "rest" / "BITGET.0.txt").read_text().splitlines():
        if "/market/contracts?productType=" in line:
            body = json.loads(line.split(": ", 1)[1])
            recorded |= {r["symbol"].split("_")[0]: r for r in body["data"]}
    for symbol, fields in RECORDED.items():
        rec = recorded[symbol]
        assert {k: rec[k] for k in fields} == fields, symbol
        row = v2_row(symbol)
        assert row["sizeMultiplier"] == rec["minTradeNum"]
        assert {k: row[k] for k in rec if k != "symbol"} == {
            k: v for k, v in rec.items() if k != "symbol"
        }


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "-inf", "x", 10**400, True, [1]])
def test_numbers_that_are_not_finite_are_absent_values_never_errors(bad: object) -> None:
    stats = ParseStats()
    rate = {"symbol": "L", "fundingRate": bad, "markPrice": bad, "timestamp": bad,
            "nextFundingTimestamp": bad}  # fmt: skip
    assert funding_events(rate, LINEAR, RECV, stats) == []
    assert stats.errors == {"funding_without_rate": 1}
    (funding,) = funding_events(rate | {"fundingRate": 0.0001}, LINEAR, RECV, stats)
    assert isinstance(funding, FundingRate)
    assert (funding.ts_ms, funding.next_funding_ms) == (RECV, None)  # the receive time
    oi = {"symbol": "L", "openInterestAmount": bad, "openInterestValue": bad, "timestamp": bad}
    assert open_interest_event(oi, LINEAR, 50_000.0, "contracts", RECV, stats) is None
