"""The detector's checkpoints and round log in Redis: written as it runs, read at a start.

What a checkpoint holds and how it is applied: :mod:`.checkpoint`. This module decides when
to write one and which to resume, and replays the rounds after it.

Written: every ``checkpoint_interval_s`` after a round's writes (off the hot path: one
capture and one pipeline per interval, never per event), once every round before it is in
the round log. The round log (``keys.detect_rounds``) gets one small entry per round that
scored anything (its time, the hand-off position it had read up to, the venues it held), in
the same pipeline as that round's scores and transitions: a round is in the log exactly when
its output was sent. It is trimmed to the checkpoint before last at each checkpoint.

Read, at a start, before the rebuild (``docs/detector.md``, "Restarts"):

* *its own checkpoint, with its rounds* (the usual restart): the windows are rebuilt from
  ``round - (window_s + stale_after_s)``, the entries up to the checkpoint's position folded
  in, then each logged round after it is replayed (its entries folded in, the model evaluated
  at its time with its held venues, the output dropped: it was sent), then the rest read. The
  model is then, bit for bit, the one that ran, as of its last round sent. This needs the
  hand-off streams to still hold everything from that start;
* *a checkpoint the streams no longer cover* (a detector down for longer than
  ``store.handoff_retention_s`` less its window), or *another shard count's* (re-partitioned:
  each asset is restored by its new owner, from the header that wrote it): no replay.
  Within the rebuild's span its states, schedule and assessments are resumed and states stored
  after it win; older, only its baselines and the order of arrival are;
* *none usable* (none, corrupt, another version or other windows, older than
  ``checkpoint_max_age_s``): ignored, logged and counted; the detector starts as it did
  before checkpoints existed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..config import DetectorSettings
from ..events import HandoffEvent
from ..scores import Pressure, Scope
from ..store import checkpoints as store
from ..store import groups, keys
from . import checkpoint as ckpt
from .base import Seedable
from .robust_model import RobustModel

log = structlog.get_logger(__name__)

MAX_UNLOGGED: Final = 10_000
"""Rounds kept for the round log while Redis refuses it (then the oldest are dropped: a
replay over the gap is no longer exact)."""
_key = groups.id_key


class Checkpoints:
    """One detector's checkpoints: :meth:`load` at a start, :meth:`log_round` and
    :meth:`write` as it runs."""

    def __init__(
        self, client: aioredis.Redis, settings: DetectorSettings, me: str, venues: list[str]
    ) -> None:
        self._client = client
        self._s = settings
        self._me = me
        """This detector's ``I/N`` (``0/1``: one of everything)."""
        self._venues = venues
        self._fp = ckpt.fingerprint(settings)
        self.counts: Counter[str] = Counter()
        """By outcome: ``written``, ``failed`` (a write that did not complete), ``restored``
        (at a start), ``ignored`` (at a start: corrupt, incompatible, too old, or the store
        did not answer); ``replayed`` counts rounds."""
        self.bytes = 0
        """The size of the last checkpoint written."""
        self._next_ms = 0
        self._unlogged: list[bytes] = []
        self._log_id = ""
        self._checkpoint_log_id = ""
        self._resumed: list[ckpt.Resumed] = []
        self._stored: list[Pressure] = []
        self.restored: set[tuple[str, str]] = set()
        """The instruments whose baselines the last start restored (no warm start for them:
        they had theirs, and have learned since)."""

    @property
    def enabled(self) -> bool:
        return self._s.checkpoint_interval_s > 0

    # -- as it runs ------------------------------------------------------------------------

    def log_round(self, round_ms: int, last_ids: Mapping[str, str], holds: dict[str, str]) -> None:
        """A round that scored something: to the round log with its output."""
        if not self.enabled:
            return
        self._unlogged.append(ckpt.encode(ckpt.Round(round_ms, dict(last_ids), holds)))
        if len(self._unlogged) > MAX_UNLOGGED:
            del self._unlogged[0]
            self.counts["log_dropped"] += 1

    @property
    def unlogged(self) -> bool:
        return bool(self._unlogged)

    def queue_log(self, pipe: Any) -> int:
        """Queue the rounds not yet in the log (last in the round's pipeline); how many."""
        for entry in self._unlogged:
            pipe.xadd(keys.detect_rounds(self._me), {"r": entry})
        return len(self._unlogged)

    def logged(self, replies: list[Any]) -> None:
        """The replies of :meth:`queue_log`'s commands: keep what failed, and all after it."""
        for n, reply in enumerate(replies):
            if isinstance(reply, Exception):
                self._unlogged = self._unlogged[n:]
                return
            self._log_id = reply.decode() if isinstance(reply, bytes) else str(reply)
        del self._unlogged[: len(replies)]

    async def write(
        self, model: object, now_ms: int, last_ids: Mapping[str, str], force: bool = False
    ) -> None:
        """The model's state after the round at ``now_ms``, when one is due (and every
        round before it is in the log); a failure is logged and counted."""
        if not self.enabled or not isinstance(model, RobustModel) or self._unlogged:
            return
        if not force and now_ms < self._next_ms:
            return
        self._next_ms = now_ms + int(self._s.checkpoint_interval_s * 1000)
        header, records = ckpt.capture(model, now_ms, self._me, last_ids, self._fp, self._log_id)
        encoded = {r.asset: ckpt.encode(r) for r in records}
        head = ckpt.encode(header)
        self.bytes = len(head) + sum(map(len, encoded.values()))
        ttl_s = max(1, int(self._s.checkpoint_max_age_s))
        keep = self._checkpoint_log_id
        failed = await store.write(self._client, self._me, head, encoded, ttl_s, keep)
        if failed:
            self.counts["failed"] += 1
            log.warning("detector checkpoint not written", keys=len(failed), first=failed[0])
            return
        self.counts["written"] += 1
        self._checkpoint_log_id = self._log_id

    # -- at a start ------------------------------------------------------------------------

    async def load(
        self,
        model: object,
        since_ms: int,
        now_ms: int,
        stored: list[Pressure],
        owns: Callable[[str], bool],
        market: bool,
        restore: Callable[[], None],
    ) -> int:
        """Resume the last checkpoint into ``model`` (before the rebuild); where the
        rebuild must start (``since_ms`` or earlier, for a replay). ``stored``: its own
        stored states (announced), which ``restore`` puts into the model: before the
        checkpoint's, unless the checkpoint is replayed (the model is then the checkpoint's
        alone, the replay makes it the one that stopped); ``market``: it owns the market."""
        self._resumed, self._stored = [], stored
        self.restored = set()
        self._next_ms, self._unlogged = 0, []  # the first round writes one: the log's new base
        if not self.enabled or not isinstance(model, RobustModel):
            restore()
            return since_ms
        span_ms = int((self._s.window_s + self._s.stale_after_s) * 1000)
        max_age_ms = int(self._s.checkpoint_max_age_s * 1000)
        try:
            raw = await store.headers(self._client)
            chosen, ignored = ckpt.choose(raw, self._me, self._fp, now_ms, max_age_ms)
            wanted = {a: h for h in chosen for a in h.assets if owns(a)}
            records = await store.assets(self._client, sorted(wanted))
            rounds = await self._rounds(chosen, since_ms, span_ms)
        except (RedisError, TimeoutError) as exc:
            self.counts["ignored"] += 1
            log.warning("detector checkpoint unreadable; rebuilding without it",
                        error=str(exc) or "timeout")  # fmt: skip
            restore()
            return since_ms
        for name, why in ignored:
            self.counts["ignored"] += 1
            log.warning("detector checkpoint ignored", checkpoint=name, reason=why)
        by_header = self._records(records, wanted)
        if rounds is None:
            restore()
        start_ms = since_ms
        for header in chosen:
            replay = rounds if header.shard == self._me else None
            recent = replay is not None or header.round_ms >= since_ms
            mine = by_header.get(header.shard, [])
            resumed = ckpt.resume(model, header, mine, owns, recent=recent, market=market)
            self.restored.update((i.venue, i.symbol) for r in mine if owns(r.asset)
                                 for i in r.instruments)  # fmt: skip
            if replay is None:  # what was announced after it stands
                model.restore([p for p in stored if p.updated_ms > header.round_ms])
            else:
                resumed.rounds = replay
                start_ms = min(start_ms, header.round_ms - span_ms)
            self._resumed.append(resumed)
            self.counts["restored"] += 1
            log.info("detector checkpoint restored", checkpoint=header.shard,
                     round_ms=header.round_ms, recent=recent, assets=resumed.assets,
                     instruments=resumed.instruments,
                     replay=None if replay is None else len(replay))  # fmt: skip
        return start_ms

    async def _rounds(
        self, chosen: list[ckpt.Header], since_ms: int, span_ms: int
    ) -> list[ckpt.Round] | None:
        """This detector's rounds after its checkpoint, when they can be replayed: it is at
        most one interval older than the rebuild's start (what the replay holds in memory),
        and the hand-off streams still hold every entry from its own rebuild's start."""
        mine = next((h for h in chosen if h.shard == self._me), None)
        if mine is None:
            return None
        if mine.round_ms < since_ms - int(self._s.checkpoint_interval_s * 1000):
            return None  # down for longer than its windows: nothing to resume exactly
        if not await store.hold_since(self._client, self._venues, mine.round_ms - span_ms):
            return None  # trimmed: the windows as of the checkpoint cannot be rebuilt
        out = []
        for raw in await store.rounds(self._client, self._me, mine.log_id):
            try:
                rnd = ckpt.decode_round(raw)
            except ckpt.Incompatible as exc:
                self.counts["ignored"] += 1
                log.warning("detector round log entry ignored; no replay", reason=str(exc))
                return None
            if rnd.round_ms > mine.round_ms:  # (without an entry of its own: the whole log,
                out.append(rnd)  # whose rounds of a run before the checkpoint are older)
        return out

    def _records(
        self, records: dict[str, bytes], wanted: dict[str, ckpt.Header]
    ) -> dict[str, list[ckpt.AssetRecord]]:
        """The usable asset records, by the header (``I/N``) they belong to."""
        out: dict[str, list[ckpt.AssetRecord]] = {}
        for asset, value in records.items():
            header = wanted[asset]
            try:
                record = ckpt.decode_asset(value, self._fp)
            except ckpt.Incompatible as exc:
                why = str(exc)
            else:
                if record.round_ms == header.round_ms:
                    out.setdefault(header.shard, []).append(record)
                    continue
                why = "not of its header's round"  # a write that half failed
            self.counts["ignored"] += 1
            log.warning("detector checkpoint of an asset ignored", asset=asset, reason=why)
        return out

    @property
    def resuming(self) -> bool:
        return bool(self._resumed)

    def take(self, venue: str, stream_id: str, events: list[HandoffEvent]) -> bool:
        """An entry the rebuild read: ``True`` when a replay takes it (to fold in at its
        round), ``False`` when the rebuild folds it in now."""
        taken = False
        for resumed in self._resumed:
            if resumed.after(venue, stream_id, _key) and resumed.rounds is not None:
                resumed.buffer.append((venue, stream_id, events))
                taken = True
        return taken

    def replay(
        self,
        model: object,
        fold: Callable[[str, list[HandoffEvent]], None],
        evaluate: Callable[[int, dict[str, str]], None],
    ) -> None:
        """The rebuild is done: replay the logged rounds (``fold`` an entry's events,
        ``evaluate`` a round), then fold in the rest."""
        for resumed in self._resumed:
            resumed.finish()
            if resumed.rounds is None:
                continue
            buffer = resumed.buffer
            last_ms = resumed.round_ms
            for rnd in resumed.rounds:
                rest = []
                for venue, stream_id, events in buffer:
                    if _key(stream_id) <= _key(rnd.last_ids.get(venue, "0")):
                        fold(venue, events)
                    else:
                        rest.append((venue, stream_id, events))
                buffer = rest
                evaluate(rnd.round_ms, rnd.holds)
                last_ms = rnd.round_ms
                self.counts["replayed"] += 1
            for venue, _, events in buffer:
                fold(venue, events)
            resumed.buffer = []
            assert isinstance(model, RobustModel)
            # a round whose output was sent but not its log entry (the command alone failed)
            newer = [p for p in self._stored if p.updated_ms > last_ms]
            market = [p for p in self._stored if p.scope is Scope.MARKET and not model.own_market
                      and p.updated_ms > resumed.round_ms]  # fmt: skip
            model.restore(newer + [p for p in market if p not in newer])
        self._resumed, self._stored = [], []


class Unrestored:
    """A :class:`~.base.Seedable` model as the warm start sees it after a start: without the
    instruments a checkpoint restored (their baselines hold their warm start and more)."""

    def __init__(self, model: Seedable, restored: set[tuple[str, str]]) -> None:
        self._model = model
        self._restored = restored

    def seed(
        self,
        venue: str,
        symbol: str,
        asset: str,
        oi: list[tuple[int, float, float]],
        funding: list[tuple[int, float]],
    ) -> int:
        return self._model.seed(venue, symbol, asset, oi, funding)

    def instruments(self) -> list[tuple[str, str, str, float]]:
        return [r for r in self._model.instruments() if (r[0], r[1]) not in self._restored]
