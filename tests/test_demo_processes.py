"""``deleverage demo`` leaves nothing running behind it: not after a clean stop, and not after
a SIGKILL (a supervisor's stop timeout), which runs none of its code.

Each test starts the demo as a subprocess on its own ports (a free API port; its Redis,
Mosquitto, simulator and webhook receiver pick free ports), waits until it is serving and its
children run, stops it, and checks every process below it is gone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs_support import Proc, alive, descendants, free_port, start_demo, survivors

READY_LINE = "deleverage demo: open http"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


def expected_children() -> set[str]:
    from service.publish.mqtt.embedded import find_mosquitto

    names = {"redis-server", Path(sys.executable).name[:15]}  # comm keeps 15 characters
    return names | ({"mosquitto"} if find_mosquitto() else set())


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], list[Proc], Path]]:
    """A running demo, the processes below it once all are up, and its log."""
    log = tmp_path / "demo.log"
    proc = start_demo(log, free_port())
    children: list[Proc] = []
    try:
        children = _wait_serving(proc, log)
        yield proc, children, log
    finally:
        children += descendants(proc.pid)
        proc.kill()
        proc.wait()
        for p in children:  # whatever the test found, nothing outlives it
            if alive(p):
                os.kill(p.pid, signal.SIGKILL)


def _wait_serving(proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 40) -> list[Proc]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the demo exited with {proc.returncode}:\n{log.read_text()}")
        children = descendants(proc.pid)
        if READY_LINE in log.read_text() and {p.name for p in children} >= expected_children():
            return children
        time.sleep(0.2)
    pytest.fail(f"the demo did not start in {timeout_s}s:\n{log.read_text()}")


def test_a_sigkilled_demo_takes_its_children_with_it(
    demo: tuple[subprocess.Popen[bytes], list[Proc], Path],
) -> None:
    proc, children, _ = demo
    proc.kill()
    proc.wait()
    left = survivors(children, within_s=5)
    assert left == [], f"still running after the demo was SIGKILLed: {left}"


def test_a_stopped_demo_stops_its_children_before_it_exits(
    demo: tuple[subprocess.Popen[bytes], list[Proc], Path],
) -> None:
    proc, children, log = demo
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()
    left = survivors(children, within_s=0)
    assert left == [], f"still running after the demo exited: {left}"
