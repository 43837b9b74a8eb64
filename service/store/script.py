"""What one batch of events becomes in Redis: the store script and the commands around it.

A batch is written in two phases. Phase 1 calls the store script for up to
:data:`INSTRUMENTS_PER_CALL` instruments of one venue at a time (atomic; each instrument
applied on its own, so one that Redis refuses does not stop the others): for each it appends
each event to its stream, updates the latest hash, stores a liquidation only if
its identity was not stored before, and adds each stored liquidation's position to the
liquidation indexes (every venue's and its venue's). An instrument's keys share its hash
slot; on a Redis Cluster a call carries one instrument and leaves out the indexes (other
slots): the script answers the positions it stored, and phase 1b (:func:`queue_index`) adds
them. On a single Redis a call names its instruments and the script builds their keys from
the names (:mod:`.keys`' parts): the client packs two arguments per instrument instead of
twelve. Phase 2 appends the stored events to each venue's hand-off stream.

Both phases are idempotent under retries, so a reply lost to a timeout never writes twice:
the script remembers the last batch id it applied per instrument (and returns that batch's
answer again), and hand-off entries carry their batch id (``b``), checked before a retry.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Generator, Iterator, Sequence
from functools import lru_cache
from typing import Any, Final

from redis.exceptions import ResponseError

from ..config import StoreSettings
from ..events import KIND_OF, Event, Kind, Liquidation, encode
from . import keys

#: Order of the kinds in the script's KEYS/ARGV; an event line starts with its index + 1.
KIND_ORDER: Final[tuple[Kind, ...]] = tuple(Kind)
_KIND_DIGIT: Final = {kind: str(i + 1).encode() for i, kind in enumerate(KIND_ORDER)}
_N: Final = len(KIND_ORDER)
_LIQ: Final = KIND_ORDER.index(Kind.LIQUIDATION) + 1
BATCH_MARKER_TTL_MS: Final = 3_600_000

_K: Final = _N + 3
"""Keys per instrument in a script call: its stream per kind, latest hash, liquidation
identities and last batch."""
_SHARED: Final = 2 * _N + 5
"""Arguments every instrument of a call shares (before the two of each instrument)."""
INSTRUMENTS_PER_CALL: Final = 50
"""Instruments in one store-script call on a single Redis (on a cluster: one, their keys are
in different slots). One call per instrument made the client's packing of ~25 arguments per
instrument and its reading of one reply each most of a flush of a whole market's tickers;
50 keep a call's time in Redis around a couple of milliseconds."""
_KEY_PARTS: Final = (
    *(keys.events_key_parts(kind) for kind in KIND_ORDER),
    keys.latest_key_parts(),
    keys.liquidation_ids_key_parts(),
    keys.last_batch_key_parts(),
)
"""An instrument's keys in the script's order, as ``(prefix, suffix)`` around its name."""
assert len({prefix for prefix, _ in _KEY_PARTS}) == 1
_KEY_PREFIX: Final = _KEY_PARTS[0][0]
_KEY_SUFFIXES: Final = ", ".join(json.dumps(suffix) for _, suffix in _KEY_PARTS)
STEP_EVENTS: Final = 500
"""Events :func:`queue_steps` encodes between two of its steps."""

