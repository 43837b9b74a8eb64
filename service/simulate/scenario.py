"""Scenarios as data: a sequence of labelled phases that drive the simulated market.

A scenario is venue-independent. Its phases name the *assets* they affect (``BTC``, ``ETH``),
so every venue server built on the same :class:`~service.simulate.market.Market` tells the
same story in its own symbols. Each phase carries:

* a **label**, the ground truth a detector is scored against: a regime (``calm``,
  ``building``, ``unwinding``, ``cascade``), the side of the positions concerned and the
  affected assets;
* per-asset **drifts**: price and open-interest drift in % per minute, a liquidation rate
  (Poisson, per second) with a log-normal notional size and the side liquidated, and the
  funding rate (per 8 h) the market moves towards. Assets a phase does not name follow
  :data:`CALM`.

Durations are in *scenario seconds*; the simulator's ``time_scale`` runs them faster than the
wall clock. Scenarios loop by default.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ..events import Side

BASELINE_FUNDING_8H: Final = 0.0001
"""Binance's default funding rate per 8 h (interest 0.01 %, premium 0)."""


class Regime(enum.StrEnum):
    """What leverage is doing during a phase."""

    CALM = "calm"
    BUILDING = "building"
    UNWINDING = "unwinding"
    CASCADE = "cascade"


@dataclass(frozen=True, slots=True)
class Drift:
    """How one asset moves during a phase (all rates per scenario time)."""

    price_pct_per_min: float = 0.0
    oi_pct_per_min: float = 0.0
    liq_rate_per_s: float = 0.02
    """Expected liquidation prints per second (Poisson)."""
    liq_median_usd: float = 1_500.0
    """Median notional of one print; sizes are log-normal around it."""
    liq_sigma: float = 0.8
    """Log-normal shape: the mean print is ``median * exp(sigma**2 / 2)``."""
    liq_side: Side | None = None
    """Side of the positions liquidated; ``None``: either, at random."""
    funding_rate_8h: float = BASELINE_FUNDING_8H
    """Funding rate per 8 h that the market converges to during the phase."""
    price_noise_pct_per_sqrt_s: float = 0.015
    oi_noise_pct_per_sqrt_s: float = 0.004
    adl: bool = False
    """The venues auto-deleverage the asset (its insurance pools' drawdown is past their
    trigger): the ones that publish an ADL state say it is active."""
    spread_mult: float | None = None
    """The top of book's spread as a multiple of the calm one that the market converges to
    during the phase; ``None``: as the phase's moves imply (:func:`liquidity_targets`)."""
    depth_mult: float | None = None
    """The size at the top of the book as a multiple of the calm one, likewise."""

    @property
    def liq_mean_usd(self) -> float:
        """Expected notional of one print."""
        return self.liq_median_usd * math.exp(self.liq_sigma**2 / 2)


@functools.lru_cache(maxsize=256)
def liquidity_targets(d: Drift) -> tuple[float, float]:
    """``(spread multiple, depth multiple)`` a phase drives the book to: its own where it sets
    them, else from how fast it moves price and open interest (``m`` = the sum of both in %
    a minute): the spread ``1 + 2m`` times the calm one, the top ``1 / (1 + m)`` of it. A calm
    market keeps its book; a gradual unwind (about 0.7 % a minute in all) doubles the spread
    and takes 40 % of the top; a cascade (3 % a minute and more) widens it seven-fold and
    leaves a quarter of the top or less: books thin as leverage unwinds, most in a cascade.
    For scale, the real record: after 2025-10-10 BTC's depth within 1 % of mid fell from
    about $20 M to about $14 M (-30 %), and during the crash some books looked empty near
    the mid (issue 16); the top of a book moves more than the depth within 1 %."""
    m = abs(d.price_pct_per_min) + abs(d.oi_pct_per_min)
    spread = d.spread_mult if d.spread_mult is not None else 1.0 + 2.0 * m
    depth = d.depth_mult if d.depth_mult is not None else 1.0 / (1.0 + m)
    return spread, depth


CALM: Final = Drift()
"""Quiet market: no drift, small noise, rare tiny liquidations of either side."""


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth of a phase."""

    regime: Regime
    side: Side | None = None
    """Side of the positions being built or unwound; ``None`` when calm."""
    assets: tuple[str, ...] = ()
    """Affected base assets, e.g. ``("BTC", "ETH")``."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One labelled stretch of a scenario."""

    name: str
    duration_s: float
    label: Label
    drifts: Mapping[str, Drift] = field(default_factory=dict)
    """Drift by base asset; assets not listed follow :data:`CALM`."""

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ValueError(f"phase {self.name!r}: duration_s must be > 0")
        if (self.label.regime is Regime.CALM) != (self.label.side is None):
            raise ValueError(f"phase {self.name!r}: a side is required unless calm")

    def drift(self, asset: str) -> Drift:
        """The drift of ``asset`` during this phase."""
        return self.drifts.get(asset, CALM)


