"""The OKX stress parsers on the docs' response examples (fixtures/stress), with the expected
values worked out here from the bodies."""

from __future__ import annotations

import pytest
from stress_support import body, doc

from service.events import InsuranceFund, Positioning, PositioningMetric
from service.venues.base import ParseStats
from service.venues.okx import stress

RECV = 1_800_000_000_000


def test_insurance_fund_balance_in_its_coin_and_the_family_total_in_usd() -> None:
    [fund] = doc("okx_insurance_fund.json")["data"]
    [detail] = fund["details"]
    stats = ParseStats()
    [ev] = stress.parse_insurance_fund(body("okx_insurance_fund.json"), RECV, stats)
    assert isinstance(ev, InsuranceFund)
    assert ev.pool == ev.symbol == f"{fund['instType']}:{fund['instFamily']}"
    assert ev.base == fund["instFamily"].split("-")[0]
    assert ev.asset == detail["ccy"]
    assert ev.balance == pytest.approx(float(detail["balance"]))
    assert ev.balance_usd == pytest.approx(float(fund["total"]))
    assert ev.change is None  # amt is "" on a regular_update row
    assert ev.ts_ms == int(detail["ts"])
    assert not stats.errors


def test_insurance_fund_takes_the_newest_row_and_its_change() -> None:
    answer = doc("okx_insurance_fund.json")
    [detail] = answer["data"][0]["details"]
    later = detail | {"type": "bankruptcy_loss", "amt": "-12.5", "balance": "1330.6308",
                      "ts": str(int(detail["ts"]) + 1000)}  # fmt: skip
    answer["data"][0]["details"] = [detail, later]
    [ev] = stress.parse_insurance_fund(answer, RECV, ParseStats())
    assert isinstance(ev, InsuranceFund)
    assert ev.balance == pytest.approx(float(later["balance"]))
    assert ev.change == pytest.approx(float(later["amt"]))


def test_long_short_ratio_and_the_long_share_it_implies() -> None:
    rows = doc("okx_long_short_account_ratio.json")["data"]
    events = stress.parse_long_short_ratio(
        body("okx_long_short_account_ratio.json"), "BTC", RECV, ParseStats(), stress.PERIOD_S["5m"]
    )
    assert len(events) == len(rows)
    for ev, (ts, ratio) in zip(events, rows, strict=True):
        assert isinstance(ev, Positioning)
        r = float(ratio)
        assert ev.metric is PositioningMetric.ACCOUNTS
        assert ev.long_short_ratio == ev.native_ratio == pytest.approx(r)
        assert ev.long_share == pytest.approx(r / (1 + r))
        assert (ev.symbol, ev.base, ev.ts_ms) == ("BTC", "BTC", int(ts))


def test_taker_volume_rows_are_ts_sell_buy() -> None:
    rows = doc("okx_taker_volume.json")["data"]
    events = stress.parse_taker_volume(
        body("okx_taker_volume.json"), "BTC", RECV, ParseStats(), stress.PERIOD_S["1D"]
    )
    assert len(events) == len(rows)
    for ev, (ts, sell, buy) in zip(events, rows, strict=True):
        assert isinstance(ev, Positioning)
        s, b = float(sell), float(buy)
        assert ev.metric is PositioningMetric.TAKER_VOLUME
        assert (ev.buy_volume, ev.sell_volume) == (pytest.approx(b), pytest.approx(s))
        assert ev.long_short_ratio == pytest.approx(b / s)
        assert ev.long_share == pytest.approx(b / (b + s))
        assert ev.ts_ms == int(ts)


def test_error_answer_and_short_rows_are_counted() -> None:
    stats = ParseStats()
    error = b'{"code":"51000","msg":"Parameter instType error","data":[]}'
    assert stress.parse_taker_volume(error, "BTC", RECV, stats, 300) == []
    assert stats.errors == {"venue_error": 1}
    stats = ParseStats()
    short = b'{"code":"0","msg":"","data":[["1630425600000","1.0"],["1630339200000","2","3"]]}'
    [ev] = stress.parse_taker_volume(short, "BTC", RECV, stats, 300)
    assert stats.errors == {"invalid_row": 1}
    assert isinstance(ev, Positioning)
    assert ev.long_short_ratio == pytest.approx(3 / 2)