# Per-event XADDs run inside Redis: a batch of N events costs one command per instrument
# instead of N (the client-side packing of a command costs far more than Redis's XADD).
STORE_INSTRUMENT_LUA: Final = f"""
-- KEYS[1], KEYS[2]: the liquidation index of every venue and of this call's venue; left out
-- on a Redis Cluster (other slots): the positions are returned for the caller to add, and
-- each answer is {{duplicates, positions}} (on a single Redis too when ARGV[{2 * _N + 5}] is
-- "1", for an instrument that stored a liquidation: a caller that keeps what it stored by
-- position). Then, on a Redis Cluster, {_K} keys per
-- instrument: its stream per kind ({_N}), its latest hash, its recent liquidation identities
-- (sorted set, score: time stored), and the last batch applied to it ("<batch id>|<its
-- answer>"). On a single Redis (only the two indexes given) the script builds those keys
-- from the instrument's name: the client then packs 2 arguments per instrument, not 12.
-- ARGV[1..{_N}]: MINID per kind; ARGV[{_N + 1}..{2 * _N}]: latest-hash field per kind;
-- ARGV[{2 * _N + 1}]: now (ms); ARGV[{2 * _N + 2}]: identities stored before this are
-- forgotten; ARGV[{2 * _N + 3}]: batch id; ARGV[{2 * _N + 4}]: time to live of the latest
-- hash (ms); ARGV[{2 * _N + 5}]: "1" to answer the positions on a single Redis too; then
-- two per instrument: its events, one per line: "<kind index><event JSON>", for
-- liquidations "<kind index><identity>\\t<event JSON>"; the instrument ("<venue>|<symbol>").
-- Returns one answer per instrument: the line numbers of its liquidations already stored
-- (duplicates, not written), or {{"!", <error>}} when Redis refused its writes (each
-- instrument is applied on its own: one refused does not stop the others).
local count = (#ARGV - {_SHARED}) / 2
local named = #KEYS == 2
local indexed = named or #KEYS == 2 + count * {_K}
local first = indexed and 2 or 0
local answered = not indexed or ARGV[{2 * _N + 5}] == "1"
local suffixes = {{{_KEY_SUFFIXES}}}
local function keys_of(kb, member)  -- an instrument's {_K} keys, given or built
  local K = {{}}
  for j = 1, {_K} do
    K[j] = named and ({json.dumps(_KEY_PREFIX)} .. member .. suffixes[j]) or KEYS[kb + j]
  end
  return K
end
local bid = ARGV[{2 * _N + 3}]
local now = tonumber(ARGV[{2 * _N + 1}])
local function pad(n)  -- a stream id's number, as the index members spell it
  return string.rep("0", {keys.POSITION_DIGITS} - #n) .. n
end
local function store(kb, events, member)
  local K = keys_of(kb, member)
  local last = redis.call("GET", K[{_N + 3}])
  if last and string.sub(last, 1, #bid + 1) == bid .. "|" then
    return cjson.decode(string.sub(last, #bid + 2))  -- a retry of an applied batch
  end
  local newest, dup, liq, positions = {{}}, {{}}, false, {{}}
  local i = 0
  for line in string.gmatch(events, "[^\\n]+") do
    i = i + 1
    local k = tonumber(string.sub(line, 1, 1))
    local e = string.sub(line, 2)
    local fresh = true
    if k == {_LIQ} then
      local tab = string.find(e, "\\t", 1, true)
      local id = string.sub(e, 1, tab - 1)
      e = string.sub(e, tab + 1)
      liq = true
      -- ZADD NX answers 0 when the identity is already there: one call checks and records.
      if id ~= "" and redis.call("ZADD", K[{_N + 2}], "NX", now, id) == 0 then
        fresh = false
        dup[#dup + 1] = i
      end
    end
    if fresh then
      local id = redis.call("XADD", K[k], "MINID", "~", ARGV[k], "*", "e", e)
      newest[k] = e
      if k == {_LIQ} then  -- its place in the tape, in the same atomic step
        local dash = string.find(id, "-", 1, true)
        local pos = pad(string.sub(id, 1, dash - 1)) .. "-" .. pad(string.sub(id, dash + 1))
          .. "~" .. member
        if indexed then
          redis.call("ZADD", KEYS[1], 0, pos)
          redis.call("ZADD", KEYS[2], 0, pos)
        end
        if answered then
          positions[#positions + 1] = pos
        end
      end
    end
  end
  if liq then
    redis.call("ZREMRANGEBYSCORE", K[{_N + 2}], "-inf", ARGV[{2 * _N + 2}])
    redis.call("PEXPIRE", K[{_N + 2}], now - tonumber(ARGV[{2 * _N + 2}]))
    -- The index forgets what the stream's retention drops (exactly; the stream's MINID is
    -- approximate, so the stream may hold a few entries more than the index points at).
    if indexed then
      local older = "(" .. pad(ARGV[{_LIQ}])
      redis.call("ZREMRANGEBYLEX", KEYS[1], "-", older)
      redis.call("ZREMRANGEBYLEX", KEYS[2], "-", older)
    end
  end
  local fields = {{}}
  for k = 1, {_N} do
    if newest[k] then
      fields[#fields + 1] = ARGV[{_N} + k]
      fields[#fields + 1] = newest[k]
      -- A delisted or silent instrument's stream goes once its retention has passed.
      redis.call("PEXPIRE", K[k], now - tonumber(ARGV[k]))
    end
  end
  if #fields > 0 then
    redis.call("HSET", K[{_N + 1}], unpack(fields))
    redis.call("PEXPIRE", K[{_N + 1}], ARGV[{2 * _N + 4}])
  end
  local answer = dup
  if not indexed or (answered and #positions > 0) then
    answer = {{dup, positions}}
  end
  redis.call("SET", K[{_N + 3}], bid .. "|" .. cjson.encode(answer),
             "PX", {BATCH_MARKER_TTL_MS})
  return answer
end
local answers = {{}}
for j = 1, count do
  local ok, answer = pcall(store, first + (j - 1) * {_K}, ARGV[{_SHARED} + 2 * j - 1],
                           ARGV[{_SHARED} + 2 * j])
  if not ok then
    answer = {{"!", type(answer) == "table" and answer.err or tostring(answer)}}
  end
  answers[j] = answer
end
return answers
"""
STORE_SCRIPT: Final = STORE_INSTRUMENT_LUA.encode()
STORE_SHA: Final = hashlib.sha1(STORE_SCRIPT).hexdigest()
Positions = dict[str, list[Any]]
"""Index positions (as the script answers them) of the liquidations stored, by venue."""
_UNSAFE_ID: Final = str.maketrans({"\t": " ", "\n": " "})


