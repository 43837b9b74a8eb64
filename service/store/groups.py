"""A detector shard's consumer groups on the hand-off streams: its position, kept in Redis.

Each detector shard ``I/N`` reads every venue's hand-off stream through its own consumer
group, ``detect:I/N`` (:func:`.keys.detect_group`), with one consumer: every group sees every
entry, and the shard keeps its own assets' events. The group's last delivered id is where the
shard left off. A detector's state is its windows, held in memory, so a shard that starts
(a restart, a new shard) rebuilds them from the hand-off history *up to that position*, then
reads on from it (``docs/scaling.md``); :func:`prepare` gets the group ready for that.

Pending entries (delivered, not yet acknowledged) are at or below the position, so the
rebuild reads them with the history: :func:`prepare` acknowledges them instead of having them
delivered again (a second delivery on top of the rebuild would count them twice). While the
shard runs, it acknowledges what it folded in with its next read (:func:`.client.xreadgroup`),
and after a failed read asks for its own pending entries after the last one it folded: a
reply lost on the way (a timeout, a dropped connection) had moved the position already.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from . import keys

PENDING_PAGE: Final = 1000
"""Pending entries acknowledged per command at start."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def id_key(stream_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``"5-1"`` -> ``(5, 1)``)."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


async def create(
    client: aioredis.Redis, group: str, venues: Iterable[str], start_id: str = "$"
) -> None:
    """Create ``group`` on each venue's hand-off stream (and the stream, if missing) at
    ``start_id``; a group that exists is left as it is."""
    venues = list(venues)
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.xgroup_create(keys.handoff(venue), group, id=start_id, mkstream=True)
        replies = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception) and not str(reply).startswith("BUSYGROUP"):
            raise reply


async def prepare(
    client: aioredis.Redis, group: str, venues: Iterable[str], since_ms: int
) -> dict[str, str]:
    """Each venue's position in ``group`` (the last id delivered to it), the group created
    at the stream's end where it did not exist, and a position older than ``since_ms`` (the
    rebuild's start: what lies before it is outside every window) moved up to it; pending
    entries are acknowledged (the rebuild reads them). Returns venue -> position."""
    venues = list(venues)
    await create(client, group, venues)
    async with client.pipeline(transaction=False) as pipe:
        for venue in venues:
            pipe.xinfo_groups(keys.handoff(venue))
        infos = await pipe.execute()
    positions: dict[str, str] = {}
    for venue, info in zip(venues, infos, strict=True):
        mine = [g for g in info if _text(g.get("name")) == group]
        if not mine:
            raise ResponseError(f"NOGROUP {group} vanished from {keys.handoff(venue)}")
        positions[venue] = _text(mine[0].get("last-delivered-id"))
    floor = f"{since_ms}-0"
    old = [v for v, p in positions.items() if id_key(p) < (since_ms, 0)]
    if old:
        async with client.pipeline(transaction=False) as pipe:
            for venue in old:
                pipe.xgroup_setid(keys.handoff(venue), group, floor)
            await pipe.execute()
        positions.update(dict.fromkeys(old, floor))
    await ack_pending(client, group, venues)
    return positions


async def ack_pending(client: aioredis.Redis, group: str, venues: Iterable[str]) -> int:
    """Acknowledge every pending entry of ``group`` on the venues' hand-off streams; how many."""
    left = list(venues)
    acked = 0
    while left:
        async with client.pipeline(transaction=False) as pipe:
            for venue in left:
                pipe.xpending_range(keys.handoff(venue), group, "-", "+", PENDING_PAGE)
            pages = await pipe.execute()
        ids = {
            v: [_text(p["message_id"]) for p in page]
            for v, page in zip(left, pages, strict=True)
            if page
        }
        if not ids:
            break
        async with client.pipeline(transaction=False) as pipe:
            for venue, pending in ids.items():
                pipe.xack(keys.handoff(venue), group, *pending)
            done = await pipe.execute()
        acked += sum(int(n) for n in done)
        left = [v for v, i in ids.items() if len(i) == PENDING_PAGE]
    return acked
