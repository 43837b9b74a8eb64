"""Whole-market reads for a process that keeps the market in memory (the API's snapshot).

:func:`.reader.latest` and :func:`.reader.pressures` pipeline one command per instrument:
at thousands of instruments the client's cost per command dominates. :class:`MarketReader`
reads every instrument's latest hash and pressure score with one script call per chunk of
instruments, all of a read's calls in one pipeline (one round trip), and decodes
only the values that changed since its previous read (a stored value is immutable JSON: the
same bytes decode to the same event), so a refresh of an unchanged market costs the
transfer and a bytes comparison per value.

Failure semantics are :mod:`.reader`'s: an unusable value is skipped and counted
(:mod:`.poison`) when first read (and again if it changes), a key of the wrong type at each
read; connection errors propagate.
The script reads keys of every instrument's hash slot, which a script may do on a single Redis
only: on a Redis Cluster the same reads are a pipeline of one command per key, grouped by node
(the same answers: an error in place of a key of the wrong type).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from ..aio import Slices
from ..events import KIND_OF, Event, InstrumentId, Kind
from ..scores import Pressure
from . import keys
from .client import is_cluster
from .poison import (
    Reason,
    decode_or_record,
    pressure_problem,
    readable,
    record,
    usable_event,
    utf8,
)
from .reader import instrument_members
from .stored import StoredEvents

# redis.pcall: a key of the wrong type answers an error in its place, not for the whole call.
# The keys are built here from keys.py's parts (prefix + instrument + suffix): sending the
# instruments rather than two key names each halves what the client packs per call.
READ_ALL_LUA: Final = """
-- ARGV[1], ARGV[2]: an instrument's latest hash is ARGV[1] .. "<venue>|<symbol>" .. ARGV[2];
-- ARGV[3], ARGV[4]: its pressure string likewise; ARGV[5..]: the instruments.
-- Returns, per instrument, HGETALL's answer then GET's (an error reply for a wrong type).
local out = {}
for i = 5, #ARGV do
  out[#out + 1] = redis.pcall("HGETALL", ARGV[1] .. ARGV[i] .. ARGV[2])
  out[#out + 1] = redis.pcall("GET", ARGV[3] .. ARGV[i] .. ARGV[4])
end
return out
"""
READ_ALL_SCRIPT: Final = READ_ALL_LUA.encode()
READ_ALL_SHA: Final = hashlib.sha1(READ_ALL_SCRIPT).hexdigest()
_PARTS: Final = (*keys.latest_key_parts(), *keys.pressure_key_parts())
CHUNK: Final = 250
"""Instruments per script call: bounds how long one call holds Redis."""
SLICE_S: Final = 0.005
"""The processing of a call's answer lets the event loop run after about this long: a
chunk of a busy market's changes (every mark new, each decoded and checked) took 10-45 ms
of the loop under the whole-market bench (``docs/performance.md``, "Where the loop
stalls"), an API answer's p99 budget being 20 ms."""
_PRESSURE: Final = msgspec.json.Decoder(Pressure)
_KINDS: Final = {k.value: k for k in Kind}

Fields = dict[bytes, tuple[bytes, Event | None]]
"""One latest hash as last decoded: field -> (stored JSON, its event or None if unusable)."""


class MarketReader:
    """Reads every instrument's latest events and score; keeps what it decoded."""

    def __init__(self, client: aioredis.Redis, stored: StoredEvents | None = None) -> None:
        """``stored``: what this process's writer stored, whose events a read takes for the
        same bytes instead of decoding them (:mod:`.stored`)."""
        self._client = client
        self._stored = stored
        self._members: set[bytes] = set()
        self._pairs: list[tuple[bytes, InstrumentId]] = []
        self._rows: dict[InstrumentId, tuple[Any, dict[Kind, Event], Fields]] = {}
        """Each instrument's last hash answer, its events and fields: an unchanged answer
        (between two reads a second apart, most are) is not looked at again."""
        self._scores: dict[InstrumentId, tuple[bytes, Pressure | None]] = {}

    def _listing(self, members: Any) -> None:
        """Take the set of instruments ``SMEMBERS`` answered (parsed again only when it
        changed): :attr:`_pairs`, sorted as :func:`.reader.instruments` sorts them."""
        if isinstance(members, ResponseError):
            readable(members, "instruments", keys.INSTRUMENTS)
            members = set()
        elif isinstance(members, Exception):
            raise members
        if members != self._members:
            pairs = [(text.encode(), pair) for text, pair in instrument_members(members)]
            self._members, self._pairs = members, sorted(pairs, key=lambda p: p[1])

    async def read(
        self,
    ) -> tuple[
        list[InstrumentId], dict[InstrumentId, dict[Kind, Event]], dict[InstrumentId, Pressure]
    ]:
        """Every instrument, the newest event of each kind of each, and each usable score.

        One round trip in the steady state: the set of instruments and the rows of those
        of the last read, in one pipeline (a script call per :data:`CHUNK` instruments).
        Instruments new to the set are read in a second round trip; those that left it are
        dropped. Every ``await`` is a turn of a loop that may be busy (each cost tens of
        milliseconds of wall time under the whole-market bench), so a read awaits as few
        times as it can."""
        known = [member for member, _ in self._pairs]
        members, answers = await self._fetch(known, listing=True)
        self._listing(members)
        rows: dict[bytes, tuple[Any, Any]] = dict(
            zip(known, zip(answers[::2], answers[1::2], strict=True), strict=True)
        )
        listed = self._pairs
        new = [member for member, _ in listed if member not in rows]
        if new:
            _, answers = await self._fetch(new, listing=False)
            rows.update(zip(new, zip(answers[::2], answers[1::2], strict=True), strict=True))
        latest: dict[InstrumentId, dict[Kind, Event]] = {}
        scores: dict[InstrumentId, Pressure] = {}
        rows_seen: dict[InstrumentId, tuple[Any, dict[Kind, Event], Fields]] = {}
        scores_seen: dict[InstrumentId, tuple[bytes, Pressure | None]] = {}
        slices = Slices(SLICE_S)
        for member, pair in listed:
            if slices.due():  # (what it reads and keeps is this read's own until the end)
                await slices.pause()
            row, raw = rows[member]
            kept = self._rows.get(pair)
            if kept is None or kept[0] != row:
                fields = {} if kept is None else kept[2]
                kept = (row, *self._latest(pair, row, fields))
            rows_seen[pair] = kept
            latest[pair] = kept[1]
            score = self._score(pair, raw, scores_seen)
            if score is not None:
                scores[pair] = score
        self._rows, self._scores = rows_seen, scores_seen  # what is gone is forgotten
        return [pair for _, pair in listed], latest, scores

    async def _fetch(self, members: list[bytes], *, listing: bool) -> tuple[Any, list[Any]]:
        """``SMEMBERS`` of the instruments' set (when ``listing``; else ``None``), and the
        script's answer for ``members``: per instrument, its hash's then its score's."""
        if is_cluster(self._client):  # the keys are in many slots: one command per key
            got: Any = None
            if listing:
                try:
                    got = await self._client.smembers(keys.INSTRUMENTS)
                except ResponseError as exc:
                    got = exc
            rows: list[Any] = []
            for i in range(0, len(members), CHUNK):
                rows += await self._call(members[i : i + CHUNK])
            return got, rows
        for attempt in (1, 2):
            async with self._client.pipeline(transaction=False) as pipe:
                if listing:
                    pipe.smembers(keys.INSTRUMENTS)
                for i in range(0, len(members), CHUNK):
                    pipe.evalsha(READ_ALL_SHA, 0, *_PARTS, *members[i : i + CHUNK])
                answers = await pipe.execute(raise_on_error=False)
            got = answers[0] if listing else None
            calls = answers[1:] if listing else answers
            errors = [a for a in calls if isinstance(a, Exception)]
            if not errors:
                return got, [row for call in calls for row in call]
            if attempt == 1 and all(isinstance(e, NoScriptError) for e in errors):
                await self._client.script_load(READ_ALL_SCRIPT)  # first use, or Redis restarted
                continue
            raise errors[0]
        raise AssertionError("unreachable")

    async def _call(self, members: list[bytes]) -> list[Any]:
        """One chunk's rows on a Redis Cluster: a pipeline of one command per key."""
        latest_pre, latest_suf, pressure_pre, pressure_suf = _PARTS
        async with self._client.pipeline(transaction=False) as pipe:
            for member in members:
                text = member.decode()
                pipe.hgetall(latest_pre + text + latest_suf)
                pipe.get(pressure_pre + text + pressure_suf)
            got = await pipe.execute(raise_on_error=False)
        # HGETALL's answer as the script gives it: field, value, field, value...
        return [[x for kv in r.items() for x in kv] if isinstance(r, dict) else r for r in got]

    def _latest(
        self, pair: InstrumentId, row: Any, before: Fields
    ) -> tuple[dict[Kind, Event], Fields]:
        """The events of a hash answer, decoding only the fields not in ``before``."""
        events: dict[Kind, Event] = {}
        fields: Fields = {}
        if isinstance(row, Exception) and not readable(row, "latest", keys.latest(*pair)):
            return events, fields
        stored = self._stored
        mine = None if stored is None else stored.newest.get(pair)
        taken = 0
        for name, raw in zip(row[::2], row[1::2], strict=True):
            cached = before.get(name)
            if cached is None or cached[0] != raw:
                # This process's writer stored these very bytes: the event it encoded them
                # from is what decoding them gives (the hit keeps its bytes, and Redis's
                # copy goes with the read).
                hit = None if mine is None else mine.get(name)
                if hit is not None and hit[0] == raw:
                    cached = hit
                    taken += 1
                else:
                    key = keys.latest(*pair)
                    cached = (raw, self._decode_event(pair, key, name, raw))
            fields[name] = cached
            if cached[1] is not None:
                events[KIND_OF[type(cached[1])]] = cached[1]
        if taken and stored is not None:
            stored.taken += taken
        return events, fields

    @staticmethod
    def _decode_event(pair: InstrumentId, key: str, name: bytes, raw: bytes) -> Event | None:
        text = utf8(name, "latest", key)
        kind = None if text is None else _KINDS.get(text)
        if kind is None:
            if text is not None:
                record("latest", Reason.INVALID, key, f"unknown field {text!r}")
            return None
        event = usable_event(raw, kind.value, key, pair)
        if event is not None and KIND_OF[type(event)] is not kind:
            record(kind.value, Reason.INVALID, key, f"a {KIND_OF[type(event)]} event")
            return None
        return event

    def _score(
        self, pair: InstrumentId, raw: Any, seen: dict[InstrumentId, tuple[bytes, Pressure | None]]
    ) -> Pressure | None:
        cached = self._scores.get(pair)
        if cached is not None and cached[0] == raw:
            seen[pair] = cached
            return cached[1]
        key = keys.pressure(*pair)
        if raw is None or not readable(raw, "pressure", key):
            return None
        p = decode_or_record(_PRESSURE, raw, "pressure", key)
        if p is not None:
            problem = pressure_problem(p)
            if problem is None and (p.venue, p.symbol) != pair:
                problem = f"the score of {p.venue}|{p.symbol}"
            if problem is not None:
                record("pressure", Reason.INVALID, key, problem)
                p = None
        seen[pair] = (raw, p)
        return p
