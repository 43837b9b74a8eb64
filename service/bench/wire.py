"""``deleverage bench wire``: the real service against a loopback venue, beside a floor.

1. A private Redis (:func:`~service.store.embedded.embedded_redis`), the simulators' REST
   servers (the instrument lists the collectors load, as from the venues) and a
   :class:`~.blaster.Blaster` that sends a plan of real-shape frames (:mod:`.frames`).
2. The expected events: the venues' own parsers and a deduplicator run over the plan here,
   once (a frame that fails to parse is a bug of the plan, and stops the bench).
3. The floor (:mod:`.floor`, its own process) reads the plan; its CPU per event.
4. The service: ``python -m service run`` (every component, or some: :data:`RUNS`) with a
   configuration whose venues point at the blaster, its API on a free port and no warm
   start. Once it has subscribed to every topic of the plan, its CPU (``/proc/<pid>/stat``)
   and Redis's (``INFO cpu``) are read, the plan is sent, and both are read again once the
   process is quiet (less than :data:`QUIET_SHARE` of a core over two windows of
   :data:`QUIET_WINDOW_S`): the collectors have parsed, the writer has stored and the
   detector has read the hand-off and evaluated.
5. Stored events: the sum of ``XLEN`` of every instrument's stream of each kind the plan
   carries on that venue (Binance's open interest is polled over REST, not on the wire, and
   is not counted). ``lost`` = expected - stored.

Figures vary with the machine (and with what else runs on it): compare runs on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from ..config import Settings, VenueSettings
from ..events import KIND_OF, Kind
from ..lifeline import spawn_options
from ..simulate.runner import VenueSimulator
from ..store import keys, reader
from ..store.client import connect
from ..store.embedded import embedded_redis
from ..venues import REGISTRY
from ..venues.base import Instrument, Venue, now_ms
from ..venues.binance.simulator.usdm import BinanceUsdmSimulator
from ..venues.bybit.simulator.server import BybitSimulator
from ..venues.dedup import Deduplicator
from ..venues.okx.simulator.server import OkxSimulator
from .blaster import Blaster
from .frames import BINANCE, BYBIT, OKX, VENUES, Frame, Mix, plan

QUIET_WINDOW_S = 0.25
QUIET_SHARE = 0.05
SETTLE_TIMEOUT_S = 120.0
RUNS: dict[str, tuple[str, ...]] = {
    "all": (),
    "collect": ("collect",),
    "path": ("collect", "detect"),
}
"""The service runs ``--run`` may name, and their ``--only`` components: ``all`` is every
component (the API's window reads each liquidation back: an output's cost); ``path`` is the
issue's full path, parse -> dedup -> Redis -> detector, without the API; ``collect`` stops
at Redis."""
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
"""How long the service's clean stop may take, and a wrapper's (a profiler writes its output)."""
_TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The bench could not measure (a process died, a topic was never subscribed...)."""


