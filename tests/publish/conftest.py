"""Fixtures of the publish tests: the real Redis (database 12, flushed before and after each
test), settings with two enabled venues and a disabled one, and the app with an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from cluster_support import Cluster
from fastapi import FastAPI
from publish_support import REDIS_URL

from service.config import ApiSettings, Settings, VenueSettings
from service.publish.api import create_app
from service.store.client import connect, flush

ENABLED = ("binance_usdm", "bybit")


ON_CLUSTER = {
    "test_api_assets", "test_api_history", "test_api_market", "test_api_pagination",
    "test_api_poison", "test_api_pressure", "test_api_snapshot", "test_api_transitions",
    "test_api_stress", "test_api_venues", "test_stream",
}  # fmt: skip
"""Modules whose tests run twice: on the single Redis and on a Redis Cluster (3 masters, 3
replicas, the session's: tests/cluster_support.py), with the same requests and answers."""


SINGLE_REDIS_ONLY = {
    # writes two streams in one MULTI (a cluster refuses: they are in two slots)
    "test_a_burst_across_streams_arrives_whole_and_strictly_ordered",
    # counts the connections of a named plain client on the single Redis
    "test_one_redis_reader_serves_every_client",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        metafunc.module.__name__ in ON_CLUSTER
        and metafunc.function.__name__ not in SINGLE_REDIS_ONLY
        and "redis" in metafunc.fixturenames
    ):
        metafunc.parametrize("store", ["redis", "cluster"], indirect=True)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> str:
    """Where the test's ``redis`` is: ``redis`` (a database of the single Redis) or
    ``cluster``."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
async def redis(store: str, request: pytest.FixtureRequest) -> AsyncIterator[aioredis.Redis]:
    if store == "cluster":
        cluster: Cluster = request.getfixturevalue("redis_cluster")
        cluster.wait_ok()
        client = connect(cluster.url)
    else:
        client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - the machine's Redis is part of the test bed
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    await flush(client)
    yield client
    await flush(client)
    await client.aclose()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        redis_url=REDIS_URL,
        venues={
            "binance_usdm": VenueSettings(),
            "bybit": VenueSettings(symbols=["BTCUSDT", "ETHUSDT"]),
            "okx": VenueSettings(enabled=False),
        },
        # Read per request: these tests write to Redis, then read it back at once.
        api=ApiSettings(default_limit=20, max_limit=50, snapshot_s=0),
    )


@pytest.fixture
def app(settings: Settings, redis: aioredis.Redis) -> FastAPI:
    return create_app(settings, redis=redis)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
