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
import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..config import StoreSettings
from ..events import KIND_OF, Event, Kind, encode
from . import keys

log = structlog.get_logger(__name__)


def _minid(now_ms: int, retention_s: float) -> str:
    return str(now_ms - int(retention_s * 1000))


#: Order of the kinds in the script's KEYS/ARGV; an event line starts with its index + 1.
KIND_ORDER: tuple[Kind, ...] = tuple(Kind)
_KIND_DIGIT = {kind: str(i + 1).encode() for i, kind in enumerate(KIND_ORDER)}
_N = len(KIND_ORDER)

# One call per instrument per batch: the per-event XADDs run inside Redis, so a batch of N
# events costs one command per instrument instead of N + 1 (the client-side packing of a
# command costs far more than Redis's XADD). Every key is in the instrument's hash slot.
STORE_INSTRUMENT_LUA = f"""
-- KEYS[1..{_N}]: the instrument's stream per kind; KEYS[{_N + 1}]: its latest hash
-- ARGV[1..{_N}]: MINID per kind; ARGV[{_N + 1}..{2 * _N}]: latest-hash field per kind
-- ARGV[{2 * _N + 1}]: events, one per line, each "<kind index><event JSON>"
local newest = {{}}
for line in string.gmatch(ARGV[{2 * _N + 1}], "[^\\n]+") do
  local k = tonumber(string.sub(line, 1, 1))
  local e = string.sub(line, 2)
  redis.call("XADD", KEYS[k], "MINID", "~", ARGV[k], "*", "e", e)
  newest[k] = e
end
local fields = {{}}
for k = 1, {_N} do
  if newest[k] then
    fields[#fields + 1] = ARGV[{_N} + k]
    fields[#fields + 1] = newest[k]
  end
end
if #fields > 0 then redis.call("HSET", KEYS[{_N + 1}], unpack(fields)) end
return #fields / 2
"""


def queue_batch(
    pipe: Any, batch: Sequence[Event], settings: StoreSettings, now_ms: int, known: set[str]
) -> None:
    """Queue the commands that store ``batch`` on ``pipe``: per-instrument streams and latest
    hashes (one script call per instrument), one hand-off entry per venue, and registry
    entries for new instruments."""
    lines: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    by_venue: dict[str, list[Event]] = defaultdict(list)
    digit = _KIND_DIGIT
    for event in batch:
        lines[(event.venue, event.symbol)].append(digit[KIND_OF[type(event)]] + encode(event))
        by_venue[event.venue].append(event)
    minids = [_minid(now_ms, settings.retention_s[kind]) for kind in KIND_ORDER]
    fields = [kind.value for kind in KIND_ORDER]
    pipe.scripts.add(STORE_SCRIPT)
    sha, nkeys = STORE_SCRIPT.sha, _N + 1
    for (venue, symbol), rows in lines.items():
        stream_keys = [keys.events(venue, symbol, kind) for kind in KIND_ORDER]
        pipe.evalsha(
            sha,
            nkeys,
            *stream_keys,
            keys.latest(venue, symbol),
            *minids,
            *fields,
            b"\n".join(rows),
        )
        member = keys.instrument_id(venue, symbol)
        if member not in known:
            pipe.sadd(keys.INSTRUMENTS, member)
            known.add(member)
    handoff_minid = _minid(now_ms, settings.handoff_retention_s)
    for venue, events in by_venue.items():
        pipe.xadd(keys.handoff(venue), {"e": encode(events)}, minid=handoff_minid, approximate=True)


@dataclass
class _Script:
    """A Lua script for pipelines: redis-py loads every script in ``pipe.scripts`` (SCRIPT
    EXISTS, then SCRIPT LOAD if missing) before it sends the pipeline."""

    script: bytes
    sha: str = ""

    def __post_init__(self) -> None:
        self.sha = hashlib.sha1(self.script).hexdigest()

    def __hash__(self) -> int:
        return hash(self.script)


STORE_SCRIPT = _Script(STORE_INSTRUMENT_LUA.encode())


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
