"""Positioning, basis and the insurance funds in the detector (service/detect/stress.py):
figures against their own baselines, reported as features and, when an instrument is not
calm, as reasons; never evidence, and a pool never becomes an instrument."""

from __future__ import annotations

import random

import pytest
from tape import T0_MS, Tape
from test_runner import SETTINGS, cascade

from service.config import DetectorSettings
from service.detect.factory import make_model
from service.detect.stress import (
    FRESH_MS,
    MIN_SAMPLES,
    Funds,
    InstrumentStress,
    stress_features,
    stress_reasons,
)
from service.events import Basis, HandoffEvent, InsuranceFund, Positioning, PositioningMetric
from service.scores import State
from service.validate import NON_FINITE, problem

VENUE = "sim"
FIVE_MIN = 300_000


def _accounts(ts_ms: int, long_share: float, symbol: str = "BTCUSDT") -> Positioning:
    return Positioning(
        venue=VENUE, symbol=symbol, base="BTC", ts_ms=ts_ms, recv_ms=ts_ms,
        metric=PositioningMetric.ACCOUNTS, period_s=300,
        long_short_ratio=long_share / (1 - long_share), long_share=long_share,
    )  # fmt: skip


def _basis(ts_ms: int, rate: float) -> Basis:
    return Basis(
        venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=ts_ms, recv_ms=ts_ms,
        contract="perpetual", futures_price=50_000 * (1 + rate), index_price=50_000.0,
        basis=50_000 * rate, basis_rate=rate, annualized_rate=None,
    )  # fmt: skip


def _fund(
    ts_ms: int, usd: float, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
) -> InsuranceFund:
    return InsuranceFund(
        venue=VENUE, symbol="USDT-pool", base="*", ts_ms=ts_ms, recv_ms=ts_ms, pool="USDT-pool",
        asset="USDT", balance=usd, balance_usd=usd, symbols=symbols,
    )  # fmt: skip


def _calm_btc() -> list[HandoffEvent]:
    """Ten minutes of BTCUSDT marks and open interest, flat, every 5 s."""
    tape = Tape(venue=VENUE)
    out: list[HandoffEvent] = []
    for i in range(0, 600, 5):
        out += [tape.mark(i, 50_000.0), tape.oi(i, 10_000.0, 50_000.0)]
    return out


def test_a_crowded_side_and_a_basis_collapse_stand_out_of_their_baselines() -> None:
    rng = random.Random(1)
    s = InstrumentStress()
    t = T0_MS
    for _ in range(MIN_SAMPLES + 10):  # calm: about even, basis about +1 bp
        t += FIVE_MIN
        s.add(_accounts(t, 0.5 + rng.uniform(-0.01, 0.01)))
        s.add(_basis(t, 1e-4 + rng.uniform(-2e-5, 2e-5)))
    assert stress_reasons(s, None, t) == []
    calm = stress_features(s, None, t)
    assert calm["long_share_z"] is not None
    assert abs(calm["long_share_z"]) < 3

    t += FIVE_MIN
    s.add(_accounts(t, 0.7))
    s.add(_basis(t, -20e-4))
    s.add(_accounts(t, 0.5))  # a repeat of the same period: ignored
    f = stress_features(s, None, t)
    assert f["long_share_accounts"] == 0.7
    assert f["long_share_z"] is not None
    assert f["long_share_z"] > 3
    assert f["basis_bp"] == -20.0
    reasons = stress_reasons(s, None, t)
    assert reasons[0].startswith("accounts 70% long (z +")
    assert reasons[1].startswith("basis -20.0 bp (z -")
    assert reasons[1].endswith("a collapse")
    assert stress_features(s, None, t + FRESH_MS + 1) == {}  # a poller that stopped


