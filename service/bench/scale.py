"""``deleverage bench scale``: one market load through 1, 2 and 4 collector shards.

1. A store: a private Redis (:func:`~service.store.embedded.embedded_redis`), or a private
   Redis Cluster of 3 masters and 3 replicas (:mod:`.cluster`); the OKX simulator's REST
   (its recorded listing, loaded by the collectors through ccxt) and a
   :class:`~.blaster.Blaster`.
2. The load: OKX v5 ``mark-price`` and ``open-interest`` pushes of every listed linear swap
   (126), one event a frame, a round a second of venue time, rounds until ``events``; and
   ``liquidations`` frames per round on OKX's all-market ``liquidation-orders`` channel
   (0 by default: every shard would receive and parse all of them, see docs/scaling.md). The
   per-symbol frames go to the one shard that subscribed to their symbol: the load splits
   as the instruments do. Every frame is framed before the clock starts and written in 64 KiB
   chunks (:meth:`.Blaster.blast`): the load generator costs a fraction of a microsecond
   per event, not the ~10 us of a ``websockets`` send.
3. The floor (:mod:`.floor`, one process): the least a Python consumer of the same frames
   does; its events/s and CPU per event.
4. Per shard count ``N``: ``N`` processes ``python -m service run --only collect --shard I/N``
   (``0/1`` for one), the store flushed. Once every topic is subscribed, the CPU of the
   shards (``/proc/<pid>/stat``), of Redis (``INFO cpu`` of every node), of this process (the
   load generator) and of the whole machine (``/proc/stat``: other sessions' work included)
   are read; the frames are blasted; the shards settle (quiet for two windows); the CPU is
   read again. Then every instrument's streams are read back:
   * ``events_per_s``: events stored / (the last entry's id - the blast's start): Redis's
     own clock of the last write, to the millisecond;
   * ``latency_ms``: per event, its stream entry id (when Redis stored it) - its ``recv_ms``
     (when the collector read its frame from the socket): frame received -> stored. The
     detector is not in the loop (it scores from the hand-off; ``bench wire --run all``
     measures the whole path in one process).

Figures vary with the machine and with what else runs on it; on two cores every process of
the bench shares them: compare runs made one after the other (docs/scaling.md, "Sizing").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

from ..config import VenueSettings
from ..events import Kind
from ..lifeline import spawn_options
from ..shard import owner
from ..store import keys
from ..store.client import connect, flush
from ..store.embedded import embedded_redis
from ..venues import REGISTRY
from ..venues.base import Instrument, now_ms
from .blaster import Blaster
from .cluster import local_cluster
from .frames import OKX, Frame, okx_round
from .wire import (
    QUIET_SHARE,
    QUIET_WINDOW_S,
    SETTLE_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BenchError,
    expected_events,
    process_cpu_s,
    rest_servers,
    run_floor,
    service_config,
)

START_TIMEOUT_S = 120.0
"""Every shard subscribed: ``N`` processes start at once on two busy cores."""
KINDS = (Kind.MARK, Kind.OPEN_INTEREST, Kind.LIQUIDATION)
_TICK = os.sysconf("SC_CLK_TCK")


class _Recv(msgspec.Struct):
    recv_ms: int


_decode_recv = msgspec.json.Decoder(_Recv).decode


def scale_plan(
    markets: dict[str, Instrument], events: int, liquidations: int, t0_ms: int
) -> list[Frame]:
    """OKX rounds over every linear swap of ``markets`` until at least ``events`` events."""
    swaps = [i for _, i in sorted(markets.items()) if i.linear]
    if not swaps:
        raise BenchError("the OKX listing has no linear swap")
    per_round = 2 * len(swaps) + liquidations
    rounds = max(1, -(-events // per_round))
    out: list[Frame] = []
    for rnd in range(rounds):
        out += okx_round(swaps, rnd, t0_ms + rnd * 1000, liquidations)
    return out


def runqueue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` have waited, runnable, for a CPU so far
    (``/proc/<pid>/task/*/schedstat``, second field): a process starved by others' work has
    a large one; a process that is idle because it waits for I/O (a round trip) has not."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def machine_busy_s() -> float:
    """CPU seconds every CPU of the machine has been busy (``/proc/stat``: all but idle and
    iowait), so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


