"""asyncio helpers the long-running loops share."""

from __future__ import annotations

import asyncio
import time


def checkpoint() -> None:
    """Raise :class:`asyncio.CancelledError` if this task was asked to stop but a library
    swallowed the cancellation.

    On Python 3.11, ``asyncio.wait_for`` loses a cancel that arrives as its inner future
    completes (CPython gh-86296), and libraries that use it inside their calls (redis-py's
    command timeouts) inherit the race: the task stays marked as cancelling but runs on, and
    a TaskGroup waiting for it never finishes. Every long-running loop calls this once per
    iteration, so a lost cancel is honoured at the next turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Slices:
    """Cuts a long synchronous step into turns of the event loop: the step calls
    :meth:`due` between two units of work and, when it answers ``True``, awaits
    :meth:`pause`, so that the loop's other callbacks (frames, requests) run about every
    ``slice_s`` instead of waiting for the whole step. Nothing is paused for when the step
    is shorter than a slice.

    The caller owns what it works on between two pauses: another task may run at each
    pause, and must not change it (or the step must not mind)."""

    __slots__ = ("_since", "_slice_s")

    def __init__(self, slice_s: float) -> None:
        self._slice_s = slice_s
        self._since = time.perf_counter()

    def due(self) -> bool:
        """Whether this slice has run ``slice_s`` (since the last pause or :meth:`restart`)."""
        return time.perf_counter() - self._since > self._slice_s

    def restart(self) -> None:
        """A new slice starts now (after an ``await`` that let the loop run anyway)."""
        self._since = time.perf_counter()

    async def pause(self) -> None:
        """Let the event loop run the callbacks that are ready, then start a new slice."""
        await asyncio.sleep(0)
        self._since = time.perf_counter()
