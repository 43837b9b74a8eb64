"""The detector's I/O: hand-off streams in, pressure keys and transitions out.

Start-up: the stored pressure states younger than the rebuild span are restored (a cascade
running across a restart is not announced twice), then the hand-off streams are read from
``now - (window_s + stale_after_s)`` (stream IDs are millisecond timestamps): the window is
rebuilt, with its baselines and the feeds' last-seen times, before the first evaluation.
Then it continues live with blocking reads.

Each round (every ``eval_interval_s``) the model scores what is due; one pipeline then
``SET``\\s each new :class:`Pressure` at ``keys.pressure(venue, symbol)`` (assets in the
``keys.ASSET_PRESSURE`` hash, the market at ``keys.MARKET_PRESSURE``), ``XADD``\\s each
:class:`Transition` to the stream of its scope, ``keys.transitions(scope)`` (field ``e``,
trimmed ``MINID ~`` to ``transitions_retention_s``), and one entry holding every score it
wrote (features left out) to ``keys.SCORES``, the live stream's source. Every
``score_history_s`` it also samples each asset's and the market's score into
``keys.score_history(asset)`` for the charts. Those two are notifications: one that fails is
counted (:attr:`Detector.scores_unpublished`) and not retried, the scores themselves are.

Checkpoints (:mod:`.resume`, ``docs/detector.md`` "Restarts"): every
``checkpoint_interval_s`` after a round's writes, the model's learned state (baselines,
states, schedule) goes to Redis, and each round that scored anything is logged in the same
pipeline as its output. At start, before the rebuild, the last checkpoint is restored; the
rebuild hands the entries after it to the replay of the logged rounds, so the detector resumes
bit for bit as of its last round sent.

Warm start: with a :class:`~.warmup.Warmup` and a model that can be seeded, once the rebuild
is done a background task fills the baselines from the venues' history (bounded in time and
requests; failures are logged and skipped); the detector scores live data meanwhile.

Failure semantics: Redis errors never stop the loop. A failed read (or one that takes
longer than its block time plus :data:`READ_TIMEOUT_S`: a Redis that hangs) is retried with
backoff from the same stream IDs (nothing is skipped); a failed write keeps its pressures
(newest per instrument) and transitions (up to :data:`MAX_PENDING_TRANSITIONS`, oldest
dropped and counted) for the next round. An entry or event that cannot be used (it does not
decode, or holds an impossible value) is skipped and counted (:mod:`service.store.poison`);
the others are read.

Missing data is not calm: each round the model is told which venues to hold, by an
:class:`~.inputs.InputWatch` (the store unreachable, a venue's input stopped, the writer's
backlog after an outage not yet read).

``run()`` may be called again after it raised (the supervisor does): it starts over from the
stored states and the hand-off history, with a new model; counters and unwritten output are
kept.

A detector shard (``shard``: ``detect.shard`` ``I/N``, ``docs/scaling.md``) scores only its
assets (:meth:`~service.shard.Shard.owns_asset`), reading every hand-off stream through its
consumer group (:mod:`service.store.groups`): at start it rebuilds its windows from the history
up to the group's position, then reads on through the group, acknowledging what it folded in.
Each round it also writes its assets as members of the market (``keys.MARKET_MEMBERS``) and
its heartbeat (``keys.DETECT_SHARDS``); shard 0 owns the market, combined each round from
its own assets and the other shards' members (a shard whose heartbeat stopped: its members
hold the market, then weigh nothing once stale).
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace as dc_replace
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from ..aio import Slices, checkpoint, reap
from ..config import DetectorSettings
from ..errors import ConfigError, Verdict, verdict
from ..events import HandoffEvent
from ..histogram import Histogram
from ..process import SettleOnGrowth, settle_heap
from ..scores import ANY, Pressure, Scope, State, Transition, encode
from ..shard import Shard, asset_owner
from ..store import groups, keys, poison, reader
from .aggregate import Member
from .base import Evaluation, PressureModel, Seedable, Shardable, Sliced
from .factory import make_model
from .inputs import INPUT_GAP_S, InputWatch
from .resume import Checkpoints, Unrestored
from .warmup import Warmup

log = structlog.get_logger(__name__)

ROUND_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""The buckets of a round's duration (``round_budget_ms`` is 30 ms by default)."""

SLICE_S: Final = 0.005
"""A round runs in slices of about this much scoring (a model that can, :class:`~.base.Sliced`),
and a read's entries are folded in slices as long, with the event loop's other callbacks
between them: a whole round (30-40 ms at 3,000 instruments, ``round_budget_ms``), or a read
of a hundred entries per venue, in one go held every request and frame of the process that
long (``docs/performance.md``, "Where the loop stalls")."""

