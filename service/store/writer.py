"""Batched writes: the collectors' events reach Redis in group commits.

:class:`EventSink` takes parsed events without waiting; one flusher task writes whatever has
accumulated as one batch (two pipelines, see :mod:`.script`), then takes the next. Under a
burst the batches grow instead of the round trips multiplying.

Liquidations go first: they wait in a queue of their own, and the next batch is taken from it
whenever it holds any. The other events (marks, funding, open interest: latest state, a few
per instrument and second, 99 % of a whole market's traffic) are written in batches of at
most ``flush_max_instruments`` instruments while their queue keeps up, so that a liquidation
waits for one such batch at most, not for a whole market's second of tickers (one store-script
call per instrument: a 3,000-instrument batch kept the event loop busy for tens of
milliseconds and Redis for more). Once that queue falls behind, its batches grow with how far
(:meth:`EventSink._take`), up to a whole market's second: then a liquidation may wait for one
of them.
Such a batch is built in slices before it is sent, and the liquidations that come meanwhile
are written between two slices: a liquidation waits for a batch being sent, not for one
being built (on a busy process its slices are many turns of the event loop).
Each kind's stream still receives its events in the order they were put.

Failure semantics:

* Nothing is dropped for lack of room: above ``max_pending_events`` unwritten events the
  collectors wait (:meth:`EventSink.wait_for_room`) and read no faster; the liquidations'
  connections (``Connection.quiet``) only once the liquidations alone are that many
  (:attr:`EventSink.urgent_backlogged`): at most twice the bound waits in memory.
* A batch stays pending until Redis has taken it; connection errors, timeouts and transient
  refusals (OOM, BUSY, LOADING...) are retried, and retries are idempotent (batch ids), so a
  reply lost in flight writes nothing twice.
* Recovery is fast: the first failure after a success is retried at once (a connection that
  went stale while Redis restarted is replaced by a new one), then with a jittered backoff
  capped at :data:`RETRY_MAX_S`; a ``NOSCRIPT`` (Redis restarted empty) loads the script and
  retries at once. So writes resume within a fraction of a second of Redis answering again.
* :meth:`EventSink.state` says whether the sink is keeping up (``/readyz``): failing since
  when, the age of the oldest event not yet written, and after an outage how many of the
  events that waited are still to be written. After any failure every instrument is
  registered again, in case Redis came back empty.
* An event that cannot be encoded (a bug upstream) is dropped and counted in
  :attr:`EventSink.events_dropped`, alone: the rest of its batch is written.
* An instrument whose write Redis refuses for good (say, a key of the wrong type) is logged
  and counted in :attr:`EventSink.events_refused`, and does not hold up the others.
* At shutdown :meth:`EventSink.drain` writes what is pending within a deadline, resuming the
  batch that was in flight; what remains after it is logged as abandoned.
* A process killed between a batch of liquidations' two phases (stored, not handed over)
  finishes it once restarted: with a ``journal`` name, each such batch waits for its
  hand-off in Redis (:func:`~.keys.journal`), and a writer of that name takes what it
  finds there as its batch in flight before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..aio import Slices, checkpoint
from ..backoff import Backoff
from ..config import StoreSettings
from ..errors import DATA_ERRORS
from ..events import Event, Liquidation, decode_many, encode
from . import keys
from .client import is_cluster
from .script import (
    STORE_SCRIPT,
    Group,
    Positions,
    accepted,
    by_venue,
    group_replies,
    line,
    queue_handoff,
    queue_index,
    queue_instruments,
    queue_steps,
    split_replies,
    stored_liquidations,
)
from .stored import StoredEvents

log = structlog.get_logger(__name__)

TRANSIENT_REFUSALS = ("OOM", "BUSY", "LOADING", "TRYAGAIN", "MASTERDOWN", "READONLY",
                      "CLUSTERDOWN", "MOVED", "ASK")  # fmt: skip
"""Refusals that go away by themselves: the batch is retried (NOSCRIPT too, after a load)."""
RETRY_INITIAL_S = 0.05
RETRY_MAX_S = 0.25
"""Longest wait between two attempts: Redis answering again is noticed this fast."""
HANDOFF_LOOKBACK_MS = 60_000
"""How far back a retried hand-off looks for its own entry: far more than any retry takes,
and than the clocks of Redis and a collector differ."""
HANDOFF_PAGE = 500
MARK_EVERY_S = 0.1
"""Resolution of the pending events' ages (:meth:`EventSink.state`)."""
CATCH_UP_S = 0.25
"""How far behind the other events' queue is (its oldest event's wait) for each further
``flush_max_instruments`` a batch of them may hold (:meth:`EventSink._take`)."""
CATCH_UP_MAX = 10
"""At most this many times ``flush_max_instruments`` in one batch: 3,000 instruments with the
default, a whole market's second of tickers."""
SLICE_S = 0.005
"""Building a batch's store-script calls lets the event loop run after about this long (a
batch of 300 instruments' tickers held it 10-50 ms in one go: ``docs/performance.md``,
"Where the loop stalls")."""