def _minid(now_ms: int, retention_s: float) -> str:
    return str(now_ms - int(retention_s * 1000))


_PREFIX: Final = {cls: _KIND_DIGIT[kind] for cls, kind in KIND_OF.items()}
_LIQ_PREFIX: Final = _PREFIX[Liquidation]


def line(event: Event, data: bytes) -> bytes:
    """The script's line for ``event``, whose JSON is ``data``."""
    if type(event) is Liquidation:
        ident = event.event_id
        if "\t" in ident or "\n" in ident:  # the line format's separators (a translate
            ident = ident.translate(_UNSAFE_ID)  # on every id cost half the line's time)
        return _LIQ_PREFIX + ident.encode() + b"\t" + data
    return _PREFIX[type(event)] + data


class Group:
    """One instrument's events of a batch, each encoded once (for its stream and the hand-off)."""

    __slots__ = ("encoded", "events")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.encoded: list[bytes] = []


@lru_cache(maxsize=1 << 16)
def _script_keys(venue: str, symbol: str) -> tuple[tuple[bytes, ...], bytes]:
    """One instrument's keys in a store-script call on a Redis Cluster, and its registry
    member (made once per instrument: a flush of a whole market's tickers asks for them
    thousands of times). Bytes: redis-py packs every argument in Python, and a str costs it
    an encode each time (a call of 50 instruments' keys packed in 200 µs instead of 334)."""
    script_keys = (
        *(keys.events(venue, symbol, kind) for kind in KIND_ORDER),
        keys.latest(venue, symbol),
        keys.liquidation_ids(venue, symbol),
        keys.last_batch(venue, symbol),
    )
    return tuple(k.encode() for k in script_keys), keys.instrument_id(venue, symbol).encode()


