"""The simulated market follows its scenario, deterministically."""

from __future__ import annotations

import random

import pytest

from service.events import Side
from service.simulate.clock import MarketClock
from service.simulate.market import DEFAULT_SYMBOLS, LiquidationPrint, Market
from service.simulate.scenario import SCENARIOS

STEP = 0.1


def _run(market: Market, seconds: float) -> list[LiquidationPrint]:
    prints: list[LiquidationPrint] = []
    for _ in range(round(seconds / STEP)):
        prints.extend(market.step(STEP))
    return prints


def _oi_changes_per_minute(market: Market, seconds: float) -> dict[str, list[float]]:
    """Relative OI change of every symbol over each minute of the next ``seconds``."""
    out: dict[str, list[float]] = {s: [] for s in market.symbols}
    for _ in range(round(seconds / 60)):
        before = {s: market.oi_base(s) for s in market.symbols}
        _run(market, 60)
        for s in market.symbols:
            out[s].append(market.oi_base(s) / before[s] - 1)
    return out


def test_default_symbols_start_at_realistic_prices() -> None:
    m = Market(SCENARIOS["calm"])
    assert m.symbols == list(DEFAULT_SYMBOLS)
    assert m.mark("BTCUSDT") == 60_000
    assert m.mark("ETHUSDT") == 3_000
    assert all(0.1 <= m.mark(s) <= 1_000 for s in m.symbols if s not in ("BTCUSDT", "ETHUSDT"))
    q = m.quote("BTCUSDT")
    assert (q.base, q.funding_rate_8h, q.oi_base) == ("BTC", 0.0001, 80_000.0)


def test_same_seed_same_market_and_prints() -> None:
    a, b, c = (Market(SCENARIOS["long_unwind"], seed=s, start_s=15) for s in (3, 3, 4))
    pa, pb, pc = _run(a, 30), _run(b, 30), _run(c, 30)
    assert len(pa) > 100
    assert pa == pb
    assert a.quotes() == b.quotes()
    assert pa != pc
    assert a.quotes() != c.quotes()


@pytest.mark.parametrize("seed", range(4))
def test_calm_stays_calm(seed: int) -> None:
    m = Market(SCENARIOS["calm"], seed=seed)
    changes = _oi_changes_per_minute(m, 300)
    assert all(abs(x) <= 0.002 for xs in changes.values() for x in xs), changes
    assert all(abs(m.mark(s) / m.spec(s).price - 1) < 0.02 for s in m.symbols)
    prints = _run(m, 300)
    assert len(prints) < 0.05 * 300 * len(m.symbols)  # rare...
    assert max(p.notional_usd for p in prints) < 50_000  # ...and tiny
    sides = {p.side for p in prints}
    assert sides == {Side.LONG, Side.SHORT}


@pytest.mark.parametrize("seed", range(3))
def test_long_cascade_then_unwind_on_btc_and_eth(seed: int) -> None:
    m = Market(SCENARIOS["long_unwind"], seed=seed)
    _run(m, 20)
    start = {s: m.quote(s) for s in m.symbols}
    cascade = _run(m, 40)
    assert m.now.phase.name == "long_unwind"
    btc0, btc1 = start["BTCUSDT"], m.quote("BTCUSDT")
    oi_drop = 1 - btc1.oi_base / btc0.oi_base
    assert oi_drop > 0.03  # several % per minute
    assert btc1.mark < btc0.mark * 0.985
    assert 1 - m.oi_base("ETHUSDT") / start["ETHUSDT"].oi_base > 0.015
    assert abs(m.oi_base("SOLUSDT") / start["SOLUSDT"].oi_base - 1) < 0.002  # unaffected

    btc = [p for p in cascade if p.symbol == "BTCUSDT"]
    longs = sum(p.notional_usd for p in btc if p.side is Side.LONG)
    assert longs / sum(p.notional_usd for p in btc) > 0.99
    oi_drop_usd = (btc0.oi_base - btc1.oi_base) * btc1.mark
    assert 0.2 < longs / oi_drop_usd < 0.8  # forced: liquidations explain much of the drop
    assert all(p.price < btc1.mark * 1.05 and p.order_price < p.price for p in btc)

    before = m.quote("BTCUSDT")
    unwind = _run(m, 60)
    assert m.now.phase.name == "recovery"
    after = m.quote("BTCUSDT")
    assert 1 - after.oi_base / before.oi_base > 0.015  # OI still falling...
    liq_usd = sum(p.notional_usd for p in unwind if p.symbol == "BTCUSDT")
    assert liq_usd / ((before.oi_base - after.oi_base) * after.mark) < 0.05  # ...voluntarily
    assert after.funding_rate_8h < 0.0001


