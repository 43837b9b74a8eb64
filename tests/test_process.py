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
from service.process import GEN0_THRESHOLD, SettleOnGrowth


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


def test_the_heap_is_settled_again_once_the_market_has_grown_and_stopped_growing() -> None:
    settler = SettleOnGrowth(settled=100, factor=1.25, quiet=3, minimum=200)
    looks = [150, 150, 150, 150]  # still, but under the minimum
    looks += [300, 400, 400, 400]  # grown, not yet still for 3 looks
    assert not any(settler.observe(n) for n in looks)
    held = [object()]  # a tracked container, alive all along
    assert settler.observe(400)  # still for 3 looks: settled
    assert not any(o is held for o in gc.get_objects())  # frozen: out of the collector's reach
    assert not any(settler.observe(n) for n in [450, 450, 450, 450, 450])  # +12 %: not again
    assert not any(settler.observe(n) for n in [500, 500, 500])
    assert settler.observe(500)  # +25 % and still
