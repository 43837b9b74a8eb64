"""The one place a Redis client is made, for a single Redis or a Redis Cluster.

``redis_url`` names the store. A single Redis: ``redis://``, ``rediss://`` (TLS) or
``unix://``, as redis-py's ``from_url`` takes them. A Redis Cluster: the same URL with
``+cluster`` in its scheme, ``redis+cluster://[user:password@]host:port[/0]`` (or
``rediss+cluster://``), naming one node of the cluster; the client learns the others from it
(``CLUSTER SLOTS``) and follows failovers and slot moves. More seed nodes, for a start-up
while that node is down, go in ``node`` query arguments:
``redis+cluster://10.0.0.1:7000?node=10.0.0.2:7000&node=10.0.0.3:7000``.

:func:`connect` returns a :class:`redis.asyncio.RedisCluster` for a cluster. It is typed as
the plain client: both answer the same commands with the same replies, and the few reads that
must differ (several streams in one ``XREAD``, scripts that read keys of many instruments) ask
:func:`is_cluster` and take their per-slot path (see ``docs/redis.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Final, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""A cluster URL's scheme and the plain scheme of its nodes."""
NODE_ARG: Final = "node"
"""Query argument of a cluster URL naming one more seed node (``host:port``), repeatable."""
POLL_S: Final = 0.02
"""On a cluster, a blocking read of streams in several slots polls them this often."""


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def _node(text: str) -> ClusterNode:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"a cluster node must be host:port, got {text!r}")
    return ClusterNode(host.strip("[]"), int(port))


def cluster_parts(url: str) -> tuple[str, list[str]]:
    """A cluster URL as the plain URL of its first node (credentials and connection arguments
    kept) and the other seed nodes' ``host:port``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    seeds = [value for name, value in query if name == NODE_ARG]
    rest = urlencode([(name, value) for name, value in query if name != NODE_ARG])
    scheme = CLUSTER_SCHEMES[parts.scheme.lower()]
    return urlunsplit((scheme, parts.netloc, parts.path, rest, parts.fragment)), seeds


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client of the store at ``url`` (connections are made on first use). ``options``
    are connection arguments (timeouts, health checks) that both kinds of client take."""
    if not is_cluster_url(url):
        return aioredis.Redis.from_url(url, **options)
    plain, seeds = cluster_parts(url)
    nodes = [_node(seed) for seed in seeds]
    client = RedisCluster.from_url(plain, startup_nodes=nodes or None, **options)
    # The same commands and replies as the plain client's (see the module's doc).
    return cast(aioredis.Redis, client)


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (its per-slot paths are needed)."""
    return isinstance(client, RedisCluster)


def slot_of(client: aioredis.Redis, key: str) -> int:
    return cast(RedisCluster, client).keyslot(key)


def by_slot(client: aioredis.Redis, keys: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``keys`` split into groups whose keys share a hash slot (one group on a single Redis)."""
    if not is_cluster(client):
        return [dict(keys)]
    groups: dict[int, dict[str, Any]] = defaultdict(dict)
    for key, value in keys.items():
        groups[slot_of(client, key)][key] = value
    return list(groups.values())


async def xread(
    client: aioredis.Redis, streams: Mapping[str, Any], count: int, block_ms: int | None
) -> list[Any]:
    """``XREAD`` of ``streams`` (key -> last id read), the reply as redis-py gives it.

    On a cluster the streams of one slot are read with one command, the slots in one
    pipeline (one round trip per node); a blocking read polls every :data:`POLL_S` until an
    entry comes or ``block_ms`` passes (a blocking command holds a connection per slot and
    cannot be cancelled cleanly when another slot answers first). A ``WRONGTYPE`` refusal
    raises as on a single Redis.
    """
    if not is_cluster(client):
        wanted: Any = dict(streams)
        got: Any = await client.xread(wanted, count=count, block=block_ms)
        return list(got or [])
    groups = by_slot(client, streams)
    forever = block_ms == 0  # as XREAD's BLOCK 0
    deadline = time.monotonic() + (block_ms or 0) / 1000
    while True:
        async with client.pipeline(transaction=False) as pipe:
            for group in groups:
                wanted = group
                pipe.xread(wanted, count=count)
            replies = await pipe.execute(raise_on_error=False)
        _honour_cancel()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply  # as the one command of a single Redis would (WRONGTYPE...)
        out = [item for reply in replies for item in reply or []]
        left = deadline - time.monotonic()
        if out or block_ms is None or (left <= 0 and not forever):
            return out
        await asyncio.sleep(POLL_S if forever else min(POLL_S, left))


async def xreadgroup(
    client: aioredis.Redis,
    group: str,
    consumer: str,
    streams: Mapping[str, str],
    count: int,
    block_ms: int | None,
    acks: Mapping[str, list[str]] | None = None,
) -> list[Any]:
    """``XREADGROUP`` of ``streams`` (key -> ``>`` for new entries, or an id: this
    consumer's pending entries after it), after acknowledging ``acks`` (key -> ids) in the
    same round trip; the read's reply as redis-py gives it.

    On a cluster, grouped by slot and polled as :func:`xread` does. The acknowledgements are
    applied before the read (a failure raises, and the caller acknowledges them again: an
    ``XACK`` is idempotent). A refusal (``NOGROUP``, ``WRONGTYPE``) raises.
    """
    acks = {k: ids for k, ids in (acks or {}).items() if ids}
    forever = block_ms == 0
    deadline = time.monotonic() + (block_ms or 0) / 1000
    groups = by_slot(client, streams)
    while True:
        async with client.pipeline(transaction=False) as pipe:
            for key, ids in acks.items():
                pipe.xack(key, group, *ids)
            for wanted in groups:
                # one command for every stream on a single Redis: its BLOCK waits for any
                block = block_ms if not is_cluster(client) else None
                pipe.xreadgroup(group, consumer, wanted, count=count, block=block)  # type: ignore[arg-type]
            replies = await pipe.execute(raise_on_error=False)
        _honour_cancel()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        acks = {}
        out = [item for reply in replies[-len(groups) :] for item in reply or []]
        left = deadline - time.monotonic()
        if out or block_ms is None or not is_cluster(client) or (left <= 0 and not forever):
            return out
        await asyncio.sleep(POLL_S if forever else min(POLL_S, left))


def _honour_cancel() -> None:
    """Raise the cancellation of this task if one is pending: the cluster client's pipeline
    may answer a cancellation that arrives while it waits for its nodes and carry on (seen:
    a live stream's reader that then polled on, its process unable to stop)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def flush(client: aioredis.Redis) -> None:
    """Empty the store (every primary of a cluster): for tests and tools."""
    if is_cluster(client):
        await cast(RedisCluster, client).flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        await client.flushdb()
