"""Reads for the API and the detector. All keys come from :mod:`.keys`; the paginated reads
are in :mod:`.pages` (re-exported here).

Failure semantics: a read never fails because of what one entry holds. An entry that does not
decode, holds an impossible value, or a key of the wrong Redis type is skipped and counted
(:mod:`.poison`), and the read goes on with the rest. Connection errors and timeouts propagate
(the API answers 503; the detector retries); so does any other refusal, which is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..events import KIND_OF, Event, HandoffEvent, InstrumentId, Kind, Liquidation, Side
from ..health import HealthSnapshot, merge
from ..health import encode as encode_snapshot
from ..scores import Pressure
from . import keys
from .client import xread as xread_streams
from .client import xreadgroup
from .pages import (
    MAX_CURSOR_CHARS,
    TRANSITION_SCAN_MAX,
    CursorError,
    Page,
    TransitionRow,
    liquidations,
    transitions,
)
from .poison import (
    Reason,
    decode_or_record,
    entry_field,
    pressure_problem,
    readable,
    record,
    snapshot_problem,
    usable_event,
    utf8,
)

__all__ = [
    "MAX_CURSOR_CHARS",
    "TRANSITION_SCAN_MAX",
    "CursorError",
    "LiquidationSums",
    "Page",
    "TransitionRow",
    "handoff_events",
    "health",
    "health_snapshots",
    "instruments",
    "latest",
    "liquidation_sums",
    "liquidations",
    "pressure",
    "pressures",
    "read_handoff",
    "read_handoff_group",
    "transitions",
]

StreamId = str
_EVENT: Final = msgspec.json.Decoder(HandoffEvent)
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_EVENTS: Final = msgspec.json.Decoder(list[HandoffEvent])
_PRESSURE: Final = msgspec.json.Decoder(Pressure)
_SNAPSHOT: Final = msgspec.json.Decoder(HealthSnapshot)


class LiquidationSums(msgspec.Struct, frozen=True):
    """Liquidated notional of one instrument over a span, by side."""

    long_usd: float = 0.0
    short_usd: float = 0.0
    count: int = 0
    sampled: bool = False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def instruments(client: aioredis.Redis, venue: str | None = None) -> list[InstrumentId]:
    """Every (venue, symbol) that has written events, optionally for one venue, sorted."""
    try:
        members: Any = await client.smembers(keys.INSTRUMENTS)
    except ResponseError as exc:
        readable(exc, "instruments", keys.INSTRUMENTS)
        return []
    return sorted(pair for _, pair in instrument_members(members) if venue in (None, pair[0]))


EventStream = tuple[str, str, Kind]
"""One instrument's stream of one kind: ``(venue, symbol, kind)``."""


async def stream_lengths(
    client: aioredis.Redis, streams: Iterable[EventStream]
) -> dict[EventStream, int]:
    """``XLEN`` of each of ``streams`` (one pipeline; 0 for a stream that does not exist)."""
    wanted = list(streams)
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol, kind in wanted:
            pipe.xlen(keys.events(venue, symbol, kind))
        lengths = await pipe.execute()
    return {stream: int(n) for stream, n in zip(wanted, lengths, strict=True)}


def instrument_members(members: Iterable[bytes]) -> list[tuple[str, InstrumentId]]:
    """The members of ``keys.INSTRUMENTS`` as ``(member, (venue, symbol))``; one that is not
    UTF-8 or names no instrument is skipped and counted (:mod:`.poison`)."""
    out = []
    for member in members:
        text = utf8(member, "instruments", keys.INSTRUMENTS)
        if text is None:
            continue
        pair = keys.split_instrument(text)
        if not all(pair):
            record("instruments", Reason.INVALID, keys.INSTRUMENTS, text)
            continue
        out.append((text, pair))
    return out


async def latest(
    client: aioredis.Redis, pairs: Iterable[InstrumentId]
) -> dict[InstrumentId, dict[Kind, Event]]:
    """The newest event of each kind for each instrument, in one round trip."""
    pairs = list(pairs)
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.hgetall(keys.latest(venue, symbol))
        rows = await pipe.execute(raise_on_error=False)
    kinds = {k.value: k for k in Kind}
    out: dict[InstrumentId, dict[Kind, Event]] = {}
    for pair, row in zip(pairs, rows, strict=True):
        key = keys.latest(*pair)
        events: dict[Kind, Event] = {}
        for name, raw in row.items() if readable(row, "latest", key) else ():
            text = utf8(name, "latest", key)
            kind = None if text is None else kinds.get(text)
            if kind is None:
                if text is not None:
                    record("latest", Reason.INVALID, key, f"unknown field {text!r}")
                continue
            event = usable_event(raw, kind.value, key, pair)
            if event is not None and KIND_OF[type(event)] is not kind:
                record(kind.value, Reason.INVALID, key, f"a {KIND_OF[type(event)]} event")
            elif event is not None:
                events[kind] = event
        out[pair] = events
    return out


