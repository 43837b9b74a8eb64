"""Paginated reads: the liquidation tape merged across instruments, and the transitions.

Pages never skip or repeat an entry: each cursor is a position, and each read starts strictly
after it (Redis exclusive ranges, ``(<id>``), so nothing is filtered after the fetch.
Unusable entries are skipped and counted (:mod:`.poison`); the page reads on to replace them
(within a budget, see :func:`liquidations`).
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..events import KIND_OF, InstrumentId, Kind, Liquidation
from ..scores import Transition
from . import keys
from .poison import (
    Reason,
    decode_or_record,
    entry_field,
    readable,
    record,
    transition_problem,
    usable_event,
)

StreamId = str
SortKey = tuple[tuple[int, int], str]
"""Where a liquidation sits in the merged tape: its stream id, then its instrument."""

MAX_SEQ: Final = 2**64 - 1
_TRANSITION: Final = msgspec.json.Decoder(Transition)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Liquidation]
    next_cursor: str | None


class CursorError(ValueError):
    """A pagination cursor that this API did not issue."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
MAX_CURSOR_CHARS: Final = 256


def _parse_id(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)


def _id_text(sid: tuple[int, int]) -> str:
    return f"{sid[0]}-{sid[1]}"


def parse_stream_cursor(cursor: str) -> tuple[int, int]:
    """A stream id as the API issues it (``<ms>-<seq>``), or :class:`CursorError`: anything
    else, and ``0-0``, which Redis never gives an entry."""
    match = _STREAM_ID.fullmatch(cursor) if len(cursor) <= MAX_CURSOR_CHARS else None
    if match is None:
        raise CursorError(f"invalid cursor {cursor!r}")
    sid = int(match[1]), int(match[2])
    if sid[0] > MAX_SEQ or sid[1] > MAX_SEQ or sid == (0, 0):
        raise CursorError(f"invalid cursor {cursor!r}")
    return sid


def parse_liquidation_cursor(cursor: str) -> SortKey:
    """A liquidations cursor (``<ms>-<seq>~<venue>|<symbol>``), or :class:`CursorError`."""
    sid, sep, member = cursor.partition("~")
    if len(cursor) > MAX_CURSOR_CHARS or not sep or not all(keys.split_instrument(member)):
        raise CursorError(f"invalid cursor {cursor!r}")
    return parse_stream_cursor(sid), member


def _time_range(since_ms: int | None, until_ms: int | None) -> tuple[StreamId, StreamId]:
    """``XREVRANGE`` bounds for stored times in ``[since_ms, until_ms]`` (stream ids are the
    write times)."""
    top = "+" if until_ms is None else f"{until_ms}-{MAX_SEQ}"
    return top, "-" if since_ms is None else f"{since_ms}-0"


def _start(top: StreamId, after: SortKey | None, member: str) -> StreamId:
    """Where an instrument's stream is read from for a page after ``after``: entries strictly
    older in (stream id, instrument) order. The same id is older for an instrument ordered
    before the cursor's, so that start is inclusive for it and exclusive for the others."""
    if after is None:
        return top
    sid, after_member = after
    if top != "+" and _parse_id(top) < sid:
        return top
    return _id_text(sid) if member < after_member else f"({_id_text(sid)}"


MAX_REFILL: Final = 10_000
"""Entries one request may read beyond the first round to replace unusable ones."""


@dataclass(slots=True)
class _Feed:
    """One instrument's stream as a page reads it: the entries read and not yet merged,
    newest first, as Redis gave them (parsed only when the merge reaches them)."""

    pair: InstrumentId
    key: str
    member: str
    start: StreamId
    rank: int
    """The instrument's place in the tie-break order: its index in the page's feeds."""
    rows: deque[tuple[Any, dict[Any, Any]]] = field(default_factory=deque)
    done: bool = False
    """Everything in range has been read."""

    def take(self, rows: Any, count: int) -> int:
        """Keep the rows of an ``XREVRANGE`` that asked for ``count``; return how many."""
        if not readable(rows, Kind.LIQUIDATION.value, self.key):
            self.done = True
            return 0
        if rows:
            self.rows.extend(rows)
            self.start = f"({_text(rows[-1][0])}"
        self.done = len(rows) < count
        return len(rows)

    def head(self) -> tuple[int, int, int]:
        """The heap key of the newest row (``heapq`` pops the smallest)."""
        ms, seq = _parse_id(_text(self.rows[0][0]))
        return -ms, -seq, -self.rank

    def pop(self, head: tuple[int, int, int]) -> tuple[SortKey, Liquidation | None]:
        """The newest row's position, and its liquidation unless it is unusable."""
        _, fields = self.rows.popleft()
        raw = entry_field(fields, "e")
        e = usable_event(raw, Kind.LIQUIDATION.value, self.key, self.pair)
        if e is not None and not isinstance(e, Liquidation):
            record(Kind.LIQUIDATION.value, Reason.INVALID, self.key, f"a {KIND_OF[type(e)]} event")
            e = None
        return ((-head[0], -head[1]), self.member), e


