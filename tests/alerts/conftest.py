"""Alert tests use Redis database 4 (``DELEVERAGE_TEST_REDIS_URL`` overrides), flushed before
and after each test by the shared ``redis_client`` fixture."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from alerts_support import Receiver

ALERTS_REDIS_URL = os.environ.get("DELEVERAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/4")


@pytest.fixture
def redis_url() -> str:
    return ALERTS_REDIS_URL


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()
