"""A deterministic simulated derivatives market, venue-independent. Pure: no I/O, no clock.

One :class:`Market` holds, per perpetual, the mark and index price, the funding rate (per 8 h)
and the open interest in base coin, and moves them in :meth:`Market.step` according to the
current :class:`~service.simulate.scenario.Phase`. Randomness comes from one seeded
``random.Random``: the same scenario, seed, symbols and sequence of ``step`` calls always
produce the same market and the same liquidation prints.

Model, per step of ``dt`` scenario seconds, for an asset following drift ``d``:

* mark price: geometric drift ``d.price_pct_per_min`` plus Gaussian noise;
* open interest: geometric drift ``d.oi_pct_per_min`` plus smaller noise. It is *not*
  reduced by the liquidations: the scenario sets both, so that ground truth is what the
  scenario says;
* funding converges to ``d.funding_rate_8h`` (time constant 20 s); the premium of mark over
  index follows funding, so the index sits above the mark when funding turns negative;
* liquidations: a Poisson number of prints, log-normal notional, on ``d.liq_side`` (either
  side at random when ``None``), filled a little through the mark;
* liquidity: the top of book's spread (a multiple of :data:`CALM_SPREAD_BP`) and its size (a
  multiple of the venue's calm one) converge to the phase's targets
  (:func:`~.scenario.liquidity_targets`) with time constant :data:`LIQUIDITY_TAU_S`. No
  randomness: the prints and prices of a seed are the same as without it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ..events import Side
from .scenario import BASELINE_FUNDING_8H, Drift, PhaseAt, Scenario, liquidity_targets

FUNDING_TAU_S: Final = 20.0
PREMIUM_TAU_S: Final = 10.0
LIQUIDITY_TAU_S: Final = 30.0
CALM_SPREAD_BP: Final = 1.0
"""The calm spread of a simulated perpetual (a liquid one's, on the real venues: 0.1-2 bp)."""


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """A simulated perpetual and its starting state."""

    symbol: str
    base: str
    price: float
    oi_base: float
    qty_step: float
    """Quantity increment of a liquidation print, in base coin."""


DEFAULT_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSDT", "BTC", 60_000.0, 80_000.0, 0.001),
    SymbolSpec("ETHUSDT", "ETH", 3_000.0, 1_500_000.0, 0.001),
    SymbolSpec("BNBUSDT", "BNB", 550.0, 600_000.0, 0.01),
    SymbolSpec("SOLUSDT", "SOL", 150.0, 8_000_000.0, 1.0),
    SymbolSpec("XRPUSDT", "XRP", 0.6, 600_000_000.0, 0.1),
    SymbolSpec("DOGEUSDT", "DOGE", 0.15, 5_000_000_000.0, 1.0),
    SymbolSpec("ADAUSDT", "ADA", 0.45, 700_000_000.0, 1.0),
    SymbolSpec("LTCUSDT", "LTC", 80.0, 2_500_000.0, 0.001),
    SymbolSpec("LINKUSDT", "LINK", 15.0, 20_000_000.0, 0.01),
    SymbolSpec("DOTUSDT", "DOT", 6.0, 40_000_000.0, 0.1),
)
"""Ten liquid USDT perpetuals listed in the recorded Binance ``exchangeInfo``."""

DEFAULT_SYMBOLS: Final = tuple(s.symbol for s in DEFAULT_SPECS)


@dataclass(frozen=True, slots=True)
class LiquidationPrint:
    """One forced close, as the matching engine saw it (before any venue throttling)."""

    symbol: str
    base: str
    side: Side
    """Side of the *position* liquidated (a long is closed by a sell order)."""
    qty_base: float
    price: float
    """Average fill price."""
    order_price: float
    """The liquidation order's limit (bankruptcy) price, beyond the fill."""
    ts_ms: int

    @property
    def notional_usd(self) -> float:
        return self.qty_base * self.price


@dataclass(frozen=True, slots=True)
class Quote:
    """A snapshot of one perpetual."""

    symbol: str
    base: str
    mark: float
    index: float
    funding_rate_8h: float
    oi_base: float
    spread_bp: float = CALM_SPREAD_BP
    """The top of book's spread."""
    depth: float = 1.0
    """The size at the top of the book, as a multiple of the calm one."""


@dataclass(slots=True)
class _State:
    spec: SymbolSpec
    mark: float
    premium: float
    funding_rate_8h: float
    oi_base: float
    spread_mult: float = 1.0
    depth: float = 1.0


