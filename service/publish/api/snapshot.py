"""What the data endpoints answer from: an in-memory view of Redis, read once per period.

A request no longer reads every instrument's keys: :class:`Snapshots` reads the market
(instruments, their latest events and pressure scores, the venues' health, and the venues'
leverage-stress states with their insurance pools of an hour ago) in one concurrent round
of reads (:class:`~service.store.market.MarketReader`: one script call per
250 instruments, decoding only what changed), and follows the liquidation tape's index for the
assets' liquidation sums (:class:`LiquidationWindow`), so a refresh costs the market's size
once, not once per request. The responses built from a view (pressure ranking, asset
views, item dicts) are computed on first use and kept with it.

Freshness: a background task starts a read every half ``api.snapshot_s`` (or as soon as the
last one ended, if it took longer), on its own timer: requests never start one while a view
is usable. A request is answered from the last complete view while that view is at most
:data:`STALE_PERIODS` periods old (its age counted from the start of its read), without
waiting for the read in progress: an answer reflects Redis as it was about a period ago,
at most two. Only a request that finds no view, or one older than that bound (the refresh
failed or fell far behind: Redis away, a starved process), waits for a read that began at
most a period before it arrived, shared with every request waiting then. ``snapshot_s: 0``
reads per request (what tests that write then read at once use).

Failure semantics: a refresh that fails (Redis unreachable, a timeout) keeps the last view,
served while it is within the bound, and is retried on the timer; past the bound requests
wait for a read, whose error is theirs (the API's 503, ``store-unavailable``): an answer is
never older than the bound. A key of the wrong type or an unusable entry is skipped and
counted by the readers (:mod:`service.store.poison`), as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
import structlog
from fastapi import Response
from pydantic import BaseModel
from redis.exceptions import RedisError

from ...aio import reap
from ...config import Settings
from ...detect.assets import AssetView, build_asset_views
from ...events import Event, InstrumentId, InsuranceFund, Kind, Liquidation, Side, StressEvent
from ...health import HealthSnapshot
from ...scores import Pressure
from ...store import reader, tape
from ...store import stress as stress_store
from ...store.client import is_cluster
from ...store.market import MarketReader
from ...store.reader import LiquidationSums
from ...store.stored import StoredEvents
from .freshness import feed_problem

log = structlog.get_logger(__name__)

T = TypeVar("T")

ASSET_WINDOW_S: Final = 3600
"""The assets' default liquidation window, the one kept in memory (others read Redis)."""
TAPE_CHUNK: Final = 5000
"""Index positions read per call while following the tape."""
RESCAN_MS: Final = 1000
"""How far before Redis's clock at the last read each read of the tape starts again on a
Redis Cluster (see :meth:`LiquidationWindow.update`): a liquidation indexed after a read has
a stream id at least that clock, less the index's lag behind its stream (the writer's next
step, milliseconds) and the clock skew between the cluster's nodes. On a single Redis the
store script adds the position in the same atomic step as the entry, whose stream id is at
least Redis's clock when the script ran: a position indexed after a read is never below
that read's clock, and a read starts there (re-reading the last second of a burst of
50,000 liquidations a second was a third of the window's cost)."""
CLOCK_STEP_MS: Final = 50
"""How much less than the time between two reads Redis's clock may advance before the window
takes it for a step back (an NTP step, a VM restored, a failover) and reads itself again
whole: a liquidation stored after the step has a stream id below the last read's clock,
where the next read would not look. A step back smaller than this, or than the reads'
latency, goes unseen. On a Redis Cluster this watches the clock of the index's node; a step
of another node's, where the streams get their ids, is covered by :data:`RESCAN_MS` only."""
CLOCK_RATE: Final = 1e-3
"""How much slower than ours Redis's clock may run (a remote host's, slewed): reads minutes
apart (Redis away meanwhile) are not taken for a step."""
STRESS_BEFORE_S: Final = 30.0
"""How often a read takes the insurance balances of an hour ago again (the base of a pool's
change over the hour: up to a few thousand stream entries per venue, so not every read; a
base 30 s older moves an hour's change by little). Sooner when a pool has no base yet (a
new pool, or none stored at the last read), and at every read with ``snapshot_s: 0``."""
BUCKET_MS: Final = 1000
"""The span of :class:`LiquidationWindow`'s buckets: its sums cover up to this much more
than the window (a second of an hour), and it keeps one sum per instrument and bucket at
most, whatever the rate of liquidations."""
REFRESH_SHARE: Final = 0.5
"""A read starts every this share of the period (or as soon as the last ended, if it took
longer): a new view is there before the current one is a period old unless a read takes
more than half the period."""
STALE_PERIODS: Final = 2.0
"""How many periods old a view may be and still answer at once. A read of the whole market
took 0.56 s of wall time at the median and 1.9 s at p99 on a loaded two-core machine (for
50-75 ms of its own CPU: it waits for its turns on a busy loop), so a view was often more
than a period old before the next one landed, and every request then waited for the read
in flight (the data endpoints' p99 of 0.5-0.8 s; ``docs/performance.md``, "The snapshot
without waits"). Serving the last view up to two periods old takes that wait off the
requests; beyond it an answer waits rather than being staler."""


