"""One instrument's score and candidate state (:mod:`service.detect.scoring`), on a real
history and baselines trained on a known calm: what each kind of move is called, which side
it names, and that the score is the evidence mapped through ``100 x / (1 + x)``."""

from __future__ import annotations

import math
import random

import pytest
from tape import Tape

from service.config import DetectorSettings
from service.detect.features import Baselines, liq_floor, snapshot
from service.detect.rings import InstrumentHistory, make_rings
from service.detect.scoring import EMPTY, Assessment, assess
from service.events import Side
from service.scores import State

T0 = 1_760_000_000_000
S = DetectorSettings()
TAPE = Tape(t0_ms=0)
"""Events at absolute times: ``TAPE.oi(ms / 1000, ...)``."""
SPANS = S.windows_s()
CALM_SIGMA_5M = 0.3
"""The calm's sigma of a 5 m change, in % (open interest and price alike)."""
HOUR_MS = 3_600_000


def calm_baselines() -> Baselines:
    """Baselines that learned a calm: changes with sigma ``CALM_SIGMA_5M x sqrt(w / 5 m)``
    around 0, and no liquidations."""
    b = Baselines.for_settings(S)
    rng = random.Random(7)
    for wb in b.windows:
        sigma = CALM_SIGMA_5M * math.sqrt(wb.span_s / S.window_s)
        for _ in range(wb.oi.capacity):
            wb.oi.add(rng.gauss(0, sigma))
            wb.ret.add(rng.gauss(0, sigma))
            wb.liq.add(math.log(liq_floor(S, wb.span_s)))
        for _ in range(60):
            wb.oi_noise.add(rng.gauss(0, sigma))
            wb.ret_noise.add(rng.gauss(0, sigma))
    return b


def instrument(
    *,
    oi_pct: float = 0.0,
    price_pct: float = 0.0,
    move_s: int = 300,
    liquidations: list[tuple[int, Side, float]] | None = None,
    sampled: bool = False,
) -> tuple[InstrumentHistory, int]:
    """Two flat hours at OI 10,000 and price 100, then OI and price moving linearly by
    ``oi_pct`` and ``price_pct`` over the last ``move_s`` seconds; ``liquidations`` are
    (seconds before the end, side, USD). Returns the history and the end."""
    fine, coarse = make_rings(SPANS)
    h = InstrumentHistory("sim", "BTCUSDT", "BTC", fine, coarse)
    end = T0 + 2 * HOUR_MS
    start = end - move_s * 1000
    liqs = sorted((end - ago * 1000, side, usd) for ago, side, usd in liquidations or [])
    for ms in range(T0, end + 1, 1000):
        k = max(0.0, (ms - start) / (move_s * 1000))
        price = 100.0 * (1 + price_pct / 100 * k)
        h.add_open_interest(TAPE.oi(ms / 1000, 10_000.0 * (1 + oi_pct / 100 * k), price))
        h.add_mark(TAPE.mark(ms / 1000, price))
        while liqs and liqs[0][0] <= ms:
            at, side, usd = liqs.pop(0)
            h.add_liquidation(TAPE.liq(at / 1000, side, usd, sampled=sampled))
    return h, end


def scored(h: InstrumentHistory, end: int, current: State = State.CALM) -> Assessment:
    b = calm_baselines()
    return assess(snapshot(h, b, end, S), b, S, current)


def test_a_flat_market_is_calm() -> None:
    a = scored(*instrument())
    assert a.candidate is State.CALM
    assert a.side is None
    assert a.score < S.enter_score


def test_the_score_is_the_evidence_through_x_over_one_plus_x() -> None:
    for kwargs in ({}, {"oi_pct": -1.0}, {"oi_pct": -4.0, "price_pct": -3.0}):
        a = scored(*instrument(**kwargs))  # type: ignore[arg-type]
        assert a.score == pytest.approx(round(100 * a.evidence / (1 + a.evidence), 1))
        assert a.evidence == max(a.x_unwind, a.x_build)


