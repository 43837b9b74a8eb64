"""The event checks: each rule on its own, its bounds, and the storage boundary's counting."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest
import structlog

from service.events import (
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
)
from service.validate import (
    FUTURE_SLACK_MS,
    MAX_VALUE,
    NEXT_FUNDING_AHEAD_MS,
    TS_MIN_MS,
    Boundary,
    check,
    problem,
)

NOW = 1_780_000_000_000
COMMON: dict[str, Any] = {"venue": "v", "symbol": "BTCUSDT", "base": "BTC", "ts_ms": NOW - 5,
                          "recv_ms": NOW}  # fmt: skip
NAN, INF = float("nan"), float("inf")


def mark(**kw: Any) -> MarkPrice:
    return MarkPrice(**(COMMON | {"mark_price": 100.0, "index_price": 99.0} | kw))


def liquidation(**kw: Any) -> Liquidation:
    fields = {"side": Side.LONG, "price": 100.0, "quantity": 2.0, "quantity_base": 2.0,
              "notional_usd": 200.0, "sampled": False, "event_id": "1"}  # fmt: skip
    return Liquidation(**(COMMON | fields | kw))


def open_interest(**kw: Any) -> OpenInterest:
    return OpenInterest(**(COMMON | {"oi_contracts": 5.0, "oi_base": 5.0, "oi_usd": 500.0} | kw))


def funding(**kw: Any) -> FundingRate:
    fields = {"funding_rate": 0.0008, "interval_h": 8.0, "funding_rate_1h": 0.0001,
              "next_funding_ms": NOW + 3_600_000}  # fmt: skip
    return FundingRate(**(COMMON | fields | kw))


def book_top(**kw: Any) -> BookTop:
    fields = {"bid_price": 99.9, "ask_price": 100.1, "bid_base": 2.0, "ask_base": 1.0,
              "bid_usd": 199.8, "ask_usd": 100.1, "spread_bp": 20.0}  # fmt: skip
    return BookTop(**(COMMON | fields | kw))


def volume(**kw: Any) -> Volume:
    fields = {"taker_buy_base": 2.0, "taker_buy_usd": 200.0, "taker_sell_base": 0.0,
              "taker_sell_usd": 0.0, "trades": 3}  # fmt: skip
    return Volume(**(COMMON | fields | kw))


def book_depth(**kw: Any) -> BookDepth:
    fields = {"mid": 100.0, "bid_usd_0p5": 1e3, "bid_usd_1": 2e3, "bid_usd_2": 3e3,
              "ask_usd_0p5": 1e3, "ask_usd_1": 1e3, "ask_usd_2": 4e3, "bid_reach_pct": 0.3,
              "ask_reach_pct": 2.5}  # fmt: skip
    return BookDepth(**(COMMON | fields | kw))


VALID = [
    mark(),
    volume(),
    book_depth(),
    book_depth(bid_usd_0p5=0.0, bid_usd_1=0.0, bid_usd_2=0.0, bid_reach_pct=0.0),
    book_top(),
    book_top(bid_price=100.0, ask_price=100.0, spread_bp=0.0),  # locked, for an instant
    book_top(bid_base=0.0, bid_usd=0.0),
    mark(index_price=None),
    liquidation(),
    liquidation(quantity=0.0, quantity_base=0.0, notional_usd=0.0),
    open_interest(oi_contracts=0.0, oi_base=0.0, oi_usd=0.0),
    funding(),
    funding(funding_rate=-1.0, funding_rate_1h=-1.0, interval_h=1.0, next_funding_ms=None),
    funding(interval_h=168.0),
    mark(ts_ms=TS_MIN_MS),
    mark(ts_ms=NOW + FUTURE_SLACK_MS),
    funding(next_funding_ms=NOW + NEXT_FUNDING_AHEAD_MS),
    liquidation(price=1e-9, event_id="x" * 256),
]


@pytest.mark.parametrize("event", VALID, ids=repr)
def test_real_events_pass(event: Event) -> None:
    assert problem(event) is None
    assert check(event, NOW) is None


INVALID = [
    (mark(mark_price=NAN), "non_finite"),
    (mark(index_price=INF), "non_finite"),
    (liquidation(price=NAN, quantity=-1.0), "non_finite"),
    (open_interest(oi_usd=-INF), "non_finite"),
    (funding(funding_rate=NAN), "non_finite"),
    (funding(funding_rate_1h=INF), "non_finite"),
    (funding(interval_h=NAN), "non_finite"),
    (liquidation(quantity=-26083968.0), "negative"),
    (liquidation(notional_usd=-1.0), "negative"),
    (open_interest(oi_base=-0.5), "negative"),
    (mark(mark_price=0.0), "bad_price"),
    (mark(mark_price=-3.0), "bad_price"),
    (mark(index_price=0.0), "bad_price"),
    (liquidation(price=0.0), "bad_price"),
    (mark(mark_price=MAX_VALUE), "too_large"),
    (open_interest(oi_usd=1e300), "too_large"),
    (liquidation(quantity_base=1e19), "too_large"),
    (funding(funding_rate=1.01), "bad_funding"),
    (funding(funding_rate_1h=-2.0), "bad_funding"),
    (funding(interval_h=0.0), "bad_funding"),
    (funding(interval_h=169.0), "bad_funding"),
    (mark(ts_ms=-1), "bad_time"),
    (mark(ts_ms=10**400), "bad_time"),
    (funding(next_funding_ms=-5), "bad_time"),
    (liquidation(side="hold"), "bad_side"),
    (liquidation(event_id="1" * 257), "bad_id"),
    (book_top(ask_price=NAN), "non_finite"),
    (book_top(bid_usd=-1.0), "negative"),
    (book_top(bid_price=0.0), "bad_price"),
    (book_top(ask_base=1e19), "too_large"),
    (book_top(bid_price=100.2), "crossed_book"),
    (volume(taker_sell_usd=NAN), "non_finite"),
    (volume(taker_buy_base=-1.0), "negative"),
    (volume(trades=-1), "negative"),
    (volume(taker_buy_usd=1e19), "too_large"),
    (book_depth(ask_usd_1=NAN), "non_finite"),
    (book_depth(bid_reach_pct=INF), "non_finite"),
    (book_depth(bid_usd_2=-1.0), "negative"),
    (book_depth(mid=0.0), "bad_price"),
    (book_depth(ask_usd_2=1e19), "too_large"),
]


@pytest.mark.parametrize(("event", "reason"), INVALID, ids=repr)
def test_impossible_events_are_named_by_their_first_problem(event: Event, reason: str) -> None:
    assert problem(event) == reason
    assert check(event, NOW) == reason


@pytest.mark.parametrize(
    "event",
    [
        mark(ts_ms=TS_MIN_MS - 1),  # before 2015
        mark(ts_ms=NOW + FUTURE_SLACK_MS + 1),  # more than an hour ahead of receipt
        liquidation(ts_ms=1000),
        funding(next_funding_ms=NOW + NEXT_FUNDING_AHEAD_MS + 1),
        funding(next_funding_ms=1000),
    ],
    ids=repr,
)
def test_times_are_checked_against_the_clock_at_the_boundary(event: Event) -> None:
    assert problem(event) is None  # plausible epoch milliseconds, without a clock
    assert check(event, NOW) == "bad_time"


def test_a_nan_event_could_not_be_decoded_once_stored() -> None:
    """Why NaN may never reach storage: JSON has no NaN, so it is written as null."""
    encoded = msgspec.json.encode(mark(mark_price=NAN))
    assert b'"mark_price":null' in encoded


def test_the_boundary_keeps_valid_lists_as_they_are_and_counts_the_rest_once_logged() -> None:
    counts: Counter[str] = Counter()
    boundary = Boundary("v", counts)
    valid: list[Event] = [mark(), liquidation()]
    assert boundary.keep(valid, NOW) is valid  # no copy on the common path
    mixed: list[Event] = [mark(), mark(mark_price=NAN), liquidation(quantity=-1.0),
                          liquidation(), mark(ts_ms=NOW + 2 * FUTURE_SLACK_MS)]  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        kept = boundary.keep(mixed, NOW)
        boundary.keep([mark(mark_price=INF)], NOW)
    assert kept == [mixed[0], mixed[3]]
    assert counts == {"non_finite": 2, "negative": 1, "bad_time": 1}
    assert sorted(x["reason"] for x in logs) == ["bad_time", "negative", "non_finite"]
    assert all(x["venue"] == "v" and x["sample"].startswith(("MarkPrice(", "Liquidation("))
               for x in logs)  # fmt: skip


def test_events_a_parser_checked_already_have_only_their_times_checked() -> None:
    counts: Counter[str] = Counter()
    events: list[Event] = [
        mark(),
        mark(ts_ms=NOW + 2 * FUTURE_SLACK_MS),
        funding(next_funding_ms=1),
    ]
    assert Boundary("v", counts).keep(events, NOW, parsed=True) == [events[0]]
    assert counts == {"bad_time": 2}
