"""Wires the steps of the data path into one process: collectors → Redis → detector → API.

``deleverage run`` starts every component; ``--only`` starts a subset, so that collectors,
detector and API can run as separate processes (each talks to the others through Redis
only). One asyncio loop, one Redis connection pool, one event sink per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from collections.abc import Iterator, Mapping
from typing import Any

import redis.asyncio as aioredis
import structlog
import uvicorn
from prometheus_client import CollectorRegistry

from .alerts.model import AlertEvent
from .alerts.payload import envelope
from .alerts.service import AlertService
from .collect.collector import VenueCollector
from .collect.health import HealthSnapshot
from .collect.poller import CcxtPoller
from .config import Settings, VenueSettings, redacted
from .detect.model import Pressure
from .detect.runner import Detector
from .detect.warmup import Warmup
from .events import Event, Kind, Side
from .publish.api.app import create_app
from .publish.metrics import MetricsCollector, OutputsSnapshot
from .publish.mqtt import MqttPublisher
from .store.writer import EventSink
from .venues import REGISTRY
from .venues.base import now_ms
from .venues.ccxt_polled import CcxtVenue

log = structlog.get_logger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class Component(enum.StrEnum):
    COLLECT = "collect"
    DETECT = "detect"
    API = "api"
    ALERTS = "alerts"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Runtime:
    """Everything one process runs. Build it, then ``await run()``; cancel to stop."""

    def __init__(
        self,
        settings: Settings,
        components: set[Component] | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.components = components or set(Component)
        self.redis_url = redis_url or (
            str(settings.redis_url) if settings.redis_url else DEFAULT_REDIS_URL
        )
        self.redis = aioredis.Redis.from_url(
            self.redis_url,
            health_check_interval=30,
            socket_timeout=10,
            socket_connect_timeout=5,
        )
        self.sink = EventSink(self.redis, settings.store)
        self.collectors: list[VenueCollector | CcxtPoller] = (
            [self._collector(name, vs) for name, vs in settings.enabled_venues().items()]
            if Component.COLLECT in self.components
            else []
        )
        self.detector = (
            Detector(
                self.redis,
                settings.detector,
                sorted(settings.enabled_venues()),
                warmup=Warmup.from_settings(settings),
            )
            if Component.DETECT in self.components
            else None
        )
        self.mqtt = (
            MqttPublisher(settings.mqtt, _MetricsSource(self))
            if settings.mqtt.enabled and self.components & {Component.DETECT, Component.ALERTS}
            else None
        )
        self.alerts = (
            AlertService(self.redis, settings.alerts, on_event=self._alert_to_mqtt)
            if Component.ALERTS in self.components and settings.alerts.rules
            else None
        )
        source = _MetricsSource(self)
        self.registry = CollectorRegistry()
        self.registry.register(MetricsCollector(source, settings.metrics, outputs=source))
        self.app = create_app(settings, redis=self.redis, metrics_registry=self.registry)
        self.api_server: uvicorn.Server | None = None
        self.started = asyncio.Event()

    def _alert_to_mqtt(self, event: AlertEvent) -> None:
        """Every alert notification also goes to ``<prefix>/alerts`` when MQTT is on."""
        if self.mqtt is not None:
            public = self.settings.alerts.public_url
            self.mqtt.publish_alert(envelope(event, str(public) if public else None))

    def _collector(self, name: str, vs: VenueSettings) -> VenueCollector | CcxtPoller:
        """A native venue's collector, or the REST poller of a venue polled through ccxt."""
        collect = self.settings.collect
        if vs.ccxt is not None:
            venue = CcxtVenue(name, vs, timeout_s=collect.rest_timeout_s)
            rewrite_s = self.settings.detector.stale_after_s / 2
            return CcxtPoller(venue, collect, self.sink, self.redis, rewrite_unchanged_s=rewrite_s)
        return VenueCollector(REGISTRY[name](vs), collect, self.sink, self.redis)

    async def run(self) -> None:
        log.info(
            "starting",
            components=sorted(self.components),
            redis=redacted(self.redis_url),
            venues=sorted(self.settings.enabled_venues()),
        )
        try:
            async with asyncio.TaskGroup() as tg:
                if self.collectors:
                    tg.create_task(self.sink.run(), name="sink")
                for collector in self.collectors:
                    tg.create_task(collector.run(), name=f"collector:{collector.venue.id}")
                if self.detector is not None:
                    tg.create_task(self.detector.run(), name="detector")
                if self.alerts is not None:
                    tg.create_task(self.alerts.run(), name="alerts")
                if self.mqtt is not None:
                    tg.create_task(self.mqtt.run(), name="mqtt")
                if Component.API in self.components:
                    tg.create_task(self._serve_api(), name="api")
                self.started.set()
        finally:
            await self._shutdown()

    async def _serve_api(self) -> None:
        api = self.settings.api
        config = uvicorn.Config(
            self.app,
            host=api.host,
            port=api.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="none",
        )
        server = self.api_server = _Server(config)
        serving = asyncio.create_task(server.serve(), name="uvicorn")
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True  # finish in-flight requests and the lifespan cleanly
            await serving
            raise

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(self.sink.drain())
        for collector in self.collectors:
            with contextlib.suppress(Exception):
                await asyncio.shield(collector.close())
        await self.redis.aclose()
        log.info("stopped")

    async def serving(self) -> str:
        """Wait until the API listens; its base URL."""
        while (url := self.api_url()) is None:  # noqa: ASYNC110 - uvicorn has no started event
            await asyncio.sleep(0.05)
        return url

    def api_url(self) -> str | None:
        server = self.api_server
        if server is None or not server.started:
            return None
        sock = server.servers[0].sockets[0].getsockname()
        return f"http://{sock[0]}:{sock[1]}"


