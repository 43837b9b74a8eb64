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
import time
from collections.abc import Callable
from typing import Final, Literal

import structlog

EventLoop = Literal["uvloop", "asyncio"]
GEN0_THRESHOLD: Final = 10_000

log = structlog.get_logger(__name__)


def tune_gc() -> None:
    """Freeze what start-up allocated and raise the young generation's threshold."""
    _freeze()  # quiet: before the first line the process prints
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


def settle_heap(why: str) -> None:
    """Move what the process holds now (start-up's modules and app; the detector's history and
    baselines: about 135 tracked objects per instrument) out of the collector's reach.
    A full collection scans every tracked object: 1.4 s at 10,000 instruments, a stall of
    every task of the process (``docs/performance.md``). Called once the long-lived state
    is built (after the rebuild, after the warm start); what comes later is collected as
    usual. One full collection first, so that no garbage is frozen."""
    started = time.perf_counter()
    _freeze()
    log.info(
        "heap settled",
        why=why,
        frozen_objects=gc.get_freeze_count(),
        took_ms=round((time.perf_counter() - started) * 1000, 1),
    )


def _freeze() -> None:
    gc.collect()  # first: no garbage is frozen
    gc.freeze()


class SettleOnGrowth:
    """Settles the heap again (:func:`settle_heap`) once what the process holds for good has
    grown by ``factor`` since the last settle and then stopped growing for ``quiet`` looks.

    At start the detector's rebuild settles the heap, but with a fresh store the market
    arrives after it: the state of 3,000 instruments (the detector's rings and baselines,
    the latest events, the API's view: several hundred thousand tracked objects) then stays
    in the collector's reach, and each full collection scanned it all, 250-350 ms with every
    task of the process waiting, every minute or two under the whole-market bench
    (``docs/performance.md``, "Where the loop stalls"). One settle once the market is in
    costs one such pause; the full collections after it scan what came later only."""

    __slots__ = ("_factor", "_last", "_minimum", "_quiet", "_settled", "_still")

    def __init__(
        self, settled: int = 0, factor: float = 1.25, quiet: int = 10, minimum: int = 200
    ) -> None:
        """``settled``: the size (in any unit: instruments) at the last settle."""
        self._settled = settled
        self._factor = factor
        self._quiet = quiet
        self._minimum = minimum
        self._last = settled
        self._still = 0

    def observe(self, size: int) -> bool:
        """One look at the size; ``True`` when it settled the heap."""
        if size != self._last:
            self._last, self._still = size, 0
            return False
        self._still += 1
        if (
            self._still >= self._quiet
            and size >= self._minimum
            and size >= self._settled * self._factor
        ):
            settle_heap(f"grown to {size}")
            self._settled = size
            return True
        return False
