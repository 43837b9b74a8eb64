"""The event loop helpers: a long step cut into slices gives the loop a turn between them;
a task reaped is cancelled and waited for without swallowing a stop of the one that waits."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from service.aio import Slices, reap, stopping


def test_a_slice_is_due_once_it_has_run_its_length() -> None:
    short = Slices(0.01)
    long = Slices(60.0)
    time.sleep(0.02)
    assert short.due()
    assert not long.due()
    short.restart()
    time.sleep(0.02)
    assert short.due()


async def test_a_pause_lets_other_tasks_run_and_starts_a_new_slice() -> None:
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    slices = Slices(0.0)
    task = asyncio.create_task(other())
    assert slices.due()
    await slices.pause()
    assert ran == ["other"]
    await task
    long = Slices(60.0)
    await long.pause()
    assert not long.due()


async def _slow_to_end(ended: asyncio.Event) -> None:
    """Ends a moment after its cancel, as a websocket closing or a flush does."""
    try:
        await asyncio.sleep(60)
    finally:
        await asyncio.shield(asyncio.sleep(0.05))
        ended.set()


async def test_a_stop_of_the_reaper_while_it_waits_reaches_it() -> None:
    ended = asyncio.Event()
    after: list[str] = []

    async def reaper() -> None:
        child = asyncio.create_task(_slow_to_end(ended))
        await asyncio.sleep(0)
        await reap(child)
        after.append("ran on")  # what a stop swallowed would reach

    task = asyncio.create_task(reaper())
    await asyncio.sleep(0.01)  # the reaper waits for the child's end
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert after == []
    await asyncio.wait_for(ended.wait(), 1)  # the child still ended


async def test_the_form_it_replaces_swallows_that_stop() -> None:
    """The test above, with ``suppress(CancelledError): await task``: the reaper runs on
    (marked cancelling), which is what left a collector that never stopped."""
    ended = asyncio.Event()
    after: list[bool] = []

    async def reaper() -> None:
        child = asyncio.create_task(_slow_to_end(ended))
        await asyncio.sleep(0)
        child.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await child
        after.append(stopping())

    task = asyncio.create_task(reaper())
    await asyncio.sleep(0.01)
    task.cancel()
    await task
    assert after == [True]


async def test_reap_raises_how_a_task_failed_unless_allowed() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    async def returns() -> None:
        return None

    done = asyncio.create_task(returns())
    await done
    failing = asyncio.create_task(fails_on_cancel())
    quiet = asyncio.create_task(asyncio.sleep(60))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await reap(done, failing, quiet)
    assert quiet.cancelled()  # waited for with the others, though one failed

    allowed = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    await reap(allowed, allow=(ValueError,))
    assert allowed.done()
    await reap()
