"""The service's process (:mod:`service.process`): ``run`` and ``demo`` run on the
configured event loop (both loops are measured by ``bench wire --loop``), with the GC
policy; other commands keep Python's defaults."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
import uvloop

from service.cli import _run
from service.process import GEN0_THRESHOLD


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(("setting", "is_uvloop"), [("uvloop", True), ("asyncio", False)])
def test_the_service_runs_on_the_configured_event_loop(setting: str, is_uvloop: bool) -> None:
    loop_type = _run(_loop_type(), setting)
    assert issubclass(loop_type, uvloop.Loop) is is_uvloop
    assert issubclass(loop_type, asyncio.AbstractEventLoop)


def test_the_service_freezes_what_start_up_made_and_collects_young_objects_less_often() -> None:
    gc.unfreeze()
    _run(asyncio.sleep(0), "asyncio")
    assert gc.get_threshold()[0] == GEN0_THRESHOLD
    assert gc.get_freeze_count() > 1000  # the modules, classes and settings loaded so far


def test_other_commands_keep_pythons_gc_defaults() -> None:
    gc.unfreeze()
    threshold = gc.get_threshold()
    _run(asyncio.sleep(0))
    assert gc.get_threshold() == threshold
    assert gc.get_freeze_count() == 0
