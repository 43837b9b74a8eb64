"""``GET /metrics``: the Prometheus exposition of a registry (tag ``ops``)."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def mount_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``GET /metrics`` (text format, or OpenMetrics when asked for).

    The route is ``async`` on purpose: collection then runs on the event loop's thread, the
    thread that updates the in-process state the collectors read, so they see no torn state.
    """

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

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
