"""Per-venue connection health, kept by the collector and published to Redis every second."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import msgspec

DriftReason = Literal["silent", "missing_fields", "unknown_fields"]


class DriftSuspicion(msgspec.Struct, frozen=True):
    """One channel the passive drift check (:mod:`.drift`) suspects of a protocol change."""

    channel: str
    reason: DriftReason
    """``silent``: no event for longer than the documented rate allows;
    ``missing_fields``: sampled rows lack a field the parser needs; ``unknown_fields``:
    sampled rows carry fields the parser does not know."""
    detail: str


class HealthSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /v1/venues`` and ``/metrics`` show for one venue (stored as Redis hash fields
    ``{"snapshot": <this as JSON>}`` under ``keys.health(venue)``)."""

    venue: str
    enabled: bool
    connected: bool
    ws_url: str
    rest_url: str
    liquidations_sampled: bool
    connected_since_ms: int | None
    last_message_ms: int | None
    """Receive time of the last websocket frame."""
    last_event_ms: int | None
    """Receive time of the last normalized event."""
    messages_total: int
    events_total: int
    reconnects_total: int
    parse_errors_total: int
    parse_errors: dict[str, int]
    """Frames (or events of a frame) a parser dropped, by reason: see
    :meth:`service.venues.base.Parser.parse`."""
    oi_polls_total: int
    oi_poll_failures_total: int
    instruments: int
    """Instruments in the venue's metadata."""
    subscribed_symbols: int | None
    """Configured symbol count, or ``None`` for all."""
    last_error: str | None
    updated_ms: int
    mode: Literal["stream", "polled"] = "stream"
    """``polled``: REST polls through ccxt (no websocket, no liquidations); a "message" is a
    successful REST answer."""
    poll_interval_s: float | None = None
    """A polled venue's poll interval (its freshness is judged against it)."""
    rest_failures: dict[str, int] = msgspec.field(default_factory=dict)
    """A polled venue's failed REST calls by endpoint (``funding``, ``open_interest``...)."""
    events_invalid: dict[str, int] = msgspec.field(default_factory=dict)
    """Events dropped before storage because they failed :func:`service.validate.check`,
    by reason (``bad_time``, ``non_finite``...)."""
    drift: list[DriftSuspicion] = msgspec.field(default_factory=list)
    """What the last passive drift check suspects (empty: nothing)."""
    drift_checked_ms: int | None = None
    """When the passive drift check last ran (``None``: not yet)."""


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
    drift: list[DriftSuspicion] = field(default_factory=list)
    drift_checked_ms: int | None = None

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
            drift=list(self.drift),
            drift_checked_ms=self.drift_checked_ms,
        )


encode = msgspec.json.Encoder().encode
decode_snapshot = msgspec.json.Decoder(HealthSnapshot).decode