class _Queue:
    """Events waiting for Redis, oldest first, and when they were put (at
    :data:`MARK_EVERY_S` resolution): the age of the oldest, in bounded memory."""

    __slots__ = ("backlog_until", "done_total", "events", "marks", "put_total")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.put_total = 0
        self.done_total = 0
        self.marks: deque[tuple[int, float]] = deque()
        """``(events put so far, when the first of them was put)``."""
        self.backlog_until = 0
        """After an outage: the events put until writes resumed must be written to catch up."""

    def put(self, events: Sequence[Event], now: float) -> None:
        self.events.extend(events)
        self.put_total += len(events)
        marks = self.marks
        if marks and now - marks[-1][1] < MARK_EVERY_S:
            marks[-1] = (self.put_total, marks[-1][1])
        else:
            marks.append((self.put_total, now))

    def head(self, max_events: int, max_instruments: int) -> list[Event]:
        """The oldest events, at most ``max_events`` of them and of ``max_instruments``
        instruments (a batch is one script call per instrument)."""
        head = self.events[:max_events]
        seen: set[tuple[str, str]] = set()
        for i, event in enumerate(head):
            instrument = (event.venue, event.symbol)
            if instrument not in seen:
                if len(seen) == max_instruments:
                    return head[:i]
                seen.add(instrument)
        return head

    def done(self, taken: int) -> None:
        """The ``taken`` oldest events are written."""
        del self.events[:taken]
        self.done_total += taken
        marks = self.marks
        while marks and marks[0][0] <= self.done_total:
            marks.popleft()

    def oldest(self, now: float) -> float:
        """When the oldest waiting event was put (``now`` when none waits)."""
        return self.marks[0][1] if self.events and self.marks else now

    @property
    def backlog(self) -> int:
        return max(0, self.backlog_until - self.done_total)


@dataclass
class _Batch:
    id: str
    events: list[Event]
    taken: int
    """Events this batch took from the head of its queue (``events`` may have lost some)."""
    now_ms: int
    queue: _Queue
    stored: Group | None = None
    positions: Positions | None = None
    """On a cluster: index positions phase 1 stored, until phase 1b has added them."""
    handoff_tries: int = 0
    refused: int = 0
    journaled: bool = False
    """Its events are in the writer's journal (:func:`~.keys.journal`) until the hand-off."""
    registered: set[str] = field(default_factory=set)
    prepared: _Prepared | None = None
    """Its phase 1, built and not sent yet (:meth:`EventSink._build`)."""


@dataclass(slots=True)
class _Prepared:
    pipe: Any
    calls: list[list[Group]]
    """The store-script calls queued in ``pipe``, each with its instruments' groups."""


@dataclass(frozen=True, slots=True)
class SinkState:
    """Whether the sink keeps up, for ``/readyz``."""

    pending: int
    oldest_pending_s: float
    """Age of the oldest event not yet written (0 when none)."""
    failing_s: float | None
    """For how long writes have been failing; ``None`` when the last attempt succeeded."""
    last_error: str | None
    backlog: int = 0
    """Events that accumulated while writes failed and are not written yet."""


