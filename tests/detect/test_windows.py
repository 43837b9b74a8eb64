from __future__ import annotations

from tape import T0_MS, Tape, ms

from service.detect.windows import RESOLUTION_MS, InstrumentWindow, LiquidationTape, Series
from service.events import Side

SPAN_MS = 60_000


def test_series_keeps_the_newest_sample_before_the_window_as_baseline() -> None:
    s = Series(SPAN_MS)
    for t in (0, 10, 20, 70, 80):
        s.add(ms(t), float(t))
    s.evict(ms(80) - SPAN_MS)  # window (20 s, 80 s]: 20 is the baseline, 0 and 10 are gone
    assert list(s.values) == [20.0, 70.0, 80.0]
    assert s.first == 20.0
    assert s.last == 80.0


def test_series_without_a_sample_before_the_window_starts_at_its_oldest() -> None:
    s = Series(SPAN_MS)
    s.add(ms(30), 1.0)
    s.add(ms(40), 2.0)
    s.evict(ms(40) - SPAN_MS)
    assert s.first == 1.0


def test_series_keeps_a_lone_old_sample_as_baseline() -> None:
    s = Series(SPAN_MS)
    s.add(ms(0), 5.0)
    s.evict(ms(500) - SPAN_MS)
    assert list(s.values) == [5.0]


def test_series_coalesces_samples_within_the_resolution() -> None:
    s = Series(SPAN_MS)
    s.add(T0_MS, 1.0)
    s.add(T0_MS + 400, 2.0)
    s.add(T0_MS + RESOLUTION_MS, 3.0)
    assert list(s.values) == [2.0, 3.0]
    assert list(s.ts) == [T0_MS + 400, T0_MS + RESOLUTION_MS]


def test_series_drops_samples_older_than_the_newest() -> None:
    s = Series(SPAN_MS)
    s.add(ms(10), 1.0)
    assert s.add(ms(5), 9.0) is False
    assert list(s.values) == [1.0]


def test_series_memory_is_bounded_at_any_event_rate() -> None:
    s = Series(SPAN_MS)
    for i in range(200_000):  # 1000 samples/s for 200 s
        s.add(T0_MS + i, float(i))
    assert len(s) <= SPAN_MS // RESOLUTION_MS + 2


def test_series_next_change_is_when_the_baseline_moves() -> None:
    s = Series(SPAN_MS)
    assert s.next_change_ms() is None
    s.add(ms(0), 1.0)
    assert s.next_change_ms() is None
    s.add(ms(10), 2.0)
    assert s.next_change_ms() == ms(10) + SPAN_MS


def test_liquidation_tape_sums_by_side_and_evicts_by_time() -> None:
    tape = LiquidationTape(SPAN_MS)
    tape.add(ms(0), Side.LONG, 100.0)
    tape.add(ms(0.5), Side.LONG, 50.0)
    tape.add(ms(30), Side.SHORT, 20.0)
    assert (tape.long_usd, tape.long_n, tape.short_usd, tape.short_n) == (150.0, 2, 20.0, 1)
    tape.evict(ms(61) - SPAN_MS)
    assert (tape.long_usd, tape.long_n, tape.short_usd, tape.short_n) == (0.0, 0, 20.0, 1)
    tape.evict(ms(200) - SPAN_MS)
    assert (tape.long_usd, tape.short_usd, tape.short_n) == (0.0, 0.0, 0)


def test_liquidation_tape_resets_exactly_when_empty() -> None:
    tape = LiquidationTape(SPAN_MS)
    for i in range(1000):
        tape.add(ms(i * 0.1), Side.LONG, 0.1)
    tape.evict(ms(10_000))
    assert tape.long_usd == 0.0


def test_liquidation_tape_ignores_what_is_already_outside_the_window() -> None:
    tape = LiquidationTape(SPAN_MS)
    tape.add(ms(100), Side.LONG, 1.0)
    assert tape.add(ms(10), Side.LONG, 1.0) is False
    assert tape.add(ms(90), Side.SHORT, 2.0) is True  # late but inside: counted
    assert tape.short_usd == 2.0


def test_instrument_window_tracks_last_seen_per_feed_and_dirtiness() -> None:
    t = Tape()
    w = InstrumentWindow("sim", "BTCUSDT", "BTC", SPAN_MS)
    assert w.dirty is False
    w.add_mark(t.mark(1, 100.0))
    w.add_open_interest(t.oi(2, 10.0, 100.0))
    w.add_funding(t.funding(3, 1e-5))
    w.add_liquidation(t.liq(4, Side.LONG, 10.0, sampled=True))
    assert (w.mark_seen_ms, w.oi_seen_ms, w.funding_seen_ms, w.liq_seen_ms) == (
        ms(1),
        ms(2),
        ms(3),
        ms(4),
    )
    assert w.dirty is True
    assert w.liq_sampled is True
    assert w.oi_usd.last == 1000.0


def test_instrument_window_advance_evicts_every_series() -> None:
    t = Tape()
    w = InstrumentWindow("sim", "BTCUSDT", "BTC", SPAN_MS)
    for s in (0, 10, 20):
        w.add_mark(t.mark(s, 100.0 + s))
        w.add_open_interest(t.oi(s, 10.0 + s, 100.0))
    w.add_liquidation(t.liq(5, Side.SHORT, 7.0))
    assert w.next_change_ms() == ms(5) + SPAN_MS
    w.advance(ms(75))
    assert w.mark.first == 110.0
    assert w.oi_base.first == 20.0
    assert w.liq.short_usd == 0.0