def test_short_squeeze_liquidates_shorts_while_price_rises_and_oi_falls() -> None:
    sc = SCENARIOS["short_squeeze"]
    m = Market(sc, seed=1)
    _run(m, 50)
    assert m.now.phase.name == "short_squeeze"
    before = m.quote("BTCUSDT")
    prints = [p for p in _run(m, 30) if p.symbol == "BTCUSDT"]
    after = m.quote("BTCUSDT")
    assert after.mark > before.mark * 1.015
    assert after.oi_base < before.oi_base * 0.985
    shorts = sum(p.notional_usd for p in prints if p.side is Side.SHORT)
    assert shorts / sum(p.notional_usd for p in prints) > 0.99
    assert all(p.order_price > p.price for p in prints if p.side is Side.SHORT)


def test_prints_are_stamped_within_their_step_and_sized_in_lots() -> None:
    m = Market(SCENARIOS["long_unwind"], seed=2, start_s=25)
    prints = m.step(1.0, ts_ms=10_000, span_ms=500)
    assert prints
    assert all(9_500 < p.ts_ms <= 10_000 for p in prints)
    assert [p.ts_ms for p in prints] == sorted(p.ts_ms for p in prints)
    for p in prints:
        lots = p.qty_base / m.spec(p.symbol).qty_step
        assert lots >= 1
        assert abs(lots - round(lots)) < 1e-6


def test_the_clock_steps_the_market_exactly_like_an_offline_run() -> None:
    clock = MarketClock(Market(SCENARIOS["long_unwind"], seed=5, start_s=20), time_scale=10.0)
    clock.origin_ms = 0
    clock.advance(1_000)  # 1 s of wall time at 10x: 100 steps of 0.1 s
    offline = Market(SCENARIOS["long_unwind"], seed=5, start_s=20)
    expected = _run(offline, 10)
    assert clock.market.quotes() == offline.quotes()
    assert len(clock.prints) == len(expected) > 0
    assert all(0 <= p.ts_ms <= 1_000 for p in clock.prints)
    assert [i.phase for i in clock.ground_truth(until_ms=5_000)] == ["long_cascade", "long_unwind"]


def test_unknown_symbols_are_refused() -> None:
    with pytest.raises(ValueError, match="FOOUSDT"):
        Market(SCENARIOS["calm"], symbols=["BTCUSDT", "FOOUSDT"])


def test_the_book_widens_and_thins_through_a_cascade_and_mends_after() -> None:
    m = Market(SCENARIOS["long_unwind"], seed=0)
    _run(m, 20)
    calm = m.quote("BTCUSDT")
    assert calm.spread_bp == pytest.approx(1.0)  # the calm book, untouched so far
    assert calm.depth == pytest.approx(1.0)
    _run(m, 40)  # the long cascade
    hit, untouched = m.quote("BTCUSDT"), m.quote("SOLUSDT")
    assert hit.spread_bp > 3 * calm.spread_bp
    assert hit.depth < 0.5
    assert untouched.spread_bp == pytest.approx(1.0)  # SOL is not in the cascade
    assert untouched.depth == pytest.approx(1.0)
    _run(m, 60)  # the voluntary unwind: slower than the cascade, the spread narrows again
    after = m.quote("BTCUSDT")
    assert calm.spread_bp < after.spread_bp < hit.spread_bp
    assert after.depth < 0.5  # while open interest keeps falling the book stays thin


def test_liquidity_adds_no_randomness_to_a_seed() -> None:
    """The prints and prices of a seed are those of the market before the book was modelled:
    a deterministic function of the phases, no draw from the seeded generator."""
    a = Market(SCENARIOS["long_unwind"], seed=5)
    prints = _run(a, 90)
    b = random.Random(5)
    m = Market(SCENARIOS["long_unwind"], seed=5)
    m._rng = b  # the same generator object the market draws from
    assert _run(m, 90) == prints
    assert b.getstate() == a._rng.getstate()