@dataclass(slots=True)
class _Bucket:
    """One :data:`BUCKET_MS` of liquidated sums per instrument, in flat arrays: about 45 bytes
    an instrument, against 150 as a dict of lists (the sum of a uniform cascade is one entry
    per liquidation in a one-second bucket, so what an entry costs matters)."""

    at: int
    """Stored ms // :data:`BUCKET_MS`."""
    pairs: list[InstrumentId] = field(default_factory=list)
    values: array[float] = field(default_factory=lambda: array("d"))
    """Four per instrument, in ``pairs``' order: long USD, short USD, count, sampled count."""
    index: dict[InstrumentId, int] | None = field(default_factory=dict)
    """Where an instrument's four values start; dropped (``None``) once no liquidation can
    come for the bucket any more (:meth:`LiquidationWindow.update`), rebuilt if one does."""

    def add(self, pair: InstrumentId, side: int, usd: float, sampled: bool) -> None:
        index = self.index
        if index is None:
            index = self.index = {p: 4 * i for i, p in enumerate(self.pairs)}
        at = index.get(pair)
        values = self.values
        if at is None:
            at = index[pair] = len(values)
            self.pairs.append(pair)
            values.extend((0.0, 0.0, 0.0, 0.0))
        values[at + side] += usd
        values[at + 2] += 1
        values[at + 3] += sampled