def test_a_draining_fund_is_the_pool_of_its_symbols_and_of_nothing_else() -> None:
    rng = random.Random(2)
    funds = Funds()
    t = T0_MS
    usd = 8e8
    for _ in range(MIN_SAMPLES + 20):
        t += FIVE_MIN
        usd *= 1 + rng.uniform(-0.001, 0.001)
        funds.add(_fund(t, usd))
    pool = funds.of("BTCUSDT", "BTC")
    assert pool is not None
    assert funds.of("ETHUSDT", "ETH") is pool
    assert funds.of("SOLUSDT", "SOL") is None  # not listed, and the pool has no base
    assert stress_reasons(None, pool, t) == []
    for _ in range(6):  # 30 % in half an hour
        t += FIVE_MIN
        usd *= 0.943
        funds.add(_fund(t, usd))
    f = stress_features(None, pool, t)
    assert f["insurance_change_1h_pct"] == pytest.approx(-29.6, abs=0.5)
    [reason] = stress_reasons(None, pool, t)
    assert reason.startswith("insurance fund USDT-pool USDT -29.")


def test_the_model_reports_the_figures_and_a_pool_never_becomes_an_instrument() -> None:
    model = make_model(DetectorSettings(burn_in_samples=0))
    events = _calm_btc()
    t_ms = T0_MS + 600_000
    events += [_accounts(t_ms, 0.55), _basis(t_ms, 2e-4), _fund(t_ms - 600_000, 8e8),
               _fund(t_ms, 7.9e8), _accounts(t_ms, 0.9, symbol="ETHUSDT")]  # fmt: skip
    model.update(events)
    out = model.evaluate(t_ms + 1000)
    [p] = out.pressures  # BTCUSDT only: ETH has no market data, the pool is no instrument
    assert p.symbol == "BTCUSDT"
    assert p.state is State.CALM
    assert p.features["long_share_accounts"] == 0.55
    assert p.features["long_share_z"] is None  # its baseline has one sample
    assert p.features["basis_bp"] == 2.0
    assert p.features["insurance_change_1h_pct"] == pytest.approx(-1.25)


def test_an_instrument_under_pressure_gives_the_reasons_in_its_state_and_transition() -> None:
    """Accounts crowded long (25 even polls, then 90 % long), then a long cascade: the
    crowded side is among the cascade's reasons, in the score and in the transition."""
    model = make_model(SETTINGS)
    tape = Tape(venue=VENUE, t0_ms=T0_MS)
    t_ms = T0_MS - 26 * FIVE_MIN
    polls = [_accounts(t_ms + i * FIVE_MIN, 0.5 + (i % 3 - 1) * 0.005) for i in range(25)]
    model.update([*polls, _accounts(T0_MS - FIVE_MIN, 0.9)])  # no market data yet: dropped
    model.update(cascade(tape, -10, 0))  # the instrument exists once its data arrives
    model.update([*polls, _accounts(T0_MS - FIVE_MIN, 0.9)])
    out = model.evaluate(T0_MS)
    [p] = out.pressures
    assert p.state is State.CASCADE
    assert any(r.startswith("accounts 90% long (z +") for r in p.reasons)
    [t] = out.transitions
    assert any(r.startswith("accounts 90% long") for r in t.reasons)


def test_stress_figures_that_are_not_numbers_are_dropped() -> None:
    bad = _accounts(T0_MS, 0.6)
    assert problem(bad) is None
    fields = {f: getattr(bad, f) for f in bad.__struct_fields__}
    assert problem(Positioning(**{**fields, "long_share": float("inf")})) == NON_FINITE


def test_a_detector_shard_takes_its_assets_figures_and_every_pool_but_returns_neither() -> None:
    """A shard's model applies the figures of the assets it owns and every insurance pool
    (a pool covers every shard's assets); what it returns, and so counts as its assets'
    events, is the market data alone."""
    model = make_model(DetectorSettings(burn_in_samples=0))
    market = _calm_btc()
    t_ms = T0_MS + 600_000
    stress = [_accounts(t_ms, 0.55), _fund(t_ms - 600_000, 8e8), _fund(t_ms, 7.9e8)]
    mine = model.update_shard(market, owns=lambda asset: asset == "BTC")
    assert mine == market
    assert model.update_shard(stress, owns=lambda asset: asset == "BTC") == []
    [p] = model.evaluate(t_ms + 1000).pressures
    assert p.features["long_share_accounts"] == 0.55
    assert p.features["insurance_change_1h_pct"] == pytest.approx(-1.25)

    other = make_model(DetectorSettings(burn_in_samples=0))  # a shard that owns nothing
    other.update_shard(market, owns=lambda asset: False)
    other.update_shard(stress, owns=lambda asset: False)
    assert other.evaluate(t_ms + 1000).pressures == []
