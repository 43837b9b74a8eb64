"""``GET /metrics``: the Prometheus exposition of a registry (tag ``ops``)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ....config import Settings


def mount_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``GET /metrics`` (text format, or OpenMetrics when asked for).

    The exposition is rendered at most once per ``api.snapshot_s`` per format and its bytes
    served to every scrape in between (a scrape sees the process as it was at most that long
    ago): scrapers, however many, cost one render per period. The route is ``async`` on
    purpose: collection then runs on the event loop's thread, the thread that updates the
    in-process state the collectors read, so they see no torn state.
    """
    rendered: dict[str, tuple[float, bytes]] = {}

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        settings: Settings = request.app.state.settings
        max_age_s = settings.api.snapshot_s
        now = time.monotonic()
        kept = rendered.get(content_type)
        if kept is None or now - kept[0] > max_age_s:
            kept = rendered[content_type] = (now, encoder(registry))
        return Response(kept[1], media_type=content_type)

    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition (or OpenMetrics on request)",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
