"""A private Mosquitto broker for the demo, when none is configured and the ``mosquitto``
binary is installed (Debian: ``apt-get install mosquitto``). It listens on 127.0.0.1 (a free
port), allows anonymous clients, keeps nothing on disk, and is stopped on exit; where the
system allows it, it also dies with this process (:mod:`service.lifeline`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

from ...errors import ConfigError
from ...lifeline import spawn_options

log = structlog.get_logger(__name__)

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")


def find_mosquitto() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_mosquitto(exe: str, startup_timeout_s: float = 10.0) -> AsyncIterator[int]:
    """Start a private broker; yield its port on 127.0.0.1; stop it on exit."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="deleverage-mqtt-") as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(_config(port))
        proc = await asyncio.create_subprocess_exec(
            exe, "-c", str(conf),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # our Ctrl-C handling stops it, last
            **spawn_options(),
        )  # fmt: skip
        try:
            await _wait_listening(port, proc, startup_timeout_s)
            log.info("embedded mosquitto started", port=port, binary=exe)
            yield port
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(5):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def _config(port: int) -> str:
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false"]
    if os.geteuid() == 0:
        # As root, Mosquitto switches to the `mosquitto` user, and a change of user clears
        # the parent-death signal: a broker left behind by a killed demo. It keeps ours.
        lines.append("user root")
    return "\n".join(lines) + "\n"


async def _wait_listening(port: int, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if proc.returncode is not None:
            raise ConfigError(f"embedded mosquitto exited with code {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise ConfigError(f"embedded mosquitto did not listen on {port}") from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return
