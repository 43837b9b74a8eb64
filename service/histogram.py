"""A histogram kept in memory and exported at scrape time (Prometheus semantics, pure)."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field


@dataclass(slots=True)
class Histogram:
    """Counts per bucket of ``bounds`` (upper bounds, increasing), cumulative at export."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    count: int = 0
    sum_s: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum_s += seconds
        i = bisect.bisect_left(self.bounds, seconds)
        if i < len(self.counts):
            self.counts[i] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, ``+Inf`` last, as an exposition wants them."""
        running = list(itertools.accumulate(self.counts))
        pairs = [(f"{le:g}", n) for le, n in zip(self.bounds, running, strict=True)]
        return [*pairs, ("+Inf", self.count)]
