"""History a venue can serve for the detector's warm start: open interest and funding over a
past span, in plain points, within a request budget.

A venue with history sets ``Venue.has_history`` and implements ``Venue.fetch_history`` (its
own endpoints live in its module); :mod:`service.detect.warmup` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

FUNDING_POINTS: Final = 100
"""Funding settlements asked for per instrument."""

OiPoints = list[tuple[int, float, float]]
"""``(ts_ms, open interest in base units, in USD)``; USD 0.0 when the venue does not say."""
FundingPoints = list[tuple[int, float]]
"""``(ts_ms, funding rate per hour)``."""
History = tuple[OiPoints, FundingPoints]


class Exhausted(Exception):
    """The venue's request budget is spent."""


@dataclass(slots=True)
class Budget:
    """Requests a warm start may still make on one venue."""

    left: int
    used: int = 0

    def take(self) -> None:
        if self.left <= 0:
            raise Exhausted
        self.left -= 1
        self.used += 1


def number(x: Any) -> float:
    """A REST number (string or number; empty or missing as 0)."""
    return float(x) if x not in (None, "") else 0.0
