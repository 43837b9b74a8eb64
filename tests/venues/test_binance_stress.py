"""The Binance stress parsers on the docs' response examples (fixtures/stress), with the
expected values worked out here from the bodies themselves."""

from __future__ import annotations

import pytest
from stress_support import body, doc, markets

from service.events import AdlLevel, AdlRisk, Basis, InsuranceFund, Positioning, PositioningMetric
from service.venues.base import INVALID_JSON, ParseStats
from service.venues.binance import stress
from service.venues.binance.stress import PERIOD_S

USDM = "binance_usdm"
COINM = "binance_coinm"
RECV = 1_800_000_000_000
MARKETS = markets(USDM, {"BTCUSDT": "BTC", "ETHUSDT": "ETH", "ACTUSDT": "ACT", "OMUSDT": "OM"})


def test_adl_risk_array_maps_each_rating_and_keeps_the_native_word() -> None:
    stats = ParseStats()
    events = stress.parse_adl_risk(
        USDM, body("binance_usdm_symbol_adl_risk.json"), MARKETS, RECV, stats
    )
    rows = doc("binance_usdm_symbol_adl_risk.json")
    assert [e.symbol for e in events] == [r["symbol"] for r in rows]
    for ev, row in zip(events, rows, strict=True):
        assert isinstance(ev, AdlRisk)
        assert ev.native == row["adlRisk"]
        assert ev.level == {"low": AdlLevel.LOW, "high": AdlLevel.HIGH}[row["adlRisk"]]
        assert ev.ts_ms == row["updateTime"]
        assert ev.base == MARKETS[row["symbol"]].base
    assert not stats.errors


def test_adl_risk_object_form_gives_one_event() -> None:
    stats = ParseStats()
    events = stress.parse_adl_risk(
        USDM, body("binance_usdm_symbol_adl_risk_one.json"), MARKETS, RECV, stats
    )
    assert len(events) == 1
    assert events[0].symbol == doc("binance_usdm_symbol_adl_risk_one.json")["symbol"]


def test_adl_risk_unknown_rating_is_counted_and_the_other_rows_kept() -> None:
    rows = doc("binance_usdm_symbol_adl_risk.json")
    rows[1]["adlRisk"] = "extreme"
    stats = ParseStats()
    events = stress.parse_adl_risk(USDM, rows, MARKETS, RECV, stats)
    assert [e.symbol for e in events] == [rows[0]["symbol"]]
    assert stats.errors == {"unknown_rating": 1}


def test_adl_risk_of_unlisted_symbols_is_filtered() -> None:
    stats = ParseStats()
    only_btc = {"BTCUSDT": MARKETS["BTCUSDT"]}
    events = stress.parse_adl_risk(
        USDM, body("binance_usdm_symbol_adl_risk.json"), only_btc, RECV, stats
    )
    assert [e.symbol for e in events] == ["BTCUSDT"]
    assert stats.filtered == 1
    assert not stats.errors


def test_insurance_balance_one_event_per_pool_and_asset() -> None:
    stats = ParseStats()
    events = stress.parse_insurance_balance(
        USDM, body("binance_usdm_insurance_balance.json"), MARKETS, RECV, stats
    )
    pools = doc("binance_usdm_insurance_balance.json")
    expected = [(sorted(p["symbols"])[0], a) for p in pools for a in p["assets"]]
    assert len(events) == len(expected)
    for ev, (pool, asset) in zip(events, expected, strict=True):
        assert isinstance(ev, InsuranceFund)
        assert ev.pool == ev.symbol == pool
        assert ev.asset == asset["asset"]
        assert ev.balance == pytest.approx(float(asset["marginBalance"]))
        assert ev.balance_usd == pytest.approx(float(asset["marginBalance"]))  # USDT at par
        assert ev.ts_ms == asset["updateTime"]
    # The second pool covers four bases: ACT, MUBARAK, OM, TST; two of them are listed here.
    assert events[1].base == "*"
    assert not stats.errors


def test_insurance_balance_values_only_stablecoins_and_given_prices() -> None:
    stats = ParseStats()
    pool = doc("binance_usdm_insurance_balance_one.json")
    btc_usd = 60_000.0
    events = stress.parse_insurance_balance(
        USDM, body("binance_usdm_insurance_balance_one.json"), MARKETS, RECV, stats,
        usd_prices={"BTC": btc_usd},
    )  # fmt: skip
    by_asset = {e.asset: e for e in events if isinstance(e, InsuranceFund)}
    balances = {a["asset"]: float(a["marginBalance"]) for a in pool["assets"]}
    assert by_asset.keys() == balances.keys()
    assert by_asset["USDC"].balance_usd == pytest.approx(balances["USDC"])
    assert by_asset["USDT"].balance_usd == pytest.approx(balances["USDT"])
    assert by_asset["BTC"].balance_usd == pytest.approx(balances["BTC"] * btc_usd)
    assert by_asset["BNFCR"].balance_usd is None
    assert by_asset["BTC"].symbols == tuple(sorted(pool["symbols"]))
    assert by_asset["BTC"].pool == min(pool["symbols"])


@pytest.mark.parametrize(
    ("name", "metric"),
    [
        ("binance_usdm_global_long_short_account_ratio.json", PositioningMetric.ACCOUNTS),
        ("binance_usdm_top_long_short_account_ratio.json", PositioningMetric.TOP_ACCOUNTS),
        ("binance_usdm_top_long_short_position_ratio.json", PositioningMetric.TOP_POSITIONS),
    ],
)
def test_long_short_ratio_from_the_shares_with_the_native_ratio_kept(
    name: str, metric: PositioningMetric
) -> None:
    stats = ParseStats()
    events = stress.parse_long_short(USDM, body(name), MARKETS, RECV, stats, metric, PERIOD_S["5m"])
    rows = doc(name)
    assert len(events) == len(rows)
    for ev, row in zip(events, rows, strict=True):
        assert isinstance(ev, Positioning)
        long, short = float(row["longAccount"]), float(row["shortAccount"])
        assert ev.metric is metric
        assert ev.period_s == 300
        assert ev.long_short_ratio == pytest.approx(long / short)
        assert ev.long_share == pytest.approx(long / (long + short))
        assert ev.native_ratio == pytest.approx(float(row["longShortRatio"]))
        assert ev.ts_ms == int(row["timestamp"])


