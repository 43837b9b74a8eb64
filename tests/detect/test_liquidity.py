"""The top of book beside the score (``service.detect.liquidity``): minute means against
their own baselines, fresh figures only, reasons for a widening spread and a thinning top."""

from __future__ import annotations

import gc
import sys
from array import array

import pytest
from tape import T0_MS, Tape

from service.config import DetectorSettings
from service.detect.factory import make_model
from service.detect.liquidity import (
    FRESH_MS,
    MINUTE_MS,
    InstrumentLiquidity,
    liquidity_features,
    liquidity_reasons,
)
from service.detect.stress import Figure
from service.events import BookTop, HandoffEvent, Volume, spread_bp
from service.scores import State

T0 = 1_780_000_020_000 - 1_780_000_020_000 % MINUTE_MS


def book(ts_ms: int, spread: float = 1.0, top_usd: float = 1e6) -> BookTop:
    """A book around 100 with ``spread`` bp and ``top_usd`` split evenly between the sides."""
    half = 100.0 * spread / 20_000
    bid, ask = 100.0 - half, 100.0 + half
    return BookTop(
        venue="bybit", symbol="BTCUSDT", base="BTC", ts_ms=ts_ms, recv_ms=ts_ms, bid_price=bid,
        ask_price=ask, bid_base=top_usd / 2 / bid, ask_base=top_usd / 2 / ask,
        bid_usd=top_usd / 2, ask_usd=top_usd / 2, spread_bp=spread_bp(bid, ask),
    )  # fmt: skip


def feed(liq: InstrumentLiquidity, minutes: int, start: int = T0, **kw: float) -> int:
    """One book a second for ``minutes``, alternating a little around ``kw``; the next ms."""
    ts = start
    for i in range(minutes * 60):
        wobble = 1.0 + (0.05 if i % 2 else -0.05)
        spread = kw.get("spread", 1.0) * wobble
        liq.add(book(ts, spread, kw.get("top_usd", 1e6) * wobble))
        ts += 1000
    return ts


def test_no_figures_before_a_book_and_none_once_it_is_stale() -> None:
    assert liquidity_features(None, T0) == {}
    liq = InstrumentLiquidity()
    liq.add(book(T0, 2.0, 5e5))
    features = liquidity_features(liq, T0 + 10)
    assert features["spread_bp"] == pytest.approx(2.0)
    assert features["book_top_usd"] == pytest.approx(5e5)
    assert features["spread_z"] is None  # no baseline yet
    assert liquidity_features(liq, T0 + FRESH_MS + 1) == {}


def test_a_widening_spread_and_a_thinning_top_stand_out_of_their_own_minutes() -> None:
    liq = InstrumentLiquidity()
    ts = feed(liq, 30)  # half an hour of a calm book: 1 bp, $1M
    calm = liquidity_features(liq, ts)
    assert calm["spread_z"] is not None
    assert abs(calm["spread_z"]) < 3
    assert liquidity_reasons(liq, ts) == []
    ts = feed(liq, 2, start=ts, spread=8.0, top_usd=2e5)  # the book widens and thins
    liq.add(book(ts, 8.0, 2e5))  # a book of the next minute closes the last one
    features = liquidity_features(liq, ts)
    assert features["spread_z"] >= 3
    assert features["book_top_z"] <= -3
    reasons = liquidity_reasons(liq, ts)
    assert reasons[0].startswith("spread 8.0 bp over 1m (z +")
    assert reasons[0].endswith("): widening")
    assert reasons[1].startswith("top of book $200k over 1m (z -")
    assert reasons[1].endswith("): thinning")


def test_repeats_and_late_books_change_nothing() -> None:
    liq = InstrumentLiquidity()
    ts = feed(liq, 25)
    before = liquidity_features(liq, ts)
    liq.add(book(ts - 1000, 50.0, 1.0))  # older than the newest: ignored
    liq.add(book(T0, 50.0, 1.0))
    assert liquidity_features(liq, ts) == before


def test_the_model_reports_the_book_and_a_book_alone_is_no_instrument() -> None:
    model = make_model(DetectorSettings(burn_in_samples=0))
    tape = Tape(venue="bybit")
    events: list[HandoffEvent] = []
    for i in range(0, 600, 5):
        events += [tape.mark(i, 50_000.0), tape.oi(i, 10_000.0, 50_000.0)]
    t_ms = T0_MS + 600_000
    lone = book(t_ms)
    lone_eth = BookTop(**{**{f: getattr(lone, f) for f in lone.__struct_fields__},
                          "symbol": "ETHUSDT", "base": "ETH"})  # fmt: skip
    model.update([*events, book(t_ms - 1000, 3.0, 4e5), lone_eth])
    out = model.evaluate(t_ms)
    [p] = out.pressures  # BTCUSDT only: ETHUSDT has a book but no market data
    assert p.symbol == "BTCUSDT"
    assert p.state is State.CALM
    assert p.features["spread_bp"] == pytest.approx(3.0)
    assert p.features["book_top_usd"] == pytest.approx(4e5)
    assert p.features["spread_z"] is None
    assert not any("spread" in r or "top of book" in r for r in p.reasons)  # calm: none


def volume(ts_ms: int, buy_usd: float, sell_usd: float) -> Volume:
    return Volume(
        venue="bybit", symbol="BTCUSDT", base="BTC", ts_ms=ts_ms, recv_ms=ts_ms + 1500,
        taker_buy_base=buy_usd / 100, taker_buy_usd=buy_usd, taker_sell_base=sell_usd / 100,
        taker_sell_usd=sell_usd, trades=2,
    )  # fmt: skip


