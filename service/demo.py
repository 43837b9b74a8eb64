"""``deleverage demo``: the whole data path on one machine, with no internet.

A simulator process plays a labelled scenario on loopback; a private Redis is started when
none is configured; this process runs the collectors, detector, alerts, API and /metrics
against them and prints where to look. Alerts go to a local signed-webhook receiver and,
through a private Mosquitto when none is configured (and the binary is installed), to MQTT
(:mod:`.demo_outputs`). With ``--duration`` it stops by itself and prints the run's
figures as JSON (messages/s ingested, events written, CPU of the service process). Every
process it starts dies with it, even when it is SIGKILLed (:mod:`.lifeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import click
import redis.asyncio as aioredis
import structlog

from .config import Settings, redacted
from .demo_outputs import DemoOutputs, demo_outputs
from .events import BookDepth, BookTop, Kind, decode
from .lifeline import Lifeline, spawn_options
from .preflight import load_checked
from .runtime import Runtime, install_signal_handlers
from .store import keys, reader
from .store.embedded import embedded_redis
from .venues import REGISTRY
from .venues.binance.usdm import VENUE as BINANCE_USDM
from .venues.bybit.venue import VENUE as BYBIT
from .venues.gateio.instruments import VENUE as GATEIO
from .venues.okx.instruments import VENUE as OKX

log = structlog.get_logger(__name__)

STATUS_EVERY_S = 5.0


@contextlib.asynccontextmanager
async def _simulator(scenario: str, venues: list[str]) -> AsyncIterator[dict[str, dict[str, str]]]:
    """A ``deleverage simulate`` process of ``venues`` on free ports; yields their URLs."""
    with tempfile.TemporaryDirectory(prefix="deleverage-sim-") as tmp, Lifeline() as lifeline:
        urls_file = Path(tmp) / "urls.json"
        only = [arg for name in venues for arg in ("--venue", name)]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "simulate", "--base-port", "0",
            "--urls-file", str(urls_file), "--scenario", scenario, "--log-level", "warning",
            *only,
            start_new_session=True,  # stopped by us after the service, not by the terminal
            **lifeline.child_options(), **spawn_options(),
        )  # fmt: skip
        lifeline.close_child_end()
        try:
            yield await _wait_urls(urls_file, proc)
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


async def _wait_urls(
    path: Path, proc: asyncio.subprocess.Process, timeout_s: float = 30
) -> dict[str, dict[str, str]]:
    deadline = time.monotonic() + timeout_s
    while (urls := _read_urls(path)) is None:
        if proc.returncode is not None:
            raise click.ClickException(f"the simulator exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise click.ClickException("the simulator did not start in time")
        await asyncio.sleep(0.1)
    return urls


def _read_urls(path: Path) -> dict[str, dict[str, str]] | None:
    """The simulator's URLs file (written atomically), or ``None`` before it exists."""
    try:
        urls: dict[str, dict[str, str]] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return urls


def demo_venues(settings: Settings) -> list[str]:
    """The venues the demo simulates and collects: every native venue that still operates,
    whatever the configuration says of it (the demo needs none), and a retired one (BitMEX,
    disabled by ``config/default.yaml``) only when the configuration enables it."""
    return sorted(
        name
        for name, venue in REGISTRY.items()
        if venue.retired is None or (name in settings.venues and settings.venues[name].enabled)
    )


SIMULATED_STRESS: Final = frozenset({BINANCE_USDM, BYBIT, GATEIO, OKX})
"""The venues whose simulator serves the stress endpoints (the others' would answer 404)."""


def _demo_stress(venue: str) -> dict[str, Any]:
    """Stress polling in the demo: the venue-wide calls (ADL ratings, the insurance fund)
    every 5 s where the simulator serves them, so that its cascade shows the fund draining
    and the ADL level rising (docs/stress.md); off elsewhere."""
    return {"venue_every_s": 5.0} if venue in SIMULATED_STRESS else {"enabled": False}


