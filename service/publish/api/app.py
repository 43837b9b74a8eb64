"""The FastAPI application: routers, problem handlers, Redis lifespan, OpenAPI.

Ops endpoints (``/healthz``, ``/readyz``, ``/metrics``) are unversioned; everything else is
under ``/v1`` (a ``/v2`` would be added beside it, never by changing ``v1``). Operation ids
are the route functions' names, so they stay stable while the functions keep their names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry
from pydantic.json_schema import models_json_schema

from ...config import Settings
from ...store.client import connect
from ...store.stored import StoredEvents
from ..build import VERSION
from .answers import ViewAnswers
from .limits import QueryLimits, query_caps_response
from .models import STREAM_PAYLOADS
from .problems import install_handlers, problem_openapi
from .routes import (
    alerts,
    assets,
    market,
    ops,
    page,
    pressure,
    stream,
    stress,
    transitions,
    venues,
)
from .routes.metrics import mount_metrics
from .routes.ops import ProcessChecks
from .snapshot import Snapshots
from .stream.hub import Hub

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
REDIS_TIMEOUT_S: Final = 2.0
"""Connect and command timeout: a request fails fast (503) instead of hanging on Redis."""

TAGS: Final = [
    {"name": "ops", "description": "Liveness, readiness and metrics (unversioned)."},
    {"name": "venues", "description": "Venue connections and their health."},
    {"name": "pressure", "description": "Deleveraging pressure scores per instrument."},
    {"name": "market-data", "description": "Liquidations, funding, open interest, prices."},
    {"name": "assets", "description": "Each asset across every venue and contract."},
    {"name": "stress", "description": "Insurance funds, ADL risk, long/short ratios, basis."},
    {"name": "alerts", "description": "Alerts and their webhook receivers."},
    {"name": "stream", "description": "Live events pushed as Server-Sent Events."},
]


def create_app(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    metrics_registry: CollectorRegistry | None = None,
    status: ProcessChecks | None = None,
    stored: StoredEvents | None = None,
) -> FastAPI:
    """Build the API. A given ``redis`` client is used and left open; otherwise the lifespan
    connects to ``settings.redis_url`` and closes the client on shutdown. With a
    ``metrics_registry``, ``/metrics`` serves it; with a ``status`` (the process's components
    and writer), ``/readyz`` adds its checks; with ``stored`` (what the process's own writer
    stored), the snapshot takes those events instead of decoding their bytes again."""
    app = FastAPI(
        title="deleverage",
        version=VERSION,
        summary="Tells when leverage is being unwound on crypto derivatives venues.",
        openapi_tags=TAGS,
        lifespan=_lifespan(settings, redis, stored),
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.status = status
    install_handlers(app)
    app.add_middleware(QueryLimits)
    app.add_middleware(ViewAnswers)  # outside QueryLimits: a kept target passed its caps
    app.include_router(ops.router)
    for module in (venues, pressure, transitions, market, assets, stress, alerts, stream):
        app.include_router(module.router, prefix="/v1")
    page.mount_page(app)
    if metrics_registry is not None:
        mount_metrics(app, metrics_registry)
    app.openapi = _openapi(app.openapi, settings)  # type: ignore[method-assign]
    return app


def _lifespan(
    settings: Settings, given: aioredis.Redis | None, stored: StoredEvents | None
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        api = settings.api
        stress_venues = sorted(settings.enabled_venues())
        if given is not None:
            async with (
                _hub(settings, given) as hub,
                Snapshots(given, api.snapshot_s, api.max_limit + 1, stress_venues, stored) as snaps,
            ):
                app.state.hub = hub  # also here: tools and tests read its stats
                app.state.snapshots = snaps
                yield {"redis": given, "hub": hub, "snapshots": snaps}
            return
        url = str(settings.redis_url) if settings.redis_url is not None else DEFAULT_REDIS_URL
        client = connect(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        try:
            async with (
                _hub(settings, client) as hub,
                Snapshots(
                    client, api.snapshot_s, api.max_limit + 1, stress_venues, stored
                ) as snaps,
            ):
                app.state.hub = hub
                app.state.snapshots = snaps
                yield {"redis": client, "hub": hub, "snapshots": snaps}
        finally:
            await client.aclose()

    return lifespan


@asynccontextmanager
async def _hub(settings: Settings, client: aioredis.Redis) -> AsyncIterator[Hub]:
    """The live stream's hub of this process (it reads only while a client is connected)."""
    api = settings.api
    hub = Hub(
        client,
        settings.enabled_venues(),
        queue_events=api.stream_queue_events,
        max_lag_s=api.stream_max_lag_s,
        replay_s=api.stream_replay_s,
        replay_events=api.stream_replay_events,
    )
    try:
        yield hub
    finally:
        await hub.aclose()


def _operation_id(route: APIRoute) -> str:
    return route.name


def _openapi(
    build: Callable[[], dict[str, Any]], settings: Settings
) -> Callable[[], dict[str, Any]]:
    """The schema with problem media types, the page limits this instance enforces (known
    only at run time, so not declared on the parameter), and the 422 of the query caps
    (:mod:`.limits`), which every operation can answer."""

    def openapi() -> dict[str, Any]:
        schema = problem_openapi(build())
        _add_stream_payloads(schema)
        stream.stream_openapi(schema)
        for path in schema["paths"].values():
            for operation in path.values():
                operation["responses"].setdefault("422", query_caps_response())
                for param in operation.get("parameters", []):
                    if param["name"] == "limit" and param["in"] == "query":
                        param["schema"]["default"] = settings.api.default_limit
                        param["schema"]["anyOf"][0]["maximum"] = settings.api.max_limit
        return schema

    return openapi


def _add_stream_payloads(schema: dict[str, Any]) -> None:
    """The models of the stream's event payloads, which no route returns as a body (its
    event schema refers to them). Idempotent."""
    _, defs = models_json_schema(
        [(m, "serialization") for m in STREAM_PAYLOADS.values()],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model_schema in defs.get("$defs", {}).items():
        components.setdefault(name, model_schema)


STOPPING: Final = "the service is stopping; reconnect with Last-Event-ID"


def end_streams(app: FastAPI) -> None:
    """End every ``/v1/stream`` response (each told why): call it before the server stops,
    which waits for open responses, and a stream never ends by itself."""
    hub = getattr(app.state, "hub", None)
    if isinstance(hub, Hub):
        hub.end_all(STOPPING)