async def pressure(
    client: aioredis.Redis, pairs: Iterable[InstrumentId]
) -> dict[InstrumentId, bytes]:
    """The stored pressure JSON of each instrument that has one (undecoded: the caller
    decodes; see :func:`pressures` for decoded, checked scores)."""
    pairs = list(pairs)
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.get(keys.pressure(venue, symbol))
        rows = await pipe.execute(raise_on_error=False)
    return {
        p: r
        for p, r in zip(pairs, rows, strict=True)
        if r is not None and readable(r, "pressure", keys.pressure(*p))
    }


async def pressures(
    client: aioredis.Redis, pairs: Iterable[InstrumentId]
) -> dict[InstrumentId, Pressure]:
    """The pressure score of each instrument that has a usable one."""
    out: dict[InstrumentId, Pressure] = {}
    for pair, raw in (await pressure(client, pairs)).items():
        key = keys.pressure(*pair)
        p = decode_or_record(_PRESSURE, raw, "pressure", key)
        if p is None:
            continue
        problem = pressure_problem(p)
        if problem is None and (p.venue, p.symbol) != pair:
            problem = f"the score of {p.venue}|{p.symbol}"
        if problem is not None:
            record("pressure", Reason.INVALID, key, problem)
            continue
        out[pair] = p
    return out


async def scope_pressures(client: aioredis.Redis) -> list[Pressure]:
    """The detector's asset scores and the market's, each usable one (an unusable one is
    skipped and counted)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.ASSET_PRESSURE)
        pipe.get(keys.MARKET_PRESSURE)
        assets, market = await pipe.execute(raise_on_error=False)
    raws = []
    if readable(assets, "pressure", keys.ASSET_PRESSURE) and assets:
        raws += [(keys.ASSET_PRESSURE, raw) for raw in assets.values()]
    if readable(market, "pressure", keys.MARKET_PRESSURE) and market:
        raws.append((keys.MARKET_PRESSURE, market))
    out = []
    for key, raw in raws:
        p = decode_or_record(_PRESSURE, raw, "pressure", key)
        if p is not None and pressure_problem(p) is None:
            out.append(p)
    return out


async def health_snapshots(client: aioredis.Redis) -> dict[str, HealthSnapshot]:
    """The health of every venue that has written a usable snapshot: its unsharded
    collector's, or its collector shards' merged (:func:`service.health.merge`)."""
    try:
        members: Any = await client.smembers(keys.VENUES)
    except ResponseError as exc:
        readable(exc, "venues", keys.VENUES)
        return {}
    venues = sorted(v for m in members if (v := utf8(m, "venues", keys.VENUES)) is not None)
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.get(keys.health(venue))
            pipe.hgetall(keys.shard_health(venue))
        rows = await pipe.execute(raise_on_error=False)
    out: dict[str, HealthSnapshot] = {}
    for i, venue in enumerate(venues):
        raw, fields = rows[2 * i], rows[2 * i + 1]
        unsharded = _snapshot(venue, keys.health(venue), raw)
        shards: dict[str, HealthSnapshot] = {}
        key = keys.shard_health(venue)
        if fields and readable(fields, "health", key):
            for name, value in fields.items():
                shard = utf8(name, "health", key)
                snapshot = _snapshot(venue, key, value)
                if shard is not None and snapshot is not None:
                    shards[shard] = snapshot
        merged = merge(unsharded, shards)
        if merged is not None:
            out[venue] = merged
    return out


async def health(client: aioredis.Redis) -> dict[str, bytes]:
    """:func:`health_snapshots` as JSON."""
    return {venue: encode_snapshot(s) for venue, s in (await health_snapshots(client)).items()}


def _snapshot(venue: str, key: str, raw: Any) -> HealthSnapshot | None:
    """A usable snapshot of ``venue`` from ``raw`` (what was stored under ``key``), or
    ``None`` (nothing there, or unusable: recorded)."""
    if raw is None or not readable(raw, "health", key):
        return None
    snapshot = decode_or_record(_SNAPSHOT, raw, "health", key)
    if snapshot is None:
        return None
    problem = snapshot_problem(snapshot)
    if problem is None and snapshot.venue != venue:
        problem = f"the snapshot of {snapshot.venue}"
    if problem is not None:
        record("health", Reason.INVALID, key, problem)
        return None
    return snapshot


MAX_SUMMED_PER_INSTRUMENT = 20_000
"""Liquidations read per instrument by :func:`liquidation_sums`: bounds one API call's work."""


