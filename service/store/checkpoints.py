"""The detector's checkpoints in Redis (what they hold: :mod:`service.detect.checkpoint`).

* ``dlv:{<asset>}:detect:checkpoint`` (string): one asset's record, written with ``EX`` (the
  checkpoint's maximum age): an asset no detector scores any more leaves nothing behind;
* ``dlv:detect:checkpoints`` (hash): field ``I/N``, the header of that detector's checkpoint
  (one field per detector of a deployment, rewritten in place).

One pipeline, the assets first and the header last: on a Redis Cluster the commands go to
their slots' nodes in any order, so a reader never trusts an asset's record that was not
written in its header's round (the records carry it).
"""

from __future__ import annotations

import asyncio
from typing import Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from . import groups, keys

TIMEOUT_S: Final = 10.0
"""A checkpoint's write or read that takes longer fails (a store that hangs)."""


async def write(
    client: aioredis.Redis,
    shard: str,
    header: bytes,
    records: dict[str, bytes],
    ttl_s: int,
    keep_rounds_from: str = "",
) -> list[str]:
    """Write one checkpoint (and trim the round log before ``keep_rounds_from``, the round
    of the checkpoint before: this one may be incomplete); the keys whose write failed
    (none: it is complete)."""
    failed: list[str] = []
    names = [keys.detect_checkpoint(a) for a in records]
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async with client.pipeline(transaction=False) as pipe:
                for name, raw in zip(names, records.values(), strict=True):
                    pipe.set(name, raw, ex=ttl_s)
                pipe.hset(keys.DETECT_CHECKPOINTS, shard, header)
                if keep_rounds_from:
                    pipe.xtrim(keys.detect_rounds(shard), minid=keep_rounds_from)
                replies = await pipe.execute(raise_on_error=False)
    except (RedisError, TimeoutError):
        return [*names, keys.DETECT_CHECKPOINTS]
    for name, reply in zip([*names, keys.DETECT_CHECKPOINTS], replies, strict=False):
        if isinstance(reply, Exception):
            failed.append(name)
    return failed  # (a failed trim is not a failed checkpoint: the next one trims)


async def rounds(client: aioredis.Redis, shard: str, after_id: str) -> list[bytes]:
    """The round log of detector ``shard`` after the entry ``after_id`` (``""``: all)."""
    start = f"({after_id}" if after_id else "-"
    async with asyncio.timeout(TIMEOUT_S):
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
            keys.detect_rounds(shard), start, "+"
        )
    return [fields[b"r"] for _, fields in entries if b"r" in fields]


async def hold_since(client: aioredis.Redis, venues: list[str], start_ms: int) -> bool:
    """Whether every venue's hand-off stream still holds every entry from ``start_ms`` on:
    none was ever removed from it, or its oldest is no later (a stream that does not exist
    holds nothing that was removed)."""
    async with asyncio.timeout(TIMEOUT_S):
        async with client.pipeline(transaction=False) as pipe:
            for venue in venues:
                pipe.xinfo_stream(keys.handoff(venue))
            replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, ResponseError) and "no such key" in str(reply):
            continue
        if isinstance(reply, Exception):
            raise reply
        if reply["entries-added"] == reply["length"]:
            continue  # nothing removed
        if reply["length"]:  # removed: those before its oldest
            oldest = _text(reply["recorded-first-entry-id"])
            if groups.id_key(oldest) > (start_ms, 0):
                return False
        elif groups.id_key(_text(reply["last-generated-id"])) >= (start_ms, 0):
            return False  # emptied, the entries needed with the rest
    return True


async def headers(client: aioredis.Redis) -> dict[str, bytes]:
    """Every detector's checkpoint header, by ``I/N`` (raises :class:`RedisError`)."""
    async with asyncio.timeout(TIMEOUT_S):
        raw: dict[bytes, bytes] = await client.hgetall(keys.DETECT_CHECKPOINTS)  # type: ignore[assignment]
    return {k.decode(errors="replace"): v for k, v in raw.items()}


async def assets(client: aioredis.Redis, names: list[str]) -> dict[str, bytes]:
    """The records of the assets ``names`` that exist (raises :class:`RedisError`)."""
    if not names:
        return {}
    async with asyncio.timeout(TIMEOUT_S):
        async with client.pipeline(transaction=False) as pipe:
            for asset in names:
                pipe.get(keys.detect_checkpoint(asset))
            replies = await pipe.execute()
    return {a: r for a, r in zip(names, replies, strict=True) if isinstance(r, bytes)}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
