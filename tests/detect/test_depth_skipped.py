"""Book depth reaches the detector's hand-off, and the detector leaves it to the API and the
metrics (not a feature yet): it neither tracks an instrument nor changes a score."""

from __future__ import annotations

from tape import T0_MS, Tape

from service.config import DetectorSettings
from service.detect.factory import make_model
from service.events import BookDepth, HandoffEvent


def _depth(symbol: str, ts_ms: int, usd: float) -> BookDepth:
    return BookDepth(
        venue="bybit", symbol=symbol, base=symbol.removesuffix("USDT"), ts_ms=ts_ms,
        recv_ms=ts_ms, mid=50_000.0, bid_usd_0p5=usd, bid_usd_1=usd, bid_usd_2=usd,
        ask_usd_0p5=usd, ask_usd_1=usd, ask_usd_2=usd, bid_reach_pct=0.3, ask_reach_pct=0.3,
    )  # fmt: skip


def test_book_depth_neither_tracks_an_instrument_nor_moves_a_score() -> None:
    settings = DetectorSettings(burn_in_samples=0)
    with_depth, without = make_model(settings), make_model(settings)
    tape = Tape(venue="bybit")
    events: list[HandoffEvent] = []
    for i in range(0, 600, 5):
        events += [tape.mark(i, 50_000.0), tape.oi(i, 10_000.0, 50_000.0)]
    t_ms = T0_MS + 600_000
    depths = [_depth("BTCUSDT", t_ms - 1000 * k, 1e6 / (k + 1)) for k in range(30, 0, -1)]
    with_depth.update([*events, *depths, _depth("ETHUSDT", t_ms, 1e6)])
    without.update(events)
    [p] = with_depth.evaluate(t_ms).pressures  # BTCUSDT only: ETHUSDT has only a book
    [q] = without.evaluate(t_ms).pressures
    assert (p.symbol, p.score, p.state, p.features) == (q.symbol, q.score, q.state, q.features)
