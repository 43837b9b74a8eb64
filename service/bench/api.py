"""``deleverage bench api``: the API process over a whole market, under an HTTP load generator.

1. A private Redis (:func:`~service.store.embedded.embedded_redis`, or ``--redis-url``, a
   database the bench may empty) holds a synthesized market in the store's real layout:
   ``--instruments`` perpetuals spread over the nine venues, each with its funding, open
   interest and mark written through the real store script (:func:`~service.store.writer.
   write_batch`), ``--liquidations`` liquidations each over the last hour (the script also
   indexes them), a detector pressure score each, and each venue's health snapshot. While
   the API is measured, every instrument's mark and every venue's health are rewritten each
   second, as the collectors do (:func:`keep_moving`).
2. The API: ``python -m service run --only api`` on a free port, with a configuration
   naming that Redis and the nine venues (enabled, never connected: no collector runs).
3. ``wrk`` (``--connections`` connections, one thread) drives each GET endpoint in turn for
   ``--seconds``, ``/healthz`` first: the framework's floor in the same run. Per endpoint:
   requests per second, p50 and p99 latency, the ratio of its rate to ``/healthz``'s, the
   API process's CPU, and the answers that were not 2xx, failed or timed out (each must be
   0; a ``wrk`` answer timeout is :data:`WRK_TIMEOUT_S`).

``--code DIR`` runs the API from another checkout (``PYTHONPATH``), to measure a branch
against another with the same market and load. Figures vary with the machine and what else
runs on it: compare runs made on one machine, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
import redis.asyncio as aioredis

from ..aio import reap
from ..config import StoreSettings
from ..events import Event, FundingRate, Liquidation, MarkPrice, OpenInterest, Side, per_hour
from ..health import HealthSnapshot
from ..health import encode as encode_snapshot
from ..lifeline import spawn_options
from ..scores import Pressure, State
from ..scores import encode as encode_pressure
from ..store import keys
from ..store.client import connect
from ..store.embedded import embedded_redis
from ..store.writer import write_batch
from ..venues import REGISTRY
from .wire import BenchError, tree_cpu_s

ENDPOINTS: Final = (
    "/healthz",
    "/v1/pressure?limit=100",
    "/v1/assets/BTC",
    "/v1/funding",
    "/v1/venues",
    "/v1/liquidations?limit=100",
    "/v1/liquidations?limit=100&cursor=",
    "/metrics",
)
"""Measured in this order; the first is the floor the others are compared with. The first
page of the tape comes from the API's snapshot; the second (``cursor=`` gets the first
page's ``next_cursor``) pages through the index in Redis."""
MAJORS: Final = ("BTC", "ETH", "SOL", "XRP", "DOGE")
"""Listed on every venue; the other assets on some."""
START_TIMEOUT_S: Final = 60.0
WRK_TIMEOUT_S: Final = 30
"""wrk's answer timeout: a slow answer is measured (its default, 2 s, drops it)."""
WRK_SLACK_S: Final = 15.0
"""How much longer than its duration plus its answer timeout a ``wrk`` run may take."""
WRITE_CHUNK: Final = 250
"""Instruments per ``write_batch`` while seeding."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def market(n: int, seed: int = 7) -> list[tuple[str, str, str]]:
    """``n`` instruments ``(venue, symbol, asset)`` over the nine venues: the majors on
    every venue, then assets spread over the venues in turn."""
    venues = sorted(REGISTRY)
    out = [(v, f"{a}USDT", a) for a in MAJORS for v in venues][:n]
    rng = random.Random(seed)
    i = 0
    while len(out) < n:  # three venues per asset (7i + 0|1 mod 9 differ for i, i+1, i+2)
        asset = f"A{i // 3:04d}"
        venue = venues[(i * 7 + rng.randrange(2)) % len(venues)]
        out.append((venue, f"{asset}USDT", asset))
        i += 1
    return out


def _events(
    venue: str, symbol: str, asset: str, liquidations: int, now: int, rng: random.Random
) -> list[Event]:
    price = 50_000.0 if asset == "BTC" else rng.uniform(0.01, 3000)
    common: dict[str, Any] = {"venue": venue, "symbol": symbol, "base": asset}
    rate = rng.uniform(-0.0005, 0.0005)
    events: list[Event] = [
        FundingRate(**common, ts_ms=now, recv_ms=now, funding_rate=rate, interval_h=8.0,
                    funding_rate_1h=per_hour(rate, 8.0), next_funding_ms=now + 3_600_000),
        OpenInterest(**common, ts_ms=now, recv_ms=now, oi_contracts=1e6 / price,
                     oi_base=1e6 / price, oi_usd=rng.uniform(1e5, 1e9)),
        MarkPrice(**common, ts_ms=now, recv_ms=now, mark_price=price, index_price=price * 0.999),
    ]  # fmt: skip
    for j in range(liquidations):
        ts = now - rng.randrange(3_600_000)
        qty = rng.uniform(0.001, 10)
        events.append(
            Liquidation(**common, ts_ms=ts, recv_ms=ts, side=rng.choice(list(Side)),
                        price=price, quantity=qty, quantity_base=qty, notional_usd=qty * price,
                        sampled=venue == "binance_usdm", event_id=f"bench-{symbol}-{j}")
        )  # fmt: skip
    return events


def _pressure(venue: str, symbol: str, asset: str, now: int, rng: random.Random) -> Pressure:
    score = rng.uniform(0, 100)
    state = State.CALM if score < 40 else State.BUILDING if score < 70 else State.UNWINDING
    return Pressure(
        venue=venue, symbol=symbol, asset=asset, score=score, state=state,
        side=None if state is State.CALM else Side.LONG, updated_ms=now, since_ms=now - 60_000,
        forced_share=rng.random(), data_quality=1.0,
        features={"oi_change_base_pct": rng.uniform(-5, 5), "liq_bp_of_oi": rng.uniform(0, 50),
                  "forced_share": rng.random(), "mark_return_pct": rng.uniform(-3, 3)},
        reasons=["OI -2.1% (base) in 5m", "liquidations 12 bp of OI"],
    )  # fmt: skip


def _health(venue: str, instruments: int, now: int) -> HealthSnapshot:
    return HealthSnapshot(
        venue=venue, enabled=True, connected=True, ws_url=f"wss://{venue}.bench/ws",
        rest_url=f"https://{venue}.bench", liquidations_sampled=venue == "binance_usdm",
        connected_since_ms=now - 3_600_000, last_message_ms=now - 50, last_event_ms=now - 80,
        messages_total=1_000_000, events_total=900_000, reconnects_total=1,
        parse_errors_total=0, parse_errors={}, oi_polls_total=100, oi_poll_failures_total=0,
        instruments=instruments, subscribed_symbols=None, last_error=None, updated_ms=now,
    )  # fmt: skip


async def seed(client: aioredis.Redis, instruments: int, liquidations: int) -> dict[str, int]:
    """The synthesized market (see module doc); returns what was written."""
    rng = random.Random(11)
    now = int(time.time() * 1000)
    listed = market(instruments)
    stored = 0
    for i in range(0, len(listed), WRITE_CHUNK):
        chunk = listed[i : i + WRITE_CHUNK]
        batch = [e for v, s, a in chunk for e in _events(v, s, a, liquidations, now, rng)]
        events, _ = await write_batch(client, batch, StoreSettings(), now)
        stored += len(events)
        async with client.pipeline(transaction=False) as pipe:
            for v, s, a in chunk:
                pipe.set(keys.pressure(v, s), encode_pressure(_pressure(v, s, a, now, rng)))
            await pipe.execute()
    await write_health(client, listed)
    return {
        "instruments": len(listed),
        "events_stored": stored,
        "liquidations_indexed": int(await client.zcard(keys.liquidation_index())),
        "assets": len({a for _, _, a in listed}),
    }


async def write_health(client: aioredis.Redis, listed: list[tuple[str, str, str]]) -> None:
    now = int(time.time() * 1000)
    per_venue: dict[str, int] = {}
    for v, _, _ in listed:
        per_venue[v] = per_venue.get(v, 0) + 1
    async with client.pipeline(transaction=False) as pipe:
        for venue, count in per_venue.items():
            pipe.set(keys.health(venue), encode_snapshot(_health(venue, count, now)))
            pipe.sadd(keys.VENUES, venue)
        await pipe.execute()


async def keep_moving(client: aioredis.Redis, listed: list[tuple[str, str, str]]) -> None:
    """Every second, as the collectors would: each venue's health snapshot, and a new mark
    price of every instrument through the store script (the venues' mark streams push each
    symbol every second or so): the API's snapshot never reads an unchanged market."""
    rng = random.Random(13)
    while True:
        await asyncio.sleep(1.0)
        await write_health(client, listed)
        now = int(time.time() * 1000)
        marks: list[Event] = []
        for venue, symbol, asset in listed:
            price = rng.uniform(0.01, 3000)
            marks.append(
                MarkPrice(venue=venue, symbol=symbol, base=asset, ts_ms=now, recv_ms=now,
                          mark_price=price, index_price=price * 0.999)
            )  # fmt: skip
        await write_batch(client, marks, StoreSettings(), now)


