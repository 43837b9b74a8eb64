"""Children started with ``service.lifeline`` die with their parent, however it dies: the
parent-death signal (Linux) for any binary, the lifeline pipe for our own Python processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from procs_support import descendants, survivors

from service import lifeline

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# A parent that starts `sleep` as the demo starts Redis, says so, and waits to be killed.
PARENT = """
import subprocess, sys, time
from service.lifeline import spawn_options
child = subprocess.Popen(["sleep", "60"], start_new_session=True, **spawn_options())
print(child.pid, flush=True)
time.sleep(60)
"""

# A child that stops when its lifeline is cut, as the demo's simulator does.
CHILD = """
import asyncio
from service.lifeline import until_orphaned
print("up", flush=True)
asyncio.run(until_orphaned())
"""


@linux_only
def test_a_child_dies_with_its_sigkilled_parent() -> None:
    assert lifeline.parent_death_signal_supported()
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        int(parent.stdout.readline())
        (child,) = descendants(parent.pid)
        assert child.name == "sleep"
        parent.kill()
        parent.wait()
        assert survivors([child], within_s=5) == []
    finally:
        parent.kill()
        parent.wait()


def test_a_python_child_stops_when_its_lifeline_is_cut() -> None:
    with lifeline.Lifeline() as line:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, **line.child_options()
        )
        line.close_child_end()
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"up\n"
            time.sleep(0.2)
            assert child.poll() is None  # the line is held: the child waits
        except BaseException:
            child.kill()
            raise
    try:
        assert child.wait(timeout=5) == 0  # the line is cut: it stops, cleanly
    finally:
        child.kill()
        child.wait()


def test_without_a_lifeline_a_child_waits_until_stopped() -> None:
    env = {k: v for k, v in os.environ.items() if k != lifeline.ENV_FD}
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"up\n"
        time.sleep(0.3)
        assert child.poll() is None
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=5) == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()
