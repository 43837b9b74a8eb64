"""The top of book beside the score (``service.detect.liquidity``): minute means against
their own baselines, fresh figures only, reasons for a widening spread and a thinning top."""

from __future__ import annotations

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
from service.events import BookTop, HandoffEvent, spread_bp
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