async def redis_nodes_cpu_s(nodes: Sequence[str]) -> dict[str, float]:
    """User + system CPU seconds of every Redis node so far (``nodes``: their plain URLs),
    by ``<role>:<port>`` (``single`` for a Redis that is not a cluster's), and the seconds
    their processes waited for a CPU (``wait``: all nodes together)."""
    out: dict[str, float] = {"wait": 0.0}
    for url in nodes:
        client = aioredis.Redis.from_url(url)
        try:
            cpu, replication = await client.info("cpu"), await client.info("replication")
            cluster = (await client.info("cluster")).get("cluster_enabled") == 1
            out["wait"] += runqueue_wait_s(int((await client.info("server"))["process_id"]))
        finally:
            await client.aclose()
        role = (
            ("primary" if replication["role"] == "master" else "replica") if cluster else "single"
        )
        port = url.rsplit(":", 1)[1].split("/")[0]
        out[role if role == "single" else f"{role}:{port}"] = float(cpu["used_cpu_user"]) + float(
            cpu["used_cpu_sys"]
        )
    return out


async def read_back(
    client: aioredis.Redis, symbols: Sequence[str], kinds: set[Kind]
) -> tuple[dict[str, int], int, list[int]]:
    """Events stored by symbol, the newest entry's id (ms), and each event's stored -
    received (ms)."""
    stored: dict[str, int] = {}
    last, latencies = 0, []
    for symbol in symbols:
        async with client.pipeline(transaction=False) as pipe:
            for kind in sorted(kinds):
                pipe.xrange(keys.events(OKX, symbol, kind))
            replies = await pipe.execute()
        for entries in replies:
            for entry_id, fields in entries:
                ms = int(entry_id.split(b"-", 1)[0])
                latencies.append(ms - _decode_recv(fields[b"e"]).recv_ms)
                last = max(last, ms)
                stored[symbol] = stored.get(symbol, 0) + 1
    return stored, last, latencies


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    at = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
    out = {k: float(values[min(len(values) - 1, int(q * len(values)))]) for k, q in at.items()}
    out["max"] = float(values[-1])
    return out


