"""Child processes that die with the process that started them, even when it is SIGKILLed.

``deleverage demo`` starts a Redis, a Mosquitto and a simulator. Its clean exits stop them;
a SIGKILL (a supervisor's stop timeout, the OOM killer) runs no code, so two mechanisms
that need none:

- **Parent-death signal** (Linux): every child started with :func:`spawn_options` asks the
  kernel, between fork and exec, for SIGKILL when its parent goes. The kernel sends it when
  the *thread* that forked the child ends, so spawn from a thread that lives as long as the
  child (the event loop's). A set-user-ID binary, or a child that changes its user, loses
  the signal: hence the demo's Mosquitto is told to keep ours.
- **Lifeline pipe** (every POSIX system): a child that is our own Python process also gets
  the read end of a pipe whose write end only the parent holds. The kernel closes it when
  the parent dies, however it dies; the child sees end-of-file and stops
  (:func:`until_orphaned`). This is what a macOS demo has for its simulator.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Self

ENV_FD = "DELEVERAGE_LIFELINE_FD"
"""Set in a child's environment: the descriptor of its lifeline's read end."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # a libc without prctl: children then rely on the pipe
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()


def parent_death_signal_supported() -> bool:
    return _prctl is not None


def spawn_options() -> dict[str, Any]:
    """Keyword arguments for :func:`asyncio.create_subprocess_exec` (or ``subprocess.Popen``)
    that make the child die with this process where the system allows it; none elsewhere."""
    prctl = _prctl
    if prctl is None:
        return {}
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child, between fork and exec
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request: nobody will signal
            os._exit(1)

    return {"preexec_fn": die_with_parent}


class Lifeline:
    """The parent's end, a context manager: :meth:`child_options` for the child, then
    :meth:`close_child_end` once it is started. The write end stays open here (no child
    inherits it) until the block ends or this process dies."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()  # both close-on-exec; pass_fds opens one to a child

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def child_options(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        base = dict(os.environ if env is None else env)
        return {"pass_fds": (self._read,), "env": base | {ENV_FD: str(self._read)}}

    def close_child_end(self) -> None:
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    def close(self) -> None:
        """Cut the line: the child sees end-of-file and stops."""
        self.close_child_end()
        if self._write >= 0:
            os.close(self._write)
            self._write = -1


async def until_orphaned() -> None:
    """Return when the parent that passed a lifeline (:data:`ENV_FD`) is gone; without one,
    never. For a child's main task: ``await until_orphaned()`` instead of waiting forever."""
    raw = os.environ.pop(ENV_FD, None)  # popped: not handed down to a grandchild
    if raw is None:
        await asyncio.Event().wait()
        return
    fd = int(raw)
    os.set_blocking(fd, False)
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    loop.add_reader(fd, gone.set)  # nobody writes: readable means end-of-file
    try:
        await gone.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
