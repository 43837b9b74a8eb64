"""The one client factory: a single Redis or a Redis Cluster from ``redis_url``; the cluster
URL's form and checks; the per-slot ``XREAD``."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from service.config import Settings
from service.errors import ConfigError
from service.store import keys
from service.store.client import by_slot, cluster_parts, connect, is_cluster, xread


async def test_a_plain_url_makes_a_plain_client_and_a_cluster_url_a_cluster_client() -> None:
    plain = connect("redis://127.0.0.1:6379/8")
    cluster = connect("redis+cluster://127.0.0.1:7000?node=127.0.0.1:7001")
    try:
        assert type(plain) is aioredis.Redis
        assert isinstance(cluster, RedisCluster)
        assert not is_cluster(plain)
        assert is_cluster(cluster)
    finally:
        await plain.aclose()
        await cluster.aclose()


def test_a_cluster_url_is_its_first_node_and_the_seed_nodes() -> None:
    url = "rediss+cluster://u:p@10.0.0.1:7000/0?node=10.0.0.2:7000&socket_timeout=3&node=h:7001"
    plain, seeds = cluster_parts(url)
    assert plain == "rediss://u:p@10.0.0.1:7000/0?socket_timeout=3"
    assert seeds == ["10.0.0.2:7000", "h:7001"]


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://127.0.0.1:7000", "redis+cluster://127.0.0.1:7000/0?node=h:7001",
     "rediss+cluster://u:p@h:7000?socket_timeout=3"],
)  # fmt: skip
def test_the_settings_take_a_cluster_url_as_given(url: str) -> None:
    assert str(Settings(redis_url=url).redis_url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h:7000/3", "a Redis Cluster has database 0 only"),
        ("redis+cluster://h:7000?node=h", "each node argument of a cluster URL must be host:port"),
        ("redis+cluster://h:7000?bogus=1", "unknown query argument 'bogus'"),
    ],
)
def test_a_bad_cluster_url_is_refused_at_start_naming_the_key(url: str, message: str) -> None:
    from service.config import load_settings

    with pytest.raises(ConfigError, match=rf"redis_url: .*{message}"):
        load_settings(set(), [], redis_url=url)


async def test_streams_are_grouped_by_slot_only_on_a_cluster(
    cluster_client: aioredis.Redis, redis_client: aioredis.Redis
) -> None:
    streams = {keys.handoff("a"): "0", keys.handoff("b"): "0", keys.SCORES: "0"}
    assert by_slot(redis_client, streams) == [streams]
    groups = by_slot(cluster_client, streams)
    assert sorted(k for g in groups for k in g) == sorted(streams)
    assert len(groups) == 3


async def test_one_xread_over_several_slots_answers_each_and_blocks_when_empty(
    cluster_client: aioredis.Redis,
) -> None:
    streams = {keys.handoff("a"): "0", keys.handoff("b"): "0", keys.SCORES: "0"}
    for name in streams:
        await cluster_client.xadd(name, {"e": name})
    got = await xread(cluster_client, streams, count=10, block_ms=1000)
    assert sorted(s.decode() for s, _ in got) == sorted(streams)
    last = {s.decode(): entries[-1][0].decode() for s, entries in got}
    started = time.monotonic()
    assert await xread(cluster_client, last, count=10, block_ms=200) == []
    assert 0.19 < time.monotonic() - started < 1.0