class EventSink:
    """Accumulates events and writes them to Redis in batches (see module doc)."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: StoreSettings,
        clock: Callable[[], float] = time.monotonic,
        journal: str | None = None,
        stored: StoredEvents | None = None,
    ) -> None:
        self._client = client
        self._stored = stored
        """Where each event written is noted with its bytes, for this process's reader of the
        latest hashes (:mod:`.stored`), if it has one."""
        self._settings = settings
        self._clock = clock
        self._journal = None if journal is None else keys.journal(journal)
        """Where each batch of liquidations waits for its hand-off (``journal``: the
        writer's name, the same across restarts; ``None``: no journal): a process killed
        between a batch's two phases left its liquidations stored but never handed to the
        detector, and the venue's re-sending them only meets the store's duplicate check."""
        self.journal_resumed = 0
        """Batches a previous run of this writer left in its journal, finished by this one."""
        self._indexed = not is_cluster(client)
        """A single Redis: the store script writes the liquidation indexes itself."""
        self._urgent = _Queue()
        """Liquidations: each batch is taken from here while any wait."""
        self._bulk = _Queue()
        """Every other event."""
        self._queues = (self._urgent, self._bulk)
        self._inflight: _Batch | None = None
        self._has_data = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._known: set[str] = set()
        self._id_prefix = secrets.token_hex(4)
        self._batches = 0
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self.written_events = 0
        self.written_batches = 0
        self.write_failures = 0
        self.duplicates_dropped = 0
        self.events_refused = 0
        self.events_dropped = 0
        """Events that could not be encoded (a bug upstream): dropped, alone."""
        self.last_batch_size = 0

    @property
    def pending(self) -> int:
        return len(self._urgent.events) + len(self._bulk.events)

    @property
    def backlogged(self) -> bool:
        """True while more than ``max_pending_events`` wait for Redis."""
        return self.pending >= self._settings.max_pending_events

    @property
    def urgent_backlogged(self) -> bool:
        """True while the liquidations alone are ``max_pending_events`` or more."""
        return len(self._urgent.events) >= self._settings.max_pending_events

    def state(self) -> SinkState:
        """Failing or not, and how old the oldest unwritten event is."""
        now = self._clock()
        oldest = min(q.oldest(now) for q in self._queues)
        failing = None if self._failing_since is None else now - self._failing_since
        backlog = sum(q.backlog for q in self._queues)
        return SinkState(self.pending, max(0.0, now - oldest), failing, self._last_error, backlog)

    def put_nowait(self, events: Sequence[Event]) -> None:
        """Hand events over for writing. Producers check :attr:`backlogged` and then await
        :meth:`wait_for_room`, so a slow Redis slows the reading instead of losing events."""
        if not events:
            return
        now = self._clock()
        urgent = [e for e in events if type(e) is Liquidation]
        if not urgent:
            self._bulk.put(events, now)
        elif len(urgent) == len(events):
            self._urgent.put(events, now)
        else:
            self._urgent.put(urgent, now)
            self._bulk.put([e for e in events if type(e) is not Liquidation], now)
        self._has_data.set()

    async def put(self, events: Sequence[Event]) -> None:
        """:meth:`put_nowait`, then wait while the backlog is over its bound."""
        self.put_nowait(events)
        if self.backlogged:
            await self.wait_for_room()

    async def wait_for_room(self) -> None:
        while self.backlogged:
            self._room.clear()
            await self._room.wait()

    async def run(self) -> None:
        """Flush forever; cancel to stop, then call :meth:`drain` to write the rest. A run
        that raised may be started again: the batch in flight is resumed."""
        with contextlib.suppress(RedisError):  # else loaded on the first NOSCRIPT
            await self._client.script_load(STORE_SCRIPT)
        if self._journal is not None and self._inflight is None:
            await self._resume_journal(self._journal)
        while True:
            checkpoint()
            await self._has_data.wait()
            await self._flush_once()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Write everything pending, the batch in flight first, within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.pending or self._inflight is not None:
                    checkpoint()
                    await self._flush_once()
        except TimeoutError:
            log.error("shutdown: events not written to Redis", abandoned=self.pending)

    async def _resume_journal(self, key: str) -> None:
        """Take the batch a previous run left in the journal as the batch in flight: written
        again under its own id, the store script answers what it stored then (or stores it,
        if it never ran), and its hand-off is appended unless it is there already."""
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        while True:
            checkpoint()
            try:
                raw: Any = await self._client.hgetall(key)
                break
            except RedisError as exc:
                log.warning("journal unreadable; retrying", key=key, error=str(exc)[:200])
                await asyncio.sleep(backoff.next_delay())
        if not raw:
            return
        try:
            events = decode_many(raw[b"e"])
            batch_id, now_ms = raw[b"b"].decode(), int(raw[b"t"])
        except (KeyError, ValueError, UnicodeDecodeError, msgspec.DecodeError) as exc:
            log.error("journal unreadable: dropped", key=key, error=str(exc)[:200])
            with contextlib.suppress(RedisError):
                await self._client.delete(key)
            return
        self._inflight = _Batch(
            id=batch_id, events=events, taken=0, now_ms=now_ms, queue=self._urgent,
            handoff_tries=1, journaled=True,
        )  # fmt: skip
        self.journal_resumed += 1
        self._has_data.set()
        log.info("resuming the batch a previous run left in flight", batch=batch_id,
                 events=len(events))  # fmt: skip

    async def _flush_once(self) -> None:
        if self._inflight is None:
            if self._urgent.events:
                self._inflight = self._take(self._urgent)
            elif self._bulk.events:
                # Built before it is in flight: the liquidations that come meanwhile are
                # written between two slices of the build (:meth:`_build`), not after the
                # whole batch. Nothing is sent until it is built, so a stop meanwhile leaves
                # its events queued.
                batch = self._take(self._bulk)
                try:
                    batch.prepared = await self._build(batch)
                except DATA_ERRORS:
                    # An event that cannot be encoded (a bug upstream): dropped alone, and
                    # the rest built again when written. A liquidations' batch written
                    # meanwhile that raised is a bug for the supervisor.
                    if self._inflight is not None or not self._drop_unencodable(batch):
                        raise
                    log.error("events dropped: cannot be encoded", dropped=self.events_dropped)
                self._inflight = batch
            else:
                self._has_data.clear()
                return
        await self._finish(self._inflight)

    def _take(self, queue: _Queue) -> _Batch:
        """The next batch of ``queue``: its oldest events, still in it until written.

        A batch of the other events holds at most ``flush_max_instruments`` instruments while
        their queue keeps up, and one more such share for each :data:`CATCH_UP_S` its oldest
        event has waited (at most :data:`CATCH_UP_MAX` shares). A batch costs a few turns of
        the event loop whatever its size (its slices, then the replies of its two phases),
        so on a loop kept busy (an API under load, a cascade's frames) batches of a fixed
        size bound the write rate by the turns' length: 300 instruments' tickers every 43 ms
        is about 8,000 events a second, below a whole market's 13,000 (``bench market``),
        and the queue fell 30 s behind. Bigger batches when behind let the writer catch up;
        while behind, a liquidation may wait for one of them in Redis."""
        self._batches += 1
        settings = self._settings
        instruments = settings.flush_max_instruments
        if queue is self._bulk:
            now = self._clock()
            shares = 1 + int((now - queue.oldest(now)) / CATCH_UP_S)
            instruments *= max(1, min(shares, CATCH_UP_MAX))
        events = queue.head(settings.flush_max_events, instruments)
        return _Batch(
            id=f"{self._id_prefix}-{self._batches}",
            events=events,
            taken=len(events),
            now_ms=int(time.time() * 1000),
            queue=queue,
        )

    async def _finish(self, batch: _Batch) -> None:
        """Write the batch in flight, then take it out of its queue."""
        await self._write_until_done(batch)
        # Only now does the batch leave the queue: a cancelled write is resumed by drain().
        batch.queue.done(batch.taken)
        self._inflight = None
        self._known |= batch.registered
        self.written_events += len(batch.stored.events) if batch.stored else 0
        self.written_batches += 1
        self.last_batch_size = batch.taken
        if not self.pending:
            self._has_data.clear()
        if not self.backlogged:
            self._room.set()

    async def _write_until_done(self, batch: _Batch) -> None:
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        reload = False
        while True:
            checkpoint()
            try:
                if reload:
                    await self._client.script_load(STORE_SCRIPT)
                if batch.stored is None:
                    batch.stored = await self._phase1(batch)
                if batch.positions:
                    await self._index(batch.positions, batch.now_ms)
                    batch.positions = None
                await self._phase2(batch)
            except NoScriptError as exc:
                # Redis restarted empty (or flushed its scripts): load it and retry at once;
                # still NOSCRIPT after a load is a failure like any other.
                if reload:
                    await self._failed(batch, str(exc), backoff)
                reload = True
            except RedisError as exc:
                await self._failed(batch, str(exc), backoff, at_once=self._failing_since is None)
            except DATA_ERRORS as exc:
                if not self._drop_unencodable(batch):
                    raise  # not the events' fault: a bug, for the supervisor
                log.error("events dropped: cannot be encoded", error=str(exc)[:200],
                          dropped=self.events_dropped)  # fmt: skip
            else:
                if self._failing_since is not None:
                    failed_for = self._clock() - self._failing_since
                    for queue in self._queues:
                        queue.backlog_until = queue.put_total
                    log.info("redis writes resumed", failed_for_s=round(failed_for, 3),
                             backlog=self.pending)  # fmt: skip
                self._failing_since = None
                return

    async def _failed(
        self, batch: _Batch, error: str, backoff: Backoff, *, at_once: bool = False
    ) -> None:
        """Count and log a failed attempt, then wait before the next (not after the first
        failure following a success: that one is usually a stale pooled connection)."""
        self.write_failures += 1
        self._last_error = error[:200]
        if self._failing_since is None:
            self._failing_since = self._clock()
        # The store may have come back empty: register every instrument again (SADD is
        # idempotent), as the script and the batch markers are re-created anyway.
        self._known.clear()
        if self.write_failures % 20 == 1 or at_once:
            log.warning("redis write failed; retrying", error=self._last_error,
                        events=len(batch.events), batch=batch.id,
                        failures=self.write_failures)  # fmt: skip
        if not at_once:
            await asyncio.sleep(backoff.next_delay())

    def _drop_unencodable(self, batch: _Batch) -> bool:
        """Remove the events of ``batch`` that cannot be encoded; False when all can."""
        keep: list[Event] = []
        for event in batch.events:
            try:
                line(event, encode(event))
            except DATA_ERRORS:
                continue
            keep.append(event)
        dropped = len(batch.events) - len(keep)
        self.events_dropped += dropped
        batch.events = keep
        return dropped > 0

    def _journaling(self, batch: _Batch) -> bool:
        """Whether ``batch`` goes through the journal: a batch of liquidations of a named
        writer."""
        return self._journal is not None and batch.queue is self._urgent

    async def _build(self, batch: _Batch) -> _Prepared:
        """The pipeline of ``batch``'s phase 1, built in slices with the loop's turn between
        them (the batch's events are its own). Building a batch of other events while none
        is in flight, it writes the liquidations that came meanwhile first, whole, at each
        turn: a liquidation then waits for a slice of the build and for a batch being sent,
        never for the build of a batch of 300 instruments' tickers (tens of milliseconds of
        the loop's turns on a busy process)."""
        pipe = self._client.pipeline(transaction=False)
        if self._journaling(batch):
            assert self._journal is not None
            # First in the pipeline: on a single Redis it runs before the scripts, so a
            # batch they stored is always in the journal until its hand-off.
            record = {"b": batch.id, "t": batch.now_ms, "e": encode(batch.events)}
            pipe.hset(self._journal, mapping=record)  # type: ignore[arg-type]
        steps = queue_steps(
            pipe, batch.events, self._settings, batch.now_ms, batch.id, self._known,
            self._indexed, self._stored is not None,
        )  # fmt: skip
        slices = Slices(SLICE_S)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return _Prepared(pipe, done.value)
            if slices.due():
                await slices.pause()
                while self._inflight is None and self._urgent.events:
                    self._inflight = self._take(self._urgent)
                    await self._finish(self._inflight)

    async def _phase1(self, batch: _Batch) -> Group:
        prepared, batch.prepared = batch.prepared, None
        if prepared is None:  # an urgent batch, or a retry: built again
            prepared = await self._build(batch)
        calls = prepared.calls
        # (The script indexes positions the note has only once the reply is in.)
        with contextlib.nullcontext() if self._stored is None else self._stored.writing_now():
            replies = await prepared.pipe.execute(raise_on_error=False)  # (which resets it)
        if self._journaling(batch):
            journaled, *replies = replies
            if isinstance(journaled, Exception):
                raise journaled  # retried whole, as a failed script call is
            batch.journaled = True
        groups = [group for call in calls for group in call]
        scripts = group_replies(calls, replies)
        for reply in scripts:
            if isinstance(reply, NoScriptError) or (
                isinstance(reply, ResponseError) and str(reply).startswith(TRANSIENT_REFUSALS)
            ):
                raise reply  # retried whole: the groups already applied answer from their marker
            if isinstance(reply, RedisError) and not isinstance(reply, ResponseError):
                # a cluster's pipeline answers a node's connection error per command
                raise reply
        for reply in replies[len(calls) :]:
            if isinstance(reply, Exception):
                raise reply  # a registry SADD: retried whole, the scripts answer from markers
        ok_groups, ok_replies = [], []
        for group, reply in zip(groups, scripts, strict=True):
            events = group.events
            if isinstance(reply, Exception):
                batch.refused += len(events)
                self.events_refused += len(events)
                first = events[0]
                log.error("redis refused an instrument's events", error=str(reply)[:200],
                          venue=first.venue, symbol=first.symbol, events=len(events))  # fmt: skip
                continue
            ok_groups.append(group)
            ok_replies.append(reply)
            batch.registered.add(keys.instrument_id(events[0].venue, events[0].symbol))
        stored, dups, added = _settle(ok_groups, ok_replies, self._stored)
        if not self._indexed:
            batch.positions = by_venue(ok_groups, added)
        if dups:
            self.duplicates_dropped += dups
            log.info("duplicate liquidations dropped by the store", count=dups)
        return stored

    async def _index(self, positions: Positions, now_ms: int) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            queue_index(pipe, positions, self._settings, now_ms)
            await pipe.execute()

    async def _phase2(self, batch: _Batch) -> None:
        assert batch.stored is not None
        venues = {e.venue for e in batch.stored.events}
        if batch.handoff_tries:  # a reply may have been lost: skip venues that have it already
            venues = {v for v in venues if not await self._has_handoff(v, batch)}
        batch.handoff_tries += 1
        async with self._client.pipeline(transaction=False) as pipe:
            queue_handoff(pipe, batch.stored, self._settings, batch.now_ms, batch.id, venues)
            if batch.journaled:
                assert self._journal is not None
                pipe.delete(self._journal)  # after the hand-off: in order on a single Redis
            await pipe.execute()

    async def _has_handoff(self, venue: str, batch: _Batch) -> bool:
        """Whether ``batch``'s entry is in the venue's hand-off. Other writers (collector
        shards) append to the same stream, so the answer is this writer's newest entry there
        (batch ids are ``<writer>-<n>``), not the stream's last: a writer appends one batch
        at a time, so its newest entry is this batch's or an earlier one's. Looked for back to
        :data:`HANDOFF_LOOKBACK_MS` before the batch was made (stream ids are Redis's clock)."""
        key, mine = keys.handoff(venue), batch.id.rpartition("-")[0].encode() + b"-"
        until, floor = "+", batch.now_ms - HANDOFF_LOOKBACK_MS
        while True:
            page: Any = await self._client.xrevrange(key, max=until, count=HANDOFF_PAGE)
            for _, fields in page:
                found = fields.get(b"b", b"")
                if found.startswith(mine):
                    return bool(found == batch.id.encode())
            if len(page) < HANDOFF_PAGE:
                return False
            oldest = page[-1][0].decode()
            if int(oldest.partition("-")[0]) < floor:
                return False
            until = f"({oldest}"


def _settle(
    groups: Sequence[Group], answers: Sequence[Any], stored: StoredEvents | None
) -> tuple[Group, int, list[list[Any]]]:
    """Phase 1's successful answers (one per group): the events Redis stored, the duplicates
    dropped and each group's index positions, with the stored events noted in ``stored``."""
    dups_of, added = split_replies(answers)
    taken, dups = accepted(groups, dups_of)
    if stored is not None:
        stored.note(taken.events, taken.encoded)
        stored.note_liquidations(stored_liquidations(groups, dups_of, added))
    return taken, dups, added


async def write_batch(
    client: aioredis.Redis,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    known: set[str] | None = None,
    stored: StoredEvents | None = None,
) -> tuple[list[Event], int]:
    """Store ``batch`` once, both phases, as :class:`EventSink` does (without its retries,
    noting its events in ``stored`` likewise): returns the stored events and the number of
    duplicates dropped. For tests and tools."""
    batch_id = secrets.token_hex(8)
    indexed = not is_cluster(client)
    await client.script_load(STORE_SCRIPT)
    async with client.pipeline(transaction=False) as pipe:
        calls = queue_instruments(
            pipe, batch, settings, now_ms, batch_id, known or set(), indexed, stored is not None
        )
        replies = await pipe.execute()
    groups = [group for call in calls for group in call]
    answers = group_replies(calls, replies)
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    taken, dups, added = _settle(groups, answers, stored)
    if not indexed:
        async with client.pipeline(transaction=False) as pipe:
            queue_index(pipe, by_venue(groups, added), settings, now_ms)
            await pipe.execute()
    async with client.pipeline(transaction=False) as pipe:
        queue_handoff(pipe, taken, settings, now_ms, batch_id)
        await pipe.execute()
    return taken.events, dups
