"""Traded volume per instrument and second (service.venues._volume): when a second closes, and
what it sums."""

from __future__ import annotations

import pytest

from service.venues._volume import CLOSE_AFTER_MS, ID_WINDOW_S, MAX_AHEAD_MS, PRINT_AHEAD, Volumes
from service.venues.base import Instrument

LINEAR = Instrument("v", "BTCUSDT", "BTC", "USDT", linear=True)
INVERSE = Instrument("v", "BTCUSD", "BTC", "USD", linear=False, contract_size=100.0)
T0 = 1_780_000_000_000  # a second's start


def test_an_instruments_second_closes_at_its_next_seconds_print() -> None:
    v = Volumes("v")
    assert v.add(LINEAR, T0 + 10, True, 1.0, 100.0, recv_ms=T0 + 20) is None
    assert v.add(LINEAR, T0 + 999, False, 2.0, 101.0, recv_ms=T0 + 999) is None
    closed = v.add(LINEAR, T0 + 1_000, True, 3.0, 102.0, recv_ms=T0 + 1_005)
    assert closed is not None
    assert (closed.ts_ms, closed.recv_ms, closed.trades) == (T0, T0 + 1_005, 2)
    assert (closed.taker_buy_base, closed.taker_buy_usd) == (1.0, 100.0)
    assert (closed.taker_sell_base, closed.taker_sell_usd) == (2.0, 202.0)


def test_seconds_close_by_the_receive_clock_one_check_a_frame() -> None:
    v = Volumes("v")
    v.add(LINEAR, T0 + 500, True, 1.0, 100.0, recv_ms=T0 + 600)
    v.add(INVERSE, T0 + 1_500, False, 10.0, 50_000.0, recv_ms=T0 + 1_600)
    assert v.next_due_ms == T0 + 1_000 + CLOSE_AFTER_MS
    assert v.due(T0 + 1_999) == []
    (btc,) = v.due(T0 + 2_000)  # LINEAR's second ended 1 s ago; INVERSE's is still open
    assert btc.symbol == "BTCUSDT"
    assert v.next_due_ms == T0 + 2_000 + CLOSE_AFTER_MS
    (inv,) = v.due(v.next_due_ms)
    assert (inv.symbol, inv.ts_ms) == ("BTCUSD", T0 + 1_000)
    assert inv.taker_sell_usd == 1_000.0  # 10 contracts of 100 USD
    assert inv.taker_sell_base == pytest.approx(1_000.0 / 50_000.0)
    assert v.due(T0 + 10_000) == []
    assert v.flush(T0 + 10_000) == []


def test_a_late_print_counts_in_the_next_second_so_a_second_is_reported_once() -> None:
    v = Volumes("v")
    v.add(LINEAR, T0, True, 1.0, 100.0, recv_ms=T0)
    (first,) = v.due(T0 + 1_000 + CLOSE_AFTER_MS)
    assert first.ts_ms == T0
    v.add(LINEAR, T0 + 900, True, 5.0, 100.0, recv_ms=T0 + 2_100)  # its second was reported
    (late,) = v.flush(T0 + 2_200)
    assert (late.ts_ms, late.taker_buy_base) == (T0 + 1_000, 5.0)


def test_an_out_of_order_print_counts_in_the_open_second() -> None:
    v = Volumes("v")
    v.add(LINEAR, T0 + 1_100, True, 1.0, 100.0, recv_ms=T0 + 1_100)
    assert v.add(LINEAR, T0 + 900, False, 1.0, 100.0, recv_ms=T0 + 1_110) is None
    (vol,) = v.flush(T0 + 1_200)
    assert (vol.ts_ms, vol.trades, vol.taker_sell_base) == (T0 + 1_000, 2, 1.0)


def test_a_trade_id_counts_once_per_instrument_and_is_forgotten_after_the_window() -> None:
    v = Volumes("v")
    v.add(LINEAR, T0, True, 1.0, 100.0, recv_ms=T0, trade_id="7")
    v.add(LINEAR, T0 + 5, True, 1.0, 100.0, recv_ms=T0 + 5, trade_id="7")  # again: dropped
    v.add(INVERSE, T0 + 5, True, 100.0, 50_000.0, recv_ms=T0 + 5, trade_id="7")  # not its id
    v.add(LINEAR, T0 + 6, False, 2.0, 100.0, recv_ms=T0 + 6)  # no id: counted
    assert v.duplicates == 1
    linear, inverse = sorted(v.flush(T0 + 10), key=lambda e: e.symbol, reverse=True)
    assert (linear.symbol, linear.trades, linear.taker_buy_base) == ("BTCUSDT", 2, 1.0)
    assert inverse.trades == 1
    # two generations later the id is forgotten (a venue does not reuse one that soon)
    later = T0 + 2 * ID_WINDOW_S * 1000 + 1_000
    v.add(LINEAR, later, True, 1.0, 100.0, recv_ms=later, trade_id="x")  # a new generation
    v.add(LINEAR, later + 1, True, 1.0, 100.0, recv_ms=later + 1, trade_id="7")
    assert v.duplicates == 1


def test_a_print_ahead_of_the_receive_clock_is_dropped_counted_and_holds_nothing_open() -> None:
    drops: list[tuple[str, object]] = []
    v = Volumes("v", lambda reason, detail: drops.append((reason, detail)))
    assert v.add(LINEAR, T0 * 1000, True, 1.0, 100.0, recv_ms=T0) is None  # microseconds
    assert v.add(LINEAR, T0 + MAX_AHEAD_MS + 1, True, 1.0, 100.0, recv_ms=T0) is None
    assert v.add(LINEAR, T0 + MAX_AHEAD_MS, True, 2.0, 100.0, recv_ms=T0) is None  # kept
    v.add(LINEAR, T0 + 10, False, 3.0, 100.0, recv_ms=T0 + 20)
    assert v.ahead == 2
    assert [r for r, _ in drops] == [PRINT_AHEAD, PRINT_AHEAD]
    (vol,) = v.flush(T0 + 30)
    assert (vol.trades, vol.taker_buy_base, vol.taker_sell_base) == (2, 2.0, 3.0)