def test_the_last_minutes_volume_is_summed_by_taker_side_and_goes_stale() -> None:
    liq = InstrumentLiquidity()
    for i in range(90):  # a second of $1,000 bought and $500 sold, for 90 s
        liq.add_volume(volume(T0 + i * 1000, 1000.0, 500.0))
    now = T0 + 90_000
    features = liquidity_features(liq, now)
    assert features["volume_1m_buy_usd"] == 60 * 1000.0  # the seconds within the minute
    assert features["volume_1m_sell_usd"] == 60 * 500.0
    assert features["volume_z"] is None  # one complete minute: no baseline yet
    assert "spread_bp" not in features  # no book: only the volume's figures
    assert liquidity_features(liq, T0 + 89_000 + FRESH_MS + 1) == {}


def test_the_tape_keeps_a_minute_of_seconds_as_numbers_not_events() -> None:
    """A whole market's minute of seconds is 180,000 of them: the tape keeps each as three
    numbers (about 24 bytes), not its ``Volume``, and no more than a minute's; late and
    repeated seconds change nothing, and a gap leaves only what is within the minute."""
    liq = InstrumentLiquidity()
    for i in range(600):  # ten minutes of seconds, 1 + i % 7 thousand bought, i sold
        liq.add_volume(volume(T0 + i * 1000, 1000.0 * (1 + i % 7), float(i)))
    liq.add_volume(volume(T0 + 598_000, 1e9, 1e9))  # late: ignored
    liq.add_volume(volume(T0 + 599_000, 1e9, 1e9))  # a repeat: ignored
    tape = liq.tape
    assert tape is not None
    assert list(tape.ts) == [T0 + i * 1000 for i in range(540, 600)]
    referents = [r for r in gc.get_referents(tape) if not isinstance(r, Figure | type)]
    assert all(isinstance(r, array | int | float) for r in referents)  # no container of events
    held = sum(sys.getsizeof(r) for r in referents if isinstance(r, array))
    assert held < 2_500
    now = T0 + 599_500
    within = [i for i in range(600) if T0 + i * 1000 >= now - MINUTE_MS]
    assert tape.last_minute(now) == (
        sum(1000.0 * (1 + i % 7) for i in within),
        sum(float(i) for i in within),
    )
    liq.add_volume(volume(T0 + 650_000, 5.0, 6.0))  # 51 s later: the seconds before 590 s leave
    assert list(tape.ts) == [T0 + i * 1000 for i in range(591, 600)] + [T0 + 650_000]
    assert tape.last_minute(T0 + 650_000) == (
        sum(1000.0 * (1 + i % 7) for i in range(591, 600)) + 5.0,
        sum(float(i) for i in range(591, 600)) + 6.0,
    )


def test_volume_drying_up_stands_out_of_its_own_minutes_and_gives_a_reason() -> None:
    liq = InstrumentLiquidity()
    ts = T0
    for minute in range(40):  # forty calm minutes of about $90k a minute
        usd = 1500.0 * (1.1 if minute % 2 else 0.9)
        for _ in range(60):
            liq.add_volume(volume(ts, usd / 2, usd / 2))
            ts += 1000
    calm = liquidity_features(liq, ts)
    assert calm["volume_z"] is not None
    assert abs(calm["volume_z"]) < 3
    for _ in range(60):  # a minute at a twentieth of it
        liq.add_volume(volume(ts, 37.5, 37.5))
        ts += 1000
    liq.add_volume(volume(ts, 37.5, 37.5))  # the next minute's first second samples it
    dry = liquidity_features(liq, ts + 10)
    assert dry["volume_z"] is not None
    assert dry["volume_z"] <= -3
    (reason,) = liquidity_reasons(liq, ts + 10)
    assert reason.startswith("traded $4k over 1m")
    assert reason.endswith("volume drying up")


def test_minutes_without_a_trade_count_as_none_traded() -> None:
    liq = InstrumentLiquidity()
    liq.add_volume(volume(T0, 100.0, 0.0))
    liq.add_volume(volume(T0 + 3 * MINUTE_MS, 100.0, 0.0))  # two empty minutes between
    tape = liq.tape
    assert tape is not None
    assert tape.figure.ts_ms == T0 + 2 * MINUTE_MS  # T0's minute, then two of none
    assert tape.figure.value == 0.0


def test_the_model_reports_volume_beside_the_score_and_volume_alone_is_no_instrument() -> None:
    model = make_model(DetectorSettings(burn_in_samples=0))
    tape = Tape(venue="bybit")
    events: list[HandoffEvent] = []
    for i in range(0, 600, 5):
        events += [tape.mark(i, 50_000.0), tape.oi(i, 10_000.0, 50_000.0)]
    t_ms = T0_MS + 600_000
    lone = volume(t_ms - 2000, 7.0, 8.0)
    lone_eth = Volume(**{**{f: getattr(lone, f) for f in lone.__struct_fields__},
                         "symbol": "ETHUSDT", "base": "ETH"})  # fmt: skip
    model.update([*events, volume(t_ms - 3000, 1e5, 2e5), lone, lone_eth])
    [p] = model.evaluate(t_ms).pressures  # ETHUSDT: volume but no market data
    assert p.symbol == "BTCUSDT"
    assert p.state is State.CALM
    assert p.features["volume_1m_buy_usd"] == pytest.approx(1e5 + 7.0)
    assert p.features["volume_1m_sell_usd"] == pytest.approx(2e5 + 8.0)
    assert "spread_bp" not in p.features  # no book sent
