"""The store's tests again, on a real Redis Cluster (3 masters, 3 replicas): the same writes
and reads, the same answers. ``redis_client`` is, in this module, a client of the session's
cluster (tests/conftest.py), so every test imported here runs against it."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from test_market import *  # noqa: F403
from test_reader_poison import *  # noqa: F403
from test_store import *  # noqa: F403
from test_tape import *  # noqa: F403

from service.config import StoreSettings
from service.events import Kind
from service.store import keys, tape
from service.store.writer import EventSink

from test_store import NOW, _identified, _mark, _until  # isort: skip

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(cluster_client: aioredis.Redis) -> aioredis.Redis:
    return cluster_client


# Calls the script as on a single Redis (the indexes among its keys): its cluster form is below.
del test_a_retried_batch_is_not_written_twice  # noqa: F821


async def test_a_retried_batch_is_not_written_twice_on_a_cluster(
    redis_client: aioredis.Redis,
) -> None:
    """The cluster's script call leaves the indexes out and answers the duplicates and the
    positions to index; a retry (same batch id) answers the same and writes nothing."""
    from service.store.script import STORE_SCRIPT, group_replies, queue_instruments

    await redis_client.script_load(STORE_SCRIPT)
    batch = [_mark("BTCUSDT", NOW, 1.0), _identified(NOW), _identified(NOW)]
    replies = []
    for _ in range(2):
        async with redis_client.pipeline(transaction=False) as pipe:
            calls = queue_instruments(
                pipe, batch, StoreSettings(), NOW, "batch-1", set(), indexed=False
            )
            replies.append(group_replies(calls, await pipe.execute())[0])
    dups, positions = replies[0]
    assert replies[0] == replies[1]
    assert dups == [3]
    assert len(positions) == 1
    assert positions[0].endswith(b"~binance_usdm|BTCUSDT")
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.MARK)) == 1
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)) == 1
    assert await redis_client.zcard(keys.liquidation_index()) == 0  # the writer's step


async def test_the_sink_indexes_every_stored_liquidation_on_a_cluster(
    redis_client: aioredis.Redis,
) -> None:
    sink = EventSink(redis_client, StoreSettings())
    task = asyncio.create_task(sink.run())
    try:
        events = [_identified(NOW + i) for i in range(5)]
        await sink.put([*events, events[0]])  # a duplicate: stored and indexed once
        await _until(lambda: sink.written_events == 5)
    finally:
        task.cancel()
    everything = await redis_client.zrange(keys.liquidation_index(), 0, -1)
    mine = await redis_client.zrange(keys.liquidation_index("binance_usdm"), 0, -1)
    assert len(everything) == 5
    assert everything == mine
    page = await tape.indexed_liquidations(
        redis_client, None, since_ms=None, until_ms=None, limit=10, cursor=None
    )
    assert sorted(e.event_id for e in page.items) == sorted(e.event_id for e in events)
