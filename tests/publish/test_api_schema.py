"""Schema-driven tests (schemathesis): requests generated from ``/openapi.json``, valid and
invalid, against the app backed by the real Redis holding realistic data and poisoned
entries. No answer may be a server error, and every answer must match the schema.

Deterministic (a fixed derandomized run per operation), so it never flakes; the number of
examples keeps it to a few seconds per operation.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from poison_support import seed_poison, seed_realistic
from prometheus_client import CollectorRegistry
from publish_support import REDIS_URL, MemorySource
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import config
from service.config import ApiSettings, Settings, VenueSettings
from service.publish.api import create_app
from service.publish.metrics import MetricsCollector

REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 60
"""Per operation and generation mode (valid, invalid)."""


@pytest.fixture
async def seeded(redis: aioredis.Redis) -> None:
    await seed_realistic(redis)
    await seed_poison(redis)


def _settings() -> Settings:
    """The conftest's settings, built at import (schemathesis reads the schema then), away
    from ``config/default.yaml`` and the shell's ``DELEVERAGE_*`` variables."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "DEFAULT_CONFIG", REPO / "tests" / "no-such-config.yaml")
        for name in os.environ:
            if name.startswith(config.ENV_PREFIX):
                patch.delenv(name)
        return Settings(
            redis_url=REDIS_URL,
            venues={"binance_usdm": VenueSettings(), "bybit": VenueSettings(enabled=False)},
            # A heartbeat every 20 ms: every stream has events to check, at once.
            api=ApiSettings(default_limit=20, max_limit=50, stream_heartbeat_s=0.02),
        )


def _app() -> FastAPI:
    """The app connects to Redis itself (no client given): schemathesis runs it on an event
    loop of its own."""
    settings = _settings()
    registry = CollectorRegistry()
    registry.register(MetricsCollector(MemorySource(), settings.metrics))
    return create_app(settings, metrics_registry=registry)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
schema.config.generation.update(
    modes=list(GenerationMode), max_examples=MAX_EXAMPLES, deterministic=True
)
schema.config.max_stream_events = 4
"""``/v1/stream`` never ends: each case reads this many events (checked one by one)."""


@schema.parametrize()
# The fixture only seeds what every generated (read-only) request reads: nothing to reset.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
def test_no_server_error_and_every_answer_matches_the_schema(case: Case, seeded: None) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
