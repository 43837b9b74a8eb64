"""Shared fixtures. Integration tests use the real Redis at 127.0.0.1:6379 (a database of their
own, flushed before and after each test; ``DELEVERAGE_TEST_REDIS_URL`` overrides)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cluster_support import Cluster, cluster_available, start_cluster

REPO = Path(__file__).resolve().parent.parent
CAPTURES = Path(os.environ.get("DELEVERAGE_CAPTURES", REPO.parent / "shared" / "captures"))
TEST_REDIS_URL = os.environ.get("DELEVERAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


@pytest.fixture(autouse=True)
def _no_implicit_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a test see only what the test gives them, not config/default.yaml
    or a DELEVERAGE_* variable of the shell that runs the tests."""
    import os

    from service import config

    monkeypatch.setattr(config, "DEFAULT_CONFIG", REPO / "tests" / "no-such-config.yaml")
    for name in list(os.environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - the machine's Redis is part of the test bed
        pytest.fail(f"Redis at {redis_url} is not reachable: {exc}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def captures() -> Path:
    if not CAPTURES.is_dir():
        pytest.fail(f"captures not found at {CAPTURES} (set DELEVERAGE_CAPTURES)")
    return CAPTURES


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A Redis Cluster (3 masters, 3 replicas) of the test's own, for a test that kills one of
    its nodes; stopped after it."""
    why = cluster_available()
    if why is not None:
        pytest.skip(f"no Redis Cluster: {why}")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Cluster]:
    """A local Redis Cluster (3 masters, 3 replicas) for the whole run, stopped at its end."""
    why = cluster_available()
    if why is not None:
        pytest.skip(f"no Redis Cluster: {why}")
    cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster_client(redis_cluster: Cluster) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's cluster, emptied before and after the test."""
    from service.store.client import connect, flush

    redis_cluster.wait_ok()
    client = connect(redis_cluster.url)
    await flush(client)
    yield client
    await flush(client)
    await client.aclose()
