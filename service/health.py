"""A venue's health as the collector publishes it to Redis every second, and as the store,
the API (``GET /v1/venues``) and the metrics read it back.

Below both sides: the collectors write it (:class:`service.collect.health.VenueHealth`
freezes its counters into a :class:`HealthSnapshot`), the store reads it. Collector shards
(``collect.shard: I/N``) each write their own snapshot of the venue; :func:`merge` makes the
venue's one view of them, which is what every reader sees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
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
    """Since when every connection is up, as of the last time they all came up (read it with
    ``connected``): a connection lost and opened again starts it anew, a rotation's successor
    or a connection added beside the others does not."""
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
    duplicates: dict[str, int] = msgspec.field(default_factory=dict)
    """Events dropped as counted already, by kind: ``liquidation`` (an identity seen: a
    venue's re-sent burst on subscribe, a rotation's overlap), ``state`` (a mark, funding,
    open interest, top, depth or volume not newer than the last kept), ``trade`` (a print
    whose trade id was summed). Not a loss: what "counts nothing twice" drops."""
    drift: list[DriftSuspicion] = msgspec.field(default_factory=list)
    """What the last passive drift check suspects (empty: nothing)."""
    drift_checked_ms: int | None = None
    """When the passive drift check last ran (``None``: not yet)."""
    shard: str | None = None
    """``I/N``: the snapshot of collector shard ``I`` of ``N`` (``None``: unsharded)."""
    delay_ms: int | None = None
    """The largest delay, over the last one or two seconds with data, between the venue's
    time of a mark or top of book and its receipt (ms; ``None``: none yet): a collector that
    reads its busy connections behind the venue (short of CPU, Redis slow) shows it here
    first. The venue's own lag and the clocks' offset are in it too."""
    liquidation_delay_ms: int | None = None
    """The same for the liquidations, the last second with some (their own lane,
    ``Connection.quiet``; a venue that batches them adds its period: Bybit's 500 ms)."""
    shards: list[str] = msgspec.field(default_factory=list)
    """In a merged view (:func:`merge`): the shards it was made of; empty: unsharded."""


encode = msgspec.json.Encoder().encode
decode_snapshot = msgspec.json.Decoder(HealthSnapshot).decode


def _shard_of(field: str) -> tuple[int, int] | None:
    index, _, count = field.partition("/")
    if not (index.isdigit() and count.isdigit()) or not int(index) < int(count):
        return None
    return int(index), int(count)


def _sum(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for d in dicts:
        total.update(d)
    return dict(total)


def _worst(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def merge(
    unsharded: HealthSnapshot | None, shards: Mapping[str, HealthSnapshot]
) -> HealthSnapshot | None:
    """One venue's health from what its collectors wrote: the unsharded snapshot, or the
    snapshots of its shards (by ``I/N``) merged, whichever deployment wrote last (a change of
    ``N`` leaves the old deployment's snapshots behind: they are ignored).

    The merged view is only as healthy as its worst shard: connected when every shard of
    ``N`` has reported and is connected; ``updated_ms`` and ``last_message_ms`` are the
    oldest of the shards' (a dead or silent shard makes the venue stale); counters are summed;
    the delays are the worst shard's; ``last_error`` names the failing shard. A shard that
    owns none of the venue's instruments (``subscribed_symbols == 0``) connects nowhere and is
    left out of that judgement."""
    generations: dict[int, dict[int, HealthSnapshot]] = {}
    for field, snapshot in shards.items():
        parsed = _shard_of(field)
        if parsed is not None and parsed[1] > 1:
            generations.setdefault(parsed[1], {})[parsed[0]] = snapshot
    if unsharded is not None:
        generations[1] = {0: unsharded}
    if not generations:
        return None
    count = max(generations, key=lambda n: max(s.updated_ms for s in generations[n].values()))
    if count == 1:
        return generations[1][0]
    return _merged(count, generations[count])


def _merged(count: int, present: Mapping[int, HealthSnapshot]) -> HealthSnapshot:
    snaps = [present[i] for i in sorted(present)]
    active = [s for s in snaps if s.subscribed_symbols != 0] or snaps
    missing = [f"{i}/{count}" for i in range(count) if i not in present]
    down = [s for s in active if not s.connected]
    if missing:
        last_error: str | None = f"shard {missing[0]} has not reported"
    elif down:
        last_error = f"shard {down[0].shard}: {down[0].last_error or 'not connected'}"
    else:
        last_error = next((f"shard {s.shard}: {s.last_error}" for s in snaps if s.last_error), None)
    heard = [s.last_message_ms for s in active]
    since = [s.connected_since_ms for s in active]
    events = [s.last_event_ms for s in snaps if s.last_event_ms is not None]
    subscribed = [s.subscribed_symbols for s in snaps]
    drift = {(d.channel, d.reason): d for s in snaps for d in s.drift}
    checked = [s.drift_checked_ms for s in snaps if s.drift_checked_ms is not None]
    first = snaps[0]
    return HealthSnapshot(
        venue=first.venue,
        enabled=first.enabled,
        connected=not missing and not down,
        ws_url=first.ws_url,
        rest_url=first.rest_url,
        liquidations_sampled=first.liquidations_sampled,
        connected_since_ms=None if None in since else max(s for s in since if s is not None),
        last_message_ms=None if None in heard else min(m for m in heard if m is not None),
        last_event_ms=max(events) if events else None,
        messages_total=sum(s.messages_total for s in snaps),
        events_total=sum(s.events_total for s in snaps),
        reconnects_total=sum(s.reconnects_total for s in snaps),
        parse_errors_total=sum(s.parse_errors_total for s in snaps),
        parse_errors=_sum(s.parse_errors for s in snaps),
        oi_polls_total=sum(s.oi_polls_total for s in snaps),
        oi_poll_failures_total=sum(s.oi_poll_failures_total for s in snaps),
        instruments=max(s.instruments for s in snaps),
        subscribed_symbols=None if None in subscribed else sum(n or 0 for n in subscribed),
        last_error=last_error,
        updated_ms=min(s.updated_ms for s in active),
        mode=first.mode,
        poll_interval_s=first.poll_interval_s,
        rest_failures=_sum(s.rest_failures for s in snaps),
        events_invalid=_sum(s.events_invalid for s in snaps),
        duplicates=_sum(s.duplicates for s in snaps),
        drift=[drift[k] for k in sorted(drift)],
        drift_checked_ms=max(checked) if checked else None,
        delay_ms=_worst(s.delay_ms for s in snaps),
        liquidation_delay_ms=_worst(s.liquidation_delay_ms for s in snaps),
        shards=[f"{i}/{count}" for i in sorted(present)],
    )
