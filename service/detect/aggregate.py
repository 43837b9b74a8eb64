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

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import compress
from operator import is_not, itemgetter

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
    fresh = [p for p in parts if p.quality > 0]
    hot = [p for p in fresh if p.state is not State.CALM]
    sums = _Sums(
        members=len(parts),
        total_oi=total_oi,
        x_unwind=_mean(parts, weights, lambda p: p.x_unwind if _family(p) == "unwind" else 0.0),
        x_build=_mean(parts, weights, lambda p: p.x_build if _family(p) == "build" else 0.0),
        x_cascade=_mean(parts, weights, lambda p: p.x_unwind if p.state is State.CASCADE else 0.0),
        quality=sum(p.oi_usd * p.quality for p in parts) / total_oi,
        fresh=len(fresh),
        hot=len(hot),
        hot_oi=sum(p.oi_usd for p in hot),
    )
    return _combined(
        sums,
        s,
        breadth,
        lambda family: _vote(parts, weights, family),
        lambda: sorted(parts, key=lambda p: -p.score)[:3],
    )


@dataclass(frozen=True, slots=True)
class _Sums:
    """What :func:`combine` sums over its parts."""

    members: int
    total_oi: float
    x_unwind: float
    x_build: float
    x_cascade: float
    quality: float
    fresh: int
    """Members with data (quality above 0)."""
    hot: int
    """Of those, members not calm."""
    hot_oi: float


def _combined(
    sums: _Sums,
    s: DetectorSettings,
    breadth: bool,
    vote: Callable[[str], Side | None],
    top: Callable[[], list[Part]],
) -> Combined:
    """The candidate, score, features and reasons from ``sums``: ``vote`` is the side of a
    family's members, ``top`` the three members of the highest scores."""
    x_unwind, x_build, x_cascade = sums.x_unwind, sums.x_build, sums.x_cascade
    share = sums.hot / sums.fresh if sums.fresh else 0.0
    features: dict[str, float | None] = {
        "members": float(sums.members),
        "members_under_pressure": float(sums.hot),
        "oi_share_under_pressure": round(sums.hot_oi / sums.total_oi, 4),
        "evidence_unwind": round(x_unwind, 3),
        "evidence_build": round(x_build, 3),
    }
    if breadth:
        features["breadth"] = round(share, 4)
        if sums.fresh >= s.market_min_assets:
            # a market-wide flag needs breadth: with fewer than market_breadth_enter of the
            # assets under pressure, their evidence counts in proportion
            factor = min(1.0, share / s.market_breadth_enter)
            x_unwind, x_build, x_cascade = x_unwind * factor, x_build * factor, x_cascade * factor
    x = max(x_unwind, x_build)
    side: Side | None = None
    if x_unwind >= 1.0 and x_unwind >= x_build:
        candidate = State.CASCADE if x_cascade * 2 >= x_unwind else State.UNWINDING
        side = vote("unwind")
    elif x_build >= 1.0:
        candidate = State.BUILDING
        side = vote("build")
    else:
        candidate = State.CALM
    score = round(100.0 * x / (1.0 + x), 1)
    reasons = []
    if sums.hot:
        reasons.append(
            f"{sums.hot} of {sums.fresh} under pressure "
            f"({features['oi_share_under_pressure']:.0%} of open interest)"
        )
    reasons += [
        f"{p.name}: {p.state.value}, {p.top_reason}"
        for p in top()
        if p.top_reason and p.state is not State.CALM
    ]
    return Combined(score, candidate, side, x_unwind, x_build, sums.quality, features, reasons)


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
    return _side(tally[Side.LONG], tally[Side.SHORT])


def _side(long: float, short: float) -> Side | None:
    if long == short:
        return None
    return Side.LONG if long > short else Side.SHORT


# the columns of MarketSums, one term of one member each
_OI, _W, _UNWIND, _BUILD, _CASCADE, _OI_QUALITY, _FRESH, _HOT, _HOT_OI = range(9)
_LONG_UNWIND, _SHORT_UNWIND, _LONG_BUILD, _SHORT_BUILD, _SCORE = range(9, 14)
_COLUMNS = 14
_PART = itemgetter(1)


