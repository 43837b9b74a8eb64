"""``deleverage bench market``: the whole market from the simulator, the real service, the
API under load.

1. **The market**: one :class:`~service.simulate.clock.MarketClock` shared by the simulators
   of every operating venue (BitMEX is retired), each listing its real number of perpetuals
   (:data:`LISTED`, times ``--scale``): its simulated ones and clones of a recorded one in
   its own shape (:mod:`service.simulate.listing`), every listed perpetual simulated. Each
   venue pushes at its own channels' rates (the simulators' defaults, docs/performance.md).
   The scenario (:func:`bench_scenario`): a normal market, then a cascade on every asset
   with :data:`CASCADE_FACTOR` times the liquidations, then normal again. The clock starts
   once the service has subscribed everything: the phases run on the measured time.
2. **The service**: ``python -m service run`` (collectors, writer, detector, API) with every
   operating venue at its simulator (``symbols: all``, no warm start), a private Redis.
3. **Load**: ``wrk`` (``--connections``) on each GET endpoint in turn, ``/healthz`` first,
   ``--wrk-seconds`` each, over and over for the whole run; a run never straddles a phase's
   edge, and each endpoint's runs are summed per phase.
4. **Measured**: the service's CPU per phase and its RSS every second (``/proc``), Redis's
   CPU (``INFO``), this process's CPU (the simulators, the bench's own bookkeeping), the
   detector's round duration per phase (the difference of its ``/metrics`` histogram between
   the phase's edges), and for every liquidation the venues sent, its frame-to-Redis latency:
   the wall time the simulator put the frame on the socket (:class:`SendLog`, taken at the
   ``broadcast``) against the stored stream entry's id (Redis's clock in ms, same host).
   Lost = identities sent and never stored (must be 0). The liquidations travel on their
   own connections (``Connection.quiet``); how far behind the busy ones (marks, tops) are
   read is the health's ``delay_ms``, sampled every second (``state_read_delay_ms``).
   ``/readyz`` of the process that writes is asked every second too: ``not_ready`` counts
   the answers that were not ready, per failing check (the writer's, when the market data
   waits over 2 s to be written while the liquidations' own queue keeps up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import redis.asyncio as aioredis

from ..aio import checkpoint, reap
from ..events import Kind, Liquidation, Side, decode
from ..health import HealthSnapshot
from ..lifeline import spawn_options
from ..publish.metrics import DETECTOR_ROUND_SECONDS
from ..simulate.clock import MarketClock
from ..simulate.market import LiquidationPrint, Market, SymbolSpec
from ..simulate.scenario import CALM, Drift, Label, Phase, Regime, Scenario
from ..simulate.server import canonical_id
from ..store import keys, reader
from ..store.client import connect
from ..store.embedded import embedded_redis
from ..venues import REGISTRY, SPECS
from .api import _free_port, drive
from .wire import BenchError, _stop, process_cpu_s, redis_cpu_s

LISTED: Final[dict[str, int]] = {
    "binance_usdm": 560,
    "binance_coinm": 35,
    "bybit": 640,
    "okx": 290,
    "deribit": 24,
    "hyperliquid": 220,
    "bitget": 580,
    "gateio": 680,
}
"""Perpetuals each operating venue lists (estimates, docs/performance.md says from where):
3,029 in all. BitMEX is retired and not collected."""

CASCADE_FACTOR: Final = 10.0
CASCADE: Final = Drift(
    price_pct_per_min=-1.5,
    oi_pct_per_min=-3.0,
    liq_rate_per_s=CASCADE_FACTOR * CALM.liq_rate_per_s,
    liq_median_usd=5_000.0,
    liq_sigma=1.0,
    liq_side=Side.LONG,
    funding_rate_8h=-0.00005,
    price_noise_pct_per_sqrt_s=0.04,
)
"""Every asset during the cascade: ten times the normal market's liquidations (longs),
prices and open interest falling."""

ENDPOINTS: Final = (
    "/healthz",
    "/v1/pressure?limit=100",
    "/v1/assets/BTC",
    "/v1/funding",
    "/v1/venues",
    "/v1/liquidations?limit=100",
    "/metrics",
)
"""Loaded in this order, round after round; the first is the floor."""
PHASES: Final = ("normal", "cascade", "after")
READY_TIMEOUT_S: Final = 300.0
DRAIN_S: Final = 3.0
DRAIN_IDLE_S: Final = 15.0
DRAIN_MAX_S: Final = 300.0
MIN_WRK_S: Final = 2


def bench_scenario(assets: Iterable[str], seconds: float) -> Scenario:
    """Normal for 60 % of ``seconds``, a cascade on every asset for 20 %, normal again."""
    normal, cascade = 0.6 * seconds, 0.2 * seconds
    drifts = dict.fromkeys(sorted(set(assets)), CASCADE)
    return Scenario(
        "bench_market",
        "The whole market: normal, a cascade of every asset at 10x the liquidations, normal.",
        (
            Phase("normal", normal, Label(Regime.CALM)),
            Phase("cascade", cascade, Label(Regime.CASCADE, Side.LONG, tuple(drifts)), drifts),
            Phase("after", seconds - normal - cascade, Label(Regime.CALM)),
        ),
        loop=False,
    )


class SendLog(list[LiquidationPrint]):
    """A simulator's ``pushed`` list that also keeps when each print was put on the wire
    (wall ms): the venues append a batch right after its ``broadcast``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_ms: list[float] = []

    def append(self, p: LiquidationPrint) -> None:
        super().append(p)
        self.sent_ms.append(time.time_ns() / 1e6)

    def extend(self, prints: Iterable[LiquidationPrint]) -> None:
        batch = list(prints)
        super().extend(batch)
        self.sent_ms.extend([time.time_ns() / 1e6] * len(batch))


