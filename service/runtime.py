"""Wires the steps of the data path into one process: collectors → Redis → detector → API.

``deleverage run`` starts every component; ``--only`` starts a subset, so that collectors,
detector and API can run as separate processes (each talks to the others through Redis
only). One asyncio loop, one Redis connection pool, one event sink per process.

Each component (each venue's collector, the event sink, the detector, the alerts, MQTT, the
API server) runs under the :class:`~.supervise.Supervisor`: one that fails is logged,
counted and restarted alone with backoff, and the others never notice; only a fatal error
(:mod:`.errors`) stops the process. ``/readyz`` and ``/metrics`` say which is down
(:class:`ProcessStatus`).

The Redis client has no command retries of its own (redis-py's default for a client built
from a URL): a retried pipeline could apply twice, and each loop retries its own writes
idempotently. A pooled connection that Redis closed (a restart) is replaced when it is
taken from the pool, and the first failure after a success is retried at once by the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import signal
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry

from .aio import cancel_stragglers
from .alerts.model import AlertEvent
from .alerts.payload import envelope
from .alerts.service import AlertService
from .collect.collector import VenueCollector
from .collect.poller import CcxtPoller
from .collect.stress_run import PLANS, StressRunner
from .config import Settings, VenueSettings, redacted
from .detect.inputs import INPUT_GAP_S
from .detect.runner import Detector
from .detect.warmup import Warmup
from .errors import ConfigError, fatal_cause
from .events import Event, Kind, Side
from .health import HealthSnapshot
from .publish.api.app import create_app, end_streams
from .publish.api.http import HttpProtocol
from .publish.metrics import MetricsCollector, OutputsSnapshot, StressSnapshot
from .publish.mqtt import MqttPublisher
from .scores import Pressure
from .store.client import connect
from .store.stored import StoredEvents
from .store.stress import StressWriter
from .store.writer import EventSink
from .supervise import ComponentStatus, Supervisor
from .venues import REGISTRY
from .venues.base import now_ms
from .venues.ccxt_polled import CcxtVenue

log = structlog.get_logger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STRESS_PREFIX = "stress:"
"""The components of stress polling (``stress:<venue>``, ``stress:writer``)."""
SINK_BACKLOG_S = 2.0
"""``/readyz`` fails while an event waits longer than this to be written (or writes fail)."""
STOP_GRACE_S = 5.0
"""A component still running this long after a stop cancelled it is cancelled again (then
every :data:`STOP_RECANCEL_S`): a cancel can be lost on Python 3.11 (see
:func:`.aio.checkpoint`), and the stop must not wait for ever. It covers what a component
finishes on its way out (the API's in-flight requests)."""
STOP_RECANCEL_S = 1.0


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
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.supervisor = supervisor or Supervisor()
        self.components = components or set(Component)
        self.redis_url = redis_url or (
            str(settings.redis_url) if settings.redis_url else DEFAULT_REDIS_URL
        )
        self.redis = connect(
            self.redis_url,
            health_check_interval=30,
            socket_timeout=10,
            socket_connect_timeout=5,
        )
        shard = settings.collect.shard
        if shard is not None and shard.sharded and not _shard_components(self.components):
            raise ConfigError(
                f"collect.shard is {shard}: a collector shard runs the collectors, and the API "
                "for its /metrics and /readyz if wanted (`deleverage run --only collect "
                "[--only api] --shard I/N`); start the detector and alerts in other processes"
            )
        detect_shard = settings.detect.shard
        if (
            detect_shard is not None
            and detect_shard.sharded
            and Component.DETECT in self.components
            and not self.components <= {Component.DETECT, Component.API}
        ):
            raise ConfigError(
                f"detect.shard is {detect_shard}: a detector shard runs the detector, and the "
                "API for its /metrics and /readyz if wanted (`deleverage run --only detect "
                "[--only api] --shard I/N`); start the collectors and the alerts in other "
                "processes"
            )
        # The API's snapshot takes the events this process's writer stored instead of
        # decoding their bytes again, when the process has both (service/store/stored.py).
        self.stored = (
            StoredEvents() if {Component.COLLECT, Component.API} <= self.components else None
        )
        self.sink = EventSink(
            self.redis, settings.store, stored=self.stored,
            # Named as the same process is named again after a restart: its shard, if any.
            journal=(
                None if Component.COLLECT not in self.components
                else "collect" if shard is None or not shard.sharded else f"collect:{shard}"
            ),
        )  # fmt: skip
        self.collectors: list[VenueCollector | CcxtPoller] = (
            [self._collector(name, vs) for name, vs in settings.enabled_venues().items()]
            if Component.COLLECT in self.components
            else []
        )
        self.stress_writer = StressWriter(
            self.redis,
            settings.store.stress_retention_s,
            handoff_retention_s=settings.store.handoff_retention_s,
        )
        self.stress: dict[int, StressRunner] = {
            i: self._stress_runner(i) for i in range(len(self.collectors)) if self._polls_stress(i)
        }
        """Per collector index: its venue's stress polling (docs/stress.md)."""
        for i in self.stress:  # what the venue pushes on its websocket (Bybit's ADL alerts)
            collector = self.collectors[i]
            assert isinstance(collector, VenueCollector)
            collector.stress_sink = self.stress_writer.put
        self.detector = (
            Detector(
                self.redis,
                settings.detector,
                sorted(settings.enabled_venues()),
                warmup=Warmup.from_settings(settings),
                input_gap_s=_input_gaps(settings),
                shard=detect_shard if detect_shard is not None and detect_shard.sharded else None,
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
        self.status = ProcessStatus(self)
        self.registry = CollectorRegistry()
        self.registry.register(
            MetricsCollector(
                source,
                settings.metrics,
                outputs=source,
                process=self.status,
                stream=lambda: getattr(self.app.state, "hub", None),
                detector=self.detector,
                shard=str(shard) if shard is not None and shard.sharded else None,
                stress=source if self.stress else None,
            )
        )
        self.app = create_app(
            settings, redis=self.redis, metrics_registry=self.registry, status=self.status,
            stored=self.stored,
        )  # fmt: skip
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
        shard = collect.shard if collect.shard is not None and collect.shard.sharded else None
        collector: VenueCollector | CcxtPoller
        if vs.ccxt is not None:
            polled = CcxtVenue(name, vs, timeout_s=collect.rest_timeout_s)
            polled.shard = shard
            rewrite_s = self.settings.detector.stale_after_s / 2
            collector = CcxtPoller(
                polled, collect, self.sink, self.redis, rewrite_unchanged_s=rewrite_s
            )
        else:
            venue_class = REGISTRY[name]
            if venue_class.retired is not None:
                log.warning("a retired venue is enabled", venue=name, retired=venue_class.retired)
            venue = venue_class(vs)
            venue.shard = shard
            collector = VenueCollector(venue, collect, self.sink, self.redis)
        collector.health.shard = None if shard is None else str(shard)
        return collector

    def _polls_stress(self, i: int) -> bool:
        """Whether collector ``i``'s venue polls its stress endpoints: a native venue with a
        plan, ``stress.enabled``, and not a collector shard other than shard 0 (the venue-wide
        calls would be made once per shard)."""
        collector = self.collectors[i]
        if not isinstance(collector, VenueCollector) or collector.venue.id not in PLANS:
            return False
        shard = self.settings.collect.shard
        if shard is not None and shard.sharded and shard.index != 0:
            return False
        return self.settings.venues[collector.venue.id].stress.enabled

    def _stress_runner(self, i: int) -> StressRunner:
        collector = self.collectors[i]
        assert isinstance(collector, VenueCollector)
        venue = collector.venue

        def markets() -> tuple[Mapping[str, Any], set[str] | None]:
            current = self.collectors[i]  # replaced after a failure: read it each time
            parser = getattr(current, "parser", None)
            wanted = parser.wanted if parser is not None else None
            return getattr(current, "markets", {}), wanted

        return StressRunner(
            venue.id, venue.rest_url, venue.settings.stress, markets, self.stress_writer.put,
            timeout_s=self.settings.collect.rest_timeout_s,
        )  # fmt: skip

    async def run(self) -> None:
        """Run every component until cancelled. Raises only a fatal error (the first)."""
        shard = self.settings.collect.shard
        log.info(
            "starting",
            components=sorted(self.components),
            redis=redacted(self.redis_url),
            venues=sorted(self.settings.enabled_venues()),
            **({"shard": str(shard)} if shard is not None and shard.sharded else {}),
            **({"detect_shard": str(det.shard)} if (det := self.detector) and det.shard else {}),
        )
        supervise = self.supervisor.run
        tasks: list[asyncio.Task[None]] = []
        stragglers: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as tg:

                def start(name: str, *args: Any, **kwargs: Any) -> None:
                    tasks.append(tg.create_task(supervise(name, *args, **kwargs), name=name))

                if Component.COLLECT in self.components:
                    start("sink", self.sink.run)
                for i, collector in enumerate(self.collectors):
                    start(
                        f"collector:{collector.venue.id}",
                        functools.partial(self._run_collector, i),
                        on_failure=functools.partial(self._replace_collector, i),
                    )
                if self.stress:
                    start(f"{STRESS_PREFIX}writer", self.stress_writer.run)
                for runner in self.stress.values():
                    start(f"{STRESS_PREFIX}{runner.venue}", runner.run)
                if self.detector is not None:
                    start("detector", self.detector.run)
                if self.alerts is not None:
                    start("alerts", self.alerts.run)
                if self.mqtt is not None:
                    start("mqtt", self.mqtt.run)
                if Component.API in self.components:
                    start("api", self._serve_api)
                self.started.set()
                try:
                    await asyncio.Event().wait()  # until stopped, or a component fails fatally
                finally:  # the group cancels every component now, and waits for them
                    stragglers = asyncio.create_task(
                        cancel_stragglers(tasks, STOP_GRACE_S, STOP_RECANCEL_S, _straggler),
                        name="stop-stragglers",
                    )
        except BaseExceptionGroup as group:  # a component failed fatally: stop with its error
            raise fatal_cause(group) or group.exceptions[0] from None
        finally:
            if stragglers is not None:
                stragglers.cancel()
            await self._shutdown()

    async def _run_collector(self, i: int) -> None:
        await self.collectors[i].run()

    async def _replace_collector(self, i: int) -> None:
        """After a collector failed: close it, and put a new one in its place (its counters
        carried over), so that the restart opens every connection afresh."""
        old = self.collectors[i]
        if isinstance(old, VenueCollector):  # a poller's run() starts from scratch by itself
            name = old.venue.id
            new = self._collector(name, self.settings.enabled_venues()[name])
            assert isinstance(new, VenueCollector)
            new.health, new.latest, new.dedup = old.health, old.latest, old.dedup
            new.liquidation_totals = old.liquidation_totals
            new.liquidation_notional = old.liquidation_notional
            self.collectors[i] = new
            old.flush()  # its open seconds of traded volume: the new one starts afresh
        await old.close()  # last: if it fails (logged), the new collector is in place anyway

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
            http=HttpProtocol,
        )
        server = self.api_server = _Server(config)
        sock = config.bind_socket()
        # Accepted connections inherit it: what a client that stops reading holds in the
        # kernel is bounded, and such a stream client overflows its mailbox and is dropped
        # after that much, not after the megabytes autotuning would allow.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, api.send_buffer_bytes)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            end_streams(self.app)  # the server would wait for them forever
            server.should_exit = True  # finish in-flight requests and the lifespan cleanly
            await serving
            raise

    async def _shutdown(self) -> None:
        if Component.COLLECT in self.components:
            for collector in self.collectors:
                if isinstance(collector, VenueCollector):
                    collector.flush()  # the open seconds of traded volume, into the sink
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


class ProcessStatus:
    """What this process knows of itself, for ``/readyz`` and ``/metrics``: which component
    runs, and whether the event sink keeps up. In memory, no I/O."""

    def __init__(self, runtime: Runtime, sink_backlog_s: float = SINK_BACKLOG_S) -> None:
        self._rt = runtime
        self._sink_backlog_s = sink_backlog_s

    def components(self) -> list[ComponentStatus]:
        return self._rt.supervisor.components()

    def checks(self) -> list[dict[str, Any]]:
        """One readiness check per component, and one for the sink (when it runs)."""
        now_ms = time.time_ns() // 1_000_000
        out: list[dict[str, Any]] = []
        for c in self.components():
            if c.up:
                detail = "running" + (f" (restarted {c.restarts}x)" if c.restarts else "")
            else:
                down_s = max(0.0, (now_ms - c.changed_ms) / 1000)
                detail = f"down for {down_s:.1f} s after {c.last_error}; restarts {c.restarts}"
            # stress polling is an extra: its failure is reported, never a readiness failure
            ok = c.up or c.name.startswith(STRESS_PREFIX)
            out.append({"name": f"component:{c.name}", "ok": ok, "detail": detail})
        if Component.COLLECT in self._rt.components:
            state = self._rt.sink.state()
            waiting = f"{state.pending} events waiting"
            if state.failing_s is not None:
                ok, detail = False, f"failing for {state.failing_s:.1f} s: {state.last_error}"
            elif state.backlog:
                ok, detail = False, f"writing what waited during an outage: {state.backlog} left"
            elif state.oldest_pending_s > self._sink_backlog_s:
                ok, detail = False, f"{waiting}, the oldest for {state.oldest_pending_s:.1f} s"
            else:
                ok, detail = True, waiting
            out.append({"name": "store:writer", "ok": ok, "detail": detail})
        return out


def _straggler(task: asyncio.Task[object]) -> None:
    log.warning("component still running after the stop: cancelled again",
                component=task.get_name())  # fmt: skip


def _shard_components(components: set[Component]) -> bool:
    """Whether a process with a collector shard may run ``components``: beside the collectors,
    the API (which holds nothing of its own), never the detector or the alerts, which must see
    every instrument. A process that collects nothing ignores the shard (one configuration
    for every process)."""
    return Component.COLLECT not in components or components <= {Component.COLLECT, Component.API}


def _input_gaps(settings: Settings) -> dict[str, float]:
    """The detector's input gap per venue: polled venues write once per poll interval."""
    return {
        name: max(INPUT_GAP_S, 2 * vs.ccxt.poll_interval_s)
        for name, vs in settings.enabled_venues().items()
        if vs.ccxt is not None
    }


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

    def scope_pressures(self) -> list[Pressure]:
        det = self._rt.detector
        return list(det.aggregates().values()) if det is not None else []

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

    def stress(self) -> list[StressSnapshot]:
        return [
            StressSnapshot(
                venue=r.venue, states=list(r.latest.values()), polls=r.polls_total,
                failures=dict(r.failures), drops=dict(r.stats.errors), events=r.events_total,
            )
            for r in self._rt.stress.values()
        ]  # fmt: skip

    def stress_writer(self) -> Mapping[str, float]:
        w = self._rt.stress_writer
        return {
            "written": w.written_events,
            "write_failures": w.write_failures,
            "pending": w.pending,
        }

    def sink_stats(self) -> Mapping[str, float]:
        s = self._rt.sink
        return {
            "written_events": s.written_events,
            "written_batches": s.written_batches,
            "write_failures": s.write_failures,
            "pending": s.pending,
            "oldest_pending_s": s.state().oldest_pending_s,
            "events_dropped": s.events_dropped,
        }


def install_signal_handlers(task: asyncio.Task[Any]) -> None:
    """SIGTERM and SIGINT cancel ``task`` (a clean shutdown: pending events are written)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
