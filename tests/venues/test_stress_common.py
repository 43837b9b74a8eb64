"""What every venue's stress parser shares (service/venues/_stress.py) and the stress events
(service/events.py): the failure policy, the checks, the common scales, the encoding."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.events import (
    YEAR_MS,
    AdlLevel,
    AdlRisk,
    Basis,
    Event,
    InsuranceFund,
    Positioning,
    PositioningMetric,
    StressEvent,
    annualized_basis,
    decode,
    decode_stress,
    encode,
)
from service.venues import _stress
from service.venues.base import BUG, INVALID_JSON, TOO_DEEP, ParseError, ParseStats

TS = 1_700_000_000_000


def _positioning(**over: Any) -> Positioning:
    fields: dict[str, Any] = dict(
        venue="v", symbol="S", base="B", ts_ms=TS, recv_ms=TS, metric=PositioningMetric.ACCOUNTS,
        period_s=300, long_short_ratio=1.5, long_share=0.6,
    )  # fmt: skip
    return Positioning(**(fields | over))


def _basis(**over: Any) -> Basis:
    fields: dict[str, Any] = dict(
        venue="v", symbol="S", base="B", ts_ms=TS, recv_ms=TS, contract="perpetual",
        futures_price=101.0, index_price=100.0, basis=1.0, basis_rate=0.01, annualized_rate=None,
    )  # fmt: skip
    return Basis(**(fields | over))


EVENTS: list[StressEvent] = [
    AdlRisk(venue="bybit", symbol="BTCUSDT", base="BTC", ts_ms=TS, recv_ms=TS + 1,
            level=AdlLevel.HIGH, native="-0.25", native_kind="pnl_drawdown_ratio", trigger=-0.3,
            pool_balance=-5.5),
    InsuranceFund(venue="binance_usdm", symbol="ADAUSDT", base="*", ts_ms=TS, recv_ms=TS,
                  pool="ADAUSDT", asset="USDT", balance=1e8, balance_usd=1e8,
                  symbols=("ADAUSDT", "XRPUSDT"), change=-12.5),
    _positioning(buy_volume=3.0, sell_volume=2.0, native_ratio=1.49),
    _basis(contract="current_quarter", annualized_rate=0.12, expiry_ms=TS + 86_400_000),
]  # fmt: skip


@pytest.mark.parametrize("ev", EVENTS, ids=lambda e: type(e).__name__)
def test_stress_events_round_trip_through_json_with_their_kind(ev: StressEvent) -> None:
    data = encode(ev)
    assert decode_stress(data) == ev
    assert b'"type":"' + type(ev).__struct_config__.tag.encode() + b'"' in data  # type: ignore[union-attr]


def test_stress_events_are_not_market_events() -> None:
    """The collector's decoder refuses them: they join :data:`Event` with their wiring."""
    import msgspec

    with pytest.raises(msgspec.ValidationError):
        decode(encode(EVENTS[0]))
    assert not isinstance(EVENTS[0], Event.__args__)  # type: ignore[attr-defined]


def test_annualized_basis_is_the_rate_over_a_year_and_none_at_expiry() -> None:
    month = YEAR_MS // 12
    assert annualized_basis(0.01, TS, TS + month) == pytest.approx(0.12)
    assert annualized_basis(0.01, TS, TS) is None
    assert annualized_basis(0.01, TS + 1, TS) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, AdlLevel.LOW), (0.1, AdlLevel.LOW), (-0.09, AdlLevel.LOW), (-0.1, AdlLevel.MEDIUM),
     (-0.2, AdlLevel.HIGH), (-0.3, AdlLevel.HIGH), (-0.31, AdlLevel.ACTIVE)],
)  # fmt: skip
def test_level_of_progress_in_thirds(value: float, expected: AdlLevel) -> None:
    assert _stress.level_of_progress(value, -0.3) is expected


def test_rating_words_map_onto_the_scale_and_others_raise() -> None:
    assert [_stress.level_of_rating(w) for w in ("low", "Medium", " HIGH ")] == [
        AdlLevel.LOW, AdlLevel.MEDIUM, AdlLevel.HIGH,
    ]  # fmt: skip
    with pytest.raises(ParseError, match="unknown_rating"):
        _stress.level_of_rating("severe")


@pytest.mark.parametrize(
    ("ev", "reason"),
    [
        (_positioning(long_share=1.2), "bad_share"),
        (_positioning(long_short_ratio=-1.0), "bad_ratio"),
        (_positioning(long_short_ratio=math.nan), "non_finite"),
        (_positioning(period_s=0), "bad_time"),
        (_positioning(ts_ms=-1), "bad_time"),
        (_basis(index_price=0.0), "bad_price"),
        (_basis(basis=1e19), "too_large"),
        (_basis(annualized_rate=math.inf), "non_finite"),
    ],
)
def test_problem_names_what_cannot_be_real(ev: StressEvent, reason: str) -> None:
    assert _stress.problem(ev) == reason


@pytest.mark.parametrize("ev", EVENTS, ids=lambda e: type(e).__name__)
def test_real_looking_events_have_no_problem(ev: StressEvent) -> None:
    assert _stress.problem(ev) is None


def test_read_counts_a_body_too_deep_for_the_decoder() -> None:
    stats = ParseStats()
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _stress.read("v", stats, deep, lambda doc: []) == []
    assert set(stats.errors) <= {TOO_DEEP, INVALID_JSON}
    assert sum(stats.errors.values()) == 1


def test_read_counts_a_parser_bug_and_drops_the_body() -> None:
    def broken(doc: Any) -> list[StressEvent]:
        return [1 / 0]  # type: ignore[list-item]

    stats = ParseStats()
    assert _stress.read("v", stats, b"[]", broken) == []
    assert stats.errors == {BUG: 1}


def test_read_drops_an_event_that_fails_the_checks_and_keeps_the_others() -> None:
    stats = ParseStats()
    good, bad = _positioning(), _positioning(long_share=2.0)
    assert _stress.read("v", stats, b"[]", lambda doc: [good, bad]) == [good]
    assert stats.errors == {"bad_share": 1}