@contextlib.asynccontextmanager
async def api_process(
    redis_url: str, code: str | None, workers: int = 1
) -> AsyncIterator[tuple[str, int]]:
    """``run --only api`` over ``redis_url`` (with ``workers`` worker processes); yields its
    base URL and pid."""
    port = _free_port()
    config = {
        "redis_url": redis_url,
        "log_level": "warning",
        "api": {"port": port, "max_limit": 1000, "workers": workers},
        "venues": {
            name: {"enabled": True, "ws_url": "ws://127.0.0.1:9", "rest_url": "http://127.0.0.1:9"}
            for name in REGISTRY
        },
        "detector": {"warmup": False},
    }
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-") as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
        if code is not None:
            env["PYTHONPATH"] = code
        log = (Path(tmp) / "api.log").open("w+b")
        args = [sys.executable, "-m", "service", "run", "--config", str(path), "--only", "api"]
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=log, stderr=log, env=env, cwd=code or None, **spawn_options()
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_up(url, proc, log)
            yield url, proc.pid
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            log.close()


async def _wait_up(url: str, proc: asyncio.subprocess.Process, log: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{url}/v1/pressure?limit=1")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    log.seek(0)
    tail = log.read()[-2000:].decode(errors="replace")
    raise BenchError(f"the API did not answer within {START_TIMEOUT_S:.0f} s: {tail}")


async def _cursor(base: str) -> str:
    """The first page's ``next_cursor``, URL-encoded."""
    async with httpx.AsyncClient(timeout=30) as http:
        page = (await http.get(f"{base}/v1/liquidations?limit=100")).json()
    if page.get("next_cursor") is None:
        raise BenchError("the tape has no second page: more --liquidations or --instruments")
    return quote(page["next_cursor"], safe="")


_UNIT_MS: Final = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def parse_wrk(output: str) -> dict[str, float]:
    """Requests per second, p50 and p99 (ms), requests and non-2xx answers of a ``wrk
    --latency`` run's output."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rate is None or total is None:
        raise BenchError(f"cannot read wrk's output: {output[-1000:]}")
    lat = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(output)}
    if set(lat) != {"50", "99"}:
        raise BenchError(f"no latency distribution in wrk's output: {output[-1000:]}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(rate[1]),
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "requests": int(total[1]),
        "non_2xx": int(bad[1]) if bad else 0,
        "socket_errors": 0 if errors is None else sum(int(n) for n in errors.groups()[:3]),
        "timeouts": 0 if errors is None else int(errors[4]),
    }


async def run_wrk(args: list[str], limit_s: float) -> str:
    """``wrk``'s output, once it has exited (killed, and the bench failed, after
    ``limit_s``). Its output goes to a file, not a pipe: a whole test run once waited for
    ever on a ``wrk`` that had exited (no process left, its exit reaped), its output pipe
    never reporting an end (2026-12-06, cause not found); a file has no end to wait for."""
    with tempfile.TemporaryFile() as output:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
        code = await _exit_code(proc, limit_s)
        output.seek(0)
        out = output.read().decode(errors="replace")
    if code == KILLED:
        raise BenchError(f"wrk did not finish within {limit_s:.0f} s: {args[-1]}")
    if code not in (0, None):
        raise BenchError(f"wrk failed on {args[-1]}: {out[-1000:]}")
    return out


KILLED: Final = -9


async def _exit_code(proc: asyncio.subprocess.Process, limit_s: float) -> int | None:
    """``proc``'s exit code; :data:`KILLED` once it was killed after ``limit_s``; ``None``
    if it is gone but asyncio did not say how it ended (checked every second, so that an
    exit asyncio does not report, as above, costs a second rather than the limit)."""
    deadline = time.monotonic() + limit_s
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                return await proc.wait()
        if not _running(proc.pid):
            return proc.returncode
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            return KILLED


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: neither gone nor a zombie (exited, not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if Path("/proc/self").exists():
            return False
        try:  # no /proc: a zombie counts as running (the limit still ends the wait)
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


async def drive(url: str, pid: int, path: str, connections: int, seconds: int) -> dict[str, Any]:
    """One ``wrk`` run against ``url + path``; its figures and the API's CPU over it (the
    process's and its workers')."""
    c0, t0 = tree_cpu_s(pid), time.monotonic()
    out = await run_wrk(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={WRK_TIMEOUT_S}s",
         "--latency", url + path],
        seconds + WRK_TIMEOUT_S + WRK_SLACK_S,
    )  # fmt: skip
    wall = time.monotonic() - t0
    figures: dict[str, Any] = parse_wrk(out)
    figures["api_cpu_share"] = round((tree_cpu_s(pid) - c0) / wall, 3)
    return figures


async def run_api(
    instruments: int,
    liquidations: int,
    seconds: int,
    connections: int,
    redis_url: str | None,
    flush: bool,
    code: str | None,
    workers: int = 1,
) -> dict[str, Any]:
    """The ``api`` scenario (see module doc)."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    async with contextlib.AsyncExitStack() as stack:
        if redis_url is None:
            url: str = await stack.enter_async_context(embedded_redis())
        else:
            url = redis_url
        client = connect(url)
        stack.push_async_callback(client.aclose)
        if redis_url is not None and await client.dbsize() and not flush:
            raise BenchError(f"{redis_url} is not empty (--flush to empty it)")
        await client.flushdb()
        stack.push_async_callback(client.flushdb)
        written = await seed(client, instruments, liquidations)
        keeper = asyncio.create_task(keep_moving(client, market(instruments)))
        try:
            base, pid = await stack.enter_async_context(api_process(url, code, workers))
            results: dict[str, Any] = {}
            for path in ENDPOINTS:
                url = path + await _cursor(base) if path.endswith("cursor=") else path
                results[path] = await drive(base, pid, url, connections, seconds)
        finally:
            await reap(keeper)
    floor = results[ENDPOINTS[0]]["requests_per_s"]
    for figures in results.values():
        figures["ratio_to_healthz"] = round(figures["requests_per_s"] / floor, 3)
        for k in ("requests_per_s", "p50_ms", "p99_ms"):
            figures[k] = round(figures[k], 2)
    return {
        "scenario": "api",
        "market": {**written, "venues": len(REGISTRY), "liquidations_per_instrument": liquidations},
        "load": {"tool": "wrk", "connections": connections, "threads": 1, "seconds": seconds},
        "api_workers": workers,
        "code": code,
        "endpoints": results,
        "cpus": os.cpu_count(),
        "versions": {"python": platform.python_version()},
    }
