"""Processes a test starts: a free loopback port, ``deleverage demo`` as a person runs it,
stopping a process as its supervisor would, and a process's descendants read from /proc
(Linux): what a test needs to show that processes a parent started are gone after it."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


LOWEST_PORT = 10_000


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks a connection's source port from (Linux)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):  # pragma: no cover - not Linux: the IANA range
        return 49152, 65535


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int = 0) -> int:
    """A free loopback port below the ephemeral range (with ``span``, ``port + span`` free
    and below it too). Not one the kernel would hand out: a test that kills the server on it
    has clients reconnecting to a port nobody listens on, and a connect to a free ephemeral
    port can pick that same port as its source and connect to itself (TCP simultaneous
    open): the client then reads its own command back as the reply (``PING`` answered by a
    server that is down, a write "stored" nowhere)."""
    top = ephemeral_ports()[0] - span
    rng = random.Random()
    for _ in range(10_000):
        port = rng.randrange(LOWEST_PORT, top)
        if bindable(port) and (not span or bindable(port + span)):
            return port
    raise AssertionError(f"no free loopback port in {LOWEST_PORT}..{top}")


def service_env() -> dict[str, str]:
    """This environment without any ``DELEVERAGE_`` setting (the test's own Redis URLs
    included): a service process started with it sees only its own configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}


def start_demo(log: Path, port: int) -> subprocess.Popen[bytes]:
    """``deleverage demo --port PORT``, its output (both streams) written to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service", "demo", "--port", str(port)],
            cwd=REPO, env=service_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; waits for the process either way."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    pid: int
    name: str
    started: int
    """Start time in clock ticks since boot: tells a reused pid from the process we saw."""


def _stat(pid: int) -> tuple[str, str, int, int] | None:
    """(name, state, parent pid, start time) of ``pid``, or ``None`` once it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()  # fields 3.. of proc_pid_stat(5)
    return name, fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> list[Proc]:
    """Every living process below ``root`` (children, their children...)."""
    parents: dict[int, list[Proc]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            name, state, ppid, started = st
            if state != "Z":
                parents.setdefault(ppid, []).append(Proc(int(entry.name), name, started))
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def alive(proc: Proc) -> bool:
    """Whether ``proc`` still runs (a zombie has exited: only its entry waits to be reaped)."""
    st = _stat(proc.pid)
    return st is not None and st[3] == proc.started and st[1] != "Z"


def survivors(procs: list[Proc], within_s: float) -> list[Proc]:
    """Those of ``procs`` still running after up to ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while (left := [p for p in procs if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


class ServiceProcesses:
    """``deleverage run --only <component>`` processes by name, each logging to a file of its
    own (``<name>-<start>.log``, ``/`` spelled ``of``), killed, stopped and checked."""

    def __init__(self, component: str, logs: Path) -> None:
        self.component = component
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def start(self, name: str, config: Path, shard: str | None = None, api: bool = False) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = self.logs / f"{name.replace('/', 'of')}-{self.starts[name]}.log"
        args = ["run", "--only", self.component, *(["--only", "api"] if api else []),
                "--config", str(config), *(["--shard", shard] if shard else [])]  # fmt: skip
        with log.open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "service", *args],
                cwd=REPO, env=service_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            stop(proc, 10.0)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                logs = "\n".join(p.read_text()[-3000:] for p in sorted(self.logs.glob("*.log")))
                raise AssertionError(
                    f"{self.component} {name} exited with {proc.returncode}:\n{logs}"
                )
