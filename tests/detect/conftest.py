"""Detector tests use Redis database 11 (``DELEVERAGE_TEST_DETECT_REDIS_URL`` overrides).

Overriding ``redis_url`` makes the shared ``redis_client`` fixture (tests/conftest.py) flush
and use that database before and after each test.
"""

from __future__ import annotations

import os

import pytest

DETECT_REDIS_URL = os.environ.get("DELEVERAGE_TEST_DETECT_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture
def redis_url() -> str:
    return DETECT_REDIS_URL