@dataclass(slots=True)
class LiquidationWindow:
    """Liquidated USD by side per instrument over the last ``window_s``, and the newest
    ``head_size`` liquidations, kept by following the liquidation index: each refresh reads
    the positions added since the last one and drops what left the window.

    Memory is bounded by the head and the buckets, not by the number of liquidations (a
    cascade at 500 a second was 1.9 million entries an hour when every liquidation was
    kept): the sums are kept per :data:`BUCKET_MS` and instrument, and a bucket leaves the
    window whole, once all of it is older than ``window_s``: the sums cover the last
    ``window_s`` and at most one bucket more (a second of an hour). Only the ``head_size``
    newest liquidations are kept whole, for the first page of the tape (``api.max_limit +
    1``: the page, and whether there is a next one).
    """

    window_s: int = ASSET_WINDOW_S
    head_size: int = 1001
    entries: deque[tuple[int, str, Liquidation]] = field(default_factory=deque)
    """The ``head_size`` newest ``(stored ms, index position, liquidation)`` of the window,
    oldest first (the index's order)."""
    buckets: deque[_Bucket] = field(default_factory=deque)
    """Oldest first."""
    sums: dict[InstrumentId, list[float]] = field(default_factory=dict)
    """``[long USD, short USD, count, sampled count]`` per instrument: the buckets' sums."""
    read_ms: int | None = None
    """Redis's clock at the last read (``None``: nothing read yet; the first update reads the
    whole window)."""
    seen: dict[str, int] = field(default_factory=dict)
    """The positions of the last :data:`RESCAN_MS` before the last read (their stored ms):
    the next read meets them again."""
    _pairs: dict[InstrumentId, InstrumentId] = field(default_factory=dict)
    """One key object per instrument, shared by the buckets (not each liquidation's)."""
    stored: StoredEvents | None = None
    """What this process's writer stored, if it has one: a new position's liquidation is
    taken from there when noted, and fetched from Redis otherwise (:mod:`service.store.stored`)."""
    rescan_ms: int | None = None
    """How far before the last read's clock a read starts again: :data:`RESCAN_MS` on a Redis
    Cluster, 0 on a single Redis (``None``: by the client)."""
    deferred: list[str] = field(default_factory=list)
    """Positions a read met while this process's writer had a write in flight, not noted
    yet: the next read takes them (from the writer's note, or from Redis), whatever its
    start."""
    last_read: tuple[int, float] | None = None
    """Redis's clock at the last read's first call, and this process's monotonic clock
    (seconds) once it answered: a later read whose clock advanced less than the time between
    them (less :data:`CLOCK_STEP_MS`) met a step back of Redis's clock."""
    clock_steps: int = 0
    """Steps back of Redis's clock seen (each read the window again whole)."""

    async def update(self, client: aioredis.Redis, now_ms: int) -> None:
        # Stream ids grow per stream, not across them, and on a Redis Cluster an entry
        # reaches the index a moment after its stream: a liquidation indexed after a read
        # may sort before positions that read returned. Its stream id is no older than
        # Redis's clock at that read, less the index's lag (and the nodes' clock skew), so
        # each read starts RESCAN_MS before the last read's clock, takes only positions, and
        # fetches the entries of the positions it has not seen. Anchored on the clock, not
        # on the newest position: once a burst is RESCAN_MS old, a read finds nothing again.
        rescan_ms = self.rescan_ms
        if rescan_ms is None:
            rescan_ms = self.rescan_ms = RESCAN_MS if is_cluster(client) else 0
        if self.read_ms is None:
            bound = tape.start_of(now_ms - self.window_s * 1000)
        else:
            bound = tape.start_of(self.read_ms - rescan_ms)
        clock_ms: int | None = None
        seen = self.seen
        if self.deferred:  # met by the last read, before this process's writer noted them
            await self._take(client, [p for p in self.deferred if p not in seen], defer=False)
            self.deferred = []
        asked = time.monotonic()
        answered = asked
        while True:
            at_ms, positions = await tape.follow(client, bound, TAPE_CHUNK)
            if clock_ms is None:  # the first read's: the earliest
                clock_ms, answered = at_ms, time.monotonic()
                if at_ms and self._stepped_back(at_ms, asked):
                    await self._read_again(client, now_ms, at_ms)
                    return
            await self._take(client, [p for p in positions if p not in seen], defer=True)
            if len(positions) < TAPE_CHUNK:
                break
            bound = f"({positions[-1]}"
        if clock_ms:  # 0: the index could not be read; the next read starts where this one did
            self.last_read = (clock_ms, answered)
            self.read_ms = clock_ms = max(
                clock_ms, self.read_ms or 0
            )  # a step back too small for _stepped_back
            for position in [p for p, ms in seen.items() if ms < clock_ms - rescan_ms]:
                del seen[position]
            self._seal(clock_ms - rescan_ms)
        self._evict(now_ms - self.window_s * 1000)

    def _stepped_back(self, clock_ms: int, asked: float) -> bool:
        """Whether Redis's clock, ``clock_ms`` at a read asked at ``asked`` (monotonic), went
        back since the last read: it ran its script no later than it answered and this one
        no earlier than it was asked, so without a step its clock advanced at least as much
        as ours between the two."""
        last = self.last_read
        if last is None:
            return False
        elapsed_ms = (asked - last[1]) * 1000
        return clock_ms - last[0] < elapsed_ms * (1 - CLOCK_RATE) - CLOCK_STEP_MS

    async def _read_again(self, client: aioredis.Redis, now_ms: int, clock_ms: int) -> None:
        """Forget everything and read the whole window again: after a step back of Redis's
        clock, liquidations stored since have stream ids below where the reads had got to."""
        assert self.last_read is not None
        self.clock_steps += 1
        log.warning(
            "redis clock stepped back: the liquidation window is read again whole",
            clock_ms=clock_ms, last_clock_ms=self.last_read[0],
        )  # fmt: skip
        self.entries.clear()
        self.buckets.clear()
        self.sums.clear()
        self._pairs.clear()
        self.seen.clear()
        self.deferred = []
        self.read_ms = self.last_read = None
        await self.update(client, now_ms)

    async def _take(self, client: aioredis.Redis, positions: list[str], defer: bool) -> None:
        """Add the liquidations at ``positions`` (not seen before, in the index's order)."""
        seen = self.seen
        added: list[tuple[int, str, Liquidation]] = []
        for position, liq in await self._entries(client, positions, defer):
            stored_ms = int(position[: position.index("-")])
            seen[position] = stored_ms
            if liq is not None:
                self._count(stored_ms, liq)
                added.append((stored_ms, position, liq))
        self._extend_head(added)

    async def _entries(
        self, client: aioredis.Redis, positions: list[str], defer: bool
    ) -> list[tuple[str, Liquidation | None]]:
        """:func:`tape.entries_at`, taking the liquidations this process's writer noted. With
        ``defer``, while the writer has a write in flight (its script may have indexed
        positions it has not noted yet: it notes them on the reply), the positions not noted
        are left out and kept in :attr:`deferred` for the next read: at most one read later,
        they are taken from the note or fetched."""
        stored = self.stored
        if stored is None or not (stored.liquidations or stored.writing):
            return await tape.entries_at(client, positions)
        take = stored.take_liquidation
        taken = [take(p) for p in positions]
        missing = [p for p, liq in zip(positions, taken, strict=True) if liq is None]
        if not missing:
            return list(zip(positions, taken, strict=True))
        if defer and stored.writing:
            self.deferred += missing
            return [(p, liq) for p, liq in zip(positions, taken, strict=True) if liq is not None]
        fetched = dict(await tape.entries_at(client, missing))
        return [
            (p, fetched[p] if liq is None else liq) for p, liq in zip(positions, taken, strict=True)
        ]

    def _extend_head(self, added: list[tuple[int, str, Liquidation]]) -> None:
        """Keep the ``head_size`` newest of the head and ``added`` (in the index's order). A
        read's positions come after the head's, but for late ones (a read's deferred
        positions, interleaved with those the last read took; a cluster's lagging index):
        then the two are merged once, not each placed by a walk through the head."""
        if not added:
            return
        entries, size = self.entries, self.head_size
        added = added[-size:]  # (the newest of the two are among each one's newest)
        if entries and added[0][1] < entries[-1][1]:
            merged = sorted([*entries, *added], key=itemgetter(1))  # two sorted runs: linear
            entries.clear()
            entries.extend(merged[-size:])
            return
        entries.extend(added)
        for _ in range(len(entries) - size):
            entries.popleft()

    def _count(self, stored_ms: int, liq: Liquidation) -> None:
        """Add a liquidation to its bucket and its instrument's sums."""
        pair = (liq.venue, liq.symbol)
        pair = self._pairs.setdefault(pair, pair)
        at = stored_ms // BUCKET_MS
        buckets = self.buckets
        j = len(buckets)
        while j and buckets[j - 1].at > at:  # a late one: a bucket or so from the end
            j -= 1
        if j and buckets[j - 1].at == at:
            bucket = buckets[j - 1]
        else:
            bucket = _Bucket(at)
            buckets.insert(j, bucket)
        side = 0 if liq.side is Side.LONG else 1
        bucket.add(pair, side, liq.notional_usd, liq.sampled)
        s = self.sums.setdefault(pair, [0.0, 0.0, 0, 0])
        s[side] += liq.notional_usd
        s[2] += 1
        s[3] += liq.sampled

    def _evict(self, since_ms: int) -> None:
        entries = self.entries
        while entries and entries[0][0] < since_ms:
            entries.popleft()
        buckets = self.buckets
        while buckets and (buckets[0].at + 1) * BUCKET_MS <= since_ms:
            bucket = buckets.popleft()
            values = bucket.values
            for i, pair in enumerate(bucket.pairs):
                long_usd, short_usd, count, sampled = values[4 * i : 4 * i + 4]
                s = self.sums[pair]
                s[2] -= count
                if s[2] == 0:  # exact zeros, not what float subtraction leaves
                    del self.sums[pair]
                    del self._pairs[pair]
                    continue
                s[0] = max(0.0, s[0] - long_usd)  # no -1e-9 from float rounding
                s[1] = max(0.0, s[1] - short_usd)
                s[3] -= sampled

    def _seal(self, before_ms: int) -> None:
        """Drop the lookup of the buckets wholly before ``before_ms`` (no read returns a
        liquidation stored then any more: see :meth:`update`)."""
        for bucket in reversed(self.buckets):
            if (bucket.at + 1) * BUCKET_MS <= before_ms:
                if bucket.index is None:
                    break
                bucket.index = None

    def head(self, n: int) -> list[tuple[str, Liquidation]]:
        """The newest ``n`` liquidations (fewer when the window holds fewer), newest first,
        with their index positions."""
        out: list[tuple[str, Liquidation]] = []
        for _, position, liq in reversed(self.entries):
            if len(out) == n:
                break
            out.append((position, liq))
        return out

    def totals(self) -> dict[InstrumentId, LiquidationSums]:
        return {p: LiquidationSums(s[0], s[1], int(s[2]), s[3] > 0) for p, s in self.sums.items()}