async def run_demo(
    settings: Settings, files: list[Path], *, port: int, scenario: str, duration_s: float | None
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis_url = str(settings.redis_url) if settings.redis_url else None
        if redis_url is None:
            redis_url = await stack.enter_async_context(embedded_redis())
        urls = await stack.enter_async_context(_simulator(scenario, demo_venues(settings)))
        outputs = await stack.enter_async_context(demo_outputs(settings))
        overrides: dict[str, Any] = outputs.overrides | {
            "redis_url": redis_url,
            "api": {"port": port},
            "venues": {name: {"enabled": False} for name in settings.venues}
            | {
                name: {"enabled": True, **u, "stress": _demo_stress(name)}
                for name, u in urls.items()
            },
        }
        demo_settings = load_checked(files, **overrides)
        runtime = Runtime(demo_settings, redis_url=redis_url)
        task = asyncio.create_task(runtime.run())
        install_signal_handlers(task)
        watcher = asyncio.create_task(_watch(runtime, outputs, duration_s, task))
        try:
            await task
        except asyncio.CancelledError:
            pass  # stopped by a signal, or by the watcher when --duration ran out
        finally:
            watcher.cancel()
        if watcher.done() and not watcher.cancelled():
            click.echo(json.dumps(watcher.result(), indent=2))


async def _watch(
    runtime: Runtime, outputs: DemoOutputs, duration_s: float | None, task: asyncio.Task[Any]
) -> Any:
    """Print status lines; with ``duration_s``, stop the service then and return figures."""
    try:
        await runtime.serving()
        _banner(runtime, outputs)
        t0, cpu0 = time.monotonic(), time.process_time()
        left_calm_after: float | None = None
        next_status = t0 + STATUS_EVERY_S
        while duration_s is None or time.monotonic() - t0 < duration_s:
            await asyncio.sleep(0.5)
            hot = _hottest(runtime)
            if hot is not None and hot["state"] != "calm" and left_calm_after is None:
                left_calm_after = time.monotonic() - t0
            if time.monotonic() >= next_status:
                next_status += STATUS_EVERY_S
                _status(runtime, outputs, time.monotonic() - t0, hot)
        figures = await _figures(runtime, time.monotonic() - t0, time.process_time() - cpu0)
        alerts = runtime.alerts
        figures["alerts"] = outputs.figures(alerts.events_total if alerts is not None else None)
        figures["first_non_calm_after_s"] = (
            None if left_calm_after is None else round(left_calm_after, 1)
        )
        return figures
    finally:
        task.cancel()


def _banner(runtime: Runtime, outputs: DemoOutputs) -> None:
    url = runtime.api_url()
    alerts = (
        f"    alerts       {url}/v1/alerts   (webhooks: a local signed receiver)\n"
        if outputs.inbox is not None
        else f"    alerts       {url}/v1/alerts\n"
    )
    mqtt = runtime.settings.mqtt
    broker = (
        f"    mqtt         mqtt://{mqtt.host}:{mqtt.port}  topics {mqtt.topic_prefix}/#\n"
        if mqtt.host is not None
        else f"    mqtt         {outputs.mqtt_note}\n"
    )
    click.echo(
        f"\n  deleverage demo: open {url}/ in a browser (the live page)\n\n"
        f"    live stream  {url}/v1/stream   (Server-Sent Events)\n"
        f"    pressure     {url}/v1/pressure\n"
        f"    venues       {url}/v1/venues\n"
        f"    liquidations {url}/v1/liquidations?limit=10\n"
        f"    funding      {url}/v1/funding    open interest  {url}/v1/open-interest\n"
        f"    metrics      {url}/metrics        API docs  {url}/docs\n"
        f"{alerts}{broker}"
        f"    redis        {redacted(runtime.redis_url)}\n"
        "  The simulator plays a calm market, then a long-side deleveraging on BTC and ETH.\n"
        "  Press Ctrl-C to stop.\n",
        err=True,
    )


def _hottest(runtime: Runtime) -> dict[str, Any] | None:
    if runtime.detector is None:
        return None
    snap = runtime.detector.snapshot()
    if not snap:
        return None
    top = max(snap.values(), key=lambda p: p.score)
    out: dict[str, Any] = {
        "symbol": top.symbol,
        "state": top.state.value,
        "score": round(top.score, 1),
        "side": top.side.value if top.side else None,
    }
    # The widest book the venues quote: its spread widens and its top thins as it unwinds.
    books = [p for p in snap.values() if p.features.get("spread_bp") is not None]
    if books:
        wide = max(books, key=lambda p: p.features["spread_bp"] or 0.0)
        out["widest_book"] = {
            "venue": wide.venue,
            "symbol": wide.symbol,
            "spread_bp": round(wide.features["spread_bp"] or 0.0, 2),
            "top_usd": round(wide.features.get("book_top_usd") or 0.0),
        }
    return out


def _status(
    runtime: Runtime, outputs: DemoOutputs, elapsed: float, hot: dict[str, Any] | None
) -> None:
    msgs = sum(c.health.messages_total for c in runtime.collectors)
    webhooks = len(outputs.inbox.received) if outputs.inbox is not None else "-"
    mqtt_alerts = outputs.tap.alerts if outputs.tap is not None else "-"
    click.echo(
        f"  [{elapsed:5.0f}s] frames {msgs}  events written {runtime.sink.written_events}"
        f"  pending {runtime.sink.pending}  hottest {hot}"
        f"  alerts: webhook {webhooks}, mqtt {mqtt_alerts}",
        err=True,
    )


async def _figures(runtime: Runtime, elapsed: float, cpu_s: float) -> dict[str, Any]:
    msgs = sum(c.health.messages_total for c in runtime.collectors)
    events = sum(c.health.events_total for c in runtime.collectors)
    pairs = await reader.instruments(runtime.redis)
    lengths = await reader.stream_lengths(
        runtime.redis, [(v, s, k) for v, s in pairs for k in Kind]
    )
    transitions = await runtime.redis.xlen(keys.TRANSITIONS)
    per_venue = {
        c.venue.id: {
            "frames_per_s": round(c.health.messages_total / elapsed, 1),
            "events_per_s": round(c.health.events_total / elapsed, 1),
            "reconnects": c.health.reconnects_total,
            "parse_errors": sum(c.health.parse_errors.values()),
        }
        for c in runtime.collectors
    }
    return {
        "duration_s": round(elapsed, 1),
        "venues": per_venue,
        "frames": msgs,
        "frames_per_s": round(msgs / elapsed, 1),
        "events": events,
        "events_per_s": round(events / elapsed, 1),
        "events_written_to_redis": runtime.sink.written_events,
        "redis_batches": runtime.sink.written_batches,
        "redis_stream_entries": sum(lengths.values()),
        "instruments": len(pairs),
        "transitions": transitions,
        "service_cpu_s": round(cpu_s, 2),
        "service_cpu_pct_of_one_core": round(100 * cpu_s / elapsed, 1),
        "books": await books(runtime.redis, lengths),
        "pid": os.getpid(),
    }


async def books(
    client: aioredis.Redis, lengths: dict[reader.EventStream, int]
) -> dict[str, dict[str, Any]]:
    """Per venue, one book it follows (its BTC's, else its longest followed): the spread and
    the USD within 1 % of mid (bids plus asks) at the start of the run and at their worst,
    the widest and the thinnest, so the figures show what the deleveraging did to the
    liquidity of every venue. ``lengths``: the streams' lengths (:func:`reader.stream_lengths`)."""
    chosen: dict[str, tuple[bool, int, str]] = {}
    for (venue, symbol, kind), n in lengths.items():
        if kind is Kind.BOOK_DEPTH and n:
            rank = (symbol.startswith(("BTC", "XBT")), n, symbol)
            chosen[venue] = max(chosen.get(venue, rank), rank)
    out: dict[str, dict[str, Any]] = {}
    for venue, (_, _, symbol) in sorted(chosen.items()):
        tops = [e for e in await _events(client, venue, symbol, Kind.BOOK_TOP)
                if isinstance(e, BookTop)]  # fmt: skip
        depths = [e.bid_usd_1 + e.ask_usd_1
                  for e in await _events(client, venue, symbol, Kind.BOOK_DEPTH)
                  if isinstance(e, BookDepth)]  # fmt: skip
        spreads = [t.spread_bp for t in tops]
        out[venue] = {
            "symbol": symbol,
            "spread_bp": {"start": round(spreads[0], 2), "widest": round(max(spreads), 2)}
            if spreads
            else None,
            "depth_1pct_usd": {"start": round(depths[0]), "thinnest": round(min(depths))},
        }
    return out


async def _events(client: aioredis.Redis, venue: str, symbol: str, kind: Kind) -> list[Any]:
    rows: Any = await client.xrange(keys.events(venue, symbol, kind))
    return [decode(fields[b"e"]) for _, fields in rows]
