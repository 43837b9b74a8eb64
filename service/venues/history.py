"""History a venue can serve for the detector's warm start: open interest and funding over a
past span, in plain points, within a request budget.

A venue with history sets ``Venue.has_history`` and implements ``Venue.fetch_history`` (its
own endpoints live in its module); :mod:`service.detect.warmup` drives it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from ..validate import TS_MAX_MS

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
    """A REST number (string or number; empty or missing as 0). Raises ``ValueError`` on
    anything else, NaN and infinities included: a warm start seeds the detector's state."""
    if x is None or x == "":
        return 0.0
    try:
        value = float(x)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError("number out of range") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def ms(x: Any) -> int:
    """A REST time in epoch milliseconds (an integer or its text). Raises ``ValueError`` on
    anything else, and on a time outside 1970-2100."""
    try:
        value = int(x)
    except (OverflowError, TypeError):
        raise ValueError("not a time in milliseconds") from None
    if not 0 <= value <= TS_MAX_MS:
        raise ValueError("time out of range")
    return value