async def liquidations(
    client: aioredis.Redis,
    pairs: list[InstrumentId],
    *,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    cursor: str | None,
    max_refill: int = MAX_REFILL,
) -> Page:
    """Liquidations of ``pairs``, newest first, merged across instruments.

    Order is (stream id, instrument), descending: instruments written in one pipeline share
    stream ids, and the instrument breaks the tie. The cursor is the position of the last item
    returned; each stream is read from strictly after it (an exclusive start where the
    instrument sorts at or after the cursor's), so nothing needs filtering, and an item is
    never returned twice nor skipped, whatever the collisions.

    Each stream's ``limit + 1`` newest entries are read in one pipeline and merged; only the
    entries the page reaches are decoded. An unusable one is skipped (counted) and, where its
    stream runs short, replaced by reading further, up to ``max_refill`` entries per request;
    past that the page ends at the last position merged (possibly short) and its cursor goes
    on from there.
    """
    after = None if cursor is None else parse_liquidation_cursor(cursor)
    top, bottom = _time_range(since_ms, until_ms)
    members = sorted((keys.instrument_id(*pair), pair) for pair in set(pairs))
    feeds = [
        _Feed(pair, keys.events(*pair, Kind.LIQUIDATION), member, _start(top, after, member), rank)
        for rank, (member, pair) in enumerate(members)
    ]
    want = limit + 1
    async with client.pipeline(transaction=False) as pipe:
        for f in feeds:
            pipe.xrevrange(f.key, f.start, bottom, want)
        replies = await pipe.execute(raise_on_error=False)
    for f, reply in zip(feeds, replies, strict=True):
        f.take(reply, want)
    heap = [f.head() for f in feeds if f.rows]
    heapq.heapify(heap)
    page: list[tuple[SortKey, Liquidation]] = []
    refill, cut = max_refill, None
    while heap and len(page) < want:
        head = heapq.heappop(heap)
        f = feeds[-head[2]]
        position, liquidation = f.pop(head)
        if liquidation is not None:
            page.append((position, liquidation))
        if not f.rows and not f.done and len(page) < want:  # the stream ran short: read on
            if refill <= 0:
                cut = position  # everything newer, in every stream, has been merged
                break
            count = want - len(page)
            try:
                more: Any = await client.xrevrange(f.key, f.start, bottom, count)
            except ResponseError as exc:  # its type changed since the first read
                more = exc
            refill -= f.take(more, count)
        if f.rows:
            heapq.heappush(heap, f.head())
    last = page[limit - 1][0] if len(page) > limit else cut
    next_cursor = None if last is None else f"{_id_text(last[0])}~{last[1]}"
    return Page([e for _, e in page[:limit]], next_cursor)


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """One entry of a transitions stream: its id and the transition."""

    stream_id: str
    transition: Transition


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
    keep: Callable[[Transition], bool],
) -> tuple[list[TransitionRow], str | None]:
    """Entries of ``stream`` newest first, in ``[since_ms, until_ms]`` (stream ids are the
    write times), that ``keep`` accepts; at most ``limit``, strictly before ``cursor`` (a
    stream id) when given. Returns the rows and the cursor of the next page (``None``: no
    more), scanning at most :data:`TRANSITION_SCAN_MAX` entries. Unusable entries are
    skipped (counted)."""
    top, bottom = _time_range(since_ms, until_ms)
    if cursor is not None:
        after = parse_stream_cursor(cursor)
        if top == "+" or after <= _parse_id(top):
            top = f"({_id_text(after)}"
    rows: list[TransitionRow] = []
    scanned = 0
    chunk = max(limit + 1, 100)
    while scanned < TRANSITION_SCAN_MAX:
        try:
            got: Any = await client.xrevrange(stream, top, bottom, count=chunk)
        except ResponseError as exc:
            readable(exc, "transition", stream)
            return rows, None
        if not got:
            return rows, None
        for sid, fields in got:
            scanned += 1
            t = _transition(entry_field(fields, "e"), stream)
            if t is not None and keep(t):
                if len(rows) == limit:
                    return rows, rows[-1].stream_id
                rows.append(TransitionRow(_text(sid), t))
        if len(got) < chunk:
            return rows, None
        top = f"({_text(got[-1][0])}"
    return rows, top.lstrip("(")


def _transition(raw: bytes | None, stream: str) -> Transition | None:
    if raw is None:
        record("transition", Reason.UNDECODABLE, stream, "no field 'e'")
        return None
    t = decode_or_record(_TRANSITION, raw, "transition", stream)
    problem = None if t is None else transition_problem(t)
    if problem is not None:
        record("transition", Reason.INVALID, stream, problem)
        return None
    return t
