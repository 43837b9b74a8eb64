"""Batched writes: the collectors' events reach Redis through one pipeline per batch.

:class:`EventSink` is a group commit. Collectors :meth:`~EventSink.put` parsed events without
waiting; one flusher task writes whatever has accumulated in one pipeline, then takes the
next accumulation. Under a burst the batches grow instead of the round trips multiplying.
Nothing is dropped: when more than ``max_pending_events`` are unwritten (Redis slow or
down), :meth:`~EventSink.put` makes the collector wait, and a failed write is retried with
the same batch until Redis takes it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..config import StoreSettings
from ..events import KIND_OF, Event, encode
from . import keys

log = structlog.get_logger(__name__)


def _minid(now_ms: int, retention_s: float) -> str:
    return str(now_ms - int(retention_s * 1000))


def queue_batch(
    pipe: Any, batch: Sequence[Event], settings: StoreSettings, now_ms: int, known: set[str]
) -> None:
    """Queue the commands that store ``batch`` on ``pipe``: per-instrument streams and latest
    hashes, one hand-off entry per venue, and registry entries for new instruments."""
    latest: dict[tuple[str, str], dict[str, bytes]] = defaultdict(dict)
    by_venue: dict[str, list[Event]] = defaultdict(list)
    minids = {kind: _minid(now_ms, sec) for kind, sec in settings.retention_s.items()}
    for event in batch:
        kind = KIND_OF[type(event)]
        data = encode(event)
        pipe.xadd(
            keys.events(event.venue, event.symbol, kind),
            {"e": data},
            minid=minids[kind],
            approximate=True,
        )
        latest[(event.venue, event.symbol)][kind.value] = data
        by_venue[event.venue].append(event)
    for (venue, symbol), fields in latest.items():
        pipe.hset(keys.latest(venue, symbol), mapping=fields)  # type: ignore[arg-type]
        member = keys.instrument_id(venue, symbol)
        if member not in known:
            pipe.sadd(keys.INSTRUMENTS, member)
            known.add(member)
    handoff_minid = _minid(now_ms, settings.handoff_retention_s)
    for venue, events in by_venue.items():
        pipe.xadd(
            keys.handoff(venue), {"e": encode(events)}, minid=handoff_minid, approximate=True
        )


class EventSink:
    """Accumulates events and writes them to Redis in pipelined batches (see module doc)."""

    def __init__(self, client: aioredis.Redis, settings: StoreSettings) -> None:
        self._client = client
        self._settings = settings
        self._pending: list[Event] = []
        self._has_data = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._known: set[str] = set()
        self.written_events = 0
        self.written_batches = 0
        self.write_failures = 0
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
        :meth:`wait_for_room`, so a slow Redis slows the reading, never drops events."""
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
        """Flush forever; cancel to stop (call :meth:`drain` first to write the rest)."""
        while True:
            await self._has_data.wait()
            await self._flush_once()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Write everything pending (used at shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._pending and time.monotonic() < deadline:
            await self._flush_once()

    async def _flush_once(self) -> None:
        limit = self._settings.flush_max_events
        batch, self._pending = self._pending[:limit], self._pending[limit:]
        if not self._pending:
            self._has_data.clear()
        if not batch:
            return
        await self._write_until_done(batch)
        if len(self._pending) < self._settings.max_pending_events:
            self._room.set()

    async def _write_until_done(self, batch: list[Event]) -> None:
        delay = 0.1
        while True:
            now_ms = int(time.time() * 1000)
            known_before = set(self._known)
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    queue_batch(pipe, batch, self._settings, now_ms, self._known)
                    await pipe.execute()
            except RedisError as exc:
                self._known = known_before  # registry entries of a failed batch were not written
                self.write_failures += 1
                log.warning("redis write failed; retrying", error=str(exc), events=len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.written_events += len(batch)
            self.written_batches += 1
            self.last_batch_size = len(batch)
            return
