"""A private Redis Cluster for ``bench scale --store cluster``: 3 masters and 3 replicas.

``redis-server --cluster-enabled yes`` six times on free loopback ports (each with its bus
port, ``port + 10000``, free too), then ``redis-cli --cluster create --cluster-replicas 1``,
no persistence, every file in a temporary directory; as the tests' ``tests/cluster_support.py``
does (a bench does not import the tests).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..lifeline import spawn_options
from .wire import BenchError

BUS_OFFSET = 10_000
NODES = 6


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    """``n`` free ports whose bus ports are free too, below 55536 (so below 65535 - 10000)."""
    ports: list[int] = []
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1]) % 40_000 + 15_000
        taken = {*ports, *(p + BUS_OFFSET for p in ports)}
        if port in taken or port + BUS_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + BUS_OFFSET):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise BenchError("no free ports for a local Redis Cluster")


async def _answers(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"PING\r\n")
        return (await reader.readline()).startswith(b"+PONG")
    finally:
        writer.close()


async def _cluster_state_ok(cli: str, port: int) -> bool:
    proc = await asyncio.create_subprocess_exec(
        cli, "-p", str(port), "cluster", "info",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return b"cluster_state:ok" in out


@asynccontextmanager
async def local_cluster(timeout_s: float = 60.0) -> AsyncIterator[tuple[str, list[int]]]:
    """Start the cluster; yield its ``redis+cluster://`` URL and its nodes' ports; stop
    every node on exit."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise BenchError("--store cluster needs redis-server and redis-cli (Debian's redis-server)")
    ports = _free_ports(NODES)
    procs: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory(prefix="deleverage-bench-cluster-") as tmp:
        try:
            for port in ports:
                args = ["--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                        "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout",
                        "5000", "--save", "", "--appendonly", "no", "--dir", tmp,
                        "--logfile", f"{tmp}/redis-{port}.log"]  # fmt: skip
                proc = await asyncio.create_subprocess_exec(
                    server, *args, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL, **spawn_options(),
                )  # fmt: skip
                procs.append(proc)
            async with asyncio.timeout(timeout_s):
                for port in ports:
                    while True:
                        if await _answers(port):
                            break
                        await asyncio.sleep(0.05)
                create = await asyncio.create_subprocess_exec(
                    cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-replicas", "1", "--cluster-yes",
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                out, _ = await create.communicate()
                if create.returncode != 0:
                    raise BenchError(f"redis-cli --cluster create failed: {out[-1000:]!r}")
                for port in ports:
                    while True:
                        if await _cluster_state_ok(cli, port):
                            break
                        await asyncio.sleep(0.1)
            seeds = "&".join(f"node=127.0.0.1:{p}" for p in ports[1:3])
            yield f"redis+cluster://127.0.0.1:{ports[0]}?{seeds}", ports
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
            for proc in procs:
                await proc.wait()
