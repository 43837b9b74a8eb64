"""Robust baselines: the median and MAD of a feature's recent samples (pure).

A :class:`Baseline` keeps the last ``capacity`` samples of one feature (a compact float
array used as a ring) and, when a sample is added, recomputes its median and its scale
``1.4826 x MAD`` (the standard deviation for normal data, unmoved by outliers). A z-score is
``(x - median) / max(scale, floor)``: the floor keeps a feature that hardly moves (an open
interest polled every minute: most changes are exactly 0) from turning noise into alarms.

Until ``min_samples`` samples are in, the baseline answers its *prior*: median ``prior``
(usually 0) and scale ``prior_scale x floor``, a deliberately wide guess.

Samples are winsorized once the baseline is ready: a sample beyond ``median +- 4 scales`` is
stored at that bound, so an hour-long cascade shifts the baseline a little rather than
teaching it that cascades are normal, while a lasting change of regime still moves it.

Memory: at most ``capacity`` samples, twice (in order of arrival and sorted), in arrays that
grow as samples come.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Sequence
from typing import Final, Literal

MAD_TO_SIGMA: Final = 1.4826
WINSOR: Final = 4.0
TAIL_QUANTILE: Final = 0.9
TAIL_TO_SIGMA: Final = 1.6449
"""The 90th percentile of |x - median| is 1.645 sigmas for Gaussian data."""


_SINGLE = array("f", [0.0])


class Baseline:
    __slots__ = (
        "_median",
        "_pos",
        "_scale",
        "_sorted",
        "_values",
        "capacity",
        "fat_tails",
        "min_samples",
        "prior",
        "ready",
        "tail",
    )

    def __init__(
        self,
        capacity: int,
        min_samples: int,
        prior: float = 0.0,
        tail: int = 0,
        *,
        fat_tails: bool = False,
        typecode: Literal["d", "f"] = "d",
    ) -> None:
        """``tail`` > 0: the scale is the larger of all samples' and the newest ``tail``
        samples' (it rises at once when the noise does, and falls slowly). ``fat_tails``:
        the scale is also at least the 90th percentile's sigma (see :meth:`_refresh`).
        ``typecode``: the samples' array type, ``"d"`` (double) or ``"f"`` (single: half the
        memory, about 7 significant digits)."""
        self.capacity = capacity
        self.fat_tails = fat_tails
        self.min_samples = min(min_samples, capacity)
        self.prior = prior
        self.tail = tail
        self._values = array(typecode)
        self._sorted = array(typecode)
        """The same samples in order (kept sorted as they come and go)."""
        self._pos = 0
        self._median = prior
        self._scale = 0.0
        self.ready = self.min_samples <= 0
        """At least ``min_samples`` samples are in (samples only ever come in)."""

    def __len__(self) -> int:
        return len(self._values)

    def add(self, x: float) -> None:
        """Add one sample (winsorized once ready) and refresh the median and scale."""
        if x != x:  # nan
            return
        if self.ready and self._scale > 0:
            lo, hi = self._median - WINSOR * self._scale, self._median + WINSOR * self._scale
            x = lo if x < lo else hi if x > hi else x
        values, ordered = self._values, self._sorted
        if values.typecode == "f":  # as it is stored: the sorted copy's search finds it again
            _SINGLE[0] = x
            x = _SINGLE[0]
        if len(values) < self.capacity:
            values.append(x)
        else:
            del ordered[bisect.bisect_left(ordered, values[self._pos])]
            values[self._pos] = x
            self._pos = (self._pos + 1) % self.capacity
        bisect.insort(ordered, x)
        self.ready = len(values) >= self.min_samples
        self._refresh()

    def prepend(self, samples: list[float]) -> int:
        """Add older samples (a warm start) into the free capacity only; return how many."""
        room = self.capacity - len(self._values)
        older = [x for x in samples if x == x][-room:] if room > 0 else []
        if older:
            values = self._values[:0]  # the same type
            values.extend(older)
            self._values = values + self._values
            self._sorted = values[:0]
            self._sorted.extend(sorted(self._values))
            self._pos = 0
            self.ready = len(self._values) >= self.min_samples
            self._refresh()
        return len(older)

    def samples(self) -> array[float]:
        """The samples, oldest first (what :meth:`load` takes)."""
        values, pos = self._values, self._pos
        return values[pos:] + values[:pos]

    @property
    def typecode(self) -> str:
        """The samples' array type: ``"d"`` or ``"f"``."""
        return self._values.typecode

    def load(self, samples: array[float]) -> None:
        """Hold exactly ``samples`` (oldest first, at most ``capacity``; kept in this
        baseline's precision): a checkpoint's. The median and scales are recomputed from them
        as :meth:`add` computed them."""
        kept = samples[-self.capacity :] if len(samples) > self.capacity else samples
        self._values = array(self.typecode, kept)
        self._sorted = array(self.typecode, sorted(self._values))
        self._pos = 0
        self.ready = len(self._values) >= self.min_samples
        if self._values:
            self._refresh()
        else:
            self._median, self._scale = self.prior, 0.0

    def _refresh(self) -> None:
        values, ordered = self._values, self._sorted
        n = len(ordered)
        median = _median(ordered)
        self._median = median
        mid = n // 2
        hi = bisect.bisect_left(ordered, median)
        mad = _kth_deviation(ordered, hi, median, mid)
        if n % 2 == 0:
            mad = 0.5 * (_kth_deviation(ordered, hi, median, mid - 1) + mad)
        self._scale = MAD_TO_SIGMA * mad
        if self.fat_tails:
            # the larger of the MAD's sigma and the 90th percentile's: the same for Gaussian
            # noise, larger for the fat tails of real open interest (hourly changes of 3
            # MAD sigmas are common there, and must not read as 3-sigma events)
            q90 = min(n - 1, int(TAIL_QUANTILE * n))
            self._scale = max(self._scale, _kth_deviation(ordered, hi, median, q90) / TAIL_TO_SIGMA)
        if self.tail and len(values) >= self.tail:
            n, pos = len(values), self._pos  # ``pos`` is the oldest once the ring is full
            newest = [values[(pos - 1 - i) % n] for i in range(self.tail)]
            center = _median(sorted(newest))
            tail = MAD_TO_SIGMA * _median(sorted(abs(v - center) for v in newest))
            self._scale = max(self._scale, tail)

    def center(self) -> float:
        return self._median if self.ready else self.prior

    def scale(self, floor: float, prior_scale: float) -> float:
        """The robust sigma, at least ``floor``; ``prior_scale x floor`` until ready."""
        if not self.ready:
            return floor * prior_scale
        return self._scale if self._scale > floor else floor

    def own_scale(self) -> float | None:
        """The robust sigma of the samples (``None`` until ready)."""
        return self._scale if self.ready else None

    def z(self, x: float, floor: float, prior_scale: float) -> float:
        return (x - self.center()) / self.scale(floor, prior_scale)


def _kth_deviation(ordered: array[float], hi: int, center: float, k: int) -> float:
    """The ``k``-th smallest (from 0) of ``|x - center|`` over sorted ``ordered``, where
    ``hi`` is where ``center`` sorts in it. Both sides of the centre are already in order
    of deviation (left: ``center - ordered[hi - 1 - i]``, right: ``ordered[hi + j] -
    center``), so this is a selection from two sorted runs: a binary search on how many come
    from the left, O(log n) instead of building and sorting every deviation (a hot path:
    every sample added to every baseline)."""
    n_left, n_right = hi, len(ordered) - hi
    lo, top = max(0, k + 1 - n_right), min(k + 1, n_left)
    while lo < top:  # take i from the left, k + 1 - i from the right
        i = (lo + top) // 2
        t = k + 1 - i
        if t > 0 and ordered[hi + t - 1] - center > center - ordered[hi - 1 - i]:
            lo = i + 1  # the right's last taken exceeds the left's next: take more left
        else:
            top = i
    i, t = lo, k + 1 - lo
    left = center - ordered[hi - i] if i > 0 else -math.inf
    right = ordered[hi + t - 1] - center if t > 0 else -math.inf
    return left if left > right else right


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
