"""The liquidation tape through its index: a page costs ``limit`` entries, whatever the number
of instruments.

The store script adds each stored liquidation's position to the indexes (every venue's and
its venue's, :func:`~.keys.liquidation_index`) in the same atomic step as the entry. A
position spells (stream id, instrument) so that the index's byte order is the tape's order,
the order :func:`.pages.liquidations` merges the streams in: pages and cursors are the same
whichever reads them. One script call (:data:`READ_PAGE_LUA`) reads the next positions below
a bound and the entry of each from its instrument's stream, so a page is one round trip.

Failure semantics are those of :mod:`.pages`: an entry that is unusable (or a stream of the
wrong type) is skipped and counted, and the page reads on to replace it within a budget; a
position whose entry is gone (the stream expired or trimmed it first) is skipped silently.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError

from ..events import KIND_OF, Kind, Liquidation
from . import keys
from .client import is_cluster
from .pages import MAX_REFILL, Page, SortKey, parse_liquidation_cursor
from .poison import Reason, readable, record, usable_event

# The stream keys are built here from the parts keys.py gives (prefix + instrument + suffix):
# a script may read keys it was not given on a single Redis, not on a cluster (see keys.py).
_ENTRY_LUA: Final = """
-- The entry at a position ("<ms>-<seq>~<venue>|<symbol>"); an instrument's stream key is
-- prefix .. "<venue>|<symbol>" .. suffix. {position, 1, the entry's fields} | {position, 0}
-- (no such entry) | {position, 2, error} (the stream's key has the wrong type).
local function entry(pos, prefix, suffix)
  local ms, seq, member = string.match(pos, "^(%d+)-(%d+)~(.+)$")
  local r = {pos, 0}
  if ms then
    local id = string.gsub(ms, "^0+(%d)", "%1") .. "-" .. string.gsub(seq, "^0+(%d)", "%1")
    local got = redis.pcall("XRANGE", prefix .. member .. suffix, id, id)
    if type(got) == "table" and got.err then
      r = {pos, 2, got.err}
    elseif #got > 0 then
      r = {pos, 1, got[1][2]}
    end
  end
  return r
end
"""
READ_PAGE_LUA: Final = (
    _ENTRY_LUA
    + """
-- KEYS[1]: a liquidation index. ARGV[1], ARGV[2]: the range (ZRANGE BYLEX bounds, the
-- start first); ARGV[3]: positions to read; ARGV[4], ARGV[5]: the stream key's prefix and
-- suffix; ARGV[6]: "rev" (newest first) or "" (oldest). Returns the entry of each position.
local positions
if ARGV[6] == "rev" then
  positions = redis.call("ZRANGE", KEYS[1], ARGV[1], ARGV[2], "BYLEX", "REV",
    "LIMIT", 0, tonumber(ARGV[3]))
else
  positions = redis.call("ZRANGE", KEYS[1], ARGV[1], ARGV[2], "BYLEX",
    "LIMIT", 0, tonumber(ARGV[3]))
end
local out = {}
for i, pos in ipairs(positions) do
  out[i] = entry(pos, ARGV[4], ARGV[5])
end
return out
"""
)
READ_AT_LUA: Final = (
    _ENTRY_LUA
    + """
-- ARGV[1], ARGV[2]: the stream key's prefix and suffix; ARGV[3..]: positions. Returns the
-- entry of each position, in their order.
local out = {}
for i = 3, #ARGV do
  out[i - 2] = entry(ARGV[i], ARGV[1], ARGV[2])
end
return out
"""
)
FOLLOW_LUA: Final = """
-- KEYS[1]: a liquidation index. ARGV[1]: a ZRANGE BYLEX start; ARGV[2]: positions to read.
-- Returns {Redis's clock in ms, positions from the start (oldest first)}, read at once.
local t = redis.call("TIME")
local positions = redis.call("ZRANGE", KEYS[1], ARGV[1], "+", "BYLEX",
  "LIMIT", 0, tonumber(ARGV[2]))
return {t[1] * 1000 + math.floor(t[2] / 1000), positions}
"""
_SCRIPTS: Final = {lua: (lua.encode(), hashlib.sha1(lua.encode()).hexdigest())
                   for lua in (READ_PAGE_LUA, READ_AT_LUA, FOLLOW_LUA)}  # fmt: skip
_STREAM_PREFIX, _STREAM_SUFFIX = keys.events_key_parts(Kind.LIQUIDATION)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bounds(since_ms: int | None, until_ms: int | None, after: SortKey | None) -> tuple[str, str]:
    """``ZRANGE BYLEX REV`` bounds: below the cursor's position and the end of ``until_ms``
    (exclusive, the lower of the two), down to the start of ``since_ms`` (inclusive)."""
    tops = []
    if until_ms is not None:  # every position of until_ms sorts below the next ms's prefix
        tops.append(f"{until_ms + 1:0{keys.POSITION_DIGITS}d}")
    if after is not None:
        (ms, seq), member = after
        tops.append(keys.liquidation_position(ms, seq, member))
    top = "(" + min(tops) if tops else "+"
    bottom = "-" if since_ms is None else f"[{since_ms:0{keys.POSITION_DIGITS}d}"
    return top, bottom


def _position(text: str) -> SortKey:
    sid, _, member = text.partition("~")
    ms, _, seq = sid.partition("-")
    return (int(ms), int(seq)), member


async def _eval(client: aioredis.Redis, lua: str, numkeys: int, *args: str | int) -> Any:
    script, sha = _SCRIPTS[lua]
    try:
        return await client.evalsha(sha, numkeys, *args)
    except NoScriptError:  # first use, or Redis restarted empty
        await client.script_load(script)
        return await client.evalsha(sha, numkeys, *args)


async def _read(
    client: aioredis.Redis, index: str, start: str, end: str, count: int, rev: bool = True
) -> list[Any]:
    if is_cluster(client):
        raw: Any = await client.zrange(index, start, end, bylex=True, desc=rev, offset=0, num=count)
        return await _entries_per_key(client, [_text(p) for p in raw])
    rev_arg = "rev" if rev else ""
    args = (index, start, end, count, _STREAM_PREFIX, _STREAM_SUFFIX, rev_arg)
    return list(await _eval(client, READ_PAGE_LUA, 1, *args))


async def _entries_per_key(client: aioredis.Redis, positions: list[str]) -> list[Any]:
    """What :data:`READ_AT_LUA` answers, read in a pipeline: on a Redis Cluster the entries
    are in their instruments' slots, which one script may not read (one command per entry,
    grouped by node)."""
    wanted: list[tuple[str, str]] = []
    for position in positions:
        sid, _, member = position.partition("~")
        ms, _, seq = sid.partition("-")
        if not (ms.isdigit() and seq.isdigit() and member):
            wanted.append(("", ""))
            continue
        wanted.append((_STREAM_PREFIX + member + _STREAM_SUFFIX, f"{int(ms)}-{int(seq)}"))
    async with client.pipeline(transaction=False) as pipe:
        for key, sid in wanted:
            if key:
                pipe.xrange(key, sid, sid)
        got = iter(await pipe.execute(raise_on_error=False))
    rows: list[Any] = []
    for position, (key, _) in zip(positions, wanted, strict=True):
        reply = next(got) if key else []
        if isinstance(reply, Exception):
            rows.append([position, 2, str(reply)])
        elif reply:
            fields = [x for pair in reply[0][1].items() for x in pair]
            rows.append([position, 1, fields])
        else:
            rows.append([position, 0])
    return rows


def _liquidation(position: str, status: int, payload: Any) -> Liquidation | None:
    """The liquidation at ``position``, or ``None``: gone (silently), or unusable (counted)."""
    member = position.partition("~")[2]
    pair = keys.split_instrument(member)
    key = keys.events(*pair, Kind.LIQUIDATION)
    if status == 0:
        return None
    if status == 2:
        readable(ResponseError(_text(payload)), Kind.LIQUIDATION.value, key)
        return None
    fields = dict(zip(payload[::2], payload[1::2], strict=True))
    e = usable_event(fields.get(b"e"), Kind.LIQUIDATION.value, key, pair)
    if e is not None and not isinstance(e, Liquidation):
        record(Kind.LIQUIDATION.value, Reason.INVALID, key, f"a {KIND_OF[type(e)]} event")
        return None
    return e


async def indexed_liquidations(
    client: aioredis.Redis,
    venue: str | None,
    *,
    since_ms: int | None,
    until_ms: int | None,
    limit: int,
    cursor: str | None,
    max_refill: int = MAX_REFILL,
) -> Page:
    """Liquidations of every instrument (of ``venue`` when given), newest first, from the
    index: the same order, cursors and guarantees as :func:`.pages.liquidations` (a cursor
    of one is a cursor of the other), at the cost of the ``limit + 1`` entries read."""
    after = None if cursor is None else parse_liquidation_cursor(cursor)
    top, bottom = _bounds(since_ms, until_ms, after)
    index = keys.liquidation_index(venue)
    want = limit + 1
    page: list[tuple[SortKey, Liquidation]] = []
    refill, reads, exhausted = max_refill, 0, False
    while len(page) < want:
        count = want - len(page)
        if reads:  # replacing unusable entries: within the budget
            if refill <= 0:
                break
            refill -= count
        reads += 1
        try:
            rows = await _read(client, index, top, bottom, count)
        except ResponseError as exc:  # the index itself has the wrong type
            readable(exc, Kind.LIQUIDATION.value, index)
            return Page([], None)
        for raw_position, status, *payload in rows:
            position = _text(raw_position)
            top = "(" + position
            e = _liquidation(position, int(status), payload[0] if payload else None)
            if e is not None:
                page.append((_position(position), e))
        if len(rows) < count:
            exhausted = True
            break
    if len(page) > limit:
        last: SortKey | None = page[limit - 1][0]
    elif exhausted:
        last = None
    else:  # the budget ran out: everything down to the last position read was merged
        last = _position(top[1:])
    next_cursor = None if last is None else f"{last[0][0]}-{last[0][1]}~{last[1]}"
    return Page([e for _, e in page[:limit]], next_cursor)


def start_of(ms: int) -> str:
    """The ``ZRANGE BYLEX`` bound of the first position stored at or after ``ms``."""
    return f"[{ms:0{keys.POSITION_DIGITS}d}"


async def follow(client: aioredis.Redis, start: str, count: int) -> tuple[int, list[str]]:
    """Redis's clock (ms) and up to ``count`` positions of the global index from ``start`` (a
    ``ZRANGE BYLEX`` bound), oldest first, read at once: what a reader that follows the tape
    (the API's snapshot) calls at each refresh. Positions only: a reader that has seen most
    of them fetches the entries of the others (:func:`entries_at`). An index of the wrong
    type reads as empty (counted)."""
    index = keys.liquidation_index()
    try:
        clock_ms, raw = await _eval(client, FOLLOW_LUA, 1, index, start, count)
    except ResponseError as exc:
        readable(exc, Kind.LIQUIDATION.value, index)
        return 0, []
    return int(clock_ms), [_text(p) for p in raw]


async def entries_at(
    client: aioredis.Redis, positions: list[str]
) -> list[tuple[str, Liquidation | None]]:
    """The liquidation at each position (``None``: gone or unusable, counted), in order."""
    if not positions:
        return []
    if is_cluster(client):
        rows = await _entries_per_key(client, positions)
    else:
        rows = await _eval(client, READ_AT_LUA, 0, _STREAM_PREFIX, _STREAM_SUFFIX, *positions)
    out: list[tuple[str, Liquidation | None]] = []
    for raw_position, status, *payload in rows:
        position = _text(raw_position)
        out.append((position, _liquidation(position, int(status), payload[0] if payload else None)))
    return out
