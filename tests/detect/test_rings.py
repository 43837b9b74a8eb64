"""The bounded history of one instrument (:mod:`service.detect.rings`): what a read at a past
time returns, the open-interest peak, late samples and the warm start's history, checked
against a plain list of every event."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from service.detect.rings import (
    ACTIVE,
    CADENCE_GAPS,
    LIQ_LONG,
    LIQ_SHORT,
    MARK,
    OI_BASE,
    InstrumentHistory,
    Ring,
    make_rings,
    single,
)
from service.events import Liquidation, MarkPrice, OpenInterest, Side

T0 = 1_760_000_000_000
WINDOWS = [60.0, 300.0, 900.0, 3600.0]  # fine ring: 1 s buckets; coarse: 1 min


def history() -> InstrumentHistory:
    fine, coarse = make_rings(WINDOWS)
    return InstrumentHistory("sim", "BTCUSDT", "BTC", fine, coarse)


def _common(ms: int) -> dict[str, object]:
    return {"venue": "sim", "symbol": "BTCUSDT", "base": "BTC", "ts_ms": ms, "recv_ms": ms}


def oi(ms: int, base: float) -> OpenInterest:
    return OpenInterest(**_common(ms), oi_contracts=base, oi_base=base, oi_usd=base * 100)  # type: ignore[arg-type]


def mark(ms: int, price: float) -> MarkPrice:
    return MarkPrice(**_common(ms), mark_price=price, index_price=price)  # type: ignore[arg-type]


def liq(ms: int, side: Side, usd: float) -> Liquidation:
    return Liquidation(
        **_common(ms),  # type: ignore[arg-type]
        side=side,
        price=100.0,
        quantity=usd / 100,
        quantity_base=usd / 100,
        notional_usd=usd,
        sampled=False,
    )


def test_the_rings_are_sized_for_the_windows() -> None:
    fine, coarse = make_rings(WINDOWS)
    assert (fine.res_ms, coarse.res_ms) == (1000, 60_000)
    assert fine.cap * fine.res_ms >= 300_000 * 1.25  # the longest fine window, and some
    assert coarse.cap * coarse.res_ms >= 3_600_000 * 1.25
    _, day = make_rings([*WINDOWS, 86_400.0])
    assert day.res_ms == 120_000  # at most about 1,000 buckets per longest window
    assert day.cap <= 1000


def test_a_read_at_a_past_time_is_the_value_at_the_end_of_its_bucket() -> None:
    h = history()
    h.add_open_interest(oi(T0, 1000.0))
    h.add_open_interest(oi(T0 + 1500, 1010.0))  # the same second as the next one
    h.add_open_interest(oi(T0 + 1900, 1020.0))
    h.add_open_interest(oi(T0 + 5000, 1030.0))
    assert h.at(OI_BASE, T0 + 200) == 1000.0
    assert h.at(OI_BASE, T0 + 1100) == 1020.0  # the last of its bucket
    assert h.at(OI_BASE, T0 + 3000) == 1020.0  # a quiet second carries the state forward
    assert h.at(OI_BASE, T0 + 5000) == 1030.0  # the newest bucket: the running state
    assert h.at(OI_BASE, T0 + 999_999) == 1030.0  # later still
    assert h.at(OI_BASE, T0 - 60_000) == 1000.0  # before the first value: the first
    assert math.isnan(h.at(MARK, T0))  # never seen


def test_liquidations_are_running_totals_by_side_and_active_seconds() -> None:
    h = history()
    h.add_mark(mark(T0, 100.0))
    for ms, side, usd in [(T0 + 100, Side.LONG, 5.0), (T0 + 200, Side.LONG, 7.0),
                          (T0 + 1100, Side.SHORT, 3.0), (T0 + 4000, Side.LONG, 1.0)]:  # fmt: skip
        h.add_liquidation(liq(ms, side, usd))
    assert (h.state[LIQ_LONG], h.state[LIQ_SHORT], h.state[ACTIVE]) == (13.0, 3.0, 3.0)
    # a window (T0 + 1000, now]: a difference of two totals
    assert h.state[LIQ_LONG] - h.at(LIQ_LONG, T0 + 500) == 1.0
    assert h.state[ACTIVE] - h.at(ACTIVE, T0 + 500) == 2.0
    # the largest single bucket since T0: the first second's 12
    assert h.max_bucket(T0 - 1000, fine=True) == 12.0


def test_an_older_sample_is_dropped_and_a_late_one_rewrites_the_closed_buckets() -> None:
    h = history()
    h.add_mark(mark(T0, 100.0))
    h.add_open_interest(oi(T0, 1000.0))
    h.add_mark(mark(T0 + 10_000, 101.0))
    h.add_open_interest(oi(T0 + 8000, 990.0))  # polled, stamped before the newest mark
    assert h.at(OI_BASE, T0 + 8500) == 990.0
    assert h.at(OI_BASE, T0 + 7500) == 1000.0
    h.add_open_interest(oi(T0 + 6000, 1100.0))  # older than the field's newest: dropped
    assert h.state[OI_BASE] == 990.0
    assert h.at(OI_BASE, T0 + 6500) == 1000.0


@given(
    st.integers(0, 5000), st.integers(0, 5000), st.integers(1, 40), st.floats(-1e6, 1e6)
)  # fmt: skip
def test_a_late_level_rewrites_the_same_buckets_as_one_write_each(
    head: int, back: int, cap: int, value: float
) -> None:
    """The slice writes of a late level (wrapping at the ring's end) set the buckets a loop of
    single writes sets: from the sample's bucket (or the oldest kept) to the head, excluded."""
    ring = Ring(1000, cap)
    expected = Ring(1000, cap)
    for r in (ring, expected):
        r.head = head
        for col in r.cols:
            for i in range(cap):
                col[i] = i
    since_ms = max(0, head - back) * 1000 + 17
    ring.rewrite(MARK, since_ms, value)
    col = expected.cols[MARK]
    for b in range(max(since_ms // 1000, expected.oldest()), head):
        col[b % cap] = value
    assert [list(c) for c in ring.cols] == [list(c) for c in expected.cols]


@given(st.lists(st.tuples(st.integers(5, 900), st.floats(1.0, 1e6)), min_size=10, max_size=60))
def test_the_oi_peak_is_the_highest_over_the_coarse_ring_and_now(
    steps: list[tuple[int, float]],
) -> None:
    """Against the value at the end of every closed bucket still in the coarse ring (the
    last sample at or before it: a quiet feed's carried forward), and now. The samples
    span hours: the ring (78 minutes) forgets the oldest."""
    h = history()
    ms, samples = T0, []
    for gap_s, value in steps:
        ms += gap_s * 1000
        h.add_open_interest(oi(ms, value))
        samples.append((ms // h.coarse.res_ms, value))
    ends = []
    for bucket in range(h.coarse.oldest(), h.coarse.head):
        before = [v for b, v in samples if b <= bucket]
        if before:
            ends.append(before[-1])
    assert h.oi_peak() == max([*(single(v) for v in ends), h.now(OI_BASE)])  # the rings' precision


def test_the_warm_starts_history_fills_the_coarse_ring_before_the_live_data() -> None:
    h = history()
    h.add_open_interest(oi(T0, 800.0))
    points = [(T0 - k * 60_000, 900.0 + k, (900.0 + k) * 100, math.nan) for k in range(1, 50)]
    filled = h.seed_levels(points)
    assert filled > 40
    assert h.at(OI_BASE, T0 - 10 * 60_000) == 910.0
    assert h.seeded_from_ms == T0 - 49 * 60_000
    assert h.oi_peak() == 900.0 + 49  # the seeded history's highest (the oldest point)
    assert h.state[OI_BASE] == 800.0  # the live value is kept


def test_a_history_never_grows_past_its_rings_capacity() -> None:
    """Hours of every kind of event (three times the coarse ring's span): the rings' columns
    are the arrays allocated at the start, of the same length; the open interest's peaks and
    spacings stay within the ring and their own bound."""
    h = history()
    columns = [(col.buffer_info(), col.typecode) for r in (h.fine, h.coarse) for col in r.cols]
    nbytes = h.fine.nbytes() + h.coarse.nbytes()
    span_ms = h.coarse.cap * h.coarse.res_ms
    ms, k = T0, 0
    while ms < T0 + 3 * span_ms:
        k += 1
        h.add_mark(mark(ms, 100.0 + k % 13))
        h.add_open_interest(oi(ms, 1000.0 + (k * 7919) % 1000))  # no order: peaks pile up
        h.add_liquidation(liq(ms, Side.LONG if k % 2 else Side.SHORT, 50.0 * (k % 5)))
        ms += 7_000
    assert [(col.buffer_info(), col.typecode) for r in (h.fine, h.coarse) for col in r.cols] == (
        columns
    )
    assert h.fine.nbytes() + h.coarse.nbytes() == nbytes
    assert h.oi_peak() > 0
    assert h._peaks is not None
    assert len(h._peaks) <= h.coarse.cap
    assert len(h.oi_gaps) <= CADENCE_GAPS
    assert len(h.first_ms) <= 4
    assert len(h.last_ts) == 4


def test_the_rings_keep_levels_in_single_and_totals_in_double() -> None:
    h = history()
    h.add_mark(mark(T0, 100.1))
    h.add_liquidation(liq(T0, Side.LONG, 123_456_789.123))
    h.add_mark(mark(T0 + 5_000, 100.1))
    assert h.state[MARK] == 100.1  # the state as received
    assert h.at(MARK, T0) == single(100.1) == h.now(MARK) != 100.1  # the rings' precision
    assert h.at(LIQ_LONG, T0 + 1_000) == 123_456_789.123  # a total, exact
