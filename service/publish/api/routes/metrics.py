"""``GET /metrics``: the Prometheus exposition of a registry (tag ``ops``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Final

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ....aio import Slices
from ....config import Settings
from ..snapshot import STALE_PERIODS

log = structlog.get_logger(__name__)

SLICE_S: Final = 0.005
"""A render lets the event loop run after about this long: rendered in one go, the
exposition of a process that collects 3,000 instruments held the loop 100-300 ms, every
request and frame of the process waiting (``docs/performance.md``, "Where the loop
stalls")."""
_EOF: Final = b"# EOF\n"


class _Collected(Collector):
    """Metrics already collected, for an encoder."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self._metrics


async def render(registry: CollectorRegistry, encoder: Callable[[Collector], bytes]) -> bytes:
    """``encoder(registry)``, the same bytes, with the event loop's turn about every
    :data:`SLICE_S`: between two metrics the registry's collectors yield (a collector that
    builds its families step by step, as :class:`~service.publish.metrics.MetricsCollector`
    does, is paused between its steps), and the metrics are encoded a few at a time. A
    collector reads the process's state on the loop's thread, as before, never while it
    changes; what changed between two steps is in the later families (as if they had been
    scraped a few milliseconds later)."""
    slices = Slices(SLICE_S)
    parts: list[bytes] = []
    batch: list[Metric] = []
    for metric in registry.collect():
        batch.append(metric)
        if slices.due():
            parts.append(encoder(_Collected(batch)))
            batch = []
            await slices.pause()
    parts.append(encoder(_Collected(batch)))
    # OpenMetrics ends every exposition with "# EOF": once, at the end of the whole.
    return b"".join(p.removesuffix(_EOF) for p in parts[:-1]) + parts[-1]


def mount_metrics(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``registry`` at ``GET /metrics`` (text format, or OpenMetrics when asked for).

    The exposition is rendered at most once per ``api.snapshot_s`` per format and its bytes
    served to every scrape in between: scrapers, however many, cost one render per period.
    A scrape that finds the bytes older than the period but at most
    :data:`~..snapshot.STALE_PERIODS` periods old gets them at once and starts a render in
    the background for the next scrapes (a render of a process that collects the whole
    market takes 100-250 ms of wall time in slices: scrapes that waited for it were the
    route's tail); one that finds none, or older bytes (a scraper every 15 s), waits for a
    render that began at most a period before it arrived, shared. A scrape thus sees the
    process as it was at most two periods ago. Renders follow the scrapes, not a timer: a
    process nobody scrapes renders nothing. The route is ``async`` on purpose: collection
    then runs on the event loop's thread, the thread that updates the in-process state the
    collectors read, so they see no torn state; it runs in slices (:func:`render`).
    """
    rendered: dict[str, tuple[float, bytes]] = {}
    rendering: dict[str, tuple[float, asyncio.Task[bytes]]] = {}

    async def keep(content_type: str, encoder: Callable[[Collector], bytes], at: float) -> bytes:
        try:
            body = await render(registry, encoder)
            rendered[content_type] = (at, body)
            return body
        finally:
            del rendering[content_type]

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        settings: Settings = request.app.state.settings
        max_age_s = settings.api.snapshot_s
        arrived = time.monotonic()
        kept = rendered.get(content_type)
        if kept is not None and arrived - kept[0] <= max_age_s * STALE_PERIODS:
            if arrived - kept[0] > max_age_s and content_type not in rendering:
                behind = asyncio.create_task(keep(content_type, encoder, arrived))
                behind.add_done_callback(_settled)
                rendering[content_type] = (arrived, behind)
            return Response(kept[1], media_type=content_type)
        while True:  # a render that began late enough for this scrape: shared, else ours
            at, task = rendering.get(content_type) or (arrived, None)
            if task is None:
                task = asyncio.create_task(keep(content_type, encoder, at))
                rendering[content_type] = (at, task)
            if at >= arrived - max_age_s:
                body = await asyncio.shield(task)  # (a scrape that leaves lets it finish)
                return Response(body, media_type=content_type)
            with contextlib.suppress(Exception):  # too old for this scrape: let it end
                await asyncio.shield(task)

    def _settled(task: asyncio.Task[bytes]) -> None:
        # A background render's failure is retried by the next scrape (and, past the
        # bound, raised to it): retrieved here so that it is not reported as never seen.
        if not task.cancelled() and task.exception() is not None:
            log.warning("metrics render failed", error=repr(task.exception())[:200])

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
