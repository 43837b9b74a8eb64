"""``deleverage_feed_events_invalid_total``: the events a collector refused at the storage
boundary, by venue and reason, as its health snapshot counts them; and
``deleverage_feed_duplicates_total``, what it dropped as counted already, by kind."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from publish_support import MemorySource, snapshot

from service.config import MetricsSettings
from service.publish.metrics import MetricsCollector


def test_events_refused_at_the_boundary_are_exported_by_venue_and_reason() -> None:
    source = MemorySource(
        snapshots=[
            snapshot("okx", events_invalid={"bad_time": 3, "negative": 1}),
            snapshot("bybit", parse_errors={"non_finite": 2}),
        ]
    )
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings()))
    name = "deleverage_feed_events_invalid_total"
    assert registry.get_sample_value(name, {"venue": "okx", "reason": "bad_time"}) == 3
    assert registry.get_sample_value(name, {"venue": "okx", "reason": "negative"}) == 1
    assert registry.get_sample_value(name, {"venue": "bybit", "reason": "non_finite"}) is None
    errors = "deleverage_feed_parse_errors_total"
    assert registry.get_sample_value(errors, {"venue": "bybit", "reason": "non_finite"}) == 2


def test_duplicates_are_exported_by_venue_and_kind() -> None:
    source = MemorySource(
        snapshots=[
            snapshot("okx", duplicates={"liquidation": 7, "state": 40, "trade": 2}),
            snapshot("bybit"),
        ]
    )
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings()))
    name = "deleverage_feed_duplicates_total"
    for kind, count in (("liquidation", 7), ("state", 40), ("trade", 2)):
        assert registry.get_sample_value(name, {"venue": "okx", "kind": kind}) == count
    assert registry.get_sample_value(name, {"venue": "bybit", "kind": "state"}) is None
