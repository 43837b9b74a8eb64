"""The stress parsers on hostile bodies: the docs' examples (fixtures/stress) mutated by the
venue parsers' fuzzer (fuzz_support.Mutator: bad numbers, type swaps, missing keys,
truncation, deep nesting, garbage). Nothing escapes a parser and nothing it emits fails the
stress checks; what it drops is counted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fuzz_support import Mutator
from stress_support import FIXTURES, linear, markets

from service.events import PositioningMetric, StressEvent
from service.venues import _stress
from service.venues.base import BUG, ParseStats
from service.venues.binance import stress as binance
from service.venues.bybit import stress as bybit
from service.venues.gateio import stress as gateio
from service.venues.okx import stress as okx

RECV = 1_800_000_000_000
N = 600
Parse = Callable[[str | bytes, ParseStats], list[StressEvent]]
BIN = markets("binance_usdm", {"BTCUSDT": "BTC", "ETHUSDT": "ETH", "ACTUSDT": "ACT"})
BYB = markets("bybit", {s: s[:-4] for s in ("BTCUSDT", "FWOGUSDT", "ZORAUSDT", "BERAUSDT",
                                            "GRIFFAINUSDT", "CGPTUSDT")})  # fmt: skip
COINM = markets("binance_coinm", {"BTCUSD_PERP": "BTC"})

PARSERS: dict[str, Parse] = {
    "binance_usdm_symbol_adl_risk.json":
        lambda b, s: binance.parse_adl_risk("binance_usdm", b, BIN, RECV, s),
    "binance_usdm_insurance_balance_one.json":
        lambda b, s: binance.parse_insurance_balance("binance_usdm", b, BIN, RECV, s),
    "binance_usdm_global_long_short_account_ratio.json":
        lambda b, s: binance.parse_long_short("binance_usdm", b, BIN, RECV, s,
                                              PositioningMetric.ACCOUNTS, 300),
    "binance_usdm_taker_long_short_ratio.json":
        lambda b, s: binance.parse_taker_volume("binance_usdm", b, BIN["BTCUSDT"], RECV, s, 300),
    "binance_coinm_basis.json":
        lambda b, s: binance.parse_basis("binance_coinm", b, COINM, RECV, s),
    "bybit_adl_alert.json": lambda b, s: bybit.parse_adl_alert(b, BYB, RECV, s),
    "bybit_adl_alert_ws.json": lambda b, s: bybit.parse_adl_alert_frame(b, BYB, RECV, s),
    "bybit_insurance.json": lambda b, s: bybit.parse_insurance(b, BYB, RECV, s),
    "bybit_insurance_ws.json": lambda b, s: bybit.parse_insurance_frame(b, BYB, RECV, s),
    "bybit_account_ratio.json": lambda b, s: bybit.parse_account_ratio(b, BYB, RECV, s, 300),
    "okx_insurance_fund.json": lambda b, s: okx.parse_insurance_fund(b, RECV, s),
    "okx_long_short_account_ratio.json":
        lambda b, s: okx.parse_long_short_ratio(b, "BTC", RECV, s, 300),
    "okx_taker_volume.json": lambda b, s: okx.parse_taker_volume(b, "BTC", RECV, s, 300),
    "gateio_contract_stats.json":
        lambda b, s: gateio.parse_contract_stats(b, linear("gateio", "BTC_USDT", "BTC"), RECV,
                                                 s, 300),
}  # fmt: skip


def test_every_fixture_has_a_fuzzed_parser() -> None:
    assert {p.name for p in FIXTURES.glob("*.json")} - set(PARSERS) <= {
        "binance_usdm_symbol_adl_risk_one.json",
        "binance_usdm_insurance_balance.json",
        "binance_usdm_top_long_short_account_ratio.json",
        "binance_usdm_top_long_short_position_ratio.json",
        "binance_usdm_basis.json",
    }  # the same parsers as fuzzed ones, on other bodies of theirs


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_mutated_bodies_never_escape_and_never_emit_impossible_events(name: str) -> None:
    parse = PARSERS[name]
    original = (FIXTURES / name).read_text()
    stats = ParseStats()
    assert parse(original, stats), "the intact body gives events"
    mutator = Mutator([original], seed=17)
    emitted = 0
    for _ in range(N):
        _, body = mutator.mutate()
        events = parse(body, stats)  # raises nothing: that is the test
        emitted += len(events)
        assert all(_stress.problem(e) is None for e in events)
    assert sum(stats.errors.values()) > 0  # the mutations were seen and counted
    assert BUG not in stats.errors  # as what they are: a bad body is never a parser bug
    assert emitted > 0  # and some (left intact or harmless) still parsed
