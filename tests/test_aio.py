"""The event loop helpers: a long step cut into slices gives the loop a turn between them."""

from __future__ import annotations

import asyncio
import time

from service.aio import Slices


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