class MarketSums:
    """:func:`combine` of the market's members (``breadth=True``), kept from one round to
    the next.

    The market combines every asset each round (3,300 at 10,000 instruments) while a round
    changes the parts of the few assets it evaluated. Each member's terms (its open
    interest, weight, weighted evidence of each family, votes...) are kept in columns, in
    the members' order, and recomputed only for a member whose part changed (another
    :class:`Part` object: parts are frozen); each sum is then the builtin ``sum`` of a
    column. A member without a part has no entry, and a term that :func:`combine` leaves
    out of a sum is 0.0 here, which adds nothing: the same additions in the same order as
    :func:`combine` of the same parts, so the same result to the last bit (property-tested
    in ``tests/detect/test_aggregate.py``). A change of the members' order or of who has a
    part rebuilds the columns (an asset's first score)."""

    def __init__(self, s: DetectorSettings) -> None:
        self._s = s
        self._names: list[str] = []
        self._parts: list[Part] = []
        self._cols: list[list[float]] = [[] for _ in range(_COLUMNS)]

    def combine(self, members: Iterable[tuple[str, Part | None]]) -> Combined | None:
        """``combine(parts, s, breadth=True)`` of the parts of ``members`` ``(asset,
        part)`` (``None``: not a member this round), in their order."""
        self._update([m for m in members if m[1] is not None])  # type: ignore[misc]
        cols = self._cols
        total_oi = sum(cols[_OI])
        wsum = sum(cols[_W])
        if wsum <= 0 or total_oi <= 0:
            return None
        sums = _Sums(
            members=len(self._parts),
            total_oi=total_oi,
            x_unwind=sum(cols[_UNWIND]) / wsum,
            x_build=sum(cols[_BUILD]) / wsum,
            x_cascade=sum(cols[_CASCADE]) / wsum,
            quality=sum(cols[_OI_QUALITY]) / total_oi,
            fresh=int(sum(cols[_FRESH])),
            hot=int(sum(cols[_HOT])),
            hot_oi=sum(cols[_HOT_OI]),
        )
        return _combined(sums, self._s, True, self._vote, self._top)

    def _update(self, present: list[tuple[str, Part]]) -> None:
        names, parts, cols = self._names, self._parts, self._cols
        if len(present) != len(parts):
            self._rebuild(present)
            return
        # (C loops: the members are thousands, the changed ones a few)
        changed = list(compress(range(len(parts)), map(is_not, map(_PART, present), parts)))
        if any(present[i][0] != names[i] for i in changed):
            self._rebuild(present)
            return
        for i in changed:
            p = parts[i] = present[i][1]
            for col, term in zip(cols, _terms(p), strict=True):
                col[i] = term

    def _rebuild(self, present: list[tuple[str, Part]]) -> None:
        self._names = [name for name, _ in present]
        self._parts = [p for _, p in present]
        rows = [_terms(p) for p in self._parts]
        columns = zip(*rows, strict=True) if rows else ((),) * _COLUMNS
        self._cols = [list(col) for col in columns]

    def _vote(self, family: str) -> Side | None:
        cols = self._cols
        if family == "unwind":
            return _side(sum(cols[_LONG_UNWIND]), sum(cols[_SHORT_UNWIND]))
        return _side(sum(cols[_LONG_BUILD]), sum(cols[_SHORT_BUILD]))

    def _top(self) -> list[Part]:
        """``sorted(parts, key=-score)[:3]`` without sorting every member: those scoring
        at least the third highest score, in their order, sorted (a stable sort: the
        same three)."""
        scores = self._cols[_SCORE]
        third = heapq.nlargest(3, scores)[-1] if scores else 0.0
        near = list(compress(self._parts, map(third.__le__, scores)))
        return sorted(near, key=lambda p: -p.score)[:3]


def _terms(p: Part) -> tuple[float, ...]:
    """One member's entry in each column of :class:`MarketSums` (as :func:`combine` and
    :func:`_vote` compute them)."""
    w = p.oi_usd * p.quality * p.weight_factor
    family = _family(p)
    fresh = p.quality > 0
    hot = fresh and p.state is not State.CALM
    unwind = w * (p.x_unwind if family == "unwind" else 0.0)
    build = w * (p.x_build if family == "build" else 0.0)
    long = p.side is Side.LONG
    short = p.side is Side.SHORT
    return (
        p.oi_usd,
        w,
        unwind,
        build,
        w * (p.x_unwind if p.state is State.CASCADE else 0.0),
        p.oi_usd * p.quality,
        1 if fresh else 0,
        1 if hot else 0,
        p.oi_usd if hot else 0.0,
        w * p.x_unwind if long and family == "unwind" else 0.0,
        w * p.x_unwind if short and family == "unwind" else 0.0,
        w * p.x_build if long and family == "build" else 0.0,
        w * p.x_build if short and family == "build" else 0.0,
        p.score,
    )
