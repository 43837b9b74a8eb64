"""Leverage-stress events in Redis: a small writer of their own, and the readers of the API.

The stress events (:data:`~service.events.StressEvent`) do not go through the store script
and the :class:`~.writer.EventSink`: they are a few a second at most, need no deduplication
(a newer state replaces the older one), and reach the detector through the hand-off
(below). Per venue
(hash tag ``{<venue>}``, so a venue's keys are one slot on a cluster; docs/redis.md):

* ``dlv:{<venue>}:stress:latest`` (hash): field :func:`~.keys.stress_field` (one per
  instrument, pool or figure) = the newest event as JSON; the hash expires
  ``store.stress_retention_s`` after the venue's last write, and fields older than that are
  removed by the writer once an hour (a delisted instrument's state does not stay);
* ``dlv:{<venue>}:stress:<kind>`` (stream): every event of that kind, field ``e``, trimmed
  with ``MINID ~`` to the same retention: the history (an insurance pool's change over the
  last hour is read from it);
* ``dlv:{<venue>}:handoff`` (stream, the store writer's): the events of each write, as one
  entry (batch id :data:`HANDOFF_BATCH`), when the writer is given the hand-off's retention.
  Observed ADL is a forced unwind the detector scores, the other figures it reports beside
  the score: through the same stream as the market data, a restart rebuilds them and a
  detector shard gets them.

Failure semantics: :meth:`StressWriter.put` never blocks or raises; :meth:`StressWriter.run`
writes what was put, and a Redis error is counted (:attr:`StressWriter.write_failures`),
logged at its first, 10th, 100th... occurrence, and the batch is retried after a pause. At
most ``max_pending`` events wait; older ones are dropped and counted (a stress state is
replaced by the next poll anyway). Readers skip (and count) an entry that does not decode.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..aio import checkpoint
from ..events import (
    STRESS_KIND_OF,
    InsuranceFund,
    StressEvent,
    StressKind,
    decode_stress,
    encode,
)
from . import keys

log = structlog.get_logger(__name__)

MAX_PENDING = 20_000
PRUNE_EVERY_S = 3600.0
RETRY_S = 1.0
CHANGE_WINDOW_MS = 3_600_000
"""The window of an insurance pool's change in ``GET /v1/stress``: one hour."""
HANDOFF_BATCH = "stress"
"""The batch id of the hand-off entries holding stress events (the store writer's are its own)."""
HISTORY_READ_MAX = 2_000
"""Most entries of an insurance stream read for the change (a few pools every minute or five
make a few hundred an hour)."""


def _kind(event: StressEvent) -> StressKind:
    return STRESS_KIND_OF[type(event)]


