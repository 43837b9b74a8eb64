"""A venue's health merged from its collector shards' snapshots (:func:`service.health.merge`):
only as healthy as its worst shard, and the deployment that wrote last wins."""

from __future__ import annotations

from typing import Any

import msgspec

from service.collect.health import WorstPerSecond
from service.health import DriftSuspicion, HealthSnapshot, merge
from service.publish.api.freshness import feed_problem

NOW = 1_800_000_000_000
WATCHDOG_S = 30.0


def snap(shard: str | None = None, **changes: Any) -> HealthSnapshot:
    base = HealthSnapshot(
        venue="bybit", enabled=True, connected=True, ws_url="wss://x", rest_url="https://x",
        liquidations_sampled=False, connected_since_ms=NOW - 60_000, last_message_ms=NOW - 100,
        last_event_ms=NOW - 100, messages_total=100, events_total=50, reconnects_total=1,
        parse_errors_total=1, parse_errors={"bad_json": 1}, oi_polls_total=0,
        oi_poll_failures_total=0, instruments=40, subscribed_symbols=20, last_error=None,
        updated_ms=NOW - 500, shard=shard,
    )  # fmt: skip
    return msgspec.structs.replace(base, **changes)


def test_an_unsharded_collector_is_read_as_it_wrote() -> None:
    s = snap()
    assert merge(s, {}) is s
    assert merge(None, {}) is None


def test_healthy_shards_merge_into_one_fresh_venue_with_their_sums() -> None:
    a = snap(
        "0/2",
        drift=[DriftSuspicion("tickers", "silent", "x")],
        delay_ms=40,
        duplicates={"state": 1},
    )
    b = snap(
        "1/2", subscribed_symbols=19, last_message_ms=NOW - 900, parse_errors={"x": 2},
        delay_ms=2_500, liquidation_delay_ms=310, duplicates={"state": 3, "trade": 1},
    )  # fmt: skip
    merged = merge(None, {"0/2": a, "1/2": b})
    assert merged is not None
    assert feed_problem(merged, NOW, WATCHDOG_S) is None
    assert merged.shards == ["0/2", "1/2"]
    assert (merged.messages_total, merged.events_total, merged.reconnects_total) == (200, 100, 2)
    assert merged.subscribed_symbols == 39
    assert merged.instruments == 40
    assert merged.parse_errors == {"bad_json": 1, "x": 2}
    assert merged.duplicates == {"state": 4, "trade": 1}
    assert merged.last_message_ms == NOW - 900  # the oldest: one silent shard is a stale venue
    assert [d.channel for d in merged.drift] == ["tickers"]
    assert (merged.delay_ms, merged.liquidation_delay_ms) == (2_500, 310)  # the worst shard's


def test_a_shard_that_never_reported_makes_the_venue_not_ready_naming_it() -> None:
    merged = merge(None, {"0/3": snap("0/3"), "2/3": snap("2/3")})
    assert merged is not None
    assert not merged.connected
    assert feed_problem(merged, NOW, WATCHDOG_S) == "not connected (shard 1/3 has not reported)"


def test_a_dead_shard_makes_the_venue_stale() -> None:
    dead = snap("1/2", updated_ms=NOW - 30_000)  # killed: its heartbeat stopped
    merged = merge(None, {"0/2": snap("0/2"), "1/2": dead})
    assert merged is not None
    assert (feed_problem(merged, NOW, WATCHDOG_S) or "").startswith("health snapshot is 30.0 s")


def test_a_disconnected_shard_is_named_in_the_error() -> None:
    down = snap("1/2", connected=False, last_error="ConnectionRefusedError: nope")
    merged = merge(None, {"0/2": snap("0/2"), "1/2": down})
    assert merged is not None
    assert merged.last_error == "shard 1/2: ConnectionRefusedError: nope"
    assert not merged.connected


def test_a_shard_that_owns_nothing_of_the_venue_is_not_judged() -> None:
    idle = snap("1/2", connected=False, subscribed_symbols=0, last_message_ms=None)
    merged = merge(None, {"0/2": snap("0/2"), "1/2": idle})
    assert merged is not None
    assert feed_problem(merged, NOW, WATCHDOG_S) is None


def test_the_deployment_that_wrote_last_wins() -> None:
    old = {"0/2": snap("0/2", updated_ms=NOW - 3_600_000), "1/2": snap("1/2", updated_ms=NOW - 9)}
    new = {f"{i}/3": snap(f"{i}/3", updated_ms=NOW - 5) for i in range(3)}
    merged = merge(None, old | new)
    assert merged is not None
    assert merged.shards == ["0/3", "1/3", "2/3"]
    # back to one unsharded collector: its snapshot is the newest
    assert merge(snap(updated_ms=NOW), old | new) == snap(updated_ms=NOW)
    # a field that is not I/N is ignored
    assert merge(None, {"x": snap(), "3/2": snap()}) is None


def test_the_worst_delay_covers_the_current_second_and_the_last_one_with_values() -> None:
    worst = WorstPerSecond()
    assert worst.value() is None
    worst.note(10_100, 40)
    worst.note(10_900, 25)
    assert worst.value() == 40
    worst.note(11_000, 5)  # a new second: the last one's worst still counts
    assert worst.value() == 40
    worst.note(14_200, 7)  # seconds without values in between: the last one with values
    assert worst.value() == 7
    worst.note(14_300, 900)
    assert worst.value() == 900
    worst.note(15_001, 1)
    worst.note(16_000, 2)
    assert worst.value() == 2  # 14's 900 is two seconds back