def test_open_interest_falling_with_the_price_is_longs_unwinding() -> None:
    a = scored(*instrument(oi_pct=-4.0, price_pct=-2.0))
    assert a.candidate is State.UNWINDING
    assert a.side is Side.LONG
    assert a.score >= S.enter_score
    assert a.burst == 0.0  # no liquidation: not a cascade
    assert a.features["confirm_price"] == 1.0  # the price moved with it
    assert any("OI" in r for r in a.reasons)


def test_open_interest_falling_while_the_price_rises_is_shorts_unwinding() -> None:
    a = scored(*instrument(oi_pct=-4.0, price_pct=2.0))
    assert a.candidate is State.UNWINDING
    assert a.side is Side.SHORT


def test_a_price_move_confirms_a_decline_that_alone_is_below_the_threshold() -> None:
    alone = scored(*instrument(oi_pct=-1.6))
    confirmed = scored(*instrument(oi_pct=-1.6, price_pct=-2.0))
    assert alone.candidate is State.CALM
    assert (alone.features["confirm_price"] or 0.0) < 0.1  # flat: the calm baseline's noise
    assert confirmed.candidate is State.UNWINDING
    assert confirmed.features["confirm_price"] == 1.0


def test_open_interest_building_with_the_price_is_longs_building() -> None:
    a = scored(*instrument(oi_pct=4.0, price_pct=2.0))
    assert a.candidate is State.BUILDING
    assert a.side is Side.LONG
    assert a.x_build >= 1.0 > a.x_unwind


def test_liquidations_that_dominate_a_decline_are_a_cascade_on_their_side() -> None:
    # OI -3 % in a minute ($30,000 of $1 M) while longs are liquidated for $24,000
    burst = [(ago, Side.LONG, 400.0) for ago in range(60)]
    a = scored(*instrument(oi_pct=-3.0, price_pct=-1.5, move_s=60, liquidations=burst))
    assert a.candidate is State.CASCADE
    assert a.side is Side.LONG
    assert a.side_strong
    assert a.burst >= 1.0
    assert a.forced_share is not None
    assert a.forced_share >= S.forced_share_cascade


def test_the_same_decline_without_liquidations_is_an_unwinding() -> None:
    a = scored(*instrument(oi_pct=-3.0, price_pct=-1.5, move_s=60))
    assert a.candidate is State.UNWINDING


def test_a_saturated_sampled_feed_during_a_fast_decline_is_a_cascade() -> None:
    # one small print a second, as a sampled feed sends in a cascade: totals are a lower
    # bound, the saturation is the evidence
    prints = [(ago, Side.LONG, 5.0) for ago in range(30)]
    a = scored(
        *instrument(oi_pct=-2.0, price_pct=-0.2, move_s=90, liquidations=prints, sampled=True)
    )
    assert a.candidate is State.CASCADE
    assert a.saturated
    assert a.reasons[0].startswith("sampled liquidation feed saturated")
    complete = scored(*instrument(oi_pct=-2.0, price_pct=-0.2, move_s=90, liquidations=prints))
    assert complete.candidate is State.UNWINDING  # the same prints, complete: small


def test_a_running_cascade_holds_on_a_lower_bar() -> None:
    burst = [(ago, Side.LONG, 100.0) for ago in range(60)]  # 20 % of the decline
    h, end = instrument(oi_pct=-3.0, price_pct=-1.5, move_s=60, liquidations=burst)
    entering = scored(h, end)
    holding = scored(h, end, current=State.CASCADE)
    assert entering.candidate is State.UNWINDING
    assert holding.candidate is State.CASCADE


def test_data_coarser_than_every_window_scores_nothing() -> None:
    fine, coarse = make_rings(SPANS)
    h = InstrumentHistory("sim", "BTCUSDT", "BTC", fine, coarse)
    for week in range(4):
        ms = T0 + week * 7 * 86_400_000
        h.add_open_interest(TAPE.oi(ms / 1000, 10_000.0 * (1 - 0.1 * week), 100.0))
        h.add_mark(TAPE.mark(ms / 1000, 100.0))
    assert scored(h, T0 + 3 * 7 * 86_400_000) is EMPTY
