"""Reads for the API and the detector. All keys come from :mod:`.keys`."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis

from ..events import Event, Kind, Liquidation, Side, decode, decode_many
from . import keys

StreamId = str


class LiquidationSums(msgspec.Struct, frozen=True):
    """Liquidated notional of one instrument over a span, by side."""

    long_usd: float = 0.0
    short_usd: float = 0.0
    count: int = 0
    sampled: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Liquidation]
    next_cursor: str | None


async def instruments(client: aioredis.Redis, venue: str | None = None) -> list[tuple[str, str]]:
    """Every (venue, symbol) that has written events, optionally for one venue, sorted."""
    members = await client.smembers(keys.INSTRUMENTS)
    pairs = sorted(keys.split_instrument(_text(m)) for m in members)
    return [p for p in pairs if venue is None or p[0] == venue]


async def latest(
    client: aioredis.Redis, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[Kind, Event]]:
    """The newest event of each kind for each instrument, in one round trip."""
    pairs = list(pairs)
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.hgetall(keys.latest(venue, symbol))
        rows = await pipe.execute()
    out: dict[tuple[str, str], dict[Kind, Event]] = {}
    for pair, row in zip(pairs, rows, strict=True):
        out[pair] = {Kind(_text(k)): decode(v) for k, v in row.items()}
    return out


async def pressure(
    client: aioredis.Redis, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """The stored pressure JSON of each instrument that has one."""
    pairs = list(pairs)
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.get(keys.pressure(venue, symbol))
        rows = await pipe.execute()
    return {p: r for p, r in zip(pairs, rows, strict=True) if r is not None}


async def health(client: aioredis.Redis) -> dict[str, bytes]:
    """The stored health snapshot JSON of every venue that has written one."""
    venues = sorted(_text(v) for v in await client.smembers(keys.VENUES))
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.get(keys.health(venue))
        rows = await pipe.execute()
    return {v: row for v, row in zip(venues, rows, strict=True) if row is not None}


async def liquidations(
    client: aioredis.Redis,
    pairs: list[tuple[str, str]],
    *,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    cursor: str | None,
) -> Page:
    """Liquidations of ``pairs``, newest first, merged across instruments.

    Pagination is by cursor: the ``(stream id, instrument)`` of the last item returned;
    the next page continues strictly after it, so an item is never returned twice, even
    when two instruments share a stream id.
    """
    top: StreamId = "+" if until_ms is None else f"{until_ms}-18446744073709551615"
    bottom: StreamId = "-" if since_ms is None else f"{since_ms}-0"
    after: tuple[tuple[int, int], str] | None = None
    if cursor is not None:
        after = _parse_cursor(cursor)
        top = _min_id(top, _id_text(after[0]))
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.xrevrange(keys.events(venue, symbol, Kind.LIQUIDATION), top, bottom, limit + 1)
        results = await pipe.execute()
    merged: list[tuple[tuple[int, int], str, bytes]] = []
    for (venue, symbol), rows in zip(pairs, results, strict=True):
        member = keys.instrument_id(venue, symbol)
        for sid, fields in rows:
            key = (_parse_id(_text(sid)), member)
            if after is not None and key >= after:
                continue
            merged.append((key[0], member, fields[b"e"] if b"e" in fields else fields["e"]))
    newest = heapq.nlargest(limit + 1, merged, key=lambda r: (r[0], r[1]))
    page = newest[:limit]
    items = [msgspec.convert(decode(raw), Liquidation) for _, _, raw in page]
    next_cursor = None
    if len(newest) > limit and page:
        last_id, last_member, _ = page[-1]
        next_cursor = f"{_id_text(last_id)}~{last_member}"
    return Page(items, next_cursor)


async def read_handoff(
    client: aioredis.Redis, last_ids: dict[str, StreamId], block_ms: int, count: int = 500
) -> list[tuple[str, StreamId, list[Event]]]:
    """New hand-off entries for the given venues after ``last_ids`` (venue -> stream id)."""
    if not last_ids:
        return []
    streams = {keys.handoff(v): i for v, i in last_ids.items()}
    venue_of = {keys.handoff(v): v for v in last_ids}
    reply: Any = await client.xread(streams, count=count, block=block_ms)  # type: ignore[arg-type]
    out: list[tuple[str, StreamId, list[Event]]] = []
    for stream, entries in reply or []:
        venue = venue_of[_text(stream)]
        for sid, fields in entries:
            raw = fields.get(b"e") if b"e" in fields else fields.get("e")
            out.append((venue, _text(sid), decode_many(raw) if raw else []))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_id(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def _id_text(sid: tuple[int, int]) -> str:
    return f"{sid[0]}-{sid[1]}"


def _min_id(a: StreamId, b: StreamId) -> StreamId:
    if a == "+":
        return b
    return a if _parse_id(a) <= _parse_id(b) else b


class CursorError(ValueError):
    """A pagination cursor that this API did not issue."""


def _parse_cursor(cursor: str) -> tuple[tuple[int, int], str]:
    sid, sep, member = cursor.partition("~")
    try:
        ms, seq = _parse_id(sid)
        if not sep or keys.SEP not in member or not (0 <= ms < 2**64 and 0 <= seq < 2**64):
            raise ValueError(cursor)  # out of range, Redis would refuse the stream id
        return (ms, seq), member
    except ValueError:
        raise CursorError(f"invalid cursor {cursor!r}") from None


MAX_SUMMED_PER_INSTRUMENT = 20_000
"""Liquidations read per instrument by :func:`liquidation_sums`: bounds one API call's work."""