def queue_instruments(
    pipe: Any,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    batch_id: str,
    known: set[str],
    indexed: bool = True,
    positions: bool = False,
) -> list[list[Group]]:
    """Phase 1: the store-script calls, each for up to :data:`INSTRUMENTS_PER_CALL`
    instruments of one venue (one on a cluster), and registry entries for instruments not in
    ``known``. Returns each call's groups (an instrument's events), in call order, for
    :func:`group_replies`. Without ``indexed`` (a Redis Cluster) the script leaves the
    liquidation indexes, which are in other slots, to :func:`queue_index`, and answers
    ``[duplicates, positions]``; with ``positions`` it answers so on a single Redis too, for
    each instrument that stored a liquidation (:func:`split_replies` reads either)."""
    steps = queue_steps(pipe, batch, settings, now_ms, batch_id, known, indexed, positions)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def queue_steps(
    pipe: Any,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    batch_id: str,
    known: set[str],
    indexed: bool = True,
    positions: bool = False,
) -> Generator[None, None, list[list[Group]]]:
    """:func:`queue_instruments` step by step: it yields after every :data:`STEP_EVENTS`
    events encoded and after each call queued, where the writer may let the event loop run
    (a batch of 300 instruments' tickers took 10-50 ms to encode and queue), and returns the
    calls' groups. ``batch`` must not change until it returns; ``known`` is read after the
    last step only."""
    groups: dict[tuple[str, str], Group] = defaultdict(Group)
    for i, event in enumerate(batch, 1):
        group = groups[(event.venue, event.symbol)]
        group.events.append(event)
        group.encoded.append(encode(event))
        if not i % STEP_EVENTS:
            yield
    minids = [_minid(now_ms, settings.retention_s[kind]) for kind in KIND_ORDER]
    fields = [kind.value for kind in KIND_ORDER]
    forget = _minid(now_ms, settings.liquidation_dedup_s)
    latest_ttl_ms = int(max(settings.retention_s.values()) * 1000)
    answered = b"1" if positions else b""
    shared = (*minids, *fields, now_ms, forget, batch_id, latest_ttl_ms, answered)
    by_venue: dict[str, list[tuple[str, Group]]] = defaultdict(list)
    for (venue, symbol), group in groups.items():
        by_venue[venue].append((symbol, group))
    size = INSTRUMENTS_PER_CALL if indexed else 1
    calls: list[list[Group]] = []
    for venue, members in by_venue.items():
        index = (keys.liquidation_index(), keys.liquidation_index(venue)) if indexed else ()
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            call_keys: list[str | bytes] = [*index]
            call_args: list[Any] = [*shared]
            for symbol, group in chunk:
                script_keys, member = _script_keys(venue, symbol)
                if not indexed:  # (a single Redis: the script builds them from the member)
                    call_keys.extend(script_keys)
                call_args.append(b"\n".join(map(line, group.events, group.encoded)))
                call_args.append(member)
            pipe.evalsha(STORE_SHA, len(call_keys), *call_keys, *call_args)
            calls.append([group for _, group in chunk])
            yield
    for venue, symbol in groups:
        name = keys.instrument_id(venue, symbol)
        if name not in known:
            pipe.sadd(keys.INSTRUMENTS, name)
    return calls


def group_replies(calls: Sequence[Sequence[Group]], replies: Sequence[Any]) -> list[Any]:
    """One reply per group from the replies of ``calls`` (the first ``len(calls)`` of
    ``replies``): a call's error is each of its groups', and an instrument Redis refused
    (``["!", error]``) answers a :class:`~redis.exceptions.ResponseError`."""
    out: list[Any] = []
    for groups, reply in zip(calls, replies, strict=False):
        if isinstance(reply, Exception):
            out.extend(reply for _ in groups)
            continue
        for answer in reply:
            if answer and answer[0] == b"!":
                message = answer[1]
                out.append(ResponseError(message.decode(errors="replace")))
            else:
                out.append(answer)
    return out


def split_replies(replies: Sequence[Any]) -> tuple[list[Any], list[list[Any]]]:
    """The instruments' answers as the duplicates of each and the positions it stored, in
    order (none when the call answered no positions). An answer with positions is
    ``[duplicates, positions]``, two arrays; one without is the duplicates alone, line
    numbers (an instrument that stored no liquidation answers so even when asked: a whole
    market's marks would otherwise each answer two empty arrays). A batch applied by a call
    of the other shape (a journal's batch applied again by a process that asks otherwise)
    answers its marker's shape, read either way."""
    dups: list[Any] = []
    added: list[list[Any]] = []
    for answer in replies:
        if len(answer) == 2 and isinstance(answer[0], list) and isinstance(answer[1], list):
            dups.append(answer[0])
            added.append(answer[1])
        else:
            dups.append(answer)
            added.append([])
    return dups, added


