"""A redis-server of a test's own, on a free loopback port, that the test may kill, freeze
and restart (the machine's shared Redis must never be touched that way)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from procs_support import free_port


class OwnRedis:
    """``start()``, then ``kill()`` (SIGKILL) and ``start()`` again on the same port, or
    ``freeze()`` (SIGSTOP) and ``thaw()``. With ``durable``, every write is in the append-only
    file before Redis answers it (``appendfsync always``), so a kill loses nothing acknowledged
    and the restarted server has it all."""

    def __init__(self, durable: bool = False) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="dlv-test-redis-")
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, within_s: float = 10.0) -> float:
        """Start the server; return the monotonic time at which it first answered PING."""
        exe = shutil.which("redis-server")
        assert exe, "redis-server must be installed for this test"
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence, "--dir", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.answers():
                return time.monotonic()
            time.sleep(0.005)
        raise AssertionError("own redis-server did not start")

    def answers(self) -> bool:
        """True when the server answers PING (not merely accepts a connection)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.frozen = False

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
