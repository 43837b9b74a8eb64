"""The ``event_loop`` setting: ``run`` and ``demo`` run on uvloop or on the standard
library's loop, as configured (both are measured by ``bench wire --loop``)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from service.cli import _run


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(("setting", "is_uvloop"), [("uvloop", True), ("asyncio", False)])
def test_the_service_runs_on_the_configured_event_loop(setting: str, is_uvloop: bool) -> None:
    loop_type = _run(_loop_type(), setting)
    assert issubclass(loop_type, uvloop.Loop) is is_uvloop
    assert issubclass(loop_type, asyncio.AbstractEventLoop)
