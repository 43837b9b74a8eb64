"""Fixtures of the publish tests: the real Redis (database 12, flushed before and after each
test), settings with two enabled venues and a disabled one, and the app with an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from publish_support import REDIS_URL

from service.config import ApiSettings, Settings, VenueSettings
from service.publish.api import create_app

ENABLED = ("binance_usdm", "bybit")


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - the machine's Redis is part of the test bed
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
    await client.flushdb()
    yield client
    await client.flushdb()
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