Id = tuple[str, str]


def listing_sizes(scale: float, only: Sequence[str] = ()) -> dict[str, int]:
    """Perpetuals per venue: :data:`LISTED` times ``scale`` (at least the venue's simulated
    ones), of the venues ``only`` names (default: all)."""
    specs = {s.id: s for s in SPECS}
    unknown = sorted(set(only) - set(LISTED))
    if unknown:
        raise BenchError(f"no such operating venue: {unknown}; the venues: {sorted(LISTED)}")
    out: dict[str, int] = {}
    for venue, n in LISTED.items():
        if only and venue not in only:
            continue
        out[venue] = max(len(specs[venue].simulator.listing_specs(None)), round(n * scale))
    return out


@dataclass
class Sims:
    """The simulators over one shared clock."""

    clock: MarketClock
    servers: dict[str, Any]
    logs: dict[str, SendLog] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def simulators(sizes: Mapping[str, int], seconds: float, seed: int) -> AsyncIterator[Sims]:
    """Every venue of ``sizes`` on loopback over one market (not started: the caller starts
    the clock)."""
    specs = {s.id: s for s in SPECS}
    union: dict[str, SymbolSpec] = {}
    for venue, n in sizes.items():
        for sp in specs[venue].listing_specs(n):
            union.setdefault(sp.symbol, sp)
    scenario = bench_scenario((s.base for s in union.values()), seconds)
    clock = MarketClock(Market(scenario, specs=tuple(union.values()), seed=seed))
    sims = Sims(clock, {})
    try:
        for i, (venue, n) in enumerate(sizes.items()):
            sim: Any = specs[venue].simulate_listing(clock, seed + i, n)
            sims.logs[venue] = sim.pushed = SendLog()
            sims.servers[venue] = await sim.start()
        yield sims
    finally:
        await clock.stop()
        for sim in sims.servers.values():
            await sim.stop()


LIQUIDITY_OFF: Final[dict[str, Any]] = {"volume": False, "depth": {"top_n": 0}}
"""The venue settings that turn its liquidity channels off (``--no-liquidity``): no trades
channel for traded volume, no order books. Top of book comes with the tickers most venues
send anyway and has no switch of its own."""