READ_COUNT = 100
"""Hand-off entries per stream per read (each entry is a whole batch of events)."""
MAX_PENDING_TRANSITIONS = 10_000
BACKOFF_MAX_S = 1.0
READ_TIMEOUT_S = 2.0
"""A read that takes this long beyond its block time means Redis hangs: it fails."""
MARKET_KEY = (ANY, Scope.MARKET.value)
_PRESSURE = msgspec.json.Decoder(Pressure)
_MEMBER = msgspec.json.Decoder(Member)
SHARD_GAP_S: Final = INPUT_GAP_S
"""A detector shard whose last round is older than this is missing: its assets under
pressure hold the market (as a venue whose input stopped holds its instruments)."""


class Beat(msgspec.Struct, frozen=True):
    """A detector shard's heartbeat (``keys.DETECT_SHARDS``, field ``I/N``)."""

    round_ms: int
    """When its last round ran."""
    touched_ms: int = 0
    """The last round that scored any of its instruments (its members may have changed)."""
    events_total: int = 0
    """Events of its assets folded into its windows since it started (the rebuild included)."""
    events: dict[str, int] = msgspec.field(default_factory=dict)
    """The same per asset."""


_BEAT = msgspec.json.Decoder(Beat)

Key = tuple[str, str]


class Detector:
    """Reads the venues' hand-off streams into a :class:`PressureModel`, writes its output."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: DetectorSettings,
        venues: list[str],
        clock: Callable[[], float] = time.time,
        model: PressureModel | None = None,
        warmup: Warmup | None = None,
        input_gap_s: Mapping[str, float] | None = None,
        shard: Shard | None = None,
    ) -> None:
        self._client = client
        self.shard = shard if shard is not None and shard.sharded else None
        """This detector's shard (``None``: one detector of every asset)."""
        self._settings = settings
        self._venues = list(venues)
        self._clock = clock
        self._given_model = model
        self._model: PressureModel = self._sharded(
            model if model is not None else make_model(settings)
        )
        self._warmup = warmup
        self.inputs = InputWatch(self._venues, input_gap_s)
        """Which venues' data is missing (``input_gap_s``: per venue, see :mod:`.inputs`)."""
        self._runs = 0
        self.warmup_task: asyncio.Task[int] | None = None
        self._last_ids: dict[str, str] = {}
        self._latest: dict[Key, Pressure] = {}
        self._unwritten: dict[Key, Pressure] = {}
        self._aggregates: dict[Key, Pressure] = {}
        """Asset scores by ``(asset, "asset")``, the market's by ``("*", "market")``."""
        self._unwritten_aggregates: dict[Key, Pressure] = {}
        self._unsent: list[Transition] = []
        self.transitions_total: Counter[tuple[str, str, str]] = Counter()
        """Transitions by ``(venue, from_state, to_state)`` (``venue`` is ``*`` for assets and
        the market)."""
        self.events_total = 0
        self.rounds_total = 0
        self.scored_total = 0
        """Instrument scores computed (each instrument a round scored)."""
        self.deferred = 0
        """Instruments the last round left for the next (its per-round limit)."""
        self.round_seconds = Histogram(ROUND_BUCKETS_S)
        """How long each round's evaluation took (the model's CPU, not the writes)."""
        self.read_failures = 0
        self.write_failures = 0
        self.dropped_transitions = 0
        self.scores_unpublished = 0
        """Rounds whose scores did not reach ``keys.SCORES`` (or a history sample lost)."""
        self._next_history_ms = 0
        self._failure_streak = 0
        self.ready = False
        """True once the windows are rebuilt from history."""
        # detector shards (see the module's doc)
        self._group = keys.detect_group(str(self.shard)) if self.shard else ""
        self._owned = _Owned(self.shard) if self.shard else _Owned(Shard(0, 1))
        self._owned_get = self._owned.__getitem__
        self._cursors: dict[str, str] = {}
        """Per venue: ``>`` (new entries), or the id after which to read this consumer's
        pending entries again (after a failed read)."""
        self._acks: dict[str, list[str]] = {}
        self.events_by_asset: Counter[str] = Counter()
        """A shard's events folded into its current windows, per asset."""
        self._touched_ms = 0
        self._members_written: dict[str, Member] = {}
        self._unwritten_members: dict[str, Member] = {}
        self._remote_touched_ms = 0
        self._remote_beat_ms = 0
        self._market_members: list[Member] | None = None
        self.checkpoints = Checkpoints(client, settings, str(self.shard or Shard(0, 1)), venues)
        """Its checkpoints and round log (:mod:`.resume`)."""

    def _sharded(self, model: PressureModel) -> PressureModel:
        if self.shard is not None:
            if not isinstance(model, Shardable):
                raise ConfigError(f"detect.shard: {type(model).__name__} cannot run as a shard")
            model.own_market = False
        return model

    def snapshot(self) -> dict[Key, Pressure]:
        """The newest pressure of every instrument evaluated so far (in-process, for metrics)."""
        return dict(self._latest)

    @property
    def scoring_cost_s(self) -> float | None:
        """What the model measures scoring one instrument costs (``None``: it does not)."""
        cost = getattr(self._model, "cost_us", None)
        return None if cost is None else float(cost) / 1e6

    @property
    def checkpoint_counts(self) -> Mapping[str, int]:
        """Checkpoints by outcome and rounds replayed (see :class:`~.resume.Checkpoints`)."""
        return self.checkpoints.counts

    def aggregates(self) -> dict[Key, Pressure]:
        """The newest asset scores (key ``(asset, "asset")``) and the market's (``("*",
        "market")``)."""
        return dict(self._aggregates)

    async def run(self) -> None:
        """Rebuild, then read and evaluate forever; cancel to stop."""
        if self._runs:
            self._reset()
        self._runs += 1
        try:
            await self._start()
            settle_heap("detector rebuilt")
            settler = SettleOnGrowth(len(self._latest))  # (the instruments it has scored)
            if self._warmup is not None and isinstance(self._model, Seedable):
                model = Unrestored(self._model, self.checkpoints.restored)
                self.warmup_task = asyncio.create_task(_warm(self._warmup, model), name="warmup")
            interval = self._settings.eval_interval_s
            next_round = self._clock()
            while True:
                checkpoint()
                wait = next_round - self._clock()
                if wait > 0:
                    await self._read(block_ms=max(1, int(wait * 1000)))
                    continue
                await self.evaluate_round()
                settler.observe(len(self._latest))  # the market in, once: settled again
                next_round = max(next_round + interval, self._clock())
        finally:
            if self.warmup_task is not None:
                await reap(self.warmup_task)
                self.warmup_task = None

    def _reset(self) -> None:
        """Start over after a failed run: a new model, rebuilt from Redis by :meth:`_start`."""
        self._model = self._sharded(
            self._given_model if self._given_model is not None else make_model(self._settings)
        )
        self._latest.clear()
        self._aggregates.clear()
        self._last_ids = {}
        self.inputs.reset()
        self.ready = False
        self._cursors, self._acks = {}, {}
        self.events_by_asset.clear()
        self._members_written.clear()
        self._market_members = None

    async def evaluate_round(self) -> Evaluation:
        """Evaluate what is due now and write it (one pipeline)."""
        now_ms = self._now_ms()
        holds = self.inputs.holds(now_ms)
        evaluation, took_s = await self._evaluate(now_ms, holds)
        if evaluation.pressures or evaluation.aggregates:  # (a round that changed nothing: none)
            self.checkpoints.log_round(now_ms, self._last_ids, holds)
        self.round_seconds.observe(took_s)
        self.rounds_total += 1
        self.scored_total += len(evaluation.pressures)
        if bool(evaluation.deferred) != bool(self.deferred):
            log.info(
                "detector round limit",
                reached=bool(evaluation.deferred),
                deferred=evaluation.deferred,
                budget_ms=self._settings.round_budget_ms,
            )
        self.deferred = evaluation.deferred
        if self.shard is not None:
            await self._share(evaluation, now_ms)
        for p in evaluation.pressures:
            key = (p.venue, p.symbol)
            self._latest[key] = self._unwritten[key] = p
        for p in evaluation.aggregates:
            key = (p.asset, p.scope.value)
            self._aggregates[key] = self._unwritten_aggregates[key] = p
        transitions = [*evaluation.transitions, *evaluation.aggregate_transitions]
        for t in transitions:
            self.transitions_total[(t.venue, t.from_state.value, t.to_state.value)] += 1
            log.info("transition", **_transition_log(t))
        self._queue_transitions(transitions)
        await self._write()
        await self.checkpoints.write(self._model, now_ms, self._last_ids)
        return evaluation

    async def _evaluate(self, now_ms: int, holds: dict[str, str]) -> tuple[Evaluation, float]:
        """The model's round at ``now_ms`` and the time its evaluation took (the model's
        own: the slices', not the loop's callbacks between them). A :class:`~.base.Sliced`
        model runs in slices of :data:`SLICE_S` with the loop's turn between them; the
        model is not changed meanwhile (this task alone folds events in; the warm start may
        seed between two slices as between two rounds: each instrument is scored on one side
        of it)."""
        model = self._model
        if not isinstance(model, Sliced):
            started = time.perf_counter()
            evaluation = model.evaluate(now_ms, holds)
            return evaluation, time.perf_counter() - started
        steps = model.evaluate_steps(now_ms, holds, SLICE_S)
        took_s = 0.0
        while True:
            started = time.perf_counter()
            try:
                next(steps)
            except StopIteration as done:
                return done.value, took_s + time.perf_counter() - started
            took_s += time.perf_counter() - started
            await asyncio.sleep(0)

    async def _start(self) -> None:
        now_ms = self._now_ms()
        since_ms = now_ms - int((self._settings.window_s + self._settings.stale_after_s) * 1000)
        stored = await self._restore(since_ms)
        market = self.shard is None or self.shard.index == 0
        since_ms = await self.checkpoints.load(
            self._model, since_ms, now_ms, [p for p in stored if self._restores(p)],
            self._owned_get, market, lambda: self._restore_model(stored),
        )  # fmt: skip
        if self.shard is not None:
            await self._start_shard(since_ms, now_ms)
            return
        self._last_ids = {venue: f"{since_ms}-0" for venue in self._venues}
        behind = set(self._venues)
        while behind:
            ids = {v: self._last_ids[v] for v in behind}
            got = await self._read(block_ms=1, last_ids=ids)
            behind = {v for v in got if _id_ms(self._last_ids[v]) < now_ms}
        self.checkpoints.replay(self._model, self._fold_any, self._replay_round)
        self.ready = True
        log.info("detector rebuilt", venues=self._venues, events=self.events_total)

    async def _restore(self, since_ms: int) -> list[Pressure]:
        """The states stored by a previous run (only recent ones), for the model (see
        :meth:`_restore_model`)."""
        while True:
            checkpoint()
            try:
                pairs = await reader.instruments(self._client)
                pairs = [p for p in pairs if p[0] in self._venues]
                stored = await reader.pressures(self._client, pairs)
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.hgetall(keys.ASSET_PRESSURE)
                    pipe.get(keys.MARKET_PRESSURE)
                    assets, market = await pipe.execute(raise_on_error=False)
                for key, reply in ((keys.ASSET_PRESSURE, assets), (keys.MARKET_PRESSURE, market)):
                    if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
                        poison.record("pressure", poison.Reason.WRONG_TYPE, key, reply)
                    elif isinstance(reply, Exception):
                        raise reply
                assets = assets if isinstance(assets, dict) else {}
                break
            except RedisError as exc:
                await self._backoff("restore", exc)
        # e.g. written by an older schema, or by hand: skipped (counted), that one starts calm
        aggregates = [(keys.ASSET_PRESSURE, raw) for raw in assets.values()]
        if isinstance(market, bytes):
            aggregates.append((keys.MARKET_PRESSURE, market))
        recent = []
        decoded = [poison.decode_or_record(_PRESSURE, raw, "pressure", k) for k, raw in aggregates]
        for p in [*stored.values(), *decoded]:
            if p is None:
                continue
            if p.updated_ms >= since_ms:
                if not self._restores(p):
                    if p.scope is Scope.INSTRUMENT:
                        recent.append(p)  # another shard's: for the order of arrival only
                    continue
                recent.append(p)
                if p.scope is Scope.INSTRUMENT:
                    self._latest[(p.venue, p.symbol)] = p
                else:
                    self._aggregates[(p.asset, p.scope.value)] = p
        return recent

    def _restore_model(self, recent: list[Pressure]) -> None:
        """The stored states into the model (another shard's instruments count in the
        order of arrival only)."""
        model = self._model
        if self.shard is None:
            model.restore(recent)
        else:
            assert isinstance(model, Shardable)
            model.restore_shard(recent, self._owns)

    async def _read(
        self,
        block_ms: int,
        last_ids: dict[str, str] | None = None,
        upto: dict[str, str] | None = None,
    ) -> set[str]:
        """One XREAD; feed the model; return the venues that had entries. A detector shard
        reads through its group once started, and by id (only up to ``upto``: its group's
        position) while it rebuilds."""
        if self.shard is not None and last_ids is None:
            return await self._read_group(block_ms)
        if not (last_ids or self._last_ids):
            await asyncio.sleep(block_ms / 1000)  # no venue to read: nothing but the rounds
            return set()
        try:
            async with asyncio.timeout(block_ms / 1000 + READ_TIMEOUT_S):
                entries = await reader.read_handoff(
                    self._client, last_ids or self._last_ids, block_ms, READ_COUNT
                )
        except (RedisError, TimeoutError) as exc:
            self.inputs.read_failed()
            await self._backoff("read", exc)
            return set(last_ids or ())
        now_ms = self._now_ms()
        if self.inputs.read_done(now_ms):
            log.info("detector: the store answers again")
        self._failure_streak = 0
        if self.shard is not None:
            return self._take(entries, now_ms, upto)
        got: set[str] = set()
        update, screen = self._model.update, self.inputs.screen
        slices = Slices(SLICE_S)
        for venue, stream_id, events in entries:
            if slices.due():  # (this task alone folds and evaluates: no round in between)
                await slices.pause()
            if self.checkpoints.resuming and self.checkpoints.take(venue, stream_id, events):
                self._last_ids[venue] = stream_id
                got.add(venue)
                continue
            if events:
                events = screen(events, venue, now_ms)
                update(events)
            self.events_total += len(events)
            self._last_ids[venue] = stream_id
            got.add(venue)
        return got

    # -- detector shards -----------------------------------------------------------------

    def _restores(self, p: Pressure) -> bool:
        """Whether a stored score is this detector's to resume: a shard's own assets (their
        instruments and asset scores), the market's for shard 0 only."""
        if self.shard is None:
            return True
        if p.scope is Scope.MARKET:
            return self.shard.index == 0
        return self.shard.owns_asset(p.asset)

    async def _start_shard(self, since_ms: int, now_ms: int) -> None:
        """Rebuild from the hand-off history up to the group's position, then read on
        through the group until caught up with ``now_ms`` (as one detector reads up to it)."""
        while True:
            checkpoint()
            try:
                positions = await groups.prepare(self._client, self._group, self._venues, since_ms)
                break
            except RedisError as exc:
                await self._backoff("group start", exc)
        self._last_ids = {venue: f"{since_ms}-0" for venue in self._venues}
        behind = {v for v in self._venues if _key(positions[v]) > _key(self._last_ids[v])}
        while behind:
            ids = {v: self._last_ids[v] for v in behind}
            got = await self._read(block_ms=1, last_ids=ids, upto=positions)
            behind = {v for v in got if _key(self._last_ids[v]) < _key(positions[v])}
        self._last_ids = positions
        self._cursors = dict.fromkeys(self._venues, ">")
        behind = set(self._venues)
        while behind:
            got = await self._read_group(block_ms=1, only=behind)
            behind = {v for v in got if _id_ms(self._last_ids[v]) < now_ms}
        self.checkpoints.replay(self._model, self._fold_any, self._replay_round)
        self.ready = True
        log.info(
            "detector shard rebuilt", shard=str(self.shard), group=self._group,
            venues=self._venues, events=sum(self.events_by_asset.values()),
        )  # fmt: skip

    async def _read_group(self, block_ms: int, only: set[str] | None = None) -> set[str]:
        """One read through the group (acknowledging what was folded since the last one);
        feed the model; return the venues that had entries."""
        cursors = {v: c for v, c in self._cursors.items() if only is None or v in only}
        if not cursors:
            await asyncio.sleep(block_ms / 1000)
            return set()
        try:
            async with asyncio.timeout(block_ms / 1000 + READ_TIMEOUT_S):
                entries, answered = await reader.read_handoff_group(
                    self._client, self._group, keys.DETECT_CONSUMER, cursors, block_ms,
                    READ_COUNT, self._acks,
                )  # fmt: skip
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                self.inputs.read_failed()
                await self._backoff("read", exc)
                return set(cursors)
            # the group is gone (a Redis that restarted empty, a group destroyed by hand):
            # made again where this shard left off
            log.warning("detector group missing; creating it again", group=self._group)
            try:
                for venue in cursors:
                    await groups.create(
                        self._client, self._group, [venue], self._last_ids.get(venue, "0")
                    )
            except RedisError as again:
                await self._backoff("group create", again)
            self._cursors.update(dict.fromkeys(cursors, ">"))
            return set(cursors)
        except (RedisError, TimeoutError) as exc:
            self.inputs.read_failed()
            # Redis may have delivered what never arrived (a reply lost on the way): read
            # this consumer's pending entries after the last one folded in, then new ones
            self._cursors.update({v: self._last_ids.get(v, "0") for v in cursors})
            await self._backoff("read", exc)
            return set(cursors)
        self._acks = {v: ids for v, ids in self._acks.items() if v not in cursors}
        now_ms = self._now_ms()
        if self.inputs.read_done(now_ms):
            log.info("detector: the store answers again")
        self._failure_streak = 0
        got = self._take(entries, now_ms, None)
        for venue in answered:
            if self._cursors.get(venue, ">") != ">":  # reading what was pending
                pending = [sid for v, sid, _ in entries if v == venue]
                self._cursors[venue] = pending[-1] if pending else ">"
        for venue, sid, _ in entries:
            self._acks.setdefault(venue, []).append(sid)
        return got

    def _take(
        self,
        entries: list[tuple[str, str, list[HandoffEvent]]],
        now_ms: int,
        upto: dict[str, str] | None,
    ) -> set[str]:
        """A shard folds the entries' events of its own assets in (up to ``upto``)."""
        got: set[str] = set()
        for venue, stream_id, events in entries:
            if upto is not None and _key(stream_id) > _key(upto[venue]):
                self._last_ids[venue] = upto[venue]  # the rest is read through the group
                got.add(venue)
                continue
            if self.checkpoints.resuming and self.checkpoints.take(venue, stream_id, events):
                pass  # folded in by the replay, at its round
            elif events:
                self.events_total += self._fold(venue, events, now_ms)
            self._last_ids[venue] = stream_id
            got.add(venue)
        return got

    def _fold_any(self, venue: str, events: list[HandoffEvent]) -> None:
        """An entry's events into the model, now (a replay's)."""
        now_ms = self._now_ms()
        if self.shard is not None:
            self.events_total += self._fold(venue, events, now_ms)
            return
        events = self.inputs.screen(events, venue, now_ms)
        self._model.update(events)
        self.events_total += len(events)

    def _replay_round(self, round_ms: int, holds: dict[str, str]) -> None:
        """A round of the run before, again: its output was sent then, not now."""
        evaluation = self._model.evaluate(round_ms, holds)
        for p in evaluation.pressures:
            self._latest[(p.venue, p.symbol)] = p
        for p in evaluation.aggregates:
            self._aggregates[(p.asset, p.scope.value)] = p

    def _owns(self, asset: str) -> bool:
        """Whether this shard scores ``asset``."""
        return self._owned[asset]

    def _fold(self, venue: str, events: list[HandoffEvent], now_ms: int) -> int:
        """One entry's events into the model, which keeps this shard's assets' (and what
        the others' tell of their venue); how many were this shard's."""
        model = self._model
        assert isinstance(model, Shardable)
        mine = model.update_shard(self.inputs.screen(events, venue, now_ms), self._owned_get)
        self.events_by_asset.update(map(_BASE, mine))  # (counted in C)
        return len(mine)

    async def _share(self, evaluation: Evaluation, now_ms: int) -> None:
        """A shard's part of the market: its assets as members, to write; shard 0 also
        combines the market from every shard's members (into ``evaluation``)."""
        model = self._model
        assert isinstance(model, Shardable)
        assert self.shard is not None
        if evaluation.pressures:
            self._touched_ms = now_ms
        own = model.members()
        for asset, member in own.items():
            if self._members_written.get(asset) != member:
                self._unwritten_members[asset] = member
        if self.shard.index != 0:
            return
        others = await self._other_members(now_ms)
        if others is None:
            return  # the store does not answer: the market holds until it does
        members = {**others, **own}
        ordered = [members[a] for a in sorted(members)]
        remote_touched, self._remote_touched_ms = (
            self._remote_touched_ms,
            max(self._remote_touched_ms, self._remote_beat_ms),
        )
        if (
            not evaluation.pressures
            and self._remote_touched_ms <= remote_touched
            and ordered == self._market_members
        ):
            return  # nothing scored anywhere since the last round: the market is as it was
        self._market_members = ordered
        market = model.evaluate_market(now_ms, ordered)
        evaluation.aggregates.extend(market.aggregates)
        evaluation.aggregate_transitions.extend(market.aggregate_transitions)

    async def _other_members(self, now_ms: int) -> dict[str, Member] | None:
        """The other shards' assets as members of the market, as the market's owner may use
        them now: a shard missing for :data:`SHARD_GAP_S` holds the market with its assets
        under pressure; one missing for ``stale_after_s`` weighs nothing."""
        assert self.shard is not None
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.hgetall(keys.MARKET_MEMBERS)
                    pipe.hgetall(keys.DETECT_SHARDS)
                    raw_members, raw_beats = await pipe.execute(raise_on_error=False)
            for reply in (raw_members, raw_beats):  # (a wrong type is skipped, counted)
                if isinstance(reply, Exception) and not str(reply).startswith("WRONGTYPE"):
                    raise reply
        except (RedisError, TimeoutError) as exc:
            self.read_failures += 1
            log.warning("detector: market members unreadable", error=str(exc) or "timeout")
            return None
        count, me = self.shard.count, self.shard.index
        beats: dict[int, Beat] = {}
        if poison.readable(raw_beats, "pressure", keys.DETECT_SHARDS):
            for name, raw in raw_beats.items():
                field = poison.utf8(name, "pressure", keys.DETECT_SHARDS)
                index, slash, of = (field or "").partition("/")
                if slash and of == str(count) and index.isdigit() and int(index) != me:
                    beat = poison.decode_or_record(_BEAT, raw, "pressure", keys.DETECT_SHARDS)
                    if beat is not None:
                        beats[int(index)] = beat
        self._remote_beat_ms = max((b.touched_ms for b in beats.values()), default=0)
        out: dict[str, Member] = {}
        if not poison.readable(raw_members, "pressure", keys.MARKET_MEMBERS):
            return out
        stale_ms = int(self._settings.stale_after_s * 1000)
        gap_ms = int(SHARD_GAP_S * 1000)
        for name, raw in raw_members.items():
            asset = poison.utf8(name, "pressure", keys.MARKET_MEMBERS)
            if asset is None:
                continue
            owner = asset_owner(asset, count)
            if owner == me:
                continue  # this shard's own, from its model
            m = poison.decode_or_record(_MEMBER, raw, "pressure", keys.MARKET_MEMBERS)
            if m is None:
                continue
            beat = beats.get(owner)
            age_ms = now_ms - beat.round_ms if beat is not None else stale_ms + 1
            if age_ms > stale_ms:
                part = None if m.part is None else dc_replace(m.part, quality=0.0)
                m = Member(asset, part, held=False)
            elif age_ms > gap_ms:
                pressed = m.part is not None and m.part.state is not State.CALM
                m = Member(asset, m.part, held=m.held or pressed)
            out[asset] = m
        return out

    async def _write(self) -> None:
        beat = self.shard is not None
        if not (self._unwritten or self._unsent or self._unwritten_aggregates or beat
                or self.checkpoints.unlogged):  # fmt: skip
            return
        minid = str(self._now_ms() - int(self._settings.transitions_retention_s * 1000))
        pressures = list(self._unwritten.items())
        assets = {a: encode(p) for (a, scope), p in self._unwritten_aggregates.items()
                  if scope == Scope.ASSET.value}  # fmt: skip
        market = self._unwritten_aggregates.get(MARKET_KEY)
        unsent = self._unsent
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for (venue, symbol), p in pressures:
                    pipe.set(keys.pressure(venue, symbol), encode(p))
                if assets:
                    pipe.hset(keys.ASSET_PRESSURE, mapping=assets)  # type: ignore[arg-type]
                if market is not None:
                    pipe.set(keys.MARKET_PRESSURE, encode(market))
                for t in unsent:
                    stream = keys.transitions(t.scope.value)
                    pipe.xadd(stream, {"e": encode(t)}, minid=minid, approximate=True)
                published = self._queue_scores(pipe, pressures, market)
                members = self._queue_shard(pipe)
                logged = self.checkpoints.queue_log(pipe)  # last: sent with the output
                replies = iter(await pipe.execute(raise_on_error=False))
        except RedisError as exc:
            self.write_failures += 1
            log.warning("redis write failed; keeping the round for the next", error=str(exc))
            return
        # Each command of the pipeline applied on its own: only what failed is kept for the
        # next round (a transition written twice would be announced twice), and what Redis
        # refuses for good (a key of another type) is dropped and counted.
        kept = self._kept
        self._unwritten = {k: p for k, p in pressures if kept(next(replies), keys.pressure(*k))}
        keep_assets = bool(assets) and kept(next(replies), keys.ASSET_PRESSURE)
        keep_market = market is not None and kept(next(replies), keys.MARKET_PRESSURE)
        self._unwritten_aggregates = {
            k: p
            for k, p in self._unwritten_aggregates.items()
            if (keep_market if k == MARKET_KEY else keep_assets)
        }
        self._unsent = [
            t for t in unsent if kept(next(replies), keys.transitions(t.scope.value), "transition")
        ]
        for key in published:
            reply = next(replies)
            if isinstance(reply, Exception):  # a notification: counted, not retried
                self.scores_unpublished += 1
                if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
                    poison.record("scores", poison.Reason.WRONG_TYPE, key, reply)
        if beat:
            kept(next(replies), keys.DETECT_SHARDS)  # the next round's beat is new
            if members and not kept(next(replies), keys.MARKET_MEMBERS):
                self._members_written.update(members)
                for asset, member in members.items():
                    if self._unwritten_members.get(asset) == member:
                        del self._unwritten_members[asset]
        self.checkpoints.logged([next(replies) for _ in range(logged)])
        if (self._unwritten or self._unwritten_aggregates or self._unsent
                or self._unwritten_members or self.checkpoints.unlogged):  # fmt: skip
            self.write_failures += 1

    def _queue_scores(
        self, pipe: Any, pressures: list[tuple[Key, Pressure]], market: Pressure | None
    ) -> list[str]:
        """Queue the round's scores entry and, when due, the history samples; the keys, in
        the order of their replies."""
        now_ms = self._now_ms()
        s = self._settings
        written = [p for _, p in pressures]
        written += [p for k, p in self._unwritten_aggregates.items() if k != MARKET_KEY]
        if market is not None:
            written.append(market)
        out: list[str] = []
        if written:
            lean = [msgspec.structs.replace(p, features={}) for p in written]
            minid = str(now_ms - int(s.scores_retention_s * 1000))
            pipe.xadd(keys.SCORES, {"e": encode(lean)}, minid=minid, approximate=True)
            out.append(keys.SCORES)
        if self._aggregates and now_ms >= self._next_history_ms:
            self._next_history_ms = now_ms + int(s.score_history_s * 1000)
            minid = str(now_ms - int(s.score_history_retention_s * 1000))
            for p in self._aggregates.values():
                key = keys.score_history(p.asset)
                sample = {"score": round(p.score, 2), "state": p.state, "side": p.side}
                pipe.xadd(key, {"e": encode(sample)}, minid=minid, approximate=True)
                out.append(key)
        return out

    def _queue_shard(self, pipe: Any) -> dict[str, Member]:
        """A shard's heartbeat and its members not yet written; the members queued."""
        if self.shard is None:
            return {}
        beat = Beat(
            round_ms=self._now_ms(),
            touched_ms=self._touched_ms,
            events_total=sum(self.events_by_asset.values()),
            events=dict(self.events_by_asset),
        )
        pipe.hset(keys.DETECT_SHARDS, str(self.shard), encode(beat))
        members = dict(self._unwritten_members)
        if members:
            mapping = {asset: encode(m) for asset, m in members.items()}
            pipe.hset(keys.MARKET_MEMBERS, mapping=mapping)
        return members

    @staticmethod
    def _kept(reply: object, key: str, what: str = "pressure") -> bool:
        """Whether a pipelined write must be tried again: it failed, and not for good."""
        if not isinstance(reply, Exception):
            return False
        if isinstance(reply, ResponseError) and str(reply).startswith("WRONGTYPE"):
            poison.record(what, poison.Reason.WRONG_TYPE, key, reply)
            return False
        log.warning("redis refused a write; keeping it for the next round", key=key,
                    error=str(reply)[:200])  # fmt: skip
        return True

    def _queue_transitions(self, transitions: list[Transition]) -> None:
        self._unsent.extend(transitions)
        excess = len(self._unsent) - MAX_PENDING_TRANSITIONS
        if excess > 0:
            del self._unsent[:excess]
            self.dropped_transitions += excess
            log.warning("transitions dropped: Redis unwritable", dropped=excess)

    async def _backoff(self, what: str, exc: Exception) -> None:
        self.read_failures += 1
        self._failure_streak += 1
        delay = min(BACKOFF_MAX_S, 0.05 * 2 ** min(self._failure_streak, 7))
        if self._failure_streak in (1, 10) or self._failure_streak % 100 == 0:
            log.warning(f"redis {what} failed; retrying", error=str(exc) or type(exc).__name__,
                        retry_in_s=delay, failures=self._failure_streak)  # fmt: skip
        await asyncio.sleep(delay)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