def _stat(path: Path) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the process name (field 3 on)."""
    return path.read_text().rsplit(")", 1)[1].split()


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICK


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    return _cpu_s(_stat(Path(f"/proc/{pid}/stat")))


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children (the API workers), as :func:`process_cpu_s`
    (a child that ended is not counted: read it before and after the same run)."""
    total = process_cpu_s(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(entry / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            total += _cpu_s(fields)
    return total


async def redis_cpu_s(client: aioredis.Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@contextlib.asynccontextmanager
async def rest_servers() -> AsyncIterator[dict[str, str]]:
    """The simulators' REST servers of the three venues (their recorded instrument lists);
    yields each one's base URL."""
    sims: dict[str, VenueSimulator] = {
        BINANCE: BinanceUsdmSimulator(seed=1),
        BYBIT: BybitSimulator(seed=2),
        OKX: OkxSimulator(seed=3),
    }
    started = []
    try:
        for sim in sims.values():
            await sim.start()
            started.append(sim)
        yield {name: sim.rest_base_url for name, sim in sims.items()}
    finally:
        for sim in started:
            await sim.stop()


def expected_events(
    venues: dict[str, Venue], markets: dict[str, dict[str, Instrument]], frames: Sequence[Frame]
) -> Counter[tuple[str, Kind]]:
    """Events per ``(venue, kind)`` the service must store from ``frames``: the venues' own
    parsers and a deduplicator per venue, as in the collector."""
    parsers = {v: venue.new_parser(markets[v], None) for v, venue in venues.items()}
    dedups = {v: Deduplicator() for v in venues}
    out: Counter[tuple[str, Kind]] = Counter()
    recv = now_ms()
    for f in frames:
        for ev in dedups[f.venue].filter(parsers[f.venue].parse(f.text, recv)):
            out[(f.venue, KIND_OF[type(ev)])] += 1
    errors = {v: dict(p.stats.errors) for v, p in parsers.items() if p.stats.errors}
    if errors:
        raise BenchError(f"the plan has frames its venues' parsers drop: {errors}")
    return out


def service_config(
    redis_url: str, urls: dict[str, tuple[str, str]], event_loop: str | None = None
) -> dict[str, Any]:
    """The configuration of the measured service: the three venues at the blaster, the
    others off, no warm start and no stress polling (each would poll REST while we measure:
    a py-spy profile of ``--run path`` put 10 % of the service's samples in the stress
    pollers' HTTP calls); ``event_loop``: the setting's default when ``None``."""
    venues: dict[str, Any] = {name: {"enabled": False} for name in REGISTRY}
    for name, (ws, rest) in urls.items():
        venues[name] = {"enabled": True, "ws_url": ws, "rest_url": rest, "symbols": "all",
                        "stress": {"enabled": False}}  # fmt: skip
    venues[BINANCE]["oi_poll_weight_per_minute"] = 1  # REST open interest: next to nothing
    return {
        "redis_url": redis_url,
        "log_level": "warning",
        "api": {"port": 0},
        "venues": venues,
        "detector": {"warmup": False},
        "collect": {"watchdog_s": 600},
        "event_loop": event_loop or Settings.model_fields["event_loop"].default,
    }


async def stored_events(
    client: aioredis.Redis,
    markets: dict[str, dict[str, Instrument]],
    counted: set[tuple[str, Kind]],
) -> int:
    """The sum of ``XLEN`` of every instrument's stream of each counted ``(venue, kind)``."""
    streams = [(v, symbol, kind) for v, kind in sorted(counted) for symbol in markets[v]]
    return sum((await reader.stream_lengths(client, streams)).values())


async def _pressure_keys(client: aioredis.Redis) -> int:
    return sum([1 async for _ in client.scan_iter(match=f"{keys.PREFIX}:*:pressure", count=1000)])


async def _settle(pid: int, timeout_s: float) -> float:
    """Wait until ``pid`` is quiet; returns when the first quiet window began."""
    deadline = time.monotonic() + timeout_s
    quiet: list[float] = []
    while time.monotonic() < deadline:
        t, c = time.monotonic(), process_cpu_s(pid)
        await asyncio.sleep(QUIET_WINDOW_S)
        if process_cpu_s(pid) - c < QUIET_SHARE * (time.monotonic() - t):
            quiet.append(t)
            if len(quiet) >= 2:
                return quiet[0]
        else:
            quiet.clear()
    raise BenchError(f"the service was still busy after {timeout_s:.0f} s")


def _target(pid: int, wrapped: bool) -> int:
    """The service's pid: ``pid``, or its child when a wrapper (py-spy) started it."""
    if not wrapped:
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if not children:
        raise BenchError("the wrapper has not started the service")
    return int(children[0])


async def run_floor(
    spec: dict[str, Any], blaster: Blaster, frames: Sequence[Frame], *, blast: bool = False
) -> dict[str, Any]:
    """The floor consumer (:mod:`.floor`) reading the plan: its events, CPU seconds and wall
    seconds. ``blast``: the frames are framed beforehand and written in chunks
    (:meth:`.Blaster.blast`, what ``bench scale`` sends), not sent one by one."""
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-") as tmp:
        path = Path(tmp) / "floor.json"
        path.write_text(json.dumps(spec))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service.bench.floor", str(path),
            stdout=asyncio.subprocess.PIPE, **spawn_options(),
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                if (await proc.stdout.readline()).strip() != b"ready":
                    raise BenchError("the floor consumer did not start")
                await blaster.wait_subscribed(frames, START_TIMEOUT_S)
            prepared = blaster.prepare(frames) if blast else None
            t0 = time.perf_counter()
            await (blaster.send(frames) if prepared is None else blaster.blast(prepared))
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                result: dict[str, Any] = json.loads(await proc.stdout.readline())
            result["wall_s"] = time.perf_counter() - t0
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
    return result


async def run_service(
    config: dict[str, Any],
    only: Sequence[str],
    blaster: Blaster,
    frames: Sequence[Frame],
    client: aioredis.Redis,
    wrap: list[str],
) -> dict[str, Any]:
    """Start the service, send the plan, measure; the service is stopped on the way out."""
    await client.flushdb()
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-") as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        log = (Path(tmp) / "service.log").open("w+b")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
        args = [sys.executable, "-m", "service", "run", "--config", str(path)]
        args += [a for component in only for a in ("--only", component)]
        proc = await asyncio.create_subprocess_exec(
            *wrap, *args, stdout=log, stderr=log, env=env, **spawn_options()
        )
        pid: int | None = None
        try:
            try:
                await blaster.wait_subscribed(frames, START_TIMEOUT_S)
            except TimeoutError:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                raise BenchError(
                    f"the service did not subscribe to {blaster.missing(frames)[:5]}...: {tail}"
                ) from None
            pid = _target(proc.pid, bool(wrap))
            c, t = process_cpu_s(pid), time.monotonic()
            await asyncio.sleep(1.0)
            idle = (process_cpu_s(pid) - c) / (time.monotonic() - t)
            r0, c0, t0 = await redis_cpu_s(client), process_cpu_s(pid), time.monotonic()
            send_s = await blaster.send(frames)
            quiet_at = await _settle(pid, SETTLE_TIMEOUT_S)
            c1, r1 = process_cpu_s(pid), await redis_cpu_s(client)
            return {
                "command": " ".join(["run", *(a for c in only for a in ("--only", c))]),
                "cpu_s": c1 - c0,
                "redis_cpu_s": r1 - r0,
                "idle_cpu_share": idle,
                "wall_s": quiet_at - t0,
                "send_s": send_s,
                "pid": pid,
            }
        finally:
            await _stop(proc, pid if wrap else None)
            log.close()


async def _stop(proc: asyncio.subprocess.Process, wrapped: int | None) -> None:
    """Stop the service: SIGTERM (a clean shutdown), SIGKILL after :data:`STOP_TIMEOUT_S`.
    Under a wrapper (``wrapped``: the service's pid), the signal goes to the service, and
    the wrapper ends by itself once its child has (a profiler writes its output then; a
    SIGTERM to the wrapper would end it before it writes)."""
    if proc.returncode is not None:
        return
    if wrapped is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(wrapped, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        if wrapped is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(wrapped, signal.SIGKILL)  # not our child: nothing else would stop it
        proc.kill()
        await proc.wait()


async def run_wire(
    n_frames: int,
    mix: Mix,
    runs: Sequence[str],
    wrap: str | None = None,
    event_loop: str | None = None,
) -> dict[str, Any]:
    """The ``wire`` scenario: the floor, then the service once per entry of ``runs``
    (see :data:`RUNS`)."""
    async with (
        embedded_redis() as redis_url,
        Blaster() as blaster,
        rest_servers() as rest,
    ):
        client = connect(redis_url)
        urls = {v: (blaster.url(v), rest[v]) for v in VENUES}
        venues = {
            v: REGISTRY[v](VenueSettings(ws_url=ws, rest_url=r)) for v, (ws, r) in urls.items()
        }
        try:
            markets = {v: await venue.load_markets(10.0) for v, venue in venues.items()}
            connections = [
                {"venue": v, "url": c.url, "subscribe": list(c.subscribe)}
                for v, venue in venues.items()
                for c in venue.connections(markets[v])
            ]
        finally:
            for venue in venues.values():
                await venue.close()
        frames = plan(markets, n_frames, mix, now_ms() - 120_000)
        expected = expected_events(venues, markets, frames)
        events = sum(expected.values())
        floor = await run_floor(
            {"frames": len(frames), "connections": connections}, blaster, frames
        )
        out: dict[str, Any] = {
            "scenario": "wire",
            "frames": len(frames),
            "events_sent": events,
            "events_by_venue_kind": {f"{v}:{k.value}": n for (v, k), n in sorted(expected.items())},
            "mix": {
                "liquidation_frames_per_venue_per_round": mix.liquidations,
                "ticker_symbols_per_venue": mix.symbols,
            },
            "instruments": {v: len(m) for v, m in markets.items()},
            "floor": {
                "cpu_us_per_event": _us(floor["cpu_s"], events),
                "cpu_s": round(floor["cpu_s"], 3),
                "wall_s": round(floor["wall_s"], 3),
                "events_read": floor["events"],
                "decoder": floor["decoder"],
            },
            "service": {},
        }
        try:
            for run in runs:
                config = service_config(redis_url, urls, event_loop)
                res = await run_service(
                    config, RUNS[run], blaster, frames, client,
                    shlex.split(wrap) if wrap else [],
                )  # fmt: skip
                stored = await stored_events(client, markets, set(expected))
                out["service"][run] = {
                    "command": res["command"],
                    "event_loop": config["event_loop"],
                    "cpu_us_per_event": _us(res["cpu_s"], events),
                    "ratio_to_floor": round(res["cpu_s"] / floor["cpu_s"], 2),
                    "redis_cpu_us_per_event": _us(res["redis_cpu_s"], events),
                    "cpu_s": round(res["cpu_s"], 3),
                    "redis_cpu_s": round(res["redis_cpu_s"], 3),
                    "idle_cpu_share": round(res["idle_cpu_share"], 4),
                    "wall_s": round(res["wall_s"], 3),
                    "send_s": round(res["send_s"], 3),
                    "events_stored": stored,
                    "events_lost": events - stored,
                    "detector_pressure_keys": await _pressure_keys(client),
                }
        finally:
            await client.flushdb()
            await client.aclose()
    out["cpus"] = os.cpu_count()
    out["versions"] = {"python": platform.python_version()} | {
        lib: _version(lib) for lib in ("websockets", "picows", "uvloop")
    }
    return out


def _us(cpu_s: float, events: int) -> float:
    return round(cpu_s / max(1, events) * 1e6, 2)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