def service_config(redis_url: str, sims: Sims, port: int, liquidity: bool = True) -> dict[str, Any]:
    venues: dict[str, Any] = {name: {"enabled": False} for name in REGISTRY}
    for name, sim in sims.servers.items():
        venues[name] = {"enabled": True, "ws_url": sim.ws_base_url,
                        "rest_url": sim.rest_base_url, "symbols": "all"}  # fmt: skip
        if not liquidity:
            venues[name].update(LIQUIDITY_OFF)
    return {
        "redis_url": redis_url,
        "log_level": "warning",
        "api": {"port": port},
        "venues": venues,
        "detector": {"warmup": False},
    }


@contextlib.asynccontextmanager
async def service(
    config: dict[str, Any],
    profile: str | None = None,
    only: Sequence[str] = (),
    log_path: str | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m service run`` with ``config`` (under cProfile, writing ``profile``, when
    given); stopped (SIGTERM: a clean exit, so cProfile writes) on the way out. Its log goes
    to ``log_path`` when given (kept), else to a temporary file."""
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-") as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        kept = Path(tmp) / "service.log" if log_path is None else Path(log_path)
        log = kept.open("w+b")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
        wrap = ["-m", "cProfile", "-o", profile] if profile else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *wrap, "-m", "service", "run", "--config", str(path),
            *(a for c in only for a in ("--only", c)),
            stdout=log, stderr=log, env=env, **spawn_options(),
        )  # fmt: skip
        try:
            yield proc
        except BenchError as exc:
            log.seek(0)
            tail = log.read()[-2000:].decode(errors="replace")
            raise BenchError(f"{exc}; the service's log ends: {tail}") from None
        finally:
            await _stop(proc, None)
            log.close()


async def _healths(client: aioredis.Redis, venues: Sequence[str]) -> list[HealthSnapshot | None]:
    """Each venue's health, in one round trip (the sampler reads them every second)."""
    raws = await client.mget([keys.health(v) for v in venues])
    return [None if raw is None else msgspec.json.decode(raw, type=HealthSnapshot) for raw in raws]


async def wait_ready(
    client: aioredis.Redis, sims: Sims, proc: asyncio.subprocess.Process, base: str
) -> dict[str, int]:
    """Until every venue's collector is connected with its whole listing loaded and the API
    answers; returns the instruments each venue loaded."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise BenchError(f"the service exited with code {proc.returncode}")
            loaded: dict[str, int] = {}
            healths = await _healths(client, list(sims.servers))
            for (venue, sim), h in zip(sims.servers.items(), healths, strict=True):
                if h is not None and h.connected and sim.clients:
                    loaded[venue] = h.instruments
            api_up = False
            with contextlib.suppress(httpx.HTTPError):
                api_up = (await http.get(f"{base}/healthz")).status_code == 200
            if api_up and len(loaded) == len(sims.servers):
                return loaded
            await asyncio.sleep(0.5)
    raise BenchError(f"the service was not ready within {READY_TIMEOUT_S:.0f} s")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` (MB, ``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Mark:
    """The counters at a phase's edge."""

    wall: float
    service_cpu_s: float
    redis_cpu_s: float
    bench_cpu_s: float
    rounds: dict[float, float]
    rounds_sum_s: float


async def round_histogram(base: str) -> tuple[dict[float, float], float]:
    """The detector's round-duration histogram from ``/metrics``: cumulative count per upper
    bound (``inf`` included), and the sum of seconds."""
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{base}/metrics")).text
    buckets: dict[float, float] = {}
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f"{DETECTOR_ROUND_SECONDS}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{DETECTOR_ROUND_SECONDS}_sum"):
            total = float(line.rsplit(" ", 1)[1])
    return buckets, total


async def mark(base: str, pids: Sequence[int], client: aioredis.Redis) -> Mark:
    rounds, total = await round_histogram(base)
    return Mark(time.monotonic(), sum(process_cpu_s(p) for p in pids),
                await redis_cpu_s(client), time.process_time(), rounds, total)  # fmt: skip