async def _warm(warmup: Warmup, model: Seedable) -> int:
    """The warm start, whose failure costs only the warm start (logged)."""
    try:
        samples = await warmup.run(model)
    except Exception as exc:
        if verdict(exc) is Verdict.FATAL:
            raise
        log.error("warm start failed; scoring without it", exc_info=exc)
        return 0
    settle_heap("warm start done")
    return samples


class _Owned(dict[str, bool]):
    """Whether a shard scores an asset, by asset: a hash per asset, then a dict lookup per
    event (in C: the lookup is the shard's cost of every event it does not score)."""

    def __init__(self, shard: Shard) -> None:
        super().__init__()
        self._shard = shard

    def __missing__(self, asset: str) -> bool:
        owned = self[asset] = self._shard.owns_asset(asset)
        return owned


def _id_ms(stream_id: str) -> int:
    return int(stream_id.partition("-")[0])


_key = groups.id_key
_BASE = operator.attrgetter("base")


def _transition_log(t: Transition) -> dict[str, object]:
    return {
        "scope": t.scope.value,
        "asset": t.asset,
        "venue": t.venue,
        "symbol": t.symbol,
        "from_state": t.from_state.value,
        "to_state": t.to_state.value,
        "side": t.side.value if t.side else None,
        "score": t.score,
    }
