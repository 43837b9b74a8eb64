"""Per-venue connection health, kept by the collector and published to Redis every second
(the published form is :mod:`service.health`).

An unsharded collector writes ``keys.health(venue)``; a collector shard (``collect.shard``)
writes its own field ``I/N`` of ``keys.shard_health(venue)``, so shards never overwrite each
other's health, and readers merge the fields (:func:`service.health.merge`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..health import DriftSuspicion, HealthSnapshot, encode
from ..store import keys
from ..venues.base import now_ms

log = structlog.get_logger(__name__)


@dataclass
class WorstPerSecond:
    """The largest of the values noted in each second of the receive clock: :meth:`value` is
    the worst over the current second and the one before it that had values (so a reading
    always covers at least one whole second in which values came)."""

    second: int = -1
    current: int = 0
    previous: int | None = None

    def note(self, recv_ms: int, value: int) -> None:
        second = recv_ms // 1000
        if second != self.second:
            if self.second >= 0:
                self.previous = self.current
            self.second, self.current = second, value
        elif value > self.current:
            self.current = value

    def value(self) -> int | None:
        """``None`` before the first value."""
        if self.second < 0:
            return None
        return self.current if self.previous is None else max(self.previous, self.current)


@dataclass
class VenueHealth:
    """Mutable counters a venue's collector updates; :meth:`snapshot` freezes them."""

    venue: str
    ws_url: str
    rest_url: str
    liquidations_sampled: bool
    enabled: bool = True
    connected: bool = False
    connected_since_ms: int | None = None
    last_message_ms: int | None = None
    last_event_ms: int | None = None
    messages_total: int = 0
    events_total: int = 0
    reconnects_total: int = 0
    parse_errors: Counter[str] = field(default_factory=Counter)
    oi_polls_total: int = 0
    oi_poll_failures_total: int = 0
    instruments: int = 0
    subscribed_symbols: int | None = None
    last_error: str | None = None
    mode: Literal["stream", "polled"] = "stream"
    poll_interval_s: float | None = None
    rest_failures: Counter[str] = field(default_factory=Counter)
    events_invalid: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    """What the deduplicator and the parsers dropped as counted already, by kind."""
    drift: list[DriftSuspicion] = field(default_factory=list)
    drift_checked_ms: int | None = None
    shard: str | None = None
    """``I/N`` when this collector is a shard (``collect.shard`` with ``N > 1``)."""
    delay: WorstPerSecond = field(default_factory=WorstPerSecond)
    """Receive time minus the venue's time of the marks and tops read from the websocket,
    ms: how far behind the venue the collector reads its busy connections."""
    liquidation_delay: WorstPerSecond = field(default_factory=WorstPerSecond)
    """The same for the liquidations (their own lane, ``Connection.quiet``; the venue's
    batching included: Bybit's 500 ms...)."""

    def snapshot(self, now_ms: int) -> HealthSnapshot:
        return HealthSnapshot(
            venue=self.venue,
            enabled=self.enabled,
            connected=self.connected,
            ws_url=self.ws_url,
            rest_url=self.rest_url,
            liquidations_sampled=self.liquidations_sampled,
            connected_since_ms=self.connected_since_ms,
            last_message_ms=self.last_message_ms,
            last_event_ms=self.last_event_ms,
            messages_total=self.messages_total,
            events_total=self.events_total,
            reconnects_total=self.reconnects_total,
            parse_errors_total=sum(self.parse_errors.values()),
            parse_errors=dict(self.parse_errors),
            oi_polls_total=self.oi_polls_total,
            oi_poll_failures_total=self.oi_poll_failures_total,
            instruments=self.instruments,
            subscribed_symbols=self.subscribed_symbols,
            last_error=self.last_error,
            updated_ms=now_ms,
            mode=self.mode,
            poll_interval_s=self.poll_interval_s,
            rest_failures=dict(self.rest_failures),
            events_invalid=dict(self.events_invalid),
            duplicates=dict(self.duplicates),
            drift=list(self.drift),
            drift_checked_ms=self.drift_checked_ms,
            shard=self.shard,
            delay_ms=self.delay.value(),
            liquidation_delay_ms=self.liquidation_delay.value(),
        )


async def write_health(client: aioredis.Redis, health: VenueHealth) -> None:
    """Publish ``health``'s snapshot (a failure is logged: the next second tries again)."""
    snapshot = encode(health.snapshot(now_ms()))
    try:
        async with client.pipeline(transaction=False) as pipe:
            if health.shard is None:
                pipe.set(keys.health(health.venue), snapshot)
            else:
                pipe.hset(keys.shard_health(health.venue), health.shard, snapshot)
            pipe.sadd(keys.VENUES, health.venue)
            await pipe.execute()
    except RedisError as exc:
        log.warning("health write failed", venue=health.venue, error=str(exc))
