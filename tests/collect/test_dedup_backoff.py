from __future__ import annotations

import random
import tracemalloc

import msgspec

from service.backoff import Backoff
from service.events import Liquidation, MarkPrice, OpenInterest, Side
from service.venues.dedup import Deduplicator


def _mark(ts: int, symbol: str = "BTCUSDT") -> MarkPrice:
    return MarkPrice(
        venue="v", symbol=symbol, base="BTC", ts_ms=ts, recv_ms=ts, mark_price=1.0, index_price=None
    )


def _liq(ts: int, qty: float = 1.0) -> Liquidation:
    return Liquidation(
        venue="v",
        symbol="BTCUSDT",
        base="BTC",
        ts_ms=ts,
        recv_ms=ts,
        side=Side.LONG,
        price=1.0,
        quantity=qty,
        quantity_base=qty,
        notional_usd=qty,
        sampled=True,
    )


def test_the_same_frame_from_two_connections_counts_once() -> None:
    dedup = Deduplicator()
    frame = [_mark(1000), _mark(1000, "ETHUSDT"), _liq(1000)]
    assert dedup.filter(frame) == frame
    assert dedup.filter(frame) == []  # the overlapping connection's copy
    assert dedup.dropped == 3
    assert dedup.counts == {"state": 2, "liquidation": 1}  # (a collector's health, exported)


def test_older_state_is_dropped_but_newer_and_other_kinds_pass() -> None:
    dedup = Deduplicator()
    dedup.filter([_mark(2000)])
    oi = OpenInterest(
        venue="v",
        symbol="BTCUSDT",
        base="BTC",
        ts_ms=1500,
        recv_ms=1,
        oi_contracts=1,
        oi_base=1,
        oi_usd=1,
    )
    assert dedup.filter([_mark(1999), _mark(2001), oi]) == [_mark(2001), oi]


def test_what_was_stored_before_a_restart_is_taken_as_seen_but_liquidations_are_not() -> None:
    dedup = Deduplicator()
    dedup.remember([_mark(2000), _mark(1000), _liq(2000)])  # the newest stored state wins
    assert dedup.filter([_mark(2000), _mark(2001), _liq(2000)]) == [_mark(2001), _liq(2000)]


def test_distinct_liquidations_in_the_same_millisecond_are_all_kept() -> None:
    dedup = Deduplicator()
    batch = [_liq(5, qty=1.0), _liq(5, qty=2.0)]
    assert dedup.filter(batch) == batch


def test_liquidation_memory_is_bounded() -> None:
    dedup = Deduplicator(liquidation_memory=3)
    dedup.filter([_liq(i) for i in range(10)])
    assert dedup.filter([_liq(0)]) == [_liq(0)]  # forgotten: old enough to be new again
    assert dedup.filter([_liq(9)]) == []


def test_the_oldest_liquidations_are_forgotten_first_and_the_others_remembered() -> None:
    dedup = Deduplicator(liquidation_memory=3)
    assert dedup.filter([_liq(i) for i in range(10)]) == [_liq(i) for i in range(10)]
    assert dedup.filter([_liq(7), _liq(8), _liq(9)]) == []  # the last three
    assert dedup.filter([_liq(6)]) == [_liq(6)]  # forgets 7
    assert dedup.filter([_liq(8), _liq(9), _liq(6)]) == []
    assert dedup.filter([_liq(7)]) == [_liq(7)]
    assert dedup.dropped == 6


def test_a_liquidation_with_an_event_id_is_identified_by_it_alone() -> None:
    dedup = Deduplicator()
    first = msgspec.structs.replace(_liq(1000), event_id="42")
    resent = msgspec.structs.replace(first, recv_ms=2000, quantity=2.0)  # the same id
    other = msgspec.structs.replace(first, event_id="43")
    assert dedup.filter([first, resent, other]) == [first, other]


def test_a_remembered_liquidation_costs_under_100_bytes() -> None:
    # The identities are kept as hashes: 160-220 bytes each as tuples in an ordered dict,
    # 86 as hashes (the set's table at 100,000 is about half of that).
    n = 100_000
    liqs = [_liq(i) for i in range(n)]
    dedup = Deduplicator(liquidation_memory=n)
    tracemalloc.start()
    try:
        dedup.filter(liqs)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / n < 100


def test_backoff_grows_with_jitter_caps_and_resets() -> None:
    b = Backoff(initial_s=1.0, max_s=8.0, _rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert max(delays[4:]) > 4.0  # grown towards the cap
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay() <= 1.0