async def liquidation_sums(
    client: aioredis.Redis, pairs: list[tuple[str, str]], since_ms: int
) -> dict[tuple[str, str], LiquidationSums]:
    """Liquidated USD by side per instrument since ``since_ms`` (stream ids are times); the
    newest :data:`MAX_SUMMED_PER_INSTRUMENT` per instrument at most."""
    async with client.pipeline(transaction=False) as pipe:
        for venue, symbol in pairs:
            pipe.xrevrange(
                keys.events(venue, symbol, Kind.LIQUIDATION), "+", f"{since_ms}-0",
                count=MAX_SUMMED_PER_INSTRUMENT,
            )  # fmt: skip
        results = await pipe.execute()
    out: dict[tuple[str, str], LiquidationSums] = {}
    for pair, rows in zip(pairs, results, strict=True):
        if not rows:
            continue
        long_usd = short_usd = 0.0
        sampled = False
        for _, fields in rows:
            liq = decode(fields[b"e"] if b"e" in fields else fields["e"])
            if isinstance(liq, Liquidation):
                sampled = sampled or liq.sampled
                if liq.side is Side.LONG:
                    long_usd += liq.notional_usd
                else:
                    short_usd += liq.notional_usd
        out[pair] = LiquidationSums(long_usd, short_usd, len(rows), sampled)
    return out


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One entry of a transitions stream: its id and the transition's JSON."""

    stream_id: str
    raw: bytes


TRANSITION_SCAN_MAX = 20_000
"""Entries one request may scan to fill a filtered page (beyond: a cursor to go on)."""


async def transitions(
    client: aioredis.Redis,
    stream: str,
    *,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    cursor: str | None,
    keep: Callable[[bytes], bool],
) -> tuple[list[TransitionRow], str | None]:
    """Entries of ``stream`` newest first, in ``[since_ms, until_ms]`` (stream ids are the
    write times), that ``keep`` accepts; at most ``limit``, strictly before ``cursor`` (a
    stream id) when given. Returns the rows and the cursor of the next page (``None``: no
    more), scanning at most :data:`TRANSITION_SCAN_MAX` entries."""
    top: StreamId = "+" if until_ms is None else f"{until_ms}-18446744073709551615"
    bottom: StreamId = "-" if since_ms is None else f"{since_ms}-0"
    if cursor is not None:
        try:
            after = _parse_id(cursor)
            if not (0 <= after[0] < 2**64 and 0 <= after[1] < 2**64):
                raise ValueError(cursor)
        except ValueError:
            raise CursorError(f"invalid cursor {cursor!r}") from None
        if top == "+" or after <= _parse_id(top):
            top = f"({_id_text(after)}"
    rows: list[TransitionRow] = []
    scanned = 0
    chunk = max(limit + 1, 100)
    while scanned < TRANSITION_SCAN_MAX:
        got: Any = await client.xrevrange(stream, top, bottom, count=chunk)
        if not got:
            return rows, None
        for sid, fields in got:
            scanned += 1
            raw = fields.get(b"e") if b"e" in fields else fields.get("e")
            if raw is not None and keep(raw):
                if len(rows) == limit:
                    return rows, rows[-1].stream_id
                rows.append(TransitionRow(_text(sid), raw))
        last = _text(got[-1][0])
        if len(got) < chunk:
            return rows, None
        top = f"({last}"
    return rows, rows[-1].stream_id if rows else top.lstrip("(")