def histogram_quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a cumulative histogram, linear within its bucket (Prometheus'
    ``histogram_quantile``); ``None`` without observations."""
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]] if bounds else 0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for b in bounds:
        if cumulative[b] >= rank:
            if b == float("inf"):
                return lower
            return lower + (b - lower) * (rank - below) / max(cumulative[b] - below, 1e-12)
        lower, below = b, cumulative[b]
    return lower


def _rounds(a: Mark, b: Mark) -> dict[str, Any]:
    delta = {le: b.rounds.get(le, 0.0) - a.rounds.get(le, 0.0) for le in b.rounds}
    n = delta.get(float("inf"), 0.0)
    p50, p99 = histogram_quantile(0.5, delta), histogram_quantile(0.99, delta)
    return {
        "rounds": int(n),
        "mean_ms": round((b.rounds_sum_s - a.rounds_sum_s) / n * 1000, 2) if n else None,
        "p50_ms": None if p50 is None else round(p50 * 1000, 2),
        "p99_ms": None if p99 is None else round(p99 * 1000, 2),
    }


async def load(
    base: str, pid: int, edges: Sequence[float], connections: int, wrk_s: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """``wrk`` on each endpoint in turn until the last edge (monotonic time), no run across
    an edge; ``(phase, path, figures)`` per run."""
    runs: list[tuple[str, str, dict[str, Any]]] = []
    i, current = 0, 0
    while (now := time.monotonic()) < edges[-1] - MIN_WRK_S:
        phase = next(k for k, edge in enumerate(edges[1:]) if now < edge)
        if phase != current:
            i, current = 0, phase  # each phase's sweeps begin with the floor
        left = int(edges[phase + 1] - now)
        if left < MIN_WRK_S:
            await asyncio.sleep(edges[phase + 1] - now + 0.05)
            continue
        path = ENDPOINTS[i % len(ENDPOINTS)]
        figures = await drive(base, pid, path, connections, min(wrk_s, left))
        runs.append((PHASES[phase], path, figures))
        i += 1
    return runs


def summarize_load(runs: Sequence[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Per phase (and ``all`` of them) and endpoint: requests per second (all its runs), p50
    (median of the runs'), p99 (the worst run's) and the ratio to ``/healthz``'s rate in the
    same phase."""
    out: dict[str, Any] = {}
    for phase in (*PHASES, "all"):
        per: dict[str, Any] = {}
        for path in ENDPOINTS:
            mine = [f for ph, p, f in runs if phase in (ph, "all") and p == path]
            if not mine:
                continue
            seconds = sum(f["requests"] / f["requests_per_s"] for f in mine if f["requests_per_s"])
            per[path] = {
                "runs": len(mine),
                "requests": sum(f["requests"] for f in mine),
                "requests_per_s": round(sum(f["requests"] for f in mine) / max(seconds, 1e-9), 1),
                "p50_ms": round(statistics.median(f["p50_ms"] for f in mine), 2),
                "p99_ms": round(max(f["p99_ms"] for f in mine), 2),
                "non_2xx": sum(f["non_2xx"] for f in mine),
                "errors": sum(f["socket_errors"] + f["timeouts"] for f in mine),
            }
        floor = per.get(ENDPOINTS[0], {}).get("requests_per_s")
        for figures in per.values():
            ratio = round(figures["requests_per_s"] / floor, 3) if floor else None
            figures["ratio_to_healthz"] = ratio
        if per:
            out[phase] = per
    return out


async def stored_liquidations(
    client: aioredis.Redis, venue: str, symbols: Iterable[str]
) -> list[tuple[int, Liquidation]]:
    """Every liquidation stored for ``venue``'s ``symbols``, with its entry's time (ms)."""
    out: list[tuple[int, Liquidation]] = []
    symbols = list(symbols)
    for i in range(0, len(symbols), 200):
        async with client.pipeline(transaction=False) as pipe:
            for s in symbols[i : i + 200]:
                pipe.xrange(keys.events(venue, s, Kind.LIQUIDATION))
            for rows in await pipe.execute():
                for entry_id, fields in rows:
                    ev = decode(fields[b"e"])
                    if isinstance(ev, Liquidation):
                        out.append((int(entry_id.split(b"-")[0]), ev))
    return out