@dataclass(slots=True)
class Answering:
    """What the request being answered took from a view (see :mod:`.answers`): set by
    :meth:`View.json` when the route answers with bytes made from that view alone."""

    view: View | None = None
    body: bytes | None = None


ANSWERING: ContextVar[Answering | None] = ContextVar("answering", default=None)
"""The request's :class:`Answering`, when :class:`~.answers.ViewAnswers` follows it."""


@dataclass(slots=True)
class View:
    """One read of the market. Derived answers are computed on first use and kept."""

    started: float
    """``time.monotonic()`` when the read began: its age bounds the answers' staleness."""
    read_ms: int
    pairs: list[InstrumentId]
    latest: dict[InstrumentId, dict[Kind, Event]]
    pressures: dict[InstrumentId, Pressure]
    health: dict[str, HealthSnapshot]
    liquidations: dict[InstrumentId, LiquidationSums]
    tape_head: list[tuple[str, Liquidation]]
    """The newest liquidations of the tape (``head_size`` at most), newest first, each with
    its index position: the first page of ``/v1/liquidations`` when it holds more than the
    page (else the page needs older entries, and reads the index in Redis)."""
    stress: dict[str, dict[str, StressEvent]] = field(default_factory=dict)
    """Each stress venue's newest states by field (:func:`~service.store.stress.read_latest`)."""
    stress_before: dict[tuple[str, str, str], InsuranceFund] = field(default_factory=dict)
    """The oldest insurance balance of each ``(venue, pool, asset)`` stored within the hour
    before the read (:func:`~service.store.stress.insurance_before`): their change's base."""
    _memo: dict[Any, Any] = field(default_factory=dict)

    def memo(self, key: Any, build: Callable[[], T]) -> T:
        """``build()``, once per view and key (no await inside: no two builds race). A key
        names one kind of value: ``("asset_view", name)``, ``("asset_item", name)``..."""
        try:
            value: T = self._memo[key]
        except KeyError:
            value = self._memo[key] = build()
        return value

    def ranked(self) -> list[Pressure]:
        """Every score, highest first (ties by venue, then symbol)."""
        return self.memo(
            "ranked",
            lambda: sorted(self.pressures.values(), key=lambda p: (-p.score, p.venue, p.symbol)),
        )

    def of_kind(self, kind: Kind) -> Iterator[Event]:
        """The latest event of ``kind`` of each instrument, by venue then symbol."""
        for events in self.latest.values():
            e = events.get(kind)
            if e is not None:
                yield e

    def assets(self, settings: Settings) -> dict[str, AssetView]:
        """Every asset's view over :data:`ASSET_WINDOW_S` (stale venues as of the read)."""
        return self.memo("assets", partial(self._asset_views, self.latest, settings))

    def asset(self, name: str, settings: Settings) -> AssetView | None:
        """One asset's view (built from its instruments alone: the same as in
        :meth:`assets`, for a fraction of the work)."""

        def build() -> AssetView | None:
            pairs = self.memo("asset_pairs", self._asset_pairs).get(name, [])
            latest = {p: self.latest[p] for p in pairs}
            return self._asset_views(latest, settings).get(name)

        return self.memo(("asset_view", name), build)

    def _asset_pairs(self) -> dict[str, list[InstrumentId]]:
        out: dict[str, list[InstrumentId]] = {}
        for pair, events in self.latest.items():
            asset = next((e.base for e in events.values()), None)  # as build_asset_views
            if asset is not None:
                out.setdefault(asset, []).append(pair)
        return out

    def _asset_views(
        self, latest: dict[InstrumentId, dict[Kind, Event]], settings: Settings
    ) -> dict[str, AssetView]:
        watchdog = settings.collect.watchdog_s
        stale = [
            v for v, s in self.health.items() if feed_problem(s, self.read_ms, watchdog) is not None
        ]
        return build_asset_views(
            latest, self.liquidations, stale, now_ms=self.read_ms,
            stale_after_s=settings.detector.stale_after_s, window_s=ASSET_WINDOW_S,
        )  # fmt: skip

    def json(self, key: Hashable, model: type[BaseModel], build: Callable[[], Any]) -> Response:
        """The answer ``build()`` makes, validated and rendered as ``model`` (as FastAPI
        renders a route's ``response_model``) once per view, then served as bytes."""

        def render() -> bytes:
            return model.model_validate(build()).model_dump_json().encode()

        body = self.memo(("json", key), render)
        answering = ANSWERING.get()
        if answering is not None:  # a function of this view alone: the same target may be
            answering.view, answering.body = self, body  # answered with it (.answers)
        return Response(body, media_type="application/json")


