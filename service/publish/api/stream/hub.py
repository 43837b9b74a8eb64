"""The live stream's hub: one reader of Redis per API process, fanning out to every client.

While at least one client is connected, one task tails, with one blocking ``XREAD``, the
streams every event comes from: ``keys.SCORES`` (the detector's rounds),
``keys.transitions(scope)`` for the three scopes, ``keys.ALERT_EVENTS``, and each venue's
hand-off stream (its stored liquidations; entries without one are not decoded). Each event
is decoded and framed once, kept in a replay ring, and offered to each client whose filter
matches. That is the same in every deployment: ``deleverage run`` (all in one process) and
``--only api`` processes reading a Redis that others write.

Order and resumption. Events are delivered in the order of their ids (Redis's entry ids),
across streams: each read asks Redis for its ``TIME`` just before the ``XREAD``, and an
entry stamped at or after that millisecond is held until a later read has seen its
millisecond pass (another stream may still receive an entry stamped in it, with a lower
sequence number). That costs a millisecond or two, and makes ids comparable between API
processes, so a client resuming with ``Last-Event-ID`` on any of them gets exactly what
came after its last event, as long as that is in the ring (``stream_replay_s``, at most
``stream_replay_events``); the ring is filled from Redis when the hub starts. Older than
that, the client is told (``reset``) and gets the current scores instead.

Slow clients. Offering an event never waits: each client has a bounded mailbox
(``stream_queue_events``), and a client is dropped at once when its mailbox is full or when
the oldest event in it has waited longer than ``stream_max_lag_s`` (a client that lags that
far behind is no longer watching a live stream, whatever the event rate): its mailbox is
emptied, it is taken off the fan-out, and its connection is told why (``dropped``) and
closed. The producer never awaits a client, so a slow client costs the service nothing but
its (bounded) mailbox.

Failure semantics: a Redis error stops nothing; the read is retried with backoff from the
same ids (nothing is skipped, within the streams' retention). An entry that does not decode
is skipped and counted (:mod:`service.store.poison`). A hub that cannot read Redis when its
first client arrives makes that client's request fail with 503.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from ....aio import reap
from ....errors import StoreError
from ....store import keys, poison, reader
from ....store.client import is_cluster, xread
from .events import (
    ORIGIN,
    SOURCE_ALERTS,
    SOURCE_SCORES,
    Entry,
    LiveEvent,
    Position,
    ScoreKey,
    StreamFilter,
    alert_events,
    entry_position,
    liquidation_events,
    score_event,
    score_events,
    transition_events,
    transitions_source,
)

log = structlog.get_logger(__name__)

READ_BLOCK_MS: Final = 1000
"""Below the API client's socket timeout (2 s)."""
READ_COUNT: Final = 500
"""Entries per stream per read."""
BACKFILL_COUNT: Final = 5000
"""Entries per stream read into the ring when the hub starts."""
VENUES_EVERY_S: Final = 30.0
LINGER_S: Final = 30.0
"""The hub keeps reading this long after its last client left (a page being reloaded)."""
START_TIMEOUT_S: Final = 5.0
RETRY_MAX_S: Final = 2.0
HOLD_S: Final = 0.001

Decode = Callable[[Entry, bytes, str], list[LiveEvent]]


class Subscriber:
    """One client's mailbox: frames waiting to be sent, bounded in number and in age."""

    __slots__ = ("capacity", "dropped", "filter", "frames", "gone", "max_lag_s", "since", "wake")

    def __init__(self, flt: StreamFilter, capacity: int, max_lag_s: float) -> None:
        self.filter = flt
        self.capacity = capacity
        self.max_lag_s = max_lag_s
        self.frames: deque[bytes] = deque()
        self.since = 0.0
        """When (monotonic) the oldest waiting frame was queued."""
        self.wake = asyncio.Event()
        self.gone = asyncio.Event()
        """Set once the client is dropped (a send in progress stops waiting for it)."""
        self.dropped: str | None = None
        """Why the client is dropped, once it is."""

    def offer(self, frames: list[bytes], now: float) -> bool:
        """Queue ``frames`` at ``now`` (monotonic); False (and the client dropped) when they
        do not fit, or when what waits has waited too long. A client that has taken
        everything gets a whole batch, however large (one read's worth): only one that has
        frames still waiting can fall behind."""
        if self.frames:
            waiting = len(self.frames) + len(frames)
            if waiting > self.capacity:
                self.drop(
                    f"the client fell behind: {waiting} events waiting to be sent, more than "
                    f"{self.capacity}; reconnect with Last-Event-ID to resume"
                )
                return False
            if now - self.since > self.max_lag_s:
                self.drop(
                    f"the client fell behind: events waiting to be sent for "
                    f"{now - self.since:.0f} s, more than {self.max_lag_s:g} s; reconnect "
                    "with Last-Event-ID to resume"
                )
                return False
        else:
            self.since = now
        self.frames.extend(frames)
        self.wake.set()
        return True

    def drop(self, reason: str) -> None:
        self.dropped = reason
        self.frames.clear()
        self.wake.set()
        self.gone.set()

    def take(self) -> list[bytes]:
        frames = list(self.frames)
        self.frames.clear()
        self.wake.clear()
        return frames


