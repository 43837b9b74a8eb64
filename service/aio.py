"""asyncio helpers the long-running loops share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any


def checkpoint() -> None:
    """Raise :class:`asyncio.CancelledError` if this task was asked to stop but a library
    swallowed the cancellation.

    On Python 3.11, ``asyncio.wait_for`` loses a cancel that arrives as its inner future
    completes (CPython gh-86296), and libraries that use it inside their calls (redis-py's
    command timeouts) inherit the race: the task stays marked as cancelling but runs on, and
    a TaskGroup waiting for it never finishes. Every long-running loop calls this once per
    iteration, so a lost cancel is honoured at the next turn.
    """
    if stopping():
        raise asyncio.CancelledError


def stopping() -> bool:
    """Whether this task was asked to stop (a cancel it has not acted on: see
    :func:`checkpoint`)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def reap(*tasks: asyncio.Future[Any], allow: tuple[type[BaseException], ...] = ()) -> None:
    """Cancel ``tasks`` and wait until each has ended; then raise the first exception one of
    them ended with (its cancellation aside), unless it is one of ``allow``.

    Not ``with suppress(CancelledError): await task``: that form cannot tell the task's
    cancellation from the caller's own, and a stop of the caller that lands while it waits
    (or that the task swallows as it ends) is swallowed with it. The caller then runs on,
    marked cancelling, and whatever waits for it waits for ever (stop 29's CI: a collector's
    rotation awaited its old connection's watchdog this way as the collector stopped, and
    the collector never ended). Here the wait is :func:`asyncio.wait`, which raises
    :class:`asyncio.CancelledError` in the caller only when the caller is cancelled, and
    every task is waited for in the one wait (a stop during it leaves none uncancelled)."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    await asyncio.wait(tasks)
    for task in tasks:
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, allow):
            raise failure


async def cancel_stragglers(
    tasks: Sequence[asyncio.Task[object]],
    grace_s: float,
    every_s: float,
    on_straggler: Callable[[asyncio.Task[object]], None] | None = None,
) -> None:
    """Cancel again each of ``tasks`` still running ``grace_s`` after it was first cancelled,
    and then every ``every_s``, until all are done (run it as a task beside them, and cancel
    it once they are).

    A cancel lost to the race :func:`checkpoint` describes leaves a task running; a loop that
    calls :func:`checkpoint` honours it at its next turn, but one waiting on an event that
    nothing will set any more (a writer whose producers stopped) never takes that turn, and a
    process stop waits for it for ever. A second cancel reaches the task where it waits.
    ``on_straggler`` is told of each task cancelled again (to log it: each is a lost cancel,
    or a stop slower than ``grace_s``)."""
    await asyncio.sleep(grace_s)
    while True:
        for task in tasks:
            if not task.done():
                if on_straggler is not None:
                    on_straggler(task)
                task.cancel()
        await asyncio.sleep(every_s)


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