async def liquidation_sums(
    client: aioredis.Redis, pairs: list[InstrumentId], since_ms: int
) -> dict[InstrumentId, LiquidationSums]:
    """Liquidated USD by side per instrument since ``since_ms`` (stream ids are times); the
    newest :data:`MAX_SUMMED_PER_INSTRUMENT` per instrument at most."""
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.xrevrange(
                keys.events(venue, symbol, Kind.LIQUIDATION), "+", f"{since_ms}-0",
                count=MAX_SUMMED_PER_INSTRUMENT,
            )  # fmt: skip
        results = await pipe.execute(raise_on_error=False)
    out: dict[InstrumentId, LiquidationSums] = {}
    for pair, rows in zip(pairs, results, strict=True):
        key = keys.events(*pair, Kind.LIQUIDATION)
        if not rows or not readable(rows, Kind.LIQUIDATION.value, key):
            continue
        long_usd = short_usd = 0.0
        count = 0
        sampled = False
        for _, fields in rows:
            liq = usable_event(entry_field(fields, "e"), Kind.LIQUIDATION.value, key, pair)
            if isinstance(liq, Liquidation):
                count += 1
                sampled = sampled or liq.sampled
                if liq.side is Side.LONG:
                    long_usd += liq.notional_usd
                else:
                    short_usd += liq.notional_usd
        if count:
            out[pair] = LiquidationSums(long_usd, short_usd, count, sampled)
    return out


async def read_handoff(
    client: aioredis.Redis, last_ids: dict[str, StreamId], block_ms: int, count: int = 500
) -> list[tuple[str, StreamId, list[HandoffEvent]]]:
    """New hand-off entries for the given venues after ``last_ids`` (venue -> stream id).

    An entry's events that do not decode are dropped (counted); the others are returned. A
    hand-off key of the wrong type is left out (counted) and the other venues are read.
    """
    streams = {keys.handoff(v): i for v, i in last_ids.items()}
    venue_of = {keys.handoff(v): v for v in last_ids}
    out: list[tuple[str, StreamId, list[HandoffEvent]]] = []
    for stream, entries in await _xread(client, streams, count=count, block_ms=block_ms) or []:
        key = _text(stream)
        for sid, fields in entries:
            raw = entry_field(fields, "e")
            out.append((venue_of[key], _text(sid), handoff_events(raw, key) if raw else []))
    return out


async def read_handoff_group(
    client: aioredis.Redis,
    group: str,
    consumer: str,
    cursors: dict[str, str],
    block_ms: int,
    count: int = 500,
    acks: dict[str, list[StreamId]] | None = None,
) -> tuple[list[tuple[str, StreamId, list[HandoffEvent]]], set[str]]:
    """The hand-off entries ``group`` delivers to ``consumer``: per venue, new ones
    (cursor ``>``) or this consumer's pending ones after an id (cursor: that id); ``acks``
    (venue -> ids) are acknowledged first, in the same round trip. Returns the entries, as
    :func:`read_handoff` does (an entry trimmed while pending has no events), and the venues
    that answered (a pending read answers even when nothing is pending). ``NOGROUP`` raises.
    """
    streams = {keys.handoff(v): c for v, c in cursors.items()}
    venue_of = {keys.handoff(v): v for v in cursors}
    ack_keys = {keys.handoff(v): ids for v, ids in (acks or {}).items()}

    async def read(wanted: dict[str, StreamId]) -> Any:
        nonlocal ack_keys
        acks_now = {k: ids for k, ids in ack_keys.items() if k in wanted}
        got = await xreadgroup(client, group, consumer, wanted, count, block_ms, acks_now)
        ack_keys = {}
        return got

    out: list[tuple[str, StreamId, list[HandoffEvent]]] = []
    answered: set[str] = set()
    for stream, entries in await _xread(client, streams, read) or []:
        key = _text(stream)
        answered.add(venue_of[key])
        for sid, fields in entries:
            raw = entry_field(fields, "e") if fields else None
            out.append((venue_of[key], _text(sid), handoff_events(raw, key) if raw else []))
    return out, answered


async def _xread(
    client: aioredis.Redis,
    streams: dict[str, StreamId],
    read: Any = None,
    count: int = 0,
    block_ms: int = 0,
) -> Any:
    """``XREAD`` of ``streams`` (or ``read(streams)``), leaving out (counted) those of the
    wrong type: one such stream fails the whole command."""
    while streams:
        try:
            if read is not None:
                return await read(streams)
            return await xread_streams(client, streams, count, block_ms)
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            async with client.pipeline(transaction=False) as pipe:
                for stream in streams:
                    pipe.type(stream)
                types = await pipe.execute()
            bad = [s for s, t in zip(streams, types, strict=True) if _text(t) not in _STREAMISH]
            if not bad:
                raise
            streams = {s: i for s, i in streams.items() if s not in bad}
            for stream in bad:
                record("handoff", Reason.WRONG_TYPE, stream, exc)
    return []


_STREAMISH: Final = ("stream", "none")
"""``TYPE`` answers an ``XREAD`` accepts (a missing key is read as empty)."""


def handoff_events(raw: bytes, key: str) -> list[HandoffEvent]:
    """The events of one hand-off entry; those that do not decode are skipped (counted)."""
    try:
        return _EVENTS.decode(raw)
    except msgspec.DecodeError:
        pass  # one bad event spoils the array: decode the others one by one
    items = decode_or_record(_RAW_LIST, raw, "handoff", key)
    return [e for item in items or () if (e := decode_or_record(_EVENT, item, "handoff", key))]
