"""The alert service's Redis tests again, on a real Redis Cluster (3 masters, 3 replicas):
its keys and its input (the instrument transitions) share one hash tag, so its ``MULTI``s
stay transactions. ``redis_client`` is, in this module, a client of the session's cluster."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from test_api_alerts import *  # noqa: F403
from test_delivery import *  # noqa: F403

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_client(cluster_client: aioredis.Redis) -> aioredis.Redis:
    return cluster_client