async def drain(client: aioredis.Redis, sims: Sims) -> float:
    """Once the market has stopped: wait until the service has stored as many liquidations
    as the venues sent, or stored none more for :data:`DRAIN_IDLE_S` (at most
    :data:`DRAIN_MAX_S`); the seconds it took. A service that fell behind is still storing
    what it received: those are late, not lost."""
    await asyncio.sleep(DRAIN_S)  # the venues' last batches flushed
    sent = sum(
        len(sim.wire_ids(p)) for venue, sim in sims.servers.items() for p in sims.logs[venue]
    )
    streams = [
        keys.events(venue, symbol, Kind.LIQUIDATION)
        for venue, sim in sims.servers.items()
        for symbol in (getattr(sim, "contracts", None) or sim.coins)
    ]
    t0 = time.monotonic()
    last, still = -1, t0
    while time.monotonic() - t0 < DRAIN_MAX_S:
        async with client.pipeline(transaction=False) as pipe:
            for key in streams:
                pipe.xlen(key)
            stored = sum(int(n) for n in await pipe.execute())
        if stored >= sent:
            break
        if stored != last:
            last, still = stored, time.monotonic()
        elif time.monotonic() - still > DRAIN_IDLE_S:
            break
        await asyncio.sleep(1.0)
    return DRAIN_S + time.monotonic() - t0


