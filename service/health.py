"""A venue's health as the collector publishes it to Redis every second, and as the store,
the API (``GET /v1/venues``) and the metrics read it back.

Below both sides: the collectors write it (:class:`service.collect.health.VenueHealth`
freezes its counters into a :class:`HealthSnapshot`), the store reads it.
"""

from __future__ import annotations

from typing import Literal

import msgspec

DriftReason = Literal["silent", "missing_fields", "unknown_fields"]


class DriftSuspicion(msgspec.Struct, frozen=True):
    """One channel the passive drift check (:mod:`.collect.drift`) suspects of a protocol change."""

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


encode = msgspec.json.Encoder().encode
decode_snapshot = msgspec.json.Decoder(HealthSnapshot).decode