class _MetricsSource:
    """What /metrics reads at scrape time: this process's in-memory state only."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime

    def health(self) -> list[HealthSnapshot]:
        now = now_ms()
        return [c.health.snapshot(now) for c in self._rt.collectors]

    def pressures(self) -> list[Pressure]:
        det = self._rt.detector
        return list(det.snapshot().values()) if det is not None else []

    def latest(self) -> Mapping[tuple[str, str], Mapping[Kind, Event]]:
        return {
            (c.venue.id, sym): per for c in self._rt.collectors for sym, per in c.latest.items()
        }

    def liquidation_totals(self) -> Mapping[tuple[str, str, Side], tuple[int, float]]:
        out: dict[tuple[str, str, Side], tuple[int, float]] = {}
        for c in self._rt.collectors:
            for (sym, side), count in c.liquidation_totals.items():
                out[(c.venue.id, sym, side)] = (count, c.liquidation_notional[(sym, side)])
        return out

    def outputs(self) -> OutputsSnapshot:
        alerts, mqtt = self._rt.alerts, self._rt.mqtt
        return OutputsSnapshot(
            receivers=alerts.stats() if alerts is not None else [],
            alert_events=dict(alerts.events_by_kind) if alerts is not None else {},
            open_alerts=alerts.open_alerts() if alerts is not None else None,
            mqtt=None if mqtt is None else {
                "connected": float(mqtt.connected), "connects": mqtt.connects_total,
                "connect_failures": mqtt.connect_failures_total,
                "scores_published": mqtt.scores_published_total,
                "alerts_published": mqtt.alerts_published_total,
                "alerts_dropped": mqtt.alerts_dropped_total,
                "alerts_pending": mqtt.pending_alerts,
            },
        )  # fmt: skip

    def sink_stats(self) -> Mapping[str, float]:
        s = self._rt.sink
        return {
            "written_events": s.written_events,
            "written_batches": s.written_batches,
            "write_failures": s.write_failures,
            "pending": s.pending,
        }


def install_signal_handlers(task: asyncio.Task[Any]) -> None:
    """SIGTERM and SIGINT cancel ``task`` (a clean shutdown: pending events are written)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