def by_venue(groups: Sequence[Group], added: Sequence[list[Any]]) -> Positions:
    """The positions of :func:`split_replies` by venue: what a cluster's phase 1b indexes."""
    positions: Positions = defaultdict(list)
    for group, stored in zip(groups, added, strict=True):
        if stored:
            positions[group.events[0].venue] += stored
    return dict(positions)


def stored_liquidations(
    groups: Sequence[Group], dups: Sequence[Any], added: Sequence[list[Any]]
) -> Iterator[tuple[bytes, Liquidation]]:
    """Each liquidation stored and its index position (as the script answers it), from the
    answers of :func:`split_replies`: an instrument's positions are those of its liquidations
    that were not duplicates, in its lines' order. An instrument whose answer does not match
    its liquidations (none should) is left out: a reader then reads them from Redis."""
    for group, dup, stored in zip(groups, dups, added, strict=True):
        if not stored:
            continue
        skip = _duplicates(dup) if dup else set()
        liquidations = [
            e for i, e in enumerate(group.events) if type(e) is Liquidation and i not in skip
        ]
        if len(liquidations) == len(stored):
            yield from zip(stored, liquidations, strict=True)


def queue_index(pipe: Any, positions: Positions, settings: StoreSettings, now_ms: int) -> None:
    """Phase 1b on a Redis Cluster: add the stored liquidations' positions to the indexes
    (every venue's, and each venue's) and trim them as the script does on a single Redis.
    Idempotent (a sorted set member is added once), so a retry is safe."""
    cut = int(_minid(now_ms, settings.retention_s[Kind.LIQUIDATION]))
    older = f"({cut:0{keys.POSITION_DIGITS}d}"
    everything: dict[Any, int] = {}
    for venue, added in positions.items():
        members = dict.fromkeys(added, 0)
        everything.update(members)
        pipe.zadd(keys.liquidation_index(venue), members)
        pipe.zremrangebylex(keys.liquidation_index(venue), "-", older)
    if everything:
        pipe.zadd(keys.liquidation_index(), everything)
        pipe.zremrangebylex(keys.liquidation_index(), "-", older)


def _duplicates(dups: Any) -> set[int]:
    """The indexes in its group of an instrument's duplicate liquidations (the script answers
    their line numbers, from 1)."""
    return {int(n) - 1 for n in dups}


def accepted(groups: Sequence[Group], replies: Sequence[Any]) -> tuple[Group, int]:
    """The events Redis stored (duplicate liquidations removed) and the duplicate count.
    ``replies`` are the phase-1 replies of the script calls, in order, all successful."""
    out = Group()
    dropped = 0
    for group, dups in zip(groups, replies, strict=True):
        if dups:
            skip = _duplicates(dups)
            dropped += len(skip)
            keep = [i for i in range(len(group.events)) if i not in skip]
            out.events.extend(group.events[i] for i in keep)
            out.encoded.extend(group.encoded[i] for i in keep)
        else:
            out.events.extend(group.events)
            out.encoded.extend(group.encoded)
    return out, dropped


def queue_handoff(
    pipe: Any, stored: Group, settings: StoreSettings, now_ms: int, batch_id: str,
    venues: set[str] | None = None,
) -> None:  # fmt: skip
    """Phase 2: one hand-off entry per venue (of ``venues``, default all) with the stored
    events (a JSON array of the encodings phase 1 made), tagged with the batch id."""
    by_venue: dict[str, list[bytes]] = defaultdict(list)
    for event, data in zip(stored.events, stored.encoded, strict=True):
        by_venue[event.venue].append(data)
    minid = _minid(now_ms, settings.handoff_retention_s)
    for venue, encoded in by_venue.items():
        if venues is None or venue in venues:
            pipe.xadd(
                keys.handoff(venue),
                {"b": batch_id, "e": b"[" + b",".join(encoded) + b"]"},
                minid=minid,
                approximate=True,
            )
            pipe.pexpire(keys.handoff(venue), int(settings.handoff_retention_s * 1000))