@contextlib.asynccontextmanager
async def _shards(config: dict[str, Any], count: int) -> AsyncIterator[list[int]]:
    """``count`` collector shard processes; yields their pids; stops them on the way out."""
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-scale-") as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
        procs: list[asyncio.subprocess.Process] = []
        logs = []
        try:
            for i in range(count):
                log = (Path(tmp) / f"shard-{i}.log").open("w+b")
                logs.append(log)
                args = ["-m", "service", "run", "--config", str(path), "--only", "collect",
                        "--shard", f"{i}/{count}"]  # fmt: skip
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, *args, stdout=log, stderr=log, env=env, **spawn_options()
                )
                procs.append(proc)
            yield [p.pid for p in procs]
            for i, p in enumerate(procs):
                if p.returncode is not None:
                    logs[i].seek(0)
                    tail = logs[i].read()[-2000:].decode(errors="replace")
                    raise BenchError(f"shard {i}/{count} exited with {p.returncode}: {tail}")
        finally:
            for p in procs:
                if p.returncode is None:
                    p.terminate()
            for p in procs:
                try:
                    await asyncio.wait_for(p.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    p.kill()
                    await p.wait()
            for log in logs:
                log.close()


async def _settle(pids: list[int], timeout_s: float) -> None:
    """Until the shards together are quiet for two windows in a row."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline:
        t, c = time.monotonic(), sum(process_cpu_s(p) for p in pids)
        await asyncio.sleep(QUIET_WINDOW_S)
        busy = sum(process_cpu_s(p) for p in pids) - c
        quiet = quiet + 1 if busy < QUIET_SHARE * (time.monotonic() - t) else 0
        if quiet >= 2:
            return
    raise BenchError(f"the shards were still busy after {timeout_s:.0f} s")


async def run_shards(
    count: int,
    config: dict[str, Any],
    blaster: Blaster,
    frames: Sequence[Frame],
    client: aioredis.Redis,
    nodes: Sequence[str],
    symbols: Sequence[str],
    kinds: set[Kind],
    events: int,
) -> dict[str, Any]:
    """One measured run of ``count`` shards (see the module's doc)."""
    await flush(client)
    async with _shards(config, count) as pids:
        try:
            await blaster.wait_subscribed(frames, START_TIMEOUT_S)
        except TimeoutError:
            raise BenchError(f"not subscribed: {blaster.missing(frames)[:5]}...") from None
        await asyncio.sleep(1.0)  # start-up work (markets, latest states) done
        prepared = blaster.prepare(frames)
        redis0, shards0 = await redis_nodes_cpu_s(nodes), [process_cpu_s(p) for p in pids]
        waits0 = [runqueue_wait_s(p) for p in pids]
        gen0, machine0 = time.process_time(), machine_busy_s()
        start_ms, t0 = time.time() * 1000, time.monotonic()
        send_s = await blaster.blast(prepared)
        gen_send = time.process_time() - gen0
        await _settle(pids, SETTLE_TIMEOUT_S)
        shards1, redis1 = [process_cpu_s(p) for p in pids], await redis_nodes_cpu_s(nodes)
        waits1 = [runqueue_wait_s(p) for p in pids]
        gen1, machine1, t1 = time.process_time(), machine_busy_s(), time.monotonic()
    by_symbol, last_ms, latencies = await read_back(client, symbols, kinds)
    stored = sum(by_symbol.values())
    owned = [0] * count
    for symbol, n in by_symbol.items():
        owned[owner(OKX, symbol, count)] += n
    wall_s = max(1e-3, (last_ms - start_ms) / 1000)
    shard_cpu = [b - a for a, b in zip(shards0, shards1, strict=True)]
    redis_cpu = {k: redis1[k] - redis0[k] for k in redis1}
    redis_wait = redis_cpu.pop("wait")
    measured_s = t1 - t0
    own = sum(shard_cpu) + sum(redis_cpu.values()) + (gen1 - gen0)
    return {
        "command": f"run --only collect --shard I/{count}",
        "events_stored": stored,
        "events_lost": events - stored,
        "wall_s": round(wall_s, 3),
        "send_s": round(send_s, 3),
        "events_per_s": round(stored / wall_s),
        "shard_cpu_s": [round(c, 3) for c in shard_cpu],
        "shard_events_share": [round(n / max(1, stored), 3) for n in owned],
        "shard_cpu_us_per_event": _us(sum(shard_cpu), stored),
        "shard_busy_share": [round(c / wall_s, 3) for c in shard_cpu],
        "shard_cpu_wait_share": [
            round((b - a) / wall_s, 3) for a, b in zip(waits0, waits1, strict=True)
        ],
        "redis_cpu_s": {k: round(v, 3) for k, v in sorted(redis_cpu.items())},
        "redis_cpu_us_per_event": _us(sum(redis_cpu.values()), stored),
        "redis_busy_share": round(max(redis_cpu.values()) / wall_s, 3),
        "redis_cpu_wait_share": round(redis_wait / wall_s, 3),
        "generator_cpu_us_per_event": _us(gen_send, stored),
        "machine_busy_cores": round((machine1 - machine0) / measured_s, 3),
        "other_busy_cores": round(max(0.0, machine1 - machine0 - own) / measured_s, 3),
        "latency_ms": _percentiles(latencies),
    }


async def run_scale(
    shard_counts: Sequence[int], events: int, liquidations: int, store: str
) -> dict[str, Any]:
    """The ``scale`` scenario on ``store`` (``single`` or ``cluster``)."""
    async with contextlib.AsyncExitStack() as stack:
        if store == "cluster":
            redis_url, ports = await stack.enter_async_context(local_cluster())
            nodes = [f"redis://127.0.0.1:{p}" for p in ports]
        else:
            redis_url = await stack.enter_async_context(embedded_redis())
            nodes = [redis_url]
        blaster = await stack.enter_async_context(Blaster())
        rest = await stack.enter_async_context(rest_servers())
        client = connect(redis_url)
        stack.push_async_callback(client.aclose)
        okx = REGISTRY[OKX](VenueSettings(ws_url=blaster.url(OKX), rest_url=rest[OKX]))
        try:
            markets = await okx.load_markets(10.0)
            conns = [
                {"venue": OKX, "url": c.url, "subscribe": list(c.subscribe)}
                for c in okx.connections(markets)
            ]
        finally:
            await okx.close()
        t0_ms = now_ms() - 3_600_000
        frames = scale_plan(markets, events, liquidations, t0_ms)
        expected = expected_events({OKX: okx}, {OKX: markets}, frames)
        sent = sum(expected.values())
        kinds = {k for _, k in expected}
        floor = await run_floor(
            {"frames": len(frames), "connections": conns}, blaster, frames, blast=True
        )
        config = service_config(redis_url, {OKX: (blaster.url(OKX), rest[OKX])})
        symbols = sorted(markets)
        runs: dict[str, Any] = {}
        for count in shard_counts:
            runs[str(count)] = await run_shards(
                count, config, blaster, frames, client, nodes, symbols, kinds, sent
            )
    one = runs.get("1", {}).get("events_per_s")
    return {
        "scenario": "scale",
        "store": store,
        "load": {
            "venue": OKX,
            "swaps": sum(1 for i in markets.values() if i.linear),
            "liquidation_frames_per_round": liquidations,
            "frames": len(frames),
            "events_sent": sent,
        },
        "latency": "frame received by the collector -> stored (stream entry id); "
        "the detector is not in the loop",
        "floor": {
            "events_per_s": round(floor["events"] / floor["wall_s"]),
            "cpu_us_per_event": _us(floor["cpu_s"], floor["events"]),
        },
        "runs": runs,
        "speedup": {n: round(r["events_per_s"] / one, 2) for n, r in runs.items()} if one else {},
        "cpus": os.cpu_count(),
    }


def _us(cpu_s: float, events: int) -> float:
    return round(cpu_s / max(1, events) * 1e6, 2)
