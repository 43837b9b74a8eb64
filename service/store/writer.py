"""Batched writes: the collectors' events reach Redis in group commits.

:class:`EventSink` takes parsed events without waiting; one flusher task writes whatever has
accumulated as one batch (two pipelines, see :mod:`.script`), then takes the next. Under a
burst the batches grow instead of the round trips multiplying.

Failure semantics:

* Nothing is dropped for lack of room: above ``max_pending_events`` unwritten events the
  collectors wait (:meth:`EventSink.wait_for_room`) and read no faster.
* A batch stays pending until Redis has taken it; connection errors, timeouts and transient
  refusals (OOM, BUSY, LOADING...) are retried with backoff, and retries are idempotent
  (batch ids), so a reply lost in flight writes nothing twice.
* An instrument whose write Redis refuses for good (say, a key of the wrong type) is logged
  and counted in :attr:`EventSink.events_refused`, and does not hold up the others.
* At shutdown :meth:`EventSink.drain` writes what is pending within a deadline, resuming the
  batch that was in flight; what remains after it is logged as abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError, RedisError, ResponseError

from ..aio import checkpoint
from ..config import StoreSettings
from ..events import Event
from . import keys
from .script import STORE_SCRIPT, Group, accepted, queue_handoff, queue_instruments

log = structlog.get_logger(__name__)

TRANSIENT_REFUSALS = ("OOM", "BUSY", "LOADING", "TRYAGAIN", "MASTERDOWN", "READONLY")
"""Refusals that go away by themselves: the batch is retried (NOSCRIPT too, after a load)."""


@dataclass
class _Batch:
    id: str
    events: list[Event]
    now_ms: int
    stored: Group | None = None
    handoff_tries: int = 0
    refused: int = 0
    registered: set[str] = field(default_factory=set)


class EventSink:
    """Accumulates events and writes them to Redis in batches (see module doc)."""

    def __init__(self, client: aioredis.Redis, settings: StoreSettings) -> None:
        self._client = client
        self._settings = settings
        self._pending: list[Event] = []
        self._inflight: _Batch | None = None
        self._has_data = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._known: set[str] = set()
        self._id_prefix = secrets.token_hex(4)
        self._batches = 0
        self.written_events = 0
        self.written_batches = 0
        self.write_failures = 0
        self.duplicates_dropped = 0
        self.events_refused = 0
        self.last_batch_size = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def backlogged(self) -> bool:
        """True while more than ``max_pending_events`` wait for Redis."""
        return len(self._pending) >= self._settings.max_pending_events

    def put_nowait(self, events: Sequence[Event]) -> None:
        """Hand events over for writing. Producers check :attr:`backlogged` and then await
        :meth:`wait_for_room`, so a slow Redis slows the reading instead of losing events."""
        if events:
            self._pending.extend(events)
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
        """Flush forever; cancel to stop, then call :meth:`drain` to write the rest."""
        with contextlib.suppress(RedisError):  # else loaded on the first NOSCRIPT
            await self._client.script_load(STORE_SCRIPT)
        while True:
            checkpoint()
            await self._has_data.wait()
            await self._flush_once()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Write everything pending, the batch in flight first, within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._pending:
                    checkpoint()
                    await self._flush_once()
        except TimeoutError:
            log.error("shutdown: events not written to Redis", abandoned=len(self._pending))

    async def _flush_once(self) -> None:
        if self._inflight is None:
            if not self._pending:
                self._has_data.clear()
                return
            self._batches += 1
            self._inflight = _Batch(
                id=f"{self._id_prefix}-{self._batches}",
                events=self._pending[: self._settings.flush_max_events],
                now_ms=int(time.time() * 1000),
            )
        batch = self._inflight
        await self._write_until_done(batch)
        # Only now does the batch leave the queue: a cancelled write is resumed by drain().
        del self._pending[: len(batch.events)]
        self._inflight = None
        self._known |= batch.registered
        self.written_events += len(batch.stored.events) if batch.stored else 0
        self.written_batches += 1
        self.last_batch_size = len(batch.events)
        if not self._pending:
            self._has_data.clear()
        if not self.backlogged:
            self._room.set()

    async def _write_until_done(self, batch: _Batch) -> None:
        delay = 0.1
        while True:
            checkpoint()
            try:
                if batch.stored is None:
                    batch.stored = await self._phase1(batch)
                await self._phase2(batch)
                return
            except RedisError as exc:
                self.write_failures += 1
                log.warning("redis write failed; retrying", error=str(exc)[:200],
                            events=len(batch.events), batch=batch.id)  # fmt: skip
                if isinstance(exc, NoScriptError):
                    with contextlib.suppress(RedisError):
                        await self._client.script_load(STORE_SCRIPT)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _phase1(self, batch: _Batch) -> Group:
        async with self._client.pipeline(transaction=False) as pipe:
            groups = queue_instruments(
                pipe, batch.events, self._settings, batch.now_ms, batch.id, self._known
            )
            replies = await pipe.execute(raise_on_error=False)
        scripts = replies[: len(groups)]
        for reply in scripts:
            if isinstance(reply, NoScriptError) or (
                isinstance(reply, ResponseError) and str(reply).startswith(TRANSIENT_REFUSALS)
            ):
                raise reply  # retried whole: the groups already applied answer from their marker
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
        stored, dups = accepted(ok_groups, ok_replies)
        if dups:
            self.duplicates_dropped += dups
            log.info("duplicate liquidations dropped by the store", count=dups)
        return stored

    async def _phase2(self, batch: _Batch) -> None:
        assert batch.stored is not None
        venues = {e.venue for e in batch.stored.events}
        if batch.handoff_tries:  # a reply may have been lost: skip venues that have it already
            venues = {v for v in venues if not await self._has_handoff(v, batch.id)}
        batch.handoff_tries += 1
        async with self._client.pipeline(transaction=False) as pipe:
            queue_handoff(pipe, batch.stored, self._settings, batch.now_ms, batch.id, venues)
            await pipe.execute()

    async def _has_handoff(self, venue: str, batch_id: str) -> bool:
        last: Any = await self._client.xrevrange(keys.handoff(venue), count=1)
        return bool(last) and last[0][1].get(b"b", b"").decode() == batch_id


async def write_batch(
    client: aioredis.Redis,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    known: set[str] | None = None,
) -> tuple[list[Event], int]:
    """Store ``batch`` once, both phases, as :class:`EventSink` does (without its retries):
    returns the stored events and the number of duplicates dropped. For tests and tools."""
    batch_id = secrets.token_hex(8)
    await client.script_load(STORE_SCRIPT)
    async with client.pipeline(transaction=False) as pipe:
        groups = queue_instruments(pipe, batch, settings, now_ms, batch_id, known or set())
        replies = await pipe.execute()
    stored, dups = accepted(groups, replies[: len(groups)])
    async with client.pipeline(transaction=False) as pipe:
        queue_handoff(pipe, stored, settings, now_ms, batch_id)
        await pipe.execute()
    return stored.events, dups