@dataclass(frozen=True, slots=True)
class PhaseAt:
    """Where a scenario is at a given scenario time."""

    cycle: int
    index: int
    phase: Phase
    offset_s: float
    """Seconds since the phase began."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A labelled stretch of time: scenario seconds, and wall-clock ms for a given run."""

    phase: str
    label: Label
    cycle: int
    start_s: float
    end_s: float
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Shock:
    """One forced close at a given scenario time, outside any phase's Poisson flow (e.g. a
    single whale liquidated in a calm market)."""

    at_s: float
    """Scenario seconds since the start of the cycle."""
    asset: str
    side: Side
    notional_usd: float


@dataclass(frozen=True, slots=True)
class Outage:
    """A venue sends nothing from ``start_s`` to ``end_s`` (scenario seconds): a cut
    connection or a stalled feed. The market goes on; what happened meanwhile is lost.
    Honoured by the offline player of :mod:`service.evaluate`."""

    venue: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named sequence of phases, looping unless ``loop`` is false (then the last holds)."""

    name: str
    description: str
    phases: tuple[Phase, ...]
    loop: bool = True
    shocks: tuple[Shock, ...] = ()
    outages: tuple[Outage, ...] = ()

    def __post_init__(self) -> None:
        if not self.phases:
            raise ValueError(f"scenario {self.name!r} has no phases")
        for o in self.outages:
            if o.end_s <= o.start_s:
                raise ValueError(f"scenario {self.name!r}: an outage must end after it starts")

    @property
    def duration_s(self) -> float:
        """Length of one cycle in scenario seconds."""
        return sum(p.duration_s for p in self.phases)

    def phase_at(self, t_s: float) -> PhaseAt:
        """The phase running at scenario time ``t_s`` (seconds since the scenario began)."""
        t = max(0.0, t_s)
        cycle = 0
        if self.loop:
            cycle = int(t // self.duration_s)
            t = max(0.0, t - cycle * self.duration_s)
            if t >= self.duration_s:  # float rounding at a cycle's edge
                cycle, t = cycle + 1, 0.0
        start = 0.0
        for index, phase in enumerate(self.phases):
            if t < start + phase.duration_s:
                return PhaseAt(cycle, index, phase, t - start)
            start += phase.duration_s
        last = self.phases[-1]
        return PhaseAt(cycle, len(self.phases) - 1, last, t - (start - last.duration_s))

    def intervals(
        self,
        until_s: float,
        *,
        start_s: float = 0.0,
        origin_ms: int = 0,
        time_scale: float = 1.0,
    ) -> list[Interval]:
        """Labelled ground-truth intervals covering scenario time ``[start_s, until_s)``.

        A run that began at scenario time ``start_s`` at wall time ``origin_ms`` and runs
        ``time_scale`` times faster than the wall clock maps scenario time ``t`` to
        ``origin_ms + (t - start_s) / time_scale * 1000``; the ``*_ms`` fields use that map.
        """
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")

        def wall(t: float) -> int:
            return origin_ms + round((t - start_s) / time_scale * 1000)

        out: list[Interval] = []
        t = start_s
        while t < until_s:
            at = self.phase_at(t)
            end = round(t - at.offset_s + at.phase.duration_s, 9)  # no float slivers
            if not self.loop and at.index == len(self.phases) - 1:
                end = max(end, until_s)  # the last phase holds forever
            end = min(end, until_s)
            out.append(
                Interval(at.phase.name, at.phase.label, at.cycle, t, end, wall(t), wall(end))
            )
            t = end
        return out


def _calm(name: str, duration_s: float) -> Phase:
    return Phase(name, duration_s, Label(Regime.CALM))


def _phase(
    name: str, duration_s: float, regime: Regime, side: Side, drifts: Mapping[str, Drift]
) -> Phase:
    return Phase(name, duration_s, Label(regime, side, tuple(drifts)), dict(drifts))


def _d(
    price: float,
    oi: float,
    rate: float,
    median: float,
    side: Side,
    funding: float,
    sigma: float = 1.0,
    price_noise: float = 0.02,
) -> Drift:
    return Drift(
        price_pct_per_min=price,
        oi_pct_per_min=oi,
        liq_rate_per_s=rate,
        liq_median_usd=median,
        liq_sigma=sigma,
        liq_side=side,
        funding_rate_8h=funding,
        price_noise_pct_per_sqrt_s=price_noise,
    )


# Sizes are chosen against the market's default open interest (BTC 80k, ETH 1.5M coins):
# in the cascade, liquidated notional is about 40 % of the OI decline on BTC (20 % on ETH);
# in the gradual unwind, well under 1 %.
#                price %/min, OI %/min, liqs/s, median USD, side, funding/8h
LONG_CASCADE: Final = {
    "BTC": _d(-4.0, -6.0, 20.0, 45_000, Side.LONG, -0.00005, sigma=1.2, price_noise=0.06),
    "ETH": _d(-3.0, -3.5, 8.0, 30_000, Side.LONG, -0.00002, sigma=1.2, price_noise=0.05),
}
LONG_UNWIND: Final = {
    "BTC": _d(-0.6, -2.0, 0.5, 8_000, Side.LONG, 0.00003),
    "ETH": _d(-0.4, -1.2, 0.3, 6_000, Side.LONG, 0.00005),
}
LONG_BUILD: Final = {  # a few shorts get stopped out while longs pile in
    "BTC": _d(0.5, 2.0, 0.05, 2_000, Side.SHORT, 0.0005, sigma=0.8),
    "ETH": _d(0.4, 1.5, 0.05, 2_000, Side.SHORT, 0.0004, sigma=0.8),
}
SHORT_BUILD: Final = {
    "BTC": _d(-0.3, 2.0, 0.05, 2_000, Side.LONG, -0.0004, sigma=0.8),
}
SHORT_SQUEEZE: Final = {
    "BTC": _d(5.0, -5.0, 15.0, 40_000, Side.SHORT, 0.0002, sigma=1.2, price_noise=0.06),
}
FLASH_CASCADE: Final = {  # BTC -4 % and its OI -6 % in 90 s; far more prints than 1 per second
    "BTC": _d(-4.0 / 1.5, -6.0 / 1.5, 20.0, 40_000, Side.LONG, -0.00002, sigma=1.0,
              price_noise=0.03),
}  # fmt: skip
SHORT_UNWIND: Final = {
    "BTC": _d(0.5, -1.5, 0.4, 8_000, Side.SHORT, 0.00015),
}

SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "calm", "Every asset quiet: no drift, rare tiny liquidations.", (_calm("calm", 60.0),)
        ),
        Scenario(
            "long_unwind",
            "Calm, then a forced long deleveraging on BTC (milder on ETH): price and open "
            "interest fall fast with heavy long liquidations; then a gradual unwind with few "
            "liquidations; then recovery.",
            (
                _calm("calm", 20.0),
                _phase("long_cascade", 40.0, Regime.CASCADE, Side.LONG, LONG_CASCADE),
                _phase("long_unwind", 60.0, Regime.UNWINDING, Side.LONG, LONG_UNWIND),
                _calm("recovery", 40.0),
            ),
        ),
        Scenario(
            "gradual_long_unwind",
            "Longs build up on BTC and ETH (OI and funding up), then unwind voluntarily: OI "
            "falls for minutes with almost no liquidations.",
            (
                _calm("calm", 20.0),
                _phase("long_build", 40.0, Regime.BUILDING, Side.LONG, LONG_BUILD),
                _phase("long_unwind", 90.0, Regime.UNWINDING, Side.LONG, LONG_UNWIND),
                _calm("recovery", 30.0),
            ),
        ),
        Scenario(
            "flash_cascade",
            "A flash long cascade on BTC: price -4 % and open interest -6 % in 90 s, with "
            "liquidations far faster than a sampled feed's one print per second (Binance's "
            "stream stays saturated); then calm.",
            (
                _calm("calm", 60.0),
                _phase("flash_cascade", 90.0, Regime.CASCADE, Side.LONG, FLASH_CASCADE),
                _calm("recovery", 120.0),
            ),
        ),
        Scenario(
            "short_squeeze",
            "Shorts build on BTC with negative funding, then get squeezed: price up, OI down, "
            "heavy short liquidations; then a gradual short unwind.",
            (
                _calm("calm", 20.0),
                _phase("short_build", 30.0, Regime.BUILDING, Side.SHORT, SHORT_BUILD),
                _phase("short_squeeze", 30.0, Regime.CASCADE, Side.SHORT, SHORT_SQUEEZE),
                _phase("short_unwind", 40.0, Regime.UNWINDING, Side.SHORT, SHORT_UNWIND),
                _calm("recovery", 30.0),
            ),
        ),
    )
}
"""Built-in scenarios by name; ``long_unwind`` is the default."""

DEFAULT_SCENARIO: Final = "long_unwind"


def get_scenario(name: str) -> Scenario:
    """A built-in scenario by name; ``KeyError`` names the ones available."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; available: {sorted(SCENARIOS)}") from None


def ground_truth(
    scenario: Scenario | str,
    until_s: float,
    *,
    start_s: float = 0.0,
    origin_ms: int = 0,
    time_scale: float = 1.0,
) -> list[Interval]:
    """The labelled intervals of ``scenario`` (see :meth:`Scenario.intervals`)."""
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    return sc.intervals(until_s, start_s=start_s, origin_ms=origin_ms, time_scale=time_scale)
