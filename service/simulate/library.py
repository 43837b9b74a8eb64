"""The labelled scenario library: randomized stories for ``deleverage evaluate``.

:func:`make_scenario` builds one scenario of a *kind* from a seed: onset time, magnitudes,
durations, assets and sides are drawn from the ranges below, so twenty seeds of a kind are
twenty different episodes of the same story. Scenarios do not loop; every non-calm kind
opens with 45-75 minutes of calm (the detector's baselines warm up on it).

Kinds (the label, per affected asset, is what a detector is scored against):

=======================  ==================================================================
``calm``                  4-8 h of a quiet market (label calm).
``noisy_calm``            4-8 h of chop: 15-45 min stretches with small random price and OI
                          drifts, more noise, frequent small liquidations of both sides and a
                          wandering funding rate (label calm).
``leverage_buildup``      Open interest grows 4-24 % over 45-120 min with funding stretched
                          on the crowded side (label building, side long or short).
``gradual_long_unwind``   Sometimes a build-up first; then 2-4 h of open interest falling
                          0.06-0.15 %/min with few liquidations and funding normalizing
                          (label unwinding, long).
``long_cascade``          3-12 min of price and OI falling fast with long liquidations worth
                          30-80 % of the OI decline (label cascade, long), then 10-30 min of
                          unwinding (label unwinding, long).
``short_squeeze``         Sometimes a short build-up; a 3-10 min squeeze (price up, OI down,
                          short liquidations; label cascade, short), then a short unwind.
``funding_spike``         Funding jumps to 10-30x the base rate (either sign) for 30-90 min
                          without an unwind: OI and price flat (label calm).
``isolated_liquidation``  2-4 h of calm with one $2-20 M liquidation in it (label calm).
``venue_outage``          A long cascade or a gradual unwind during which one venue sends
                          nothing for a while (labels as the episode's).
``multi_asset``           A cascade on two or three assets with onsets up to 2 min apart
                          (labels per asset).
``adl_unwind``            3-12 min of auto-deleveraging with no liquidation burst on the
                          tape: open interest falls 0.5-2 %/min, the price moves 0.8-3 %/min
                          against the bankrupt side (ADL follows violent moves), a trickle
                          of liquidations, and the venues that publish an ADL state say it
                          is active (label cascade, the bankrupt side: long or short); then
                          10-30 min of unwinding.
=======================  ==================================================================

Liquidity first (:data:`LIQUIDITY_KINDS`, for the liquidity lead comparison; not in the
default suite):

=======================  ==================================================================
``thin_book_unwind``      Open interest flat while the book thins to 40-60 % and the spread
                          widens 2.5-4x for 3-8 min (label calm), then a gradual unwind as
                          ``gradual_long_unwind``'s on the thin book for 1.5-3 h (label
                          unwinding, long).
=======================  ==================================================================

Liquidation flows are sized against a reference open interest per asset (Binance's in the
simulator, the largest venue): a venue with less open interest sees a larger forced share.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from ..events import Side
from .scenario import (
    BASELINE_FUNDING_8H,
    Drift,
    Label,
    Outage,
    Phase,
    Regime,
    Scenario,
    Shock,
)

DEFAULT_VENUES: Final = ("binance_usdm", "bybit", "okx")
PRIMARY_ASSETS: Final = ("BTC", "ETH")
"""Assets every simulated venue lists: a single-asset episode picks one of these."""
MULTI_ASSETS: Final = ("BTC", "ETH", "SOL")
REFERENCE_OI_USD: Final = {"BTC": 80_000 * 60_000.0, "ETH": 1_500_000 * 3_000.0, "SOL": 1.2e9}
"""Open interest the liquidation flows are sized against (the simulated Binance USDⓈ-M)."""
MAX_LIQ_RATE_PER_S: Final = 40.0

Builder = Callable[[random.Random, str, Sequence[str]], Scenario]


def _calm(name: str, duration_s: float) -> Phase:
    return Phase(name, duration_s, Label(Regime.CALM))


def _episode(
    name: str, duration_s: float, regime: Regime, side: Side, drifts: Mapping[str, Drift]
) -> Phase:
    return Phase(name, duration_s, Label(regime, side, tuple(drifts)), dict(drifts))


def _lead(rng: random.Random) -> Phase:
    return _calm("calm", round(rng.uniform(45, 75) * 60))


def _minutes(rng: random.Random, lo: float, hi: float) -> float:
    return float(round(rng.uniform(lo, hi) * 60))


def _liq_rate(asset: str, oi_pct_per_min: float, forced_share: float, median_usd: float) -> float:
    """Prints per second whose notional is ``forced_share`` of the OI decline."""
    decline_usd_per_s = REFERENCE_OI_USD[asset] * abs(oi_pct_per_min) / 100 / 60
    mean = median_usd * math.exp(1.2**2 / 2)
    return min(MAX_LIQ_RATE_PER_S, forced_share * decline_usd_per_s / mean)


def _forced_funding(rng: random.Random, side: Side) -> float:
    """Funding per 8 h while ``side`` is forced out: about flat, leaning against it."""
    if side is Side.LONG:
        return rng.uniform(-0.0001, 0.00003)
    return rng.uniform(0.0, 0.0002)


def _cascade(rng: random.Random, asset: str, side: Side) -> Drift:
    sign = -1.0 if side is Side.LONG else 1.0
    oi = -rng.uniform(1.0, 3.0)
    median = rng.uniform(15_000, 50_000)
    return Drift(
        price_pct_per_min=sign * rng.uniform(0.6, 2.5),
        oi_pct_per_min=oi,
        liq_rate_per_s=_liq_rate(asset, oi, rng.uniform(0.3, 0.8), median),
        liq_median_usd=median,
        liq_sigma=1.2,
        liq_side=side,
        funding_rate_8h=_forced_funding(rng, side),
        price_noise_pct_per_sqrt_s=0.05,
    )


def _aftermath(rng: random.Random, side: Side) -> Drift:
    """The unwinding that follows a cascade: OI still falling, far fewer liquidations."""
    sign = -1.0 if side is Side.LONG else 1.0
    return Drift(
        price_pct_per_min=sign * rng.uniform(0.0, 0.05),
        oi_pct_per_min=-rng.uniform(0.1, 0.3),
        liq_rate_per_s=rng.uniform(0.3, 1.0),
        liq_median_usd=rng.uniform(5_000, 10_000),
        liq_sigma=1.0,
        liq_side=side,
        funding_rate_8h=rng.uniform(0.0, 0.00008) * (1 if side is Side.LONG else -1),
        price_noise_pct_per_sqrt_s=0.025,
    )


def _adl(rng: random.Random, side: Side) -> Drift:
    """Auto-deleveraging of the profitable side against bankrupt ``side`` positions that the
    book and the fund could not absorb: open interest falls fast, the price moves against
    ``side``, the liquidation tape shows a trickle (the venue's backstop takes the bankrupt
    orders off the book). Venues auto-deleverage only in violent moves (2025-10-10), so the
    price moves fast."""
    sign = -1.0 if side is Side.LONG else 1.0
    return Drift(
        price_pct_per_min=sign * rng.uniform(0.8, 3.0),
        oi_pct_per_min=-rng.uniform(0.5, 2.0),
        liq_rate_per_s=rng.uniform(0.02, 0.1),
        liq_median_usd=rng.uniform(2_000, 6_000),
        liq_sigma=1.0,
        liq_side=side,
        funding_rate_8h=_forced_funding(rng, side),
        price_noise_pct_per_sqrt_s=0.04,
        adl=True,
    )


def _build(rng: random.Random, side: Side) -> Drift:
    """Leverage piling in on ``side``: OI up, funding stretched; a few of the other side
    stopped out."""
    long = side is Side.LONG
    return Drift(
        price_pct_per_min=(1 if long else -1) * rng.uniform(0.01, 0.04),
        oi_pct_per_min=rng.uniform(0.08, 0.2),
        liq_rate_per_s=rng.uniform(0.05, 0.1),
        liq_median_usd=2_000.0,
        liq_side=Side.SHORT if long else Side.LONG,
        funding_rate_8h=rng.uniform(0.0003, 0.0008) if long else -rng.uniform(0.0002, 0.0006),
    )


def _gradual(rng: random.Random) -> Drift:
    """A voluntary long unwind: OI down steadily, price drifting down, few liquidations,
    funding normalizing toward zero."""
    return Drift(
        price_pct_per_min=-rng.uniform(0.01, 0.03),
        oi_pct_per_min=-rng.uniform(0.06, 0.15),
        liq_rate_per_s=rng.uniform(0.05, 0.2),
        liq_median_usd=rng.uniform(3_000, 8_000),
        liq_side=Side.LONG,
        funding_rate_8h=rng.uniform(0.0, 0.00008),
    )


def _side(rng: random.Random, p_long: float = 0.5) -> Side:
    return Side.LONG if rng.random() < p_long else Side.SHORT


def calm(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    hours = rng.uniform(4, 8)
    return Scenario(name, "A quiet market.", (_calm("calm", round(hours * 3600)),), loop=False)


def noisy_calm(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    total, phases = rng.uniform(4, 8) * 3600, list[Phase]()
    while sum(p.duration_s for p in phases) < total:
        drift = Drift(
            price_pct_per_min=rng.uniform(-0.03, 0.03),
            oi_pct_per_min=rng.uniform(-0.008, 0.008),
            liq_rate_per_s=rng.uniform(0.03, 0.15),
            liq_median_usd=rng.uniform(1_500, 4_000),
            liq_sigma=1.3,
            funding_rate_8h=rng.uniform(-0.00005, 0.0003),
            price_noise_pct_per_sqrt_s=rng.uniform(0.02, 0.04),
            oi_noise_pct_per_sqrt_s=rng.uniform(0.005, 0.01),
        )
        drifts = dict.fromkeys(MULTI_ASSETS, drift)
        phases.append(
            Phase(f"chop-{len(phases)}", _minutes(rng, 15, 45), Label(Regime.CALM), drifts)
        )
    return Scenario(name, "Chop without deleveraging.", tuple(phases), loop=False)


def leverage_buildup(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    asset, side = rng.choice(PRIMARY_ASSETS), _side(rng)
    build = _episode(
        "build", _minutes(rng, 45, 120), Regime.BUILDING, side, {asset: _build(rng, side)}
    )
    phases = (_lead(rng), build, _calm("hold", _minutes(rng, 30, 60)))
    return Scenario(name, f"{side} leverage builds on {asset}.", phases, loop=False)


def gradual_long_unwind(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    asset = rng.choice(PRIMARY_ASSETS)
    phases = [_lead(rng)]
    if rng.random() < 0.5:
        build = {asset: _build(rng, Side.LONG)}
        phases.append(_episode("build", _minutes(rng, 30, 60), Regime.BUILDING, Side.LONG, build))
    unwind = {asset: _gradual(rng)}
    phases.append(_episode("unwind", _minutes(rng, 120, 240), Regime.UNWINDING, Side.LONG, unwind))
    phases.append(_calm("recovery", _minutes(rng, 30, 60)))
    return Scenario(name, f"Longs on {asset} unwind over hours.", tuple(phases), loop=False)


def _cascade_story(
    rng: random.Random, name: str, assets: Sequence[str], side: Side, stagger_s: Sequence[float]
) -> Scenario:
    """Lead-in, cascades starting at ``stagger_s`` offsets per asset, aftermath, recovery."""
    cascade = {a: _cascade(rng, a, side) for a in assets}
    length = _minutes(rng, 3, 12)
    phases = [_lead(rng)]
    for i, a in enumerate(assets):
        nxt = stagger_s[i + 1] if i + 1 < len(assets) else length
        if nxt > stagger_s[i]:
            active = {b: cascade[b] for b in assets[: i + 1]}
            phases.append(
                _episode(f"cascade-{a}", nxt - stagger_s[i], Regime.CASCADE, side, active)
            )
    after = {a: _aftermath(rng, side) for a in assets}
    phases.append(_episode("aftermath", _minutes(rng, 10, 30), Regime.UNWINDING, side, after))
    phases.append(_calm("recovery", _minutes(rng, 30, 60)))
    return Scenario(name, f"{side} cascade on {', '.join(assets)}.", tuple(phases), loop=False)


def long_cascade(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    return _cascade_story(rng, name, [rng.choice(PRIMARY_ASSETS)], Side.LONG, [0.0])


def short_squeeze(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    asset = rng.choice(PRIMARY_ASSETS)
    story = _cascade_story(rng, name, [asset], Side.SHORT, [0.0])
    phases = list(story.phases)
    if rng.random() < 0.5:
        build = {asset: _build(rng, Side.SHORT)}
        phases.insert(
            1, _episode("build", _minutes(rng, 30, 60), Regime.BUILDING, Side.SHORT, build)
        )
    return Scenario(name, f"Shorts on {asset} squeezed.", tuple(phases), loop=False)


def funding_spike(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    asset = rng.choice(PRIMARY_ASSETS)
    sign = 1 if rng.random() < 0.6 else -1
    spike = Drift(
        price_pct_per_min=rng.uniform(-0.01, 0.01),
        oi_pct_per_min=rng.uniform(-0.005, 0.01),
        funding_rate_8h=sign * BASELINE_FUNDING_8H * rng.uniform(10, 30),
    )
    phases = (
        _lead(rng),
        Phase(
            "funding_spike",
            _minutes(rng, 30, 90),
            Label(Regime.CALM, assets=(asset,)),
            {asset: spike},
        ),
        _calm("after", _minutes(rng, 30, 60)),
    )
    return Scenario(name, f"Funding spikes on {asset}, nobody unwinds.", phases, loop=False)


def isolated_liquidation(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    length = rng.uniform(2, 4) * 3600
    shock = Shock(
        at_s=round(rng.uniform(45 * 60, length - 30 * 60)),
        asset=rng.choice(PRIMARY_ASSETS),
        side=_side(rng),
        notional_usd=math.exp(rng.uniform(math.log(2e6), math.log(2e7))),
    )
    desc = f"One ${shock.notional_usd / 1e6:.1f}M {shock.side} liquidation on {shock.asset}."
    return Scenario(name, desc, (_calm("calm", round(length)),), loop=False, shocks=(shock,))


def venue_outage(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    fast = rng.random() < 0.5
    story = long_cascade(rng, name, venues) if fast else gradual_long_unwind(rng, name, venues)
    episode = [p for p in story.phases if p.label.regime in (Regime.CASCADE, Regime.UNWINDING)]
    onset = sum(p.duration_s for p in story.phases[: story.phases.index(episode[0])])
    length = sum(p.duration_s for p in episode)
    start = onset + round(length * rng.uniform(0.3, 0.6))
    gap = _minutes(rng, 1, 5) if fast else _minutes(rng, 10, 30)
    outage = Outage(rng.choice(list(venues)), start, start + gap)
    desc = f"{story.description} {outage.venue} is silent for {gap / 60:.0f} min in the middle."
    return Scenario(name, desc, story.phases, loop=False, outages=(outage,))


def multi_asset(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    assets = rng.sample(MULTI_ASSETS, rng.choice((2, 3)))
    offsets = sorted([0.0] + [float(round(rng.uniform(0, 120))) for _ in assets[1:]])
    return _cascade_story(rng, name, assets, _side(rng, 0.8), offsets)


def adl_unwind(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    asset, side = rng.choice(PRIMARY_ASSETS), _side(rng, 0.7)
    adl = _episode("adl", _minutes(rng, 3, 12), Regime.CASCADE, side, {asset: _adl(rng, side)})
    after = {asset: _aftermath(rng, side)}
    phases = (
        _lead(rng),
        adl,
        _episode("aftermath", _minutes(rng, 10, 30), Regime.UNWINDING, side, after),
        _calm("recovery", _minutes(rng, 30, 60)),
    )
    desc = f"ADL closes profitable positions against bankrupt {side}s on {asset}, no burst."
    return Scenario(name, desc, phases, loop=False)


def thin_book_unwind(rng: random.Random, name: str, venues: Sequence[str]) -> Scenario:
    """Liquidity first: the book thins and the spread widens with open interest still flat
    (label calm), then longs unwind gradually on that thin book, which stays thin."""
    asset = rng.choice(PRIMARY_ASSETS)
    spread, depth = rng.uniform(2.5, 4.0), rng.uniform(0.4, 0.6)
    thin = Drift(spread_mult=spread, depth_mult=depth)
    unwind = dataclasses.replace(_gradual(rng), spread_mult=spread, depth_mult=depth)
    phases = (
        _lead(rng),
        Phase("thinning", _minutes(rng, 3, 8), Label(Regime.CALM), {asset: thin}),
        _episode("unwind", _minutes(rng, 90, 180), Regime.UNWINDING, Side.LONG, {asset: unwind}),
        _calm("recovery", _minutes(rng, 30, 60)),
    )
    desc = f"{asset}'s book thins, then longs unwind on it over hours."
    return Scenario(name, desc, phases, loop=False)


KINDS: Final[dict[str, Builder]] = {
    "calm": calm,
    "noisy_calm": noisy_calm,
    "leverage_buildup": leverage_buildup,
    "gradual_long_unwind": gradual_long_unwind,
    "long_cascade": long_cascade,
    "short_squeeze": short_squeeze,
    "funding_spike": funding_spike,
    "isolated_liquidation": isolated_liquidation,
    "venue_outage": venue_outage,
    "multi_asset": multi_asset,
    "adl_unwind": adl_unwind,
}
"""Scenario kinds by name, in the order the evaluation reports them."""

LIQUIDITY_KINDS: Final[dict[str, Builder]] = {"thin_book_unwind": thin_book_unwind}
"""Kinds where liquidity moves before open interest: the liquidity lead comparison's
(:mod:`service.evaluate.lead`), not in the default suite (:data:`KINDS`)."""
ALL_KINDS: Final[dict[str, Builder]] = {**KINDS, **LIQUIDITY_KINDS}


def make_scenario(kind: str, seed: int, venues: Sequence[str] = DEFAULT_VENUES) -> Scenario:
    """The scenario of ``kind`` for ``seed`` (the same seed always gives the same story).

    ``venues`` are the ones an outage may hit. ``KeyError`` names the kinds available.
    """
    try:
        builder = ALL_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown scenario kind {kind!r}; available: {list(ALL_KINDS)}") from None
    rng = random.Random(f"{kind}:{seed}")  # str seeds hash the same in every process
    return builder(rng, f"{kind}#{seed}", venues)
