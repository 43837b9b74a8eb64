"""History for the simulators' history endpoints: a calm past ending at the current market.

Venues serve open-interest history (5-minute points and coarser) and funding history (one
rate per settlement); the detector's warm start reads them at start-up. The simulated past
is a calm random walk walked *backwards* from the market's current open interest and mark,
so the last point joins the live data without a jump. Each step's noise is drawn from a
``random.Random`` seeded with the symbol and the step's time bucket, so two requests for
overlapping spans agree on their common points (as long as the market has not moved a
bucket further). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final

from .scenario import BASELINE_FUNDING_8H

STEP_MS: Final = 300_000
KEPT_MS: Final = 30 * 86_400_000
"""Open interest older than this is not served (Binance keeps 30 days of it)."""
FUNDING_KEPT_MS: Final = 365 * 86_400_000
OI_NOISE_PER_STEP: Final = 0.004 / 100 * math.sqrt(300)
"""The calm drift's OI noise (0.004 %/sqrt(s)) over one 5-minute step."""
PRICE_NOISE_PER_STEP: Final = 0.015 / 100 * math.sqrt(300)
FUNDING_NOISE_8H: Final = 0.000005
PERIODS_MS: Final = {
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}
"""Binance's period names (Bybit's ``5min``... and OKX's ``5m``, ``1H``... map onto these)."""


@dataclass(frozen=True, slots=True)
class OiPoint:
    ts_ms: int
    oi_base: float
    mark: float

    @property
    def oi_usd(self) -> float:
        return self.oi_base * self.mark


def _rng(symbol: str, bucket: int) -> random.Random:
    return random.Random(f"{symbol}:{bucket}")


def oi_history(
    symbol: str,
    oi_base_now: float,
    mark_now: float,
    now_ms: int,
    start_ms: int,
    end_ms: int,
    period_ms: int = STEP_MS,
) -> list[OiPoint]:
    """Points every ``period_ms`` (on its grid, before ``now_ms``) in ``[start_ms,
    end_ms]`` and the last :data:`KEPT_MS`, oldest first."""
    last = (min(end_ms, now_ms - 1) // period_ms) * period_ms
    first = -(-max(start_ms, now_ms - KEPT_MS) // period_ms) * period_ms
    if last < first:
        return []
    now_step = now_ms // STEP_MS
    oi, mark = math.log(oi_base_now), math.log(mark_now)
    points: list[OiPoint] = []
    step = now_step
    for ts in range(last, first - 1, -period_ms):
        target = ts // STEP_MS
        while step > target:  # undo one step of the walk
            rng = _rng(symbol, step)
            oi -= OI_NOISE_PER_STEP * rng.gauss()
            mark -= PRICE_NOISE_PER_STEP * rng.gauss()
            step -= 1
        points.append(OiPoint(ts, math.exp(oi), math.exp(mark)))
    points.reverse()
    return points


def funding_history(
    symbol: str, interval_h: float, now_ms: int, start_ms: int, end_ms: int
) -> list[tuple[int, float]]:
    """``(funding_time_ms, rate per interval)`` at each settlement in ``[start_ms, end_ms]``
    before ``now_ms``, oldest first: the base rate (0.01 % per 8 h, pro rata) with a little
    noise."""
    every = int(interval_h * 3_600_000)
    last = (min(end_ms, now_ms - 1) // every) * every
    first = -(-max(start_ms, now_ms - FUNDING_KEPT_MS) // every) * every
    base = BASELINE_FUNDING_8H * interval_h / 8.0
    return [
        (ts, base + FUNDING_NOISE_8H * interval_h / 8.0 * _rng(symbol, ts).gauss())
        for ts in range(first, last + 1, every)
    ]
