"""The detector's tests against Redis again, on a real Redis Cluster (3 masters, 3
replicas): it reads every venue's hand-off stream (in several slots) and writes its scores and
transitions there. ``redis_client`` is, in this module, a client of the session's cluster."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from test_runner import *  # noqa: F403

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(cluster_client: aioredis.Redis) -> aioredis.Redis:
    return cluster_client
