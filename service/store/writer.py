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
import contextlib
import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import NoScriptError, RedisError

from ..config import StoreSettings
from ..events import KIND_OF, Event, Kind, Liquidation, encode
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
# command costs far more than Redis's XADD). Every key is in the instrument's hash slot, so
# the identity check of liquidations is atomic with their write, also on a cluster.
_LIQ = KIND_ORDER.index(Kind.LIQUIDATION) + 1
STORE_INSTRUMENT_LUA = f"""
-- KEYS[1..{_N}]: the instrument's stream per kind; KEYS[{_N + 1}]: its latest hash;
-- KEYS[{_N + 2}]: its sorted set of recent liquidation identities (score: time seen)
-- ARGV[1..{_N}]: MINID per kind; ARGV[{_N + 1}..{2 * _N}]: latest-hash field per kind;
-- ARGV[{2 * _N + 1}]: now (ms); ARGV[{2 * _N + 2}]: identities older than this are forgotten;
-- ARGV[{2 * _N + 3}]: events, one per line: "<kind index><event JSON>", and for liquidations
-- "<kind index><identity>\t<event JSON>".
-- Returns the line numbers of liquidations already stored (duplicates, not written).
local newest, dup, liq = {{}}, {{}}, false
local i = 0
for line in string.gmatch(ARGV[{2 * _N + 3}], "[^\\n]+") do
  i = i + 1
  local k = tonumber(string.sub(line, 1, 1))
  local e = string.sub(line, 2)
  local fresh = true
  if k == {_LIQ} then
    local tab = string.find(e, "\\t", 1, true)
    local id = string.sub(e, 1, tab - 1)
    e = string.sub(e, tab + 1)
    liq = true
    if id ~= "" then
      if redis.call("ZSCORE", KEYS[{_N + 2}], id) then
        fresh = false
        dup[#dup + 1] = i
      else
        redis.call("ZADD", KEYS[{_N + 2}], ARGV[{2 * _N + 1}], id)
      end
    end
  end
  if fresh then
    redis.call("XADD", KEYS[k], "MINID", "~", ARGV[k], "*", "e", e)
    newest[k] = e
  end
end
if liq then redis.call("ZREMRANGEBYSCORE", KEYS[{_N + 2}], "-inf", ARGV[{2 * _N + 2}]) end
local fields = {{}}
for k = 1, {_N} do
  if newest[k] then
    fields[#fields + 1] = ARGV[{_N} + k]
    fields[#fields + 1] = newest[k]
  end
end
if #fields > 0 then redis.call("HSET", KEYS[{_N + 1}], unpack(fields)) end
return dup
"""
STORE_SCRIPT = STORE_INSTRUMENT_LUA.encode()
STORE_SHA = hashlib.sha1(STORE_SCRIPT).hexdigest()


def _line(event: Event) -> bytes:
    kind = KIND_OF[type(event)]
    if type(event) is Liquidation:
        return _KIND_DIGIT[kind] + event.event_id.encode() + b"\t" + encode(event)
    return _KIND_DIGIT[kind] + encode(event)


def queue_instruments(
    pipe: Any, batch: Sequence[Event], settings: StoreSettings, now_ms: int, known: set[str]
) -> list[list[Event]]:
    """Phase 1: queue one store-script call per instrument (and registry entries for new
    instruments). Returns each call's events, in call order, to match the replies with."""
    groups: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for event in batch:
        groups[(event.venue, event.symbol)].append(event)
    minids = [_minid(now_ms, settings.retention_s[kind]) for kind in KIND_ORDER]
    fields = [kind.value for kind in KIND_ORDER]
    forget = _minid(now_ms, settings.liquidation_dedup_s)
    for (venue, symbol), events in groups.items():
        pipe.evalsha(
            STORE_SHA,
            _N + 2,
            *(keys.events(venue, symbol, kind) for kind in KIND_ORDER),
            keys.latest(venue, symbol),
            keys.liquidation_ids(venue, symbol),
            *minids,
            *fields,
            now_ms,
            forget,
            b"\n".join(_line(e) for e in events),
        )
        member = keys.instrument_id(venue, symbol)
        if member not in known:
            pipe.sadd(keys.INSTRUMENTS, member)
            known.add(member)
    return list(groups.values())


def accepted(groups: list[list[Event]], replies: list[Any]) -> tuple[list[Event], int]:
    """The events Redis stored (duplicate liquidations removed), and the duplicate count."""
    out: list[Event] = []
    dropped = 0
    scripts = (r for r in replies if isinstance(r, list))
    for events, dups in zip(groups, scripts, strict=True):
        if dups:
            skip = {int(n) - 1 for n in dups}
            dropped += len(skip)
            out.extend(e for i, e in enumerate(events) if i not in skip)
        else:
            out.extend(events)
    return out, dropped


def queue_handoff(pipe: Any, events: Sequence[Event], settings: StoreSettings, now_ms: int) -> None:
    """Phase 2: one hand-off entry per venue with the stored events, for the detector."""
    by_venue: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_venue[event.venue].append(event)
    minid = _minid(now_ms, settings.handoff_retention_s)
    for venue, venue_events in by_venue.items():
        pipe.xadd(keys.handoff(venue), {"e": encode(venue_events)}, minid=minid, approximate=True)


async def write_batch(
    client: aioredis.Redis,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    known: set[str] | None = None,
) -> tuple[list[Event], int]:
    """Store ``batch`` once, both phases (what :class:`EventSink` does, without retries):
    returns the stored events and the number of duplicates dropped."""
    known = set() if known is None else known
    await client.script_load(STORE_SCRIPT)
    async with client.pipeline(transaction=False) as pipe:
        groups = queue_instruments(pipe, batch, settings, now_ms, known)
        stored, dups = accepted(groups, await pipe.execute())
    async with client.pipeline(transaction=False) as pipe:
        queue_handoff(pipe, stored, settings, now_ms)
        await pipe.execute()
    return stored, dups


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
        self.duplicates_dropped = 0
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
        with contextlib.suppress(RedisError):  # else loaded on the first NOSCRIPT
            await self._client.script_load(STORE_SCRIPT)
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
        """Phase 1 until Redis takes it, then phase 2 until Redis takes it: a retry never
        re-runs a phase that succeeded (phase 1 again would see its own liquidations as
        duplicates and keep them from the detector)."""
        now_ms = int(time.time() * 1000)
        stored: list[Event] | None = None
        delay = 0.1
        while True:
            known_before = set(self._known)
            try:
                if stored is None:
                    stored = await self._phase1(batch, now_ms)
                async with self._client.pipeline(transaction=False) as pipe:
                    queue_handoff(pipe, stored, self._settings, now_ms)
                    await pipe.execute()
                break
            except RedisError as exc:
                self._known = known_before  # registry entries of a failed batch were not written
                self.write_failures += 1
                log.warning("redis write failed; retrying", error=str(exc), events=len(batch))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.written_events += len(stored)
        self.written_batches += 1
        self.last_batch_size = len(batch)

    async def _phase1(self, batch: list[Event], now_ms: int) -> list[Event]:
        async with self._client.pipeline(transaction=False) as pipe:
            groups = queue_instruments(pipe, batch, self._settings, now_ms, self._known)
            try:
                replies = await pipe.execute()
            except NoScriptError:
                # A restarted (or new) Redis: no script ran, so the whole phase is redone.
                await self._client.script_load(STORE_SCRIPT)
                raise
        stored, dups = accepted(groups, replies)
        if dups:
            self.duplicates_dropped += dups
            log.info("duplicate liquidations dropped by the store", count=dups)
        return stored
