"""Whole-market reads for a process that keeps the market in memory (the API's snapshot).

:func:`.reader.latest` and :func:`.reader.pressures` pipeline one command per instrument:
at thousands of instruments the client's cost per command dominates. :class:`MarketReader`
reads every instrument's latest hash and pressure score in one script call, and decodes
only the values that changed since its previous read (a stored value is immutable JSON: the
same bytes decode to the same event), so a refresh of an unchanged market costs the
transfer and a bytes comparison per value.

Failure semantics are :mod:`.reader`'s: an unusable value is skipped and counted
(:mod:`.poison`) when first read (and again if it changes), a key of the wrong type at each
read; connection errors propagate.
The script reads keys of every instrument's hash slot: on a single Redis only (see
:mod:`.keys` on Redis Cluster).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from ..events import KIND_OF, Event, Kind
from ..scores import Pressure
from . import keys
from .poison import (
    Reason,
    decode_or_record,
    pressure_problem,
    readable,
    record,
    usable_event,
    utf8,
)

Pair = tuple[str, str]

# redis.pcall: a key of the wrong type answers an error in its place, not for the whole call.
READ_ALL_LUA: Final = """
-- KEYS[1..ARGV[1]]: latest hashes; the other KEYS: pressure strings.
-- Returns, per key, HGETALL's or GET's answer (an error reply in place of a wrong type).
local n = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  if i <= n then
    out[i] = redis.pcall("HGETALL", key)
  else
    out[i] = redis.pcall("GET", key)
  end
end
return out
"""
READ_ALL_SCRIPT: Final = READ_ALL_LUA.encode()
READ_ALL_SHA: Final = hashlib.sha1(READ_ALL_SCRIPT).hexdigest()
CHUNK: Final = 500
"""Instruments per script call: bounds how long one call holds Redis, and how long its
answer's processing holds the event loop (each call is an await)."""
_PRESSURE: Final = msgspec.json.Decoder(Pressure)
_KINDS: Final = {k.value: k for k in Kind}


class MarketReader:
    """Reads every instrument's latest events and score; keeps what it decoded."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._events: dict[tuple[Pair, bytes], tuple[bytes, Event | None]] = {}
        self._scores: dict[Pair, tuple[bytes, Pressure | None]] = {}
        self._rows: dict[Pair, tuple[list[Any], dict[Kind, Event]]] = {}
        """Each instrument's last hash answer and its events: an unchanged answer (the
        usual case between two reads a second apart) is not looked at again."""

    async def read(
        self, pairs: list[Pair]
    ) -> tuple[dict[Pair, dict[Kind, Event]], dict[Pair, Pressure]]:
        """The newest event of each kind per instrument, and each usable score."""
        latest: dict[Pair, dict[Kind, Event]] = {}
        scores: dict[Pair, Pressure] = {}
        events_seen: dict[tuple[Pair, bytes], tuple[bytes, Event | None]] = {}
        scores_seen: dict[Pair, tuple[bytes, Pressure | None]] = {}
        rows_seen: dict[Pair, tuple[list[Any], dict[Kind, Event]]] = {}
        for i in range(0, len(pairs), CHUNK):
            chunk = pairs[i : i + CHUNK]
            rows = await self._call(chunk)
            for pair, row in zip(chunk, rows[: len(chunk)], strict=True):
                kept = self._rows.get(pair)
                if kept is not None and kept[0] == row:
                    for name in row[::2]:
                        events_seen[(pair, name)] = self._events[(pair, name)]
                    rows_seen[pair] = kept
                    latest[pair] = kept[1]
                    continue
                latest[pair] = self._latest(pair, row, events_seen)
                if isinstance(row, list):
                    rows_seen[pair] = (row, latest[pair])
            for pair, raw in zip(chunk, rows[len(chunk) :], strict=True):
                score = self._score(pair, raw, scores_seen)
                if score is not None:
                    scores[pair] = score
        # What is gone is forgotten.
        self._events, self._scores, self._rows = events_seen, scores_seen, rows_seen
        return latest, scores

    async def _call(self, pairs: list[Pair]) -> list[Any]:
        names = [keys.latest(*p) for p in pairs] + [keys.pressure(*p) for p in pairs]
        try:
            rows: Any = await self._client.evalsha(READ_ALL_SHA, len(names), *names, len(pairs))
        except NoScriptError:  # first use, or Redis restarted empty
            await self._client.script_load(READ_ALL_SCRIPT)
            rows = await self._client.evalsha(READ_ALL_SHA, len(names), *names, len(pairs))
        return list(rows)

    def _latest(
        self, pair: Pair, row: Any, seen: dict[tuple[Pair, bytes], tuple[bytes, Event | None]]
    ) -> dict[Kind, Event]:
        key = keys.latest(*pair)
        events: dict[Kind, Event] = {}
        if not readable(row, "latest", key):
            return events
        for name, raw in zip(row[::2], row[1::2], strict=True):
            cached = self._events.get((pair, name))
            if cached is not None and cached[0] == raw:
                event = cached[1]
                if event is not None:
                    events[KIND_OF[type(event)]] = event
                seen[(pair, name)] = cached
                continue
            event = self._decode_event(pair, key, name, raw)
            seen[(pair, name)] = (raw, event)
            if event is not None:
                events[KIND_OF[type(event)]] = event
        return events

    @staticmethod
    def _decode_event(pair: Pair, key: str, name: bytes, raw: bytes) -> Event | None:
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
        self, pair: Pair, raw: Any, seen: dict[Pair, tuple[bytes, Pressure | None]]
    ) -> Pressure | None:
        key = keys.pressure(*pair)
        if raw is None or not readable(raw, "pressure", key):
            return None
        cached = self._scores.get(pair)
        if cached is not None and cached[0] == raw:
            seen[pair] = cached
            return cached[1]
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
