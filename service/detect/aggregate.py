"""Asset and market scores from the instruments' (pure).

An asset (``BTC``) combines its instruments across venues and contracts; the market combines
the assets. Both average *evidence* (threshold units, :mod:`.scoring`), not scores, weighted
by open interest in USD times data quality, of the members that are in a state of that
family (``unwinding``/``cascade``, or ``building``): a member's evidence that its own
persistence, dwell or burn-in keeps calm counts for nothing, so an asset is never under
pressure while all its members are calm::

    X_unwind = sum(w_i x_unwind_i [i unwinding]) / sum(w_i)     (X_build alike)
    x = max(X_unwind, X_build)                      score = 100 x / (1 + x)

so one venue holding 40 % of the open interest in a strong cascade (``x = 9``) moves the
asset to ``x = 3.6`` (score 78) while calm elsewhere; an asset of one instrument flags when,
and only when, that instrument does. A stale instrument weighs nothing; an
instrument whose liquidation feed is sampled (Binance publishes at most one liquidation per
symbol per second, so its burst evidence saturates and its totals are lower bounds) weighs
``sampled_weight``. The candidate is ``cascade`` when the instruments in a cascade carry at
least half of the unwinding evidence. The side is the evidence-weighted vote of the
members' sides. Quality is the OI-weighted mean of the instruments' qualities.

Liquidation totals of an asset are reported apart: complete feeds summed, sampled feeds
summed as a lower bound, and an estimate of the whole asset's total, the complete feeds' sum
divided by the share of open interest they cover (``liq_usd_est``).

The market adds breadth: the share of assets (with fresh data) not calm. With at least
``market_min_assets`` assets, the evidence is scaled by ``min(1, breadth /
market_breadth_enter)``: one asset under pressure among many is not a market-wide flag, so
the market flags more rarely than its assets, never more often.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..events import Side
from ..scores import State

FAMILY = {State.UNWINDING: "unwind", State.CASCADE: "unwind", State.BUILDING: "build"}


@dataclass(frozen=True, slots=True)
class Part:
    """One member of an asset (an instrument) or of the market (an asset)."""

    name: str
    oi_usd: float
    quality: float
    weight_factor: float
    x_unwind: float
    x_build: float
    candidate: State
    state: State
    side: Side | None
    score: float
    top_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """An asset as a member of the market: its :class:`Part` (``None``: no score yet, or no
    open interest) and whether it holds the market (under pressure, its data missing, not
    yet stale). Detector shards exchange these through Redis (``docs/scaling.md``)."""

    asset: str
    part: Part | None
    held: bool = False


@dataclass(slots=True)
class Combined:
    score: float
    candidate: State
    side: Side | None
    x_unwind: float
    x_build: float
    quality: float
    features: dict[str, float | None] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def evidence(self) -> float:
        return max(self.x_unwind, self.x_build)


def combine(parts: list[Part], s: DetectorSettings, *, breadth: bool = False) -> Combined | None:
    """The weighted evidence of ``parts``; ``None`` when none has weight (all stale)."""
    total_oi = sum(p.oi_usd for p in parts)
    weights = [p.oi_usd * p.quality * p.weight_factor for p in parts]
    wsum = sum(weights)
    if wsum <= 0 or total_oi <= 0:
        return None
    # only members in a state count: a member's evidence that its own persistence, dwell or
    # burn-in keeps calm does not make its asset (or the market) flag
    x_unwind = _mean(parts, weights, lambda p: p.x_unwind if _family(p) == "unwind" else 0.0)
    x_build = _mean(parts, weights, lambda p: p.x_build if _family(p) == "build" else 0.0)
    x_cascade = _mean(parts, weights, lambda p: p.x_unwind if p.state is State.CASCADE else 0.0)
    quality = sum(p.oi_usd * p.quality for p in parts) / total_oi
    fresh = [p for p in parts if p.quality > 0]
    hot = [p for p in fresh if p.state is not State.CALM]
    share = len(hot) / len(fresh) if fresh else 0.0
    features: dict[str, float | None] = {
        "members": float(len(parts)),
        "members_under_pressure": float(len(hot)),
        "oi_share_under_pressure": round(sum(p.oi_usd for p in hot) / total_oi, 4),
        "evidence_unwind": round(x_unwind, 3),
        "evidence_build": round(x_build, 3),
    }
    if breadth:
        features["breadth"] = round(share, 4)
        if len(fresh) >= s.market_min_assets:
            # a market-wide flag needs breadth: with fewer than market_breadth_enter of the
            # assets under pressure, their evidence counts in proportion
            factor = min(1.0, share / s.market_breadth_enter)
            x_unwind, x_build, x_cascade = x_unwind * factor, x_build * factor, x_cascade * factor
    x = max(x_unwind, x_build)
    side: Side | None = None
    if x_unwind >= 1.0 and x_unwind >= x_build:
        candidate = State.CASCADE if x_cascade * 2 >= x_unwind else State.UNWINDING
        side = _vote(parts, weights, "unwind")
    elif x_build >= 1.0:
        candidate = State.BUILDING
        side = _vote(parts, weights, "build")
    else:
        candidate = State.CALM
    score = round(100.0 * x / (1.0 + x), 1)
    reasons = []
    if hot:
        reasons.append(
            f"{len(hot)} of {len(fresh)} under pressure "
            f"({features['oi_share_under_pressure']:.0%} of open interest)"
        )
    reasons += [
        f"{p.name}: {p.state.value}, {p.top_reason}"
        for p in sorted(parts, key=lambda p: -p.score)[:3]
        if p.top_reason and p.state is not State.CALM
    ]
    return Combined(score, candidate, side, x_unwind, x_build, quality, features, reasons)


def _family(p: Part) -> str | None:
    return FAMILY.get(p.state)


def _mean(parts: list[Part], weights: list[float], x: Callable[[Part], float]) -> float:
    return sum(w * x(p) for w, p in zip(weights, parts, strict=True)) / sum(weights)


def _vote(parts: list[Part], weights: list[float], family: str) -> Side | None:
    tally = {Side.LONG: 0.0, Side.SHORT: 0.0}
    for w, p in zip(weights, parts, strict=True):
        x = p.x_unwind if family == "unwind" else p.x_build
        if p.side is not None and FAMILY.get(p.state) == family:
            tally[p.side] += w * x
    if tally[Side.LONG] == tally[Side.SHORT]:
        return None
    return Side.LONG if tally[Side.LONG] > tally[Side.SHORT] else Side.SHORT
