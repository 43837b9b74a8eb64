"""The robust baseline (:mod:`service.detect.baseline`): median and MAD scale kept as
samples come and go, checked against a direct computation."""

from __future__ import annotations

import bisect
import statistics
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.detect.baseline import MAD_TO_SIGMA, TAIL_TO_SIGMA, Baseline, _kth_deviation

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
# ties are common in real data (an OI polled every minute: most changes are exactly 0)
samples = st.lists(st.one_of(finite, st.integers(-3, 3).map(float)), min_size=1, max_size=60)


@given(samples, st.one_of(finite, st.none()))
def test_the_kth_deviation_is_the_kth_of_all_deviations_sorted(
    values: list[float], center: float | None
) -> None:
    ordered = array("d", sorted(values))
    c = statistics.median(values) if center is None else center
    hi = bisect.bisect_left(ordered, c)
    expected = sorted([c - v for v in ordered[:hi]] + [v - c for v in ordered[hi:]])
    assert [_kth_deviation(ordered, hi, c, k) for k in range(len(values))] == expected


@given(st.lists(finite, min_size=20, max_size=200))
def test_median_and_scale_match_a_direct_computation(values: list[float]) -> None:
    """Capacity 50: the last 50 samples count, whatever came before."""
    b = Baseline(50, 5, fat_tails=True)
    for x in values:
        b.ready = False  # no winsorizing: compare with the raw samples
        b.add(x)
    kept = values[-50:]
    median = statistics.median(kept)
    devs = sorted(abs(x - median) for x in kept)
    scale = max(MAD_TO_SIGMA * statistics.median(devs),
                devs[min(len(kept) - 1, int(0.9 * len(kept)))] / TAIL_TO_SIGMA)  # fmt: skip
    assert b.center() == pytest.approx(median)
    assert b.scale(0.0, 1.0) == pytest.approx(scale)


def test_a_baseline_answers_its_prior_until_ready() -> None:
    b = Baseline(10, 3, prior=1.5)
    b.add(10.0)
    b.add(12.0)
    assert not b.ready
    assert (b.center(), b.scale(0.2, 2.0), b.own_scale()) == (1.5, 0.4, None)
    b.add(11.0)
    assert b.ready
    assert b.center() == 11.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_a_single_precision_baseline_is_the_median_of_its_rounded_samples(
    values: list[float],
) -> None:
    b = Baseline(50, 1, fat_tails=True, typecode="f")
    for x in values:
        b.ready = False  # no winsorizing: compare with the samples
        b.add(x)
    kept = list(array("f", values[-50:]))
    assert b.center() == pytest.approx(statistics.median(kept))
    assert len(b) == len(kept)


def test_a_baseline_never_holds_more_than_its_capacity() -> None:
    """Many times its capacity, in both types: the samples, in order and sorted, stay at
    the capacity, and the arrays stop growing once full."""
    for typecode in ("d", "f"):
        b = Baseline(288, 20, fat_tails=True, typecode=typecode)
        for k in range(288):
            b.add(float(k % 37))
        full = (b._values.buffer_info(), b._sorted.buffer_info()[1])
        for k in range(5 * 288):
            b.add(float((k * 7919) % 1000) / 10)
        assert len(b) == len(b._sorted) == 288
        assert b._values.buffer_info() == full[0]  # written in place, never reallocated
        assert b._sorted.buffer_info()[1] == full[1]