class Market:
    """The simulated market. Call :meth:`step` to advance it; read it with :meth:`quote`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        symbols: Iterable[str] | None = None,
        specs: Sequence[SymbolSpec] = DEFAULT_SPECS,
        seed: int = 0,
        start_s: float = 0.0,
    ) -> None:
        """``symbols`` picks from ``specs`` (default: all of them), keeping the given order."""
        by_symbol = {s.symbol: s for s in specs}
        wanted = list(symbols) if symbols is not None else [s.symbol for s in specs]
        unknown = [s for s in wanted if s not in by_symbol]
        if unknown:
            raise ValueError(f"no SymbolSpec for {unknown}; known: {sorted(by_symbol)}")
        self.scenario = scenario
        self.seed = seed
        self.elapsed_s = start_s
        """Scenario seconds since the scenario began."""
        self._rng = random.Random(seed)
        self._states: dict[str, _State] = {
            s: _State(
                by_symbol[s], by_symbol[s].price, 0.0, BASELINE_FUNDING_8H, by_symbol[s].oi_base
            )
            for s in wanted
        }

    @property
    def symbols(self) -> list[str]:
        return list(self._states)

    @property
    def now(self) -> PhaseAt:
        """The phase the scenario is in."""
        return self.scenario.phase_at(self.elapsed_s)

    def spec(self, symbol: str) -> SymbolSpec:
        return self._states[symbol].spec

    def quote(self, symbol: str) -> Quote:
        """The current state of ``symbol`` (``KeyError`` if not simulated)."""
        st = self._states[symbol]
        return Quote(
            symbol,
            st.spec.base,
            st.mark,
            st.mark / (1.0 + st.premium),
            st.funding_rate_8h,
            st.oi_base,
            CALM_SPREAD_BP * st.spread_mult,
            st.depth,
        )

    def quotes(self) -> list[Quote]:
        return [self.quote(s) for s in self._states]

    def mark(self, symbol: str) -> float:
        return self._states[symbol].mark

    def oi_base(self, symbol: str) -> float:
        return self._states[symbol].oi_base

    def step(
        self, dt_s: float, *, ts_ms: int | None = None, span_ms: float | None = None
    ) -> list[LiquidationPrint]:
        """Advance ``dt_s`` scenario seconds; the liquidations that happened meanwhile.

        Prints are stamped uniformly in ``(ts_ms - span_ms, ts_ms]``; by default ``ts_ms`` is
        the scenario time reached, in ms, and ``span_ms`` is ``dt_s`` in ms.
        """
        if dt_s <= 0:
            return []
        phase = self.scenario.phase_at(self.elapsed_s).phase
        before_s = self.elapsed_s
        self.elapsed_s = round(self.elapsed_s + dt_s, 9)  # no drift across phase edges
        end_ms = round(self.elapsed_s * 1000) if ts_ms is None else ts_ms
        span = dt_s * 1000 if span_ms is None else span_ms
        prints: list[LiquidationPrint] = []
        for st in self._states.values():
            drift = phase.drift(st.spec.base)
            self._move(st, drift, dt_s)
            prints.extend(self._liquidations(st, drift, dt_s, end_ms, span))
        if self.scenario.shocks:
            prints.extend(self._shocks(before_s, dt_s, end_ms, span))
        prints.sort(key=lambda p: p.ts_ms)
        return prints

    def _shocks(
        self, before_s: float, dt_s: float, end_ms: int, span_ms: float
    ) -> list[LiquidationPrint]:
        """The scenario's one-off prints due in ``(before_s, before_s + dt_s]``, each on the
        first simulated symbol of its asset, filled 0.5 % through the mark."""
        sc, after_s = self.scenario, before_s + dt_s
        cycle = sc.duration_s if sc.loop else math.inf
        out: list[LiquidationPrint] = []
        for shock in sc.shocks:
            st = next((s for s in self._states.values() if s.spec.base == shock.asset), None)
            if st is None:
                continue
            # Due when some shock.at_s + k * cycle falls in (before_s, after_s].
            k = 0 if cycle == math.inf else math.floor((after_s - shock.at_s) / cycle)
            at = shock.at_s + k * (0 if cycle == math.inf else cycle)
            if not before_s < at <= after_s:
                continue
            sign = -1.0 if shock.side is Side.LONG else 1.0
            fill = st.mark * (1 + sign * 0.005)
            step = st.spec.qty_step
            qty = max(1, round(shock.notional_usd / fill / step)) * step
            ts = end_ms - int((after_s - at) / dt_s * span_ms)
            limit = fill * (1 + sign * 0.01)
            out.append(
                LiquidationPrint(st.spec.symbol, st.spec.base, shock.side, qty, fill, limit, ts)
            )
        return out

    def _move(self, st: _State, d: Drift, dt: float) -> None:
        rng, sq = self._rng, math.sqrt(dt)
        st.mark *= math.exp(
            d.price_pct_per_min / 6000 * dt + d.price_noise_pct_per_sqrt_s / 100 * sq * rng.gauss()
        )
        st.oi_base *= math.exp(
            d.oi_pct_per_min / 6000 * dt + d.oi_noise_pct_per_sqrt_s / 100 * sq * rng.gauss()
        )
        st.funding_rate_8h += (d.funding_rate_8h - st.funding_rate_8h) * (
            1 - math.exp(-dt / FUNDING_TAU_S)
        )
        # Funding is interest (0.01 %) plus the average premium: let the premium follow it.
        target = 2 * (st.funding_rate_8h - BASELINE_FUNDING_8H)
        st.premium += (target - st.premium) * (1 - math.exp(-dt / PREMIUM_TAU_S))
        st.premium += 0.00002 * sq * rng.gauss()
        spread, depth = liquidity_targets(d)
        pull = 1 - math.exp(-dt / LIQUIDITY_TAU_S)
        st.spread_mult += (spread - st.spread_mult) * pull
        st.depth += (depth - st.depth) * pull

    def _liquidations(
        self, st: _State, d: Drift, dt: float, end_ms: int, span_ms: float
    ) -> list[LiquidationPrint]:
        rng = self._rng
        n = _poisson(rng, d.liq_rate_per_s * dt)
        out: list[LiquidationPrint] = []
        step = st.spec.qty_step
        for _ in range(n):
            side = d.liq_side
            if side is None:
                side = Side.LONG if rng.random() < 0.5 else Side.SHORT
            notional = d.liq_median_usd * math.exp(d.liq_sigma * rng.gauss())
            sign = -1.0 if side is Side.LONG else 1.0  # a long is closed by selling, below
            fill = st.mark * (1 + sign * rng.uniform(0.0, 0.003))
            limit = fill * (1 + sign * rng.uniform(0.002, 0.015))
            qty = max(1, round(notional / fill / step)) * step
            ts = end_ms - int(rng.random() * span_ms)
            out.append(LiquidationPrint(st.spec.symbol, st.spec.base, side, qty, fill, limit, ts))
        return out


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method for small means, a rounded normal for large ones."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