class StressWriter:
    """Writes stress events to Redis (see module doc). ``put`` from any task; ``run`` once."""

    def __init__(
        self,
        redis: aioredis.Redis,
        retention_s: float,
        *,
        max_pending: int = MAX_PENDING,
        prune_every_s: float = PRUNE_EVERY_S,
        retry_s: float = RETRY_S,
        handoff_retention_s: float | None = None,
    ) -> None:
        self.redis = redis
        self.retention_ms = int(retention_s * 1000)
        self.handoff_retention_ms = (
            None if handoff_retention_s is None else int(handoff_retention_s * 1000)
        )
        """With a retention (the store's ``handoff_retention_s``), ADL levels also go to their
        venue's hand-off stream, the detector's input; ``None``: they do not."""
        self.prune_every_s = prune_every_s
        self.retry_s = retry_s
        self._pending: deque[StressEvent] = deque(maxlen=max_pending)
        self._wake = asyncio.Event()
        self.written_events = 0
        self.write_failures = 0
        self.events_dropped = 0
        self.pruned_fields = 0
        self._venues: set[str] = set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def put(self, events: Iterable[StressEvent]) -> None:
        """Queue ``events`` for writing (the oldest dropped past ``max_pending``, counted)."""
        for ev in events:
            if len(self._pending) == self._pending.maxlen:
                self.events_dropped += 1
            self._pending.append(ev)
        self._wake.set()

    async def run(self) -> None:
        """Write what is put until cancelled; Redis errors are counted and retried."""
        next_prune = time.monotonic() + self.prune_every_s
        while True:
            checkpoint()  # a stop lost in a write (see there) is honoured here, not waited out
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                checkpoint()
                batch = list(self._pending)
                self._pending.clear()
                try:
                    await self.write(batch)
                except (RedisError, OSError) as exc:
                    self._requeue(batch)
                    self.write_failures += 1
                    n = self.write_failures
                    if n in (1, 10, 100) or n % 1000 == 0:
                        log.warning("stress write failed", error=str(exc)[:200], failures=n)
                    await asyncio.sleep(self.retry_s)
                    continue
                self.written_events += len(batch)
                self._venues.update(ev.venue for ev in batch)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self.prune_every_s
                try:
                    await self.prune(sorted(self._venues))
                except (RedisError, OSError) as exc:
                    log.warning("stress prune failed", error=str(exc)[:200])

    def _requeue(self, batch: list[StressEvent]) -> None:
        """Put a failed ``batch`` back before what was put meanwhile (the oldest dropped)."""
        waiting = [*batch, *self._pending]
        keep = waiting[-self._pending.maxlen :] if self._pending.maxlen else waiting
        self.events_dropped += len(waiting) - len(keep)
        self._pending.clear()
        self._pending.extend(keep)

    async def write(self, events: Sequence[StressEvent]) -> None:
        """One pipeline (not a transaction: on a cluster it is split by slot): per event,
        its latest field and its stream entry; per venue, the hash's expiry and, with a
        hand-off retention, one hand-off entry holding its events (the venue's keys share
        its hash tag: one slot)."""
        now = time.time_ns() // 1_000_000
        minid = now - self.retention_ms
        ttl_s = max(1, self.retention_ms // 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            venues: set[str] = set()
            handed: dict[str, list[bytes]] = {}
            for ev in events:
                data = encode(ev)
                pipe.hset(keys.stress_latest(ev.venue), keys.stress_field(ev), data)
                pipe.xadd(
                    keys.stress_events(ev.venue, _kind(ev)), {"e": data}, minid=minid,
                    approximate=True,
                )  # fmt: skip
                venues.add(ev.venue)
                handed.setdefault(ev.venue, []).append(data)
            for venue in venues:
                pipe.expire(keys.stress_latest(venue), ttl_s)
            if self.handoff_retention_ms is not None:
                for venue, encoded in handed.items():
                    pipe.xadd(
                        keys.handoff(venue),
                        {"b": HANDOFF_BATCH, "e": b"[" + b",".join(encoded) + b"]"},
                        minid=now - self.handoff_retention_ms,
                        approximate=True,
                    )
                    pipe.pexpire(keys.handoff(venue), self.handoff_retention_ms)
            await pipe.execute()

    async def prune(self, venues: Iterable[str]) -> int:
        """Remove the fields of ``venues``' latest hashes older than the retention."""
        cutoff = time.time_ns() // 1_000_000 - self.retention_ms
        removed = 0
        for venue in venues:
            stale = [
                f for f, ev in (await read_latest(self.redis, [venue])).get(venue, {}).items()
                if ev.recv_ms < cutoff
            ]  # fmt: skip
            if stale:
                removed += await self.redis.hdel(keys.stress_latest(venue), *stale)
        self.pruned_fields += removed
        return removed


@dataclass(slots=True)
class ReadStats:
    """Entries a reader skipped because they did not decode."""

    decode_errors: int = 0


async def read_latest(
    client: aioredis.Redis,
    venues: Sequence[str],
    stats: ReadStats | None = None,
    known: dict[bytes | str, StressEvent] | None = None,
) -> dict[str, dict[str, StressEvent]]:
    """Each venue's newest stress states, ``{venue: {field: event}}`` (one pipeline).

    ``known``: the events this caller decoded at its last read, by their stored bytes
    (events are immutable: the same bytes are the same event); only what changed is
    decoded, and ``known`` is left holding this read's. A reader that reads every venue's
    hash twice a second (the API's snapshot: thousands of fields at the whole market, most
    unchanged) decoded them all each time, 10-25 ms of the event loop."""
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.hgetall(keys.stress_latest(venue))
        answers = await pipe.execute()
    before = known if known is not None else {}
    seen: dict[bytes | str, StressEvent] = {}
    out: dict[str, dict[str, StressEvent]] = {}
    for venue, raw in zip(venues, answers, strict=True):
        per: dict[str, StressEvent] = {}
        for field, data in (raw or {}).items():
            try:
                event = before.get(data)
                if event is None:
                    event = decode_stress(data)
                per[field.decode() if isinstance(field, bytes) else field] = event
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                if stats is not None:
                    stats.decode_errors += 1
                continue
            seen[data] = event
        out[venue] = per
    if known is not None:
        known.clear()
        known.update(seen)
    return out


async def insurance_before(
    client: aioredis.Redis, venues: Sequence[str], since_ms: int
) -> dict[tuple[str, str, str], InsuranceFund]:
    """The oldest insurance event of each ``(venue, pool, asset)`` stored since ``since_ms``:
    what its balance was about ``now - since_ms`` ago (one pipeline)."""
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.xrange(
                keys.stress_events(venue, StressKind.INSURANCE), min=str(since_ms),
                count=HISTORY_READ_MAX,
            )  # fmt: skip
        answers = await pipe.execute()
    out: dict[tuple[str, str, str], InsuranceFund] = {}
    for entries in answers:
        for _id, fields in entries or ():
            data = fields.get(b"e", fields.get("e"))
            try:
                ev = decode_stress(data)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                continue
            if isinstance(ev, InsuranceFund):
                out.setdefault((ev.venue, ev.pool, ev.asset), ev)
    return out


def by_kind(states: Mapping[str, StressEvent]) -> dict[StressKind, list[StressEvent]]:
    """A venue's states grouped by kind, each group in field order (stable output)."""
    out: dict[StressKind, list[StressEvent]] = {k: [] for k in StressKind}
    for field in sorted(states):
        ev = states[field]
        out[_kind(ev)].append(ev)
    return out
