"""The API as several worker processes (``api.workers``), as an operator runs it: ``deleverage
run --only api`` on a real Redis. Every worker answers the same data; a worker killed is
replaced while the others keep answering; SIGTERM stops the supervisor and every worker; and
asking for workers next to the other components is refused with a message."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from procs_support import REPO, Proc, descendants, free_port, service_env, stop, survivors
from publish_support import REDIS_URL, pressure, store_pressure

pytestmark = pytest.mark.integration

WORKERS = 2
START_S = 60.0


def workers_of(root: int) -> list[Proc]:
    """The API workers below ``root`` (multiprocessing's spawned children, not its
    resource tracker)."""
    out = []
    for p in descendants(root):
        try:
            cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"spawn_main" in cmdline:
            out.append(p)
    return out


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "api.yaml"
    path.write_text(
        f"redis_url: {REDIS_URL}\n"
        f"api:\n  port: {port}\n  workers: {WORKERS}\n  snapshot_s: 0.2\n"
        "venues:\n  binance_usdm: {}\n  bybit: {}\n"
    )
    return path, port


@pytest.fixture
def supervisor(config: tuple[Path, int], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    path, _ = config
    with (tmp_path / "api.log").open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "run", "--config", str(path), "--only", "api"],
            cwd=REPO, env=service_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        yield proc
    finally:
        left = descendants(proc.pid)
        stop(proc, grace_s=10)
        assert survivors(left, within_s=10) == []


@pytest.fixture
async def seeded(redis: aioredis.Redis) -> None:
    await store_pressure(
        redis,
        pressure("binance_usdm", "BTCUSDT", 71.0),
        pressure("bybit", "ETHUSDT", 12.0),
    )


async def answers(client: httpx.AsyncClient, path: str, n: int) -> list[bytes]:
    """``n`` answers to ``path``, each on a new connection (spread over the workers)."""
    out = []
    for _ in range(n):
        r = await client.get(path, headers={"Connection": "close"})
        assert r.status_code == 200, r.text
        out.append(r.content)
    return out


async def until_serving(base: str, proc: subprocess.Popen[bytes], workers: int) -> None:
    deadline = time.monotonic() + START_S
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the supervisor exited"
            if len(workers_of(proc.pid)) == workers:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            await asyncio.sleep(0.2)
    raise AssertionError("the API workers did not start in time")


async def test_every_worker_answers_the_same_and_a_killed_one_is_replaced(
    config: tuple[Path, int], supervisor: subprocess.Popen[bytes], seeded: None
) -> None:
    _, port = config
    base = f"http://127.0.0.1:{port}"
    await until_serving(base, supervisor, WORKERS)
    first = workers_of(supervisor.pid)
    assert len(first) == WORKERS
    async with httpx.AsyncClient(base_url=base, timeout=5.0) as client:
        await asyncio.sleep(0.5)  # every worker's snapshot has read the seeded scores
        bodies = await answers(client, "/v1/pressure", 30)
        assert len(set(bodies)) == 1
        assert b"BTCUSDT" in bodies[0]
        assert b"ETHUSDT" in bodies[0]

        victim = first[0]
        os.kill(victim.pid, signal.SIGKILL)
        # the others keep answering while it is down and replaced
        assert set(await answers(client, "/v1/pressure", 20)) == set(bodies)
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            now = workers_of(supervisor.pid)
            if len(now) == WORKERS and victim not in now:
                break
            await asyncio.sleep(0.2)
        now = workers_of(supervisor.pid)
        assert victim not in now
        assert len(now) == WORKERS, "the killed worker was not replaced"
        await asyncio.sleep(1.0)  # the new worker's first snapshot
        assert set(await answers(client, "/v1/pressure", 30)) == set(bodies)


async def test_sigterm_stops_the_supervisor_and_every_worker(
    config: tuple[Path, int], supervisor: subprocess.Popen[bytes]
) -> None:
    _, port = config
    await until_serving(f"http://127.0.0.1:{port}", supervisor, WORKERS)
    everything = descendants(supervisor.pid)
    assert len(workers_of(supervisor.pid)) == WORKERS
    supervisor.terminate()
    assert supervisor.wait(timeout=20) == 0
    assert survivors(everything, within_s=10) == []


def test_workers_next_to_other_components_are_refused(config: tuple[Path, int]) -> None:
    path, _ = config
    got = subprocess.run(
        [sys.executable, "-m", "service", "run", "--config", str(path)],
        cwd=REPO, env=service_env(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.returncode == 1
    assert b"--only api" in got.stderr