@dataclass(slots=True)
class Opening:
    """What a new client is sent before the live events."""

    subscriber: Subscriber
    frames: list[bytes]
    """The events it missed (resuming), or the current scores (a fresh start or a reset)."""
    reset: bool = False
    """It asked to resume from an event no longer kept."""


@dataclass(slots=True)
class HubStats:
    events_total: int = 0
    clients_dropped_total: int = 0
    read_failures_total: int = 0
    late_events_total: int = 0
    """Events older than one already delivered (a stream that appeared later): skipped."""


@dataclass(slots=True)
class _Tail:
    """The reader's position in each stream and what it holds back."""

    last_ids: dict[str, str] = field(default_factory=dict)
    decoders: dict[str, tuple[str, Decode]] = field(default_factory=dict)
    """Per stream: its source name (in event ids) and how its entries become events."""
    pending: list[LiveEvent] = field(default_factory=list)
    next_venues_s: float = 0.0
    wrong_type: set[str] = field(default_factory=set)
    """Streams of the wrong type: left out until the hub starts again."""


class Hub:
    """See the module doc. :meth:`open` a client, :meth:`leave` when it goes."""

    def __init__(
        self,
        client: aioredis.Redis,
        venues: Iterable[str],
        *,
        queue_events: int,
        max_lag_s: float,
        replay_s: float,
        replay_events: int,
        linger_s: float = LINGER_S,
    ) -> None:
        self._client = client
        self._venues = set(venues)
        self._queue_events = queue_events
        self._max_lag_s = max_lag_s
        self._replay_ms = int(replay_s * 1000)
        self.linger_s = linger_s
        self._subs: set[Subscriber] = set()
        self._ring: deque[LiveEvent] = deque(maxlen=replay_events)
        self._complete_ms = 0
        """Every event stamped from this millisecond on is in the ring."""
        self._last: Position = ORIGIN
        self._latest: dict[ScoreKey, LiveEvent] = {}
        self._tail = _Tail()
        self._primed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.Task[None] | None = None
        self._failures = 0
        self._closing = False
        self.stats = HubStats()

    @property
    def clients(self) -> int:
        return len(self._subs)

    @property
    def events_total(self) -> int:
        return self.stats.events_total

    @property
    def clients_dropped_total(self) -> int:
        return self.stats.clients_dropped_total

    @property
    def reading(self) -> bool:
        """Whether the hub reads Redis now (it does while it has clients)."""
        return self._task is not None and not self._task.done()

    async def open(self, flt: StreamFilter, last: Position | None) -> Opening:
        """Subscribe a client; what it gets first. Raises :class:`StoreError` when the hub
        cannot start (Redis unreachable)."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None or self._task.done():
            self._reset()
            self._task = asyncio.create_task(self._run(), name="stream-hub")
            self._task.add_done_callback(self._ended)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await self._primed.wait()
        except TimeoutError:
            if not self._subs:
                await self._stop()
            raise StoreError("the live stream cannot read Redis") from None
        sub = Subscriber(flt, self._queue_events, self._max_lag_s)
        # No await from here on: the client joins exactly after the events it is sent.
        opening = self._opening(sub, last)
        self._subs.add(sub)
        return opening

    def leave(self, sub: Subscriber) -> None:
        """A client is gone; the hub stops reading ``linger_s`` after the last one."""
        self._subs.discard(sub)
        if not self._subs and self._task is not None and self._linger is None:
            self._linger = asyncio.create_task(self._stop_later(), name="stream-hub-linger")

    @property
    def closing(self) -> bool:
        """Set by :meth:`end_all`: the process is stopping, no new client is taken."""
        return self._closing

    def end_all(self, reason: str) -> None:
        """End every client's stream (told ``reason``), and take no new one: the server
        waits for open responses before it stops, and a stream never ends by itself."""
        self._closing = True
        for sub in self._subs:
            sub.drop(reason)
        self._subs.clear()

    async def aclose(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        await self._stop()

    # -- what a new client gets ------------------------------------------------------------

    def _opening(self, sub: Subscriber, last: Position | None) -> Opening:
        flt = sub.filter
        if last is not None and last[0] >= self._complete_ms:
            if last >= self._last:
                return Opening(sub, [])
            ring = self._ring
            start = bisect.bisect_right(ring, last, key=lambda ev: ev.pos)
            return Opening(sub, flt.select(itertools.islice(ring, start, None)))
        scores = sorted(self._latest.values(), key=lambda ev: ev.key or ("", "", ""))
        return Opening(sub, [ev.bare for ev in scores if flt.matches(ev)], reset=last is not None)

    # -- the reader ------------------------------------------------------------------------

    def _reset(self) -> None:
        self._ring.clear()
        self._latest.clear()
        self._tail = _Tail()
        self._primed.clear()
        self._complete_ms = 0
        self._last = ORIGIN

    async def _stop_later(self) -> None:
        await asyncio.sleep(self.linger_s)
        self._linger = None
        if not self._subs:
            await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        self._reset()  # before waiting: a client may open a new hub meanwhile
        if task is not None:
            await reap(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The reader failed (a bug): its clients are dropped, to reconnect to a new one."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("stream: the hub failed; its clients are dropped", exc_info=task.exception())
        for sub in self._subs:
            sub.drop("the stream failed on the server; reconnect with Last-Event-ID")
        self.stats.clients_dropped_total += len(self._subs)
        self._subs.clear()

    async def _run(self) -> None:
        while True:
            try:
                if not self._primed.is_set():
                    await self._prime()
                    self._primed.set()
                await self._step()
                self._failures = 0
            except (RedisError, TimeoutError) as exc:
                self.stats.read_failures_total += 1
                self._failures += 1
                delay = min(RETRY_MAX_S, 0.05 * 2 ** min(self._failures, 6))
                if self._failures in (1, 10) or self._failures % 100 == 0:
                    log.warning("stream: redis read failed; retrying", error=str(exc)[:200],
                                failures=self._failures, retry_in_s=delay)  # fmt: skip
                await asyncio.sleep(delay)

    async def _prime(self) -> None:
        """The current scores, and the ring filled with the last ``replay_s`` of events."""
        tail = self._tail
        await self._add_venues(tail)
        latest = await self._stored_scores()
        now_ms = _time_ms(await self._client.time())
        since_ms = now_ms - self._replay_ms
        complete_ms = since_ms
        async with self._client.pipeline(transaction=False) as pipe:
            for stream in tail.decoders:
                pipe.xrevrange(stream, "+", f"{since_ms}-0", count=BACKFILL_COUNT)
            backfill = await pipe.execute(raise_on_error=False)
        events: list[LiveEvent] = []
        for (stream, source), entries in zip(tail.decoders.items(), backfill, strict=True):
            tail.last_ids[stream] = f"{since_ms}-0"
            if not poison.readable(entries, "stream", stream) or not entries:
                continue
            tail.last_ids[stream] = _text(entries[0][0])
            if len(entries) == BACKFILL_COUNT:  # older ones of this stream are not read
                complete_ms = max(complete_ms, entry_position(entries[-1][0])[0] + 1)
            for entry_id, fields in reversed(entries):
                events += _decode(source, entry_id, fields, stream)
        events.sort(key=lambda ev: ev.pos)
        self._latest = latest
        self._complete_ms = complete_ms
        tail.pending = [ev for ev in events if ev.pos[0] >= now_ms]
        self._publish([ev for ev in events if ev.pos[0] < now_ms])

    async def _stored_scores(self) -> dict[ScoreKey, LiveEvent]:
        """Every score stored now (the snapshot a new client gets), before any round."""
        pairs = await reader.instruments(self._client)
        scores = list((await reader.pressures(self._client, pairs)).values())
        scores += await reader.scope_pressures(self._client)
        events = (score_event(None, p) for p in scores)
        return {ev.key: ev for ev in events if ev.key is not None}

    async def _step(self) -> None:
        tail = self._tail
        if time.monotonic() >= tail.next_venues_s:
            await self._add_venues(tail)
        if tail.pending:
            await asyncio.sleep(HOLD_S)  # let Redis's clock pass the held millisecond
        block = None if tail.pending else READ_BLOCK_MS
        try:
            if is_cluster(self._client):  # the streams are in several slots
                now = await self._client.time()
                got = await xread(self._client, tail.last_ids, READ_COUNT, block)
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.time()
                    pipe.xread(tail.last_ids, count=READ_COUNT, block=block)  # type: ignore[arg-type]
                    now, got = await pipe.execute()
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            await self._drop_wrong_types(tail)
            return
        horizon = _time_ms(now)
        events = tail.pending
        for stream, entries in got or []:
            name = _text(stream)
            source = tail.decoders[name]
            for entry_id, fields in entries:
                events += _decode(source, entry_id, fields, name)
            tail.last_ids[name] = _text(entries[-1][0])
            if len(entries) == READ_COUNT:  # more to read: its next entries are unknown
                horizon = min(horizon, entry_position(entries[-1][0])[0])
        events.sort(key=lambda ev: ev.pos)
        cut = bisect.bisect_left(events, horizon, key=lambda ev: ev.pos[0])
        tail.pending = events[cut:]
        self._publish(events[:cut])

    async def _add_venues(self, tail: _Tail) -> None:
        """Every venue's hand-off stream, the configured ones and those seen in Redis."""
        try:
            members: Any = await self._client.smembers(keys.VENUES)
        except ResponseError as exc:
            poison.readable(exc, "venues", keys.VENUES)
            members = set()
        venues = self._venues | {v for m in members if (v := poison.utf8(m, "venues", keys.VENUES))}
        decoders: dict[str, tuple[str, Decode]] = {
            keys.SCORES: (SOURCE_SCORES, score_events),
            **{keys.transitions(s): (transitions_source(s), transition_events)
               for s in ("instrument", "asset", "market")},
            keys.ALERT_EVENTS: (SOURCE_ALERTS, alert_events),
            **{keys.handoff(v): (v, liquidation_events) for v in sorted(venues)},
        }  # fmt: skip
        tail.decoders = {s: d for s, d in decoders.items() if s not in tail.wrong_type}
        tail.last_ids = {s: tail.last_ids.get(s, f"{self._last[0]}-0") for s in tail.decoders}
        tail.next_venues_s = time.monotonic() + VENUES_EVERY_S

    async def _drop_wrong_types(self, tail: _Tail) -> None:
        """One stream of the wrong type fails the whole ``XREAD``: leave it out (counted)."""
        streams = list(tail.last_ids)
        async with self._client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.type(stream)
            types = await pipe.execute()
        for stream, kind in zip(streams, types, strict=True):
            if _text(kind) not in ("stream", "none"):
                poison.record("stream", poison.Reason.WRONG_TYPE, stream, _text(kind))
                tail.wrong_type.add(stream)
                tail.decoders.pop(stream, None)
                tail.last_ids.pop(stream, None)

    # -- fan-out ---------------------------------------------------------------------------

    def _publish(self, events: list[LiveEvent]) -> None:
        fresh = [ev for ev in events if ev.pos > self._last]
        self.stats.late_events_total += len(events) - len(fresh)
        if not fresh:
            return
        self._last = fresh[-1].pos
        self.stats.events_total += len(fresh)
        ring = self._ring
        for ev in fresh:
            if len(ring) == ring.maxlen:
                self._complete_ms = max(self._complete_ms, ring[0].pos[0] + 1)
            ring.append(ev)
            if ev.key is not None:
                self._latest[ev.key] = ev
        oldest_ms = self._last[0] - self._replay_ms
        while ring and ring[0].pos[0] < oldest_ms:
            ring.popleft()
            self._complete_ms = max(self._complete_ms, oldest_ms)
        now = time.monotonic()
        for sub in list(self._subs):
            frames = sub.filter.select(fresh)
            if frames and not sub.offer(frames, now):
                self._subs.discard(sub)
                self.stats.clients_dropped_total += 1


def _decode(
    source: tuple[str, Decode], entry_id: bytes, fields: Any, stream: str
) -> list[LiveEvent]:
    raw = poison.entry_field(fields or {}, "e")
    if raw is None:
        poison.record("stream", poison.Reason.UNDECODABLE, stream, "no field 'e'")
        return []
    name, decode = source
    return decode((*entry_position(entry_id), name), raw, stream)


def _time_ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