def test_global_ratio_example_disagrees_with_its_shares_and_the_shares_win() -> None:
    """The docs' first row says 0.1960 for shares 0.6622/0.3378 (1.960): the event keeps both."""
    [first, _] = stress.parse_long_short(
        USDM, body("binance_usdm_global_long_short_account_ratio.json"), MARKETS, RECV,
        ParseStats(), PositioningMetric.ACCOUNTS, 300,
    )  # fmt: skip
    assert isinstance(first, Positioning)
    assert first.native_ratio is not None
    assert first.long_short_ratio == pytest.approx(first.native_ratio * 10, rel=1e-3)


def test_taker_volume_ratio_and_share_from_the_volumes() -> None:
    stats = ParseStats()
    events = stress.parse_taker_volume(
        USDM, body("binance_usdm_taker_long_short_ratio.json"), MARKETS["BTCUSDT"], RECV, stats,
        PERIOD_S["1h"],
    )  # fmt: skip
    rows = doc("binance_usdm_taker_long_short_ratio.json")
    assert len(events) == len(rows)
    for ev, row in zip(events, rows, strict=True):
        assert isinstance(ev, Positioning)
        buy, sell = float(row["buyVol"]), float(row["sellVol"])
        assert ev.metric is PositioningMetric.TAKER_VOLUME
        assert (ev.buy_volume, ev.sell_volume) == (pytest.approx(buy), pytest.approx(sell))
        assert ev.long_short_ratio == pytest.approx(buy / sell)
        assert ev.native_ratio == pytest.approx(float(row["buySellRatio"]))
        assert ev.long_share == pytest.approx(buy / (buy + sell))
        assert ev.symbol == "BTCUSDT"
    # The docs' first row agrees with its volumes to the published 4 decimals; the second
    # (343.929 / 248.503 = 1.384, published 1.3104) does not: the volumes win.
    assert events[0].long_short_ratio == pytest.approx(float(rows[0]["buySellRatio"]), abs=1e-4)


def test_perpetual_basis_from_the_prices_without_an_annual_rate() -> None:
    stats = ParseStats()
    [ev] = stress.parse_basis(USDM, body("binance_usdm_basis.json"), MARKETS, RECV, stats)
    [row] = doc("binance_usdm_basis.json")
    assert isinstance(ev, Basis)
    fut, idx = float(row["futuresPrice"]), float(row["indexPrice"])
    assert ev.symbol == row["pair"]
    assert ev.contract == "perpetual"
    assert ev.basis == pytest.approx(fut - idx)
    assert ev.basis == pytest.approx(float(row["basis"]))
    assert ev.basis_rate == pytest.approx((fut - idx) / idx)
    assert ev.basis_rate == pytest.approx(float(row["basisRate"]), abs=5e-5)  # venue rounds
    assert ev.annualized_rate is None
    assert ev.ts_ms == row["timestamp"]


def test_dated_basis_keeps_the_venue_annual_rate_and_names_the_contract() -> None:
    coinm = {"BTCUSD_PERP": markets(COINM, {"BTCUSD_PERP": "BTC"})["BTCUSD_PERP"]}
    [ev] = stress.parse_basis(COINM, body("binance_coinm_basis.json"), coinm, RECV, ParseStats())
    [row] = doc("binance_coinm_basis.json")
    assert isinstance(ev, Basis)
    assert ev.symbol == f"{row['pair']}:{row['contractType'].lower()}"
    assert ev.base == "BTC"
    assert ev.annualized_rate == pytest.approx(float(row["annualizedBasisRate"]))
    idx = float(row["indexPrice"])
    assert ev.basis_rate == pytest.approx((float(row["futuresPrice"]) - idx) / idx)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<html>502</html>", INVALID_JSON),
        (b'{"code":-1121,"msg":"Invalid symbol."}', "invalid_frame"),
        (b'[{"symbol":"BTCUSDT","longShortRatio":"x","longAccount":"0.5","shortAccount":"0.5",'
         b'"timestamp":"1"}]', "invalid_row"),
        (b'[{"symbol":"BTCUSDT","longShortRatio":"1","longAccount":"NaN","shortAccount":"0.5",'
         b'"timestamp":"1"}]', "invalid_row"),
        (b'[{"symbol":"BTCUSDT","longShortRatio":"1","longAccount":"0","shortAccount":"0",'
         b'"timestamp":"1"}]', "bad_share"),
    ],
)  # fmt: skip
def test_bad_long_short_bodies_are_counted_never_raised(payload: bytes, reason: str) -> None:
    stats = ParseStats()
    events = stress.parse_long_short(
        USDM, payload, MARKETS, RECV, stats, PositioningMetric.ACCOUNTS, 300
    )
    assert events == []
    assert stats.errors == {reason: 1}


def test_a_basis_with_a_zero_index_is_dropped_and_counted() -> None:
    rows = doc("binance_usdm_basis.json")
    rows[0]["indexPrice"] = "0"
    stats = ParseStats()
    assert stress.parse_basis(USDM, rows, MARKETS, RECV, stats) == []
    assert stats.errors == {"bad_price": 1}
