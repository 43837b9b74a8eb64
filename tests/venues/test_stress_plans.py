"""The venues' stress polling plans: what each calls, what each call costs against the venue's
published limits, and that each call's parser reads that endpoint's docs body (fixtures/stress).
The load of a plan at its nominal cadence is worked out here from the plan's own entries."""

from __future__ import annotations

import pytest
from stress_support import body, markets

from service.events import InsuranceFund, Positioning
from service.venues._stress import units_per_window
from service.venues.base import Instrument, ParseStats
from service.venues.binance import stress as binance
from service.venues.bybit import stress as bybit
from service.venues.gateio import stress as gate
from service.venues.okx import stress as okx

RECV = 1_800_000_000_000


def test_binance_plan_fills_the_futures_data_limit_at_200_symbols() -> None:
    symbols = [f"S{i}USDT" for i in range(200)]
    mk = markets("binance_usdm", {s: s[:-4] for s in symbols})
    plan = binance.plan("binance_usdm", mk, symbols)
    assert len(plan) == 2 + 5 * len(symbols)
    # five futures/data calls per symbol every 5 min: 1000 per 5 min, the whole limit
    assert units_per_window(plan, binance.FUTURES_DATA) == pytest.approx(1000)
    # two weight-1 calls every 5 min: 0.4 weight a minute of 2400
    assert units_per_window(plan, binance.WEIGHT) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="period"):
        binance.plan("binance_usdm", mk, symbols, period="7m")


def test_bybit_plan_is_a_few_requests_per_five_seconds_for_hundreds_of_symbols() -> None:
    symbols = [f"S{i}USDT" for i in range(300)]
    mk: dict[str, Instrument] = markets("bybit", {s: s[:-4] for s in symbols})
    mk["BTCUSD"] = Instrument(venue="bybit", symbol="BTCUSD", base="BTC", quote="USD",
                              linear=False, contract_size=1.0)  # fmt: skip
    plan = bybit.plan(mk, [*symbols, "BTCUSD"])
    per_5s = units_per_window(plan, bybit.IP_LIMIT)
    assert per_5s == pytest.approx(5 / 60 + 5 / 300 + 301 * 5 / 300)
    assert per_5s < bybit.IP_LIMIT.capacity / 100
    categories = {
        dict(r.params).get("category") for r in plan if r.path == bybit.ACCOUNT_RATIO_PATH
    }
    assert categories == {"linear", "inverse"}


def test_bybit_plan_entries_parse_their_endpoints_bodies() -> None:
    mk = markets("bybit", {"BTCUSDT": "BTC"})
    by_path = {r.path: r for r in bybit.plan(mk, ["BTCUSDT"])}
    stats = ParseStats()
    assert by_path[bybit.ADL_ALERT_PATH].parse(body("bybit_adl_alert.json"), RECV, stats)
    assert by_path[bybit.INSURANCE_PATH].parse(body("bybit_insurance.json"), RECV, stats)
    [ev] = by_path[bybit.ACCOUNT_RATIO_PATH].parse(body("bybit_account_ratio.json"), RECV, stats)
    assert isinstance(ev, Positioning)
    assert ev.period_s == bybit.PERIOD_S["5min"]
    assert not stats.errors


def test_okx_plan_binds_each_currency_to_its_own_parser() -> None:
    plan = okx.plan([("SWAP", "BTC-USDT"), ("OPTION", "ETH-USD")], ["BTC", "ETH"])
    ratios = [r for r in plan if r.path == okx.LONG_SHORT_PATH]
    stats = ParseStats()
    named = [r.parse(body("okx_long_short_account_ratio.json"), RECV, stats)[0].symbol
             for r in ratios]  # fmt: skip
    assert named == [dict(r.params)["ccy"] for r in ratios] == ["BTC", "ETH"]
    takers = [r for r in plan if r.path == okx.TAKER_PATH]
    assert all(dict(r.params)["instType"] == "CONTRACTS" for r in takers)
    [fund] = [r for r in plan if dict(r.params).get("instFamily") == "ETH-USD"]
    [ev] = fund.parse(body("okx_insurance_fund.json"), RECV, stats)
    assert isinstance(ev, InsuranceFund)
    assert not stats.errors


def test_okx_plan_load_per_endpoint_limit() -> None:
    families = [("SWAP", f"C{i}-USDT") for i in range(100)]
    ccys = [f"C{i}" for i in range(100)]
    plan = okx.plan(families, ccys)
    # each limit is per endpoint and IP, in 2 s windows
    assert units_per_window(plan, okx.INSURANCE_LIMIT) == pytest.approx(100 * 2 / 60)
    assert units_per_window(plan, okx.LONG_SHORT_LIMIT) == pytest.approx(100 * 2 / 300)
    assert units_per_window(plan, okx.TAKER_LIMIT) == pytest.approx(100 * 2 / 300)
    for limit in okx.LIMITS:
        assert units_per_window(plan, limit) <= limit.capacity


def test_gate_plan_one_stats_call_per_contract_on_its_settlement() -> None:
    symbols = [f"C{i}_USDT" for i in range(300)]
    mk: dict[str, Instrument] = markets("gateio", {s: s[:-5] for s in symbols})
    mk["BTC_USD"] = Instrument(venue="gateio", symbol="BTC_USD", base="BTC", quote="USD",
                               linear=False, contract_size=1.0)  # fmt: skip
    plan = gate.plan(mk, [*symbols, "BTC_USD"])
    assert {r.path for r in plan} == {
        "/api/v4/futures/usdt/contract_stats", "/api/v4/futures/btc/contract_stats",
    }  # fmt: skip
    # 301 calls every 5 min: about 10 in any 10 s, a twentieth of Gate's 200 per endpoint
    per_10s = units_per_window(plan, gate.CONTRACT_STATS_LIMIT)
    assert per_10s == pytest.approx(301 * 10 / 300)
    assert per_10s < gate.CONTRACT_STATS_LIMIT.capacity / 15
    [btc] = [r for r in plan if dict(r.params)["contract"] == "BTC_USD"]
    stats = ParseStats()
    events = btc.parse(body("gateio_contract_stats.json"), RECV, stats)
    assert [e.symbol for e in events] == ["BTC_USD"] * 4  # the rows do not name it
    assert all(isinstance(e, Positioning) and e.period_s == 300 for e in events)
    assert not stats.errors
    with pytest.raises(ValueError, match="interval"):
        gate.plan(mk, symbols, interval="7m")
