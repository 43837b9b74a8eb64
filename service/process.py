"""How the service's process runs (``run`` and ``demo``): its event loop and the garbage
collector's policy.

* The event loop is the ``event_loop`` setting: the standard library's by default, or
  uvloop (libuv).
* The collector: events are msgspec structs outside the cyclic GC (``gc=False``), but each
  websocket frame still allocates tracked objects (the decoded frame's structs and lists, a
  future or two), so at Python's default threshold (700) the young generation is collected
  every few frames and full collections walk the whole heap, most of it what start-up
  loaded (ccxt, pydantic, FastAPI). :func:`tune_gc` moves what exists at start-up out of
  the collector's reach (``gc.freeze``) and collects the young generation every
  :data:`GEN0_THRESHOLD` allocations instead: ``bench wire --run collect`` measured about a
  quarter less CPU per event (docs/performance.md). Cycles are still collected, a little
  later; reference counting frees everything else as before.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Final, Literal

EventLoop = Literal["uvloop", "asyncio"]
GEN0_THRESHOLD: Final = 10_000


def tune_gc() -> None:
    """Freeze what start-up allocated and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


def runner(event_loop: EventLoop) -> asyncio.Runner:
    """An :class:`asyncio.Runner` on ``event_loop``, the GC tuned (:func:`tune_gc`)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if event_loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    tune_gc()
    return asyncio.Runner(loop_factory=factory)
