"""The report of ``deleverage check-venues``, pure: the table's rows and verdicts, the problems
under it, and the JSON."""

from __future__ import annotations

import json

from service.collect.probe import ChannelCheck, VenueCheck, sample_symbols
from service.collect.probe_report import as_json, table
from service.config import VenueSettings
from service.venues.base import Instrument


def _results() -> list[VenueCheck]:
    ok = ChannelCheck("tickers", "every 100 ms", periodic=True, connected=True,
                      acknowledged=True, first_frame_s=0.25, frames=3, events=9)  # fmt: skip
    ok.fields.rows = 3
    silent = ChannelCheck("open-interest", "every 3 s", periodic=True, connected=True,
                          acknowledged=True)  # fmt: skip
    silent.problems.append("okx open-interest: no frame within 5 s (documented: every 3 s)")
    bybit = VenueCheck("bybit", instruments=12, symbols=["BTCUSDT"], channels=[ok])
    okx = VenueCheck("okx", instruments=4, symbols=["BTC-USDT-SWAP"], channels=[silent])
    gone = VenueCheck("gateio", problems=["gateio: the instrument listing at x failed: y"])
    return [bybit, gone, okx]


def test_the_table_has_a_row_per_channel_and_the_problems_under_it() -> None:
    lines = table(_results()).splitlines()
    rows = [line.split() for line in lines[2:7]]
    assert rows[0] == ["bybit", "instruments", "(REST)", "yes", "-", "-", "12", "-", "OK"]
    assert rows[1] == ["bybit", "tickers", "yes", "yes", "0.2", "s", "9", "0", "OK"]
    assert rows[2] == ["gateio", "instruments", "(REST)", "NO", "-", "-", "0", "-", "FAIL"]
    assert rows[4] == ["okx", "open-interest", "yes", "yes", "-", "0", "-", "FAIL"]
    failed = lines[lines.index("FAILED:") + 1 :]
    assert failed[:2] == [
        "  gateio: the instrument listing at x failed: y",
        "  okx open-interest: no frame within 5 s (documented: every 3 s)",
    ]
    assert lines[-1] == "3 venue(s) checked: FAIL"


def test_the_json_says_ok_only_without_a_failure() -> None:
    report = json.loads(as_json(_results()))
    assert report["ok"] is False
    assert [v["verdict"] for v in report["venues"]] == ["ok", "fail", "fail"]
    assert report["venues"][0]["channels"][0]["first_frame_after_s"] == 0.25
    assert json.loads(as_json(_results()[:1]))["ok"] is True


def test_sampled_symbols_take_btc_and_eth_first_per_kind_of_contract() -> None:
    def inst(symbol: str, base: str, quote: str, linear: bool) -> Instrument:
        return Instrument("v", symbol, base, quote, linear)

    markets = {i.symbol: i for i in (
        inst("AAVEUSDT", "AAVE", "USDT", True), inst("BTCUSDT", "BTC", "USDT", True),
        inst("ETHUSDT", "ETH", "USDT", True), inst("ADAUSD", "ADA", "USD", False),
        inst("BTCPERP", "BTC", "USDC", True), inst("XRPUSD", "XRP", "USD", False),
    )}  # fmt: skip
    assert sample_symbols(markets, VenueSettings(), 2) == [
        "ADAUSD", "BTCPERP", "BTCUSDT", "ETHUSDT", "XRPUSD",
    ]  # fmt: skip
    assert sample_symbols(markets, VenueSettings(symbols=["XRPUSD", "NOPE"])) == ["XRPUSD"]
