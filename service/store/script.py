"""What one batch of events becomes in Redis: the store script and the commands around it.

A batch is written in two phases. Phase 1 calls the store script once per instrument (atomic):
it appends each event to its stream, updates the latest hash, stores a liquidation only if
its identity was not stored before, and adds each stored liquidation's position to the
liquidation indexes (every venue's and its venue's). Every key but the two indexes is in
the instrument's hash slot. On a Redis Cluster the indexes (other slots) are left out of the
call: the script answers the positions it stored, and phase 1b (:func:`queue_index`) adds
them. Phase 2 appends the stored events to each venue's hand-off stream.

Both phases are idempotent under retries, so a reply lost to a timeout never writes twice:
the script remembers the last batch id it applied per instrument (and returns that batch's
answer again), and hand-off entries carry their batch id (``b``), checked before a retry.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from ..config import StoreSettings
from ..events import KIND_OF, Event, Kind, Liquidation, encode
from . import keys

#: Order of the kinds in the script's KEYS/ARGV; an event line starts with its index + 1.
KIND_ORDER: Final[tuple[Kind, ...]] = tuple(Kind)
_KIND_DIGIT: Final = {kind: str(i + 1).encode() for i, kind in enumerate(KIND_ORDER)}
_N: Final = len(KIND_ORDER)
_LIQ: Final = KIND_ORDER.index(Kind.LIQUIDATION) + 1
BATCH_MARKER_TTL_MS: Final = 3_600_000

# Per-event XADDs run inside Redis: a batch of N events costs one command per instrument
# instead of N (the client-side packing of a command costs far more than Redis's XADD).
STORE_INSTRUMENT_LUA: Final = f"""
-- KEYS[1..{_N}]: the instrument's stream per kind; KEYS[{_N + 1}]: its latest hash;
-- KEYS[{_N + 2}]: its recent liquidation identities (sorted set, score: time stored);
-- KEYS[{_N + 3}]: the last batch applied ("<batch id>|<its answer>");
-- KEYS[{_N + 4}], KEYS[{_N + 5}]: the liquidation index of every venue and of this venue;
-- left out on a Redis Cluster (other slots): the positions are returned for the caller to
-- add, and the answer is {{duplicates, positions}}.
-- ARGV[1..{_N}]: MINID per kind; ARGV[{_N + 1}..{2 * _N}]: latest-hash field per kind;
-- ARGV[{2 * _N + 1}]: now (ms); ARGV[{2 * _N + 2}]: identities stored before this are
-- forgotten; ARGV[{2 * _N + 3}]: batch id; ARGV[{2 * _N + 4}]: time to live of the latest
-- hash (ms); ARGV[{2 * _N + 5}]: events, one per line: "<kind index><event JSON>", for
-- liquidations "<kind index><identity>\\t<event JSON>"; ARGV[{2 * _N + 6}]: the instrument
-- ("<venue>|<symbol>").
-- Returns the line numbers of liquidations already stored (duplicates, not written).
local indexed = #KEYS >= {_N + 5}
local bid = ARGV[{2 * _N + 3}]
local last = redis.call("GET", KEYS[{_N + 3}])
if last and string.sub(last, 1, #bid + 1) == bid .. "|" then
  return cjson.decode(string.sub(last, #bid + 2))  -- a retry of an applied batch
end
local now = tonumber(ARGV[{2 * _N + 1}])
local member = ARGV[{2 * _N + 6}]
local function pad(n)  -- a stream id's number, as the index members spell it
  return string.rep("0", {keys.POSITION_DIGITS} - #n) .. n
end
local newest, dup, liq, positions = {{}}, {{}}, false, {{}}
local i = 0
for line in string.gmatch(ARGV[{2 * _N + 5}], "[^\\n]+") do
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
    if id ~= "" and redis.call("ZADD", KEYS[{_N + 2}], "NX", now, id) == 0 then
      fresh = false
      dup[#dup + 1] = i
    end
  end
  if fresh then
    local id = redis.call("XADD", KEYS[k], "MINID", "~", ARGV[k], "*", "e", e)
    newest[k] = e
    if k == {_LIQ} then  -- its place in the tape, in the same atomic step
      local dash = string.find(id, "-", 1, true)
      local pos = pad(string.sub(id, 1, dash - 1)) .. "-" .. pad(string.sub(id, dash + 1))
        .. "~" .. member
      if indexed then
        redis.call("ZADD", KEYS[{_N + 4}], 0, pos)
        redis.call("ZADD", KEYS[{_N + 5}], 0, pos)
      else
        positions[#positions + 1] = pos
      end
    end
  end
end
if liq then
  redis.call("ZREMRANGEBYSCORE", KEYS[{_N + 2}], "-inf", ARGV[{2 * _N + 2}])
  redis.call("PEXPIRE", KEYS[{_N + 2}], now - tonumber(ARGV[{2 * _N + 2}]))
  -- The index forgets what the stream's retention drops (exactly; the stream's MINID is
  -- approximate, so the stream may hold a few entries more than the index points at).
  if indexed then
    local older = "(" .. pad(ARGV[{_LIQ}])
    redis.call("ZREMRANGEBYLEX", KEYS[{_N + 4}], "-", older)
    redis.call("ZREMRANGEBYLEX", KEYS[{_N + 5}], "-", older)
  end
end
local fields = {{}}
for k = 1, {_N} do
  if newest[k] then
    fields[#fields + 1] = ARGV[{_N} + k]
    fields[#fields + 1] = newest[k]
    -- A delisted or silent instrument's stream goes once its retention has passed.
    redis.call("PEXPIRE", KEYS[k], now - tonumber(ARGV[k]))
  end
end
if #fields > 0 then
  redis.call("HSET", KEYS[{_N + 1}], unpack(fields))
  redis.call("PEXPIRE", KEYS[{_N + 1}], ARGV[{2 * _N + 4}])
end
local answer = dup
if not indexed then
  answer = {{dup, positions}}
end
redis.call("SET", KEYS[{_N + 3}], bid .. "|" .. cjson.encode(answer), "PX", {BATCH_MARKER_TTL_MS})
return answer
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
def _script_keys(venue: str, symbol: str, indexed: bool) -> tuple[tuple[str, ...], str]:
    """The store script's keys for one instrument, and its registry member (made once per
    instrument: a flush of a whole market's tickers asks for them thousands of times)."""
    script_keys = (
        *(keys.events(venue, symbol, kind) for kind in KIND_ORDER),
        keys.latest(venue, symbol),
        keys.liquidation_ids(venue, symbol),
        keys.last_batch(venue, symbol),
        *((keys.liquidation_index(), keys.liquidation_index(venue)) if indexed else ()),
    )
    return script_keys, keys.instrument_id(venue, symbol)


def queue_instruments(
    pipe: Any,
    batch: Sequence[Event],
    settings: StoreSettings,
    now_ms: int,
    batch_id: str,
    known: set[str],
    indexed: bool = True,
) -> list[Group]:
    """Phase 1: one store-script call per instrument (and registry entries for instruments
    not in ``known``). Returns each call's events, in call order, to match the replies.
    Without ``indexed`` (a Redis Cluster) the script leaves the liquidation indexes, which are
    in other slots, to :func:`queue_index`, and answers ``[duplicates, positions]``."""
    groups: dict[tuple[str, str], Group] = defaultdict(Group)
    for event in batch:
        group = groups[(event.venue, event.symbol)]
        group.events.append(event)
        group.encoded.append(encode(event))
    minids = [_minid(now_ms, settings.retention_s[kind]) for kind in KIND_ORDER]
    fields = [kind.value for kind in KIND_ORDER]
    forget = _minid(now_ms, settings.liquidation_dedup_s)
    latest_ttl_ms = int(max(settings.retention_s.values()) * 1000)
    shared = (*minids, *fields, now_ms, forget, batch_id, latest_ttl_ms)
    for (venue, symbol), group in groups.items():
        script_keys, member = _script_keys(venue, symbol, indexed)
        pipe.evalsha(
            STORE_SHA,
            len(script_keys),
            *script_keys,
            *shared,
            b"\n".join(map(line, group.events, group.encoded)),
            member,
        )
    for venue, symbol in groups:
        member = keys.instrument_id(venue, symbol)
        if member not in known:
            pipe.sadd(keys.INSTRUMENTS, member)
    return list(groups.values())


def split_replies(groups: Sequence[Group], replies: Sequence[Any]) -> tuple[list[Any], Positions]:
    """The answers of unindexed script calls (a cluster's) as the duplicates of each and the
    index positions to add, by venue."""
    dups: list[Any] = []
    positions: Positions = defaultdict(list)
    for group, (dup, added) in zip(groups, replies, strict=True):
        dups.append(dup)
        if added:
            positions[group.events[0].venue] += added
    return dups, dict(positions)


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


def accepted(groups: Sequence[Group], replies: Sequence[Any]) -> tuple[Group, int]:
    """The events Redis stored (duplicate liquidations removed) and the duplicate count.
    ``replies`` are the phase-1 replies of the script calls, in order, all successful."""
    out = Group()
    dropped = 0
    for group, dups in zip(groups, replies, strict=True):
        if dups:
            skip = {int(n) - 1 for n in dups}
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
