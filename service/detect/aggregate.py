"""Asset and market scores from the instruments' (pure).

An asset (``BTC``) combines its instruments across venues and contracts; the market combines
the assets. Both average *evidence* (threshold units, :mod:`.scoring`), not scores, weighted
by open interest in USD times data quality::

    X_unwind = sum(w_i x_unwind_i) / sum(w_i)     X_build = sum(w_i x_build_i) / sum(w_i)
    x = max(X_unwind, X_build)                      score = 100 x / (1 + x)

so one venue holding 40 % of the open interest in a strong cascade (``x = 9``) moves the
asset to ``x = 3.6`` (score 78) while calm elsewhere. A stale instrument weighs nothing; an
instrument whose liquidation feed is sampled (Binance publishes at most one liquidation per
symbol per second, so its burst evidence saturates and its totals are lower bounds) weighs
``sampled_weight``. The candidate is ``cascade`` when the cascading instruments carry at
least half of the unwinding evidence. The side is the evidence-weighted vote of the
instruments' sides. Quality is the OI-weighted mean of the instruments' qualities.

Liquidation totals of an asset are reported apart: complete feeds summed, sampled feeds
summed as a lower bound, and an estimate of the whole asset's total, the complete feeds' sum
divided by the share of open interest they cover (``liq_usd_est``).

The market adds breadth: the share of assets (with fresh data) not calm. With at least
``market_min_assets`` assets, ``breadth / market_breadth_enter`` is evidence too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..events import Side
from .model import State

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
    x_unwind = sum(w * p.x_unwind for w, p in zip(weights, parts, strict=True)) / wsum
    x_build = sum(w * p.x_build for w, p in zip(weights, parts, strict=True)) / wsum
    x_cascade = (
        sum(
            w * p.x_unwind
            for w, p in zip(weights, parts, strict=True)
            if p.candidate is State.CASCADE
        )
        / wsum
    )
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
            x_breadth = share / s.market_breadth_enter
            unwinding = sum(1 for p in hot if FAMILY.get(p.state) == "unwind")
            if unwinding * 2 >= len(hot):
                x_unwind = max(x_unwind, x_breadth)
            else:
                x_build = max(x_build, x_breadth)
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


def _vote(parts: list[Part], weights: list[float], family: str) -> Side | None:
    tally = {Side.LONG: 0.0, Side.SHORT: 0.0}
    for w, p in zip(weights, parts, strict=True):
        x = p.x_unwind if family == "unwind" else p.x_build
        if p.side is not None and FAMILY.get(p.candidate, FAMILY.get(p.state)) == family:
            tally[p.side] += w * x
    if tally[Side.LONG] == tally[Side.SHORT]:
        return None
    return Side.LONG if tally[Side.LONG] > tally[Side.SHORT] else Side.SHORT