def _percentiles(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values)
    return {
        "count": len(s),
        "p50_ms": round(s[len(s) // 2], 1),
        "p99_ms": round(s[min(len(s) - 1, int(0.99 * len(s)))], 1),
        "max_ms": round(s[-1], 1),
    }


async def liquidation_figures(
    client: aioredis.Redis, sims: Sims, edges_ms: Sequence[float]
) -> dict[str, Any]:
    """Sent, stored and lost liquidations per venue, and the frame-to-Redis latency of each
    stored one by the phase it was sent in."""
    by_phase: dict[str, list[float]] = defaultdict(list)
    read: dict[str, list[float]] = defaultdict(list)
    written: dict[str, list[float]] = defaultdict(list)
    venues: dict[str, Any] = {}
    unmatched = 0
    for venue, sim in sims.servers.items():
        log = sims.logs[venue]
        sent: Counter[Id] = Counter()
        when: dict[Id, float] = {}
        for p, ms in zip(log, log.sent_ms, strict=True):
            for i in sim.wire_ids(p):
                c = canonical_id(i)
                sent[c] += 1
                when[c] = min(ms, when.get(c, ms))
        symbols = {s for s, _ in sent} | set(getattr(sim, "contracts", None) or sim.coins)
        stored = await stored_liquidations(client, venue, symbols)
        ids = Counter(canonical_id((e.symbol, e.event_id)) for _, e in stored)
        for entry_ms, e in stored:
            sent_ms = when.get(canonical_id((e.symbol, e.event_id)))
            if sent_ms is None:
                unmatched += 1
                continue
            phase = sum(1 for edge in edges_ms[1:-1] if sent_ms >= edge)
            by_phase[PHASES[phase]].append(entry_ms - sent_ms)
            read[PHASES[phase]].append(e.recv_ms - sent_ms)
            written[PHASES[phase]].append(entry_ms - e.recv_ms)
        venues[venue] = {
            "sent": sum(sent.values()),
            "stored": len(stored),
            "lost": len(set(sent) - set(ids)),
            "stored_twice": sum(1 for i, n in ids.items() if n > sent[i]),
        }
    return {
        "by_venue": venues,
        "sent": sum(v["sent"] for v in venues.values()),
        "stored": sum(v["stored"] for v in venues.values()),
        "lost": sum(v["lost"] for v in venues.values()),
        "stored_not_sent": unmatched,
        "frame_to_redis": {ph: _percentiles(by_phase.get(ph, [])) for ph in PHASES},
        # Its two parts: sent -> the frame parsed (the wire, and the service's loop coming to
        # the connection), and parsed -> stored (the sink's queue, the batch, Redis).
        "frame_to_read": {ph: _percentiles(read.get(ph, [])) for ph in PHASES},
        "read_to_redis": {ph: _percentiles(written.get(ph, [])) for ph in PHASES},
    }


async def run_market(
    seconds: int,
    scale: float,
    connections: int,
    wrk_s: int,
    seed: int = 1,
    only: Sequence[str] = (),
    profile: str | None = None,
    api_apart: bool = False,
    liquidity: bool = True,
    api_load: bool = True,
    service_log: str | None = None,
) -> dict[str, Any]:
    """The ``market`` scenario (see module doc); ``liquidity`` off: the venues' traded
    volume and order books are not collected (:data:`LIQUIDITY_OFF`), to measure what they
    add in the same command; ``api_load`` off: no ``wrk`` (the service's CPU is then the
    market's alone, for such differences); ``service_log``: where the service's log is
    kept (its reconnects' causes...)."""
    if api_load and shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    sizes = listing_sizes(scale, only)
    async with contextlib.AsyncExitStack() as stack:
        redis_url = await stack.enter_async_context(embedded_redis())
        client = connect(redis_url)
        stack.push_async_callback(client.aclose)
        sims = await stack.enter_async_context(simulators(sizes, seconds, seed))
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        t_start = time.monotonic()
        proc = await stack.enter_async_context(
            service(service_config(redis_url, sims, port, liquidity), profile, log_path=service_log)
        )
        loaded = await wait_ready(client, sims, proc, base)
        ready_s = time.monotonic() - t_start
        pids = [proc.pid]
        loaded_base = base
        if api_apart:  # the loaded API in a process of its own
            api_port = _free_port()
            config = service_config(redis_url, sims, api_port, liquidity)
            api_proc = await stack.enter_async_context(service(config, only=("api",)))
            loaded_base = f"http://127.0.0.1:{api_port}"
            await wait_ready(client, sims, api_proc, loaded_base)
            pids.append(api_proc.pid)
        await asyncio.sleep(3.0)  # the first snapshots, subscriptions' first pushes
        rss: list[float] = []
        delays: list[tuple[float, int]] = []  # (when, the worst venue's state read delay)
        readiness: list[tuple[float, list[str]]] = []  # (when, the checks that failed)

        async def sample() -> None:
            async with httpx.AsyncClient(timeout=5) as http:
                while True:
                    checkpoint()  # a cancel lost in redis-py's wait (CPython gh-86296)
                    rss.append(sum(rss_mb(p) for p in pids))
                    snaps = await _healths(client, list(sims.servers))
                    worst = [h.delay_ms for h in snaps if h is not None and h.delay_ms is not None]
                    if worst:
                        delays.append((time.monotonic(), max(worst)))
                    readiness.append((time.monotonic(), await failing_checks(http, base)))
                    await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        sims.clock.start()
        t0, wall0 = time.monotonic(), sims.clock.origin_ms
        phase_s = [p.duration_s for p in sims.clock.market.scenario.phases]
        edges = [t0, t0 + phase_s[0], t0 + phase_s[0] + phase_s[1], t0 + sum(phase_s)]
        edges_ms = [wall0 + (e - t0) * 1000 for e in edges]
        marks = [await mark(base, pids, client)]
        loader = (
            asyncio.create_task(load(loaded_base, pids[-1], edges, connections, wrk_s))
            if api_load
            else None
        )
        for edge in edges[1:]:
            await asyncio.sleep(max(0.0, edge - time.monotonic()))
            marks.append(await mark(base, pids, client))
        runs = await loader if loader is not None else []
        await sims.clock.stop()
        drained_s = await drain(client, sims)
        rss_end = sum(rss_mb(p) for p in pids)
        await reap(sampler)
        liquidations = await liquidation_figures(client, sims, edges_ms)
        health = dict(zip(sims.servers, await _healths(client, list(sims.servers)), strict=True))
        stored = await events_stored(client)
    phases: dict[str, Any] = {}
    for k, name in enumerate(PHASES):
        a, b = marks[k], marks[k + 1]
        wall = b.wall - a.wall
        phases[name] = {
            "seconds": round(wall, 1),
            "service_cpu_share": round((b.service_cpu_s - a.service_cpu_s) / wall, 3),
            "redis_cpu_share": round((b.redis_cpu_s - a.redis_cpu_s) / wall, 3),
            "simulators_cpu_share": round((b.bench_cpu_s - a.bench_cpu_s) / wall, 3),
            "detector_round": _rounds(a, b),
            "state_read_delay_ms": _delay_summary(
                [d for t, d in delays if edges[k] <= t < edges[k + 1]]
            ),
            "not_ready": _not_ready([f for t, f in readiness if edges[k] <= t < edges[k + 1]]),
        }
    return {
        "scenario": "market",
        "seconds": seconds,
        "scale": scale,
        "profile": profile,
        "api_apart": api_apart,
        "liquidity": liquidity,
        "instruments_listed": sizes,
        "instruments_listed_total": sum(sizes.values()),
        "instruments_loaded": loaded,
        "instruments_loaded_total": sum(loaded.values()),
        "service_ready_s": round(ready_s, 1),
        "phases": phases,
        "drain_s": round(drained_s, 1),
        "service_rss_mb": {
            "peak": round(max(rss, default=0.0), 1),
            "end": round(rss_end, 1),
            "start": round(rss[0], 1) if rss else None,
        },
        "liquidations": liquidations,
        "frames_received": {v: h.messages_total if h else None for v, h in health.items()},
        "events_stored": stored,
        "reconnects": {v: h.reconnects_total if h else None for v, h in health.items()},
        "parse_errors": {v: h.parse_errors_total if h else None for v, h in health.items()},
        "load": (
            {"tool": "wrk", "connections": connections, "threads": 1, "seconds_per_run": wrk_s}
            if api_load
            else None
        ),
        "endpoints": summarize_load(runs),
        "cpus": os.cpu_count(),
        "versions": {"python": platform.python_version()},
    }


async def failing_checks(http: httpx.AsyncClient, base: str) -> list[str]:
    """The names of ``/readyz``'s checks that fail (``["unanswered"]`` when it does not
    answer)."""
    try:
        checks = (await http.get(f"{base}/readyz")).json()["checks"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return ["unanswered"]
    return [str(c.get("name")) for c in checks if not c.get("ok")]


def _not_ready(samples: list[list[str]]) -> dict[str, Any]:
    """Of ``/readyz``'s answers in a phase (one a second): how many were not ready, and how
    many times each check failed."""
    failed = Counter(name for names in samples for name in names)
    return {"samples": len(samples), "not_ready": sum(1 for n in samples if n),
            "checks": dict(failed.most_common())}  # fmt: skip


def _delay_summary(worst: list[int]) -> dict[str, int | None]:
    """The health's ``delay_ms`` sampled every second (the worst venue's each time): how far
    behind the venues the busy connections were read, over a phase."""
    if not worst:
        return {"samples": 0, "p50": None, "max": None}
    ordered = sorted(worst)
    return {"samples": len(ordered), "p50": ordered[len(ordered) // 2], "max": ordered[-1]}


async def events_stored(client: aioredis.Redis) -> dict[str, dict[str, int]]:
    """Per venue and kind, the events its instruments' streams hold at the end (none trimmed
    within a run: the shortest retention is hours): what each channel added to the store."""
    pairs = await reader.instruments(client)
    lengths = await reader.stream_lengths(client, [(v, s, k) for v, s in pairs for k in Kind])
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(map(str, Kind), 0))
    for (venue, _, kind), n in lengths.items():
        out[venue][kind.value] += n
    return dict(sorted(out.items()))