class Snapshots:
    """The current :class:`View` of one Redis, refreshed in the background (see module doc).
    Use as an async context manager: the refresh task runs inside it."""

    def __init__(
        self,
        client: aioredis.Redis,
        period_s: float,
        head_size: int = 1001,
        stress_venues: Sequence[str] = (),
        stored: StoredEvents | None = None,
    ) -> None:
        """``stress_venues``: the venues whose stress states each read takes (the enabled
        ones); ``stored``: what this process's writer stored, if it has one (a read takes
        those events instead of decoding their bytes: :mod:`service.store.stored`)."""
        self._client = client
        self._stress_venues = list(stress_venues)
        self._before: dict[tuple[str, str, str], InsuranceFund] | None = None
        self._stress_known: dict[bytes | str, StressEvent] = {}
        """The stress events of the last read, by stored bytes (decoded once)."""
        self._before_at = 0.0
        self._period_s = period_s
        self._max_age_s = STALE_PERIODS * period_s
        self._head_size = head_size
        self._view: View | None = None
        self._reading: asyncio.Task[View] | None = None
        self._reading_since = 0.0
        self._window = LiquidationWindow(head_size=head_size, stored=stored)
        self._market = MarketReader(client, stored)
        self._task: asyncio.Task[None] | None = None
        self._last_duration_s = 0.0
        self.refreshes = 0
        self.failures = 0

    async def __aenter__(self) -> Snapshots:
        if self._period_s > 0:
            self._task = asyncio.create_task(self._run(), name="api-snapshots")
        return self

    async def __aexit__(self, *exc: object) -> None:
        # A read that failed as it was stopped is not this exit's error.
        running = [t for t in (self._task, self._reading) if t is not None and not t.done()]
        await reap(*running, allow=(RedisError,))

    def fresh(self) -> View | None:
        """The view :meth:`get` would return now without waiting for a read, or ``None``
        (there is none, or it is past the bound: :meth:`get` would read)."""
        view = self._view
        if view is not None and time.monotonic() - view.started <= self._max_age_s:
            return view
        return None

    async def get(self) -> View:
        """The last complete view if its read began at most :data:`STALE_PERIODS` periods
        ago (at once, whatever read is in progress); else a read that began at most a period
        before this call (shared). Raises what that read raised (a :class:`RedisError`)."""
        arrived = time.monotonic()
        view = self._view
        if view is not None and arrived - view.started <= self._max_age_s:
            return view
        while True:
            reading = self._reading
            if reading is None or reading.done():
                reading = self._start_read()
            if self._reading_since >= arrived - self._period_s:
                return await asyncio.shield(reading)
            with contextlib.suppress(RedisError):  # too old for us: let it end, then ours
                await asyncio.shield(reading)

    def _start_read(self) -> asyncio.Task[View]:
        self._reading_since = time.monotonic()
        self._reading = asyncio.create_task(self._read(self._reading_since), name="api-read")
        return self._reading

    async def _read(self, started: float) -> View:
        client = self._client
        read_ms = time.time_ns() // 1_000_000
        (pairs, latest, pressures), health, _, (stress, before) = await asyncio.gather(
            self._market.read(),
            reader.health_snapshots(client),
            self._window.update(client, read_ms),
            self._read_stress(read_ms),
        )
        view = View(
            started, read_ms, pairs, latest, pressures, health, self._window.totals(),
            self._window.head(self._head_size), stress, before,
        )  # fmt: skip
        if self._view is None or self._view.started < started:
            self._view = view
        self._last_duration_s = time.monotonic() - started
        self.refreshes += 1
        return view

    async def _read_stress(
        self, read_ms: int
    ) -> tuple[dict[str, dict[str, StressEvent]], dict[tuple[str, str, str], InsuranceFund]]:
        venues = self._stress_venues
        if not venues:
            return {}, {}
        now = time.monotonic()
        latest = await stress_store.read_latest(self._client, venues, known=self._stress_known)
        pools = {
            (ev.venue, ev.pool, ev.asset)
            for states in latest.values()
            for ev in states.values()
            if isinstance(ev, InsuranceFund)
        }
        cached = self._before
        if (
            cached is not None
            and self._period_s > 0
            and now - self._before_at < STRESS_BEFORE_S
            and pools <= cached.keys()
        ):
            return latest, cached
        since = read_ms - stress_store.CHANGE_WINDOW_MS
        before = await stress_store.insurance_before(self._client, venues, since)
        self._before, self._before_at = before, now
        return latest, before

    async def _run(self) -> None:
        """Refresh so that a new view is there before the current one is ``period_s`` old
        (see :data:`REFRESH_SHARE`)."""
        while True:
            reading = self._reading
            if reading is None or reading.done():
                reading = self._start_read()
            try:
                # Shielded: a stop cancels this loop at once; the read is cancelled apart
                # (a read cancelled through this await could end normally and swallow it).
                await asyncio.shield(reading)
            except RedisError as exc:
                self.failures += 1
                if self.failures % 30 == 1:
                    log.warning("api snapshot refresh failed", error=str(exc)[:200],
                                failures=self.failures)  # fmt: skip
            await asyncio.sleep(max(0.0, self._period_s * REFRESH_SHARE - self._last_duration_s))
