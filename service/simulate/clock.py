"""Drives a :class:`~service.simulate.market.Market` from the wall clock.

One ticker task steps the market in fixed steps of ``step_s`` scenario seconds (0.1 s by
default), ``time_scale`` times faster than the wall clock. Steps are counted from the start,
not from sleep to sleep, so a late wake-up catches up with several steps and the market goes
through exactly the same sequence of steps as an offline run with the same seed.

Liquidation prints are stamped with the wall-clock time their step stands for, recorded
(the ground truth), and handed to every listener: the venue servers built on this clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Final

import structlog

from .market import LiquidationPrint, Market
from .scenario import Interval

log = structlog.get_logger(__name__)

MAX_CATCH_UP_STEPS: Final = 6000
"""Beyond this many steps behind (a suspended process), skip ahead instead of replaying."""

PrintListener = Callable[[list[LiquidationPrint]], None]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def next_tick(interval_s: float) -> int:
    """Sleep until the next whole multiple of ``interval_s`` in wall-clock time and return
    that multiple: pushes on a venue's grid are stamped ``tick * interval_s``."""
    now = time.time()
    tick = math.floor(now / interval_s) + 1
    await asyncio.sleep(tick * interval_s - now)
    return tick


class MarketClock:
    """Runs a market in (scaled) real time and keeps every liquidation print it produced."""

    def __init__(self, market: Market, *, time_scale: float = 1.0, step_s: float = 0.1) -> None:
        if time_scale <= 0 or step_s <= 0:
            raise ValueError("time_scale and step_s must be > 0")
        self.market = market
        self.time_scale = time_scale
        self.step_s = step_s
        self.start_s = market.elapsed_s
        self.origin_ms = wall_ms()
        """Wall time (ms) at which the run started at scenario time :attr:`start_s`."""
        self.prints: list[LiquidationPrint] = []
        """Every liquidation print so far, throttled or not (ground truth)."""
        self._listeners: list[PrintListener] = []
        self._task: asyncio.Task[None] | None = None
        self._steps = 0

    def add_listener(self, listener: PrintListener) -> None:
        """Call ``listener`` with each step's prints (never with an empty list)."""
        self._listeners.append(listener)

    def to_wall_ms(self, scenario_s: float) -> int:
        """The wall time (ms) that scenario time ``scenario_s`` maps to in this run."""
        return self.origin_ms + round((scenario_s - self.start_s) / self.time_scale * 1000)

    def ground_truth(self, until_ms: int | None = None) -> list[Interval]:
        """Labelled intervals from the start of the run to ``until_ms`` (default: now)."""
        until = wall_ms() if until_ms is None else until_ms
        until_s = self.start_s + (until - self.origin_ms) / 1000 * self.time_scale
        return self.market.scenario.intervals(
            until_s, start_s=self.start_s, origin_ms=self.origin_ms, time_scale=self.time_scale
        )

    def start(self) -> None:
        """Start ticking (idempotent); the origin is reset to now."""
        if self._task is None:
            self.origin_ms = wall_ms()
            self._task = asyncio.create_task(self._run(), name="simulate-market-clock")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def advance(self, now_ms: int) -> None:
        """Run every step due by wall time ``now_ms`` (the ticker calls this)."""
        ms_per_step = self.step_s / self.time_scale * 1000
        due = int((now_ms - self.origin_ms) / ms_per_step)
        if due - self._steps > MAX_CATCH_UP_STEPS:
            log.warning("market clock fell behind; skipping ahead", steps=due - self._steps)
            self._steps = due - MAX_CATCH_UP_STEPS
        phase = self.market.now.index
        while self._steps < due:
            self._steps += 1
            ts = self.origin_ms + round(self._steps * ms_per_step)
            prints = self.market.step(self.step_s, ts_ms=ts, span_ms=ms_per_step)
            if prints:
                self.prints.extend(prints)
                for listener in self._listeners:
                    listener(prints)
        now = self.market.now
        if now.index != phase:
            label = now.phase.label
            log.info(
                "scenario phase",
                scenario=self.market.scenario.name,
                phase=now.phase.name,
                regime=label.regime.value,
                side=label.side,
                assets=list(label.assets),
                cycle=now.cycle,
            )

    async def _run(self) -> None:
        interval = min(0.1, max(0.005, self.step_s / self.time_scale))
        while True:
            self.advance(wall_ms())
            await asyncio.sleep(interval)
