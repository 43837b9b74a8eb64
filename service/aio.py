"""asyncio helpers the long-running loops share."""

from __future__ import annotations

import asyncio


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
