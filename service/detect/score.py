"""Features, score and candidate state of one instrument's window (pure).

Features (units in the names; ``None`` when the window does not have the data):

* ``oi_change_base_pct``, ``oi_change_usd_pct``: open interest, newest vs its value at the
  window start (interpolated from the baseline, see :mod:`.windows`). Base units remove the
  price effect (a falling price shrinks USD OI by itself).
* ``oi_drawdown_pct``: newest OI (base) vs the window's peak, <= 0.
* ``liq_long_usd``, ``liq_short_usd`` (+ ``_count``): liquidated notional by position side.
* ``liq_bp_of_oi``: liquidated notional / current OI USD x 10^4.
* ``forced_share``: liquidated notional / USD value of the OI decline (base decline x mark),
  clipped to 0..1; ``None`` when OI did not fall.
* ``funding_1h`` (newest), ``funding_change_1h`` (over the window), ``mark_return_pct``.
* ``liq_sampled``: 1.0 when the venue's liquidation feed is a sample (Binance: one order per
  symbol per second), so every liquidation feature is a lower bound; ``None``: none seen.

Score (0..100), with ``D`` = OI decline %, ``U`` = OI rise % (base units, over the window)::

    r_down = max(0, D) / oi_unwind_pct        r_up = max(0, U) / oi_build_pct
    r_liq  = liq_bp_of_oi / liq_cascade_bp
    c      = min(1, |mark_return_pct| / price_move_pct)     # price/OI quadrant confirmation
    x      = max(r_down + r_liq, r_up)                       # evidence, in threshold units
    x'     = x + 0.5 * c * max(0, x - 1)                     # a directional quadrant amplifies
    score  = 100 * x' / (1 + x')

``x = 1`` (exactly one threshold reached) scores 50, so score >= 50 exactly when the candidate
is not calm; the quadrant term only acts above the threshold (an OI move with the price moving
is directional positioning, not flat-price churn), so it never creates a candidate by itself.

Candidate: ``cascade`` when ``r_liq >= 1`` and ``forced_share >= forced_share_cascade``;
``unwinding`` when ``r_down + r_liq >= 1`` (and it outweighs ``r_up``) otherwise; this includes
heavy liquidations before the OI feed shows the decline (polled OI lags); ``building`` when
``r_up >= 1``; else ``calm``.

Side: unwinding/cascade take the side with the majority of the liquidated notional when the
liquidations are material (``r_liq >= 0.2``), else the quadrant (price down & OI down: long;
price up & OI down: short). Building: price up & OI up: long; price down & OI up: short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..events import Side
from .model import State
from .windows import InstrumentWindow

MATERIAL_LIQ = 0.2
"""Liquidation intensity (in units of the cascade threshold) above which it names the side."""
QUADRANT_GAIN = 0.5
MINOR_SIDE = 0.1
"""A side with less than this share of the liquidated notional is left out of the reasons."""


@dataclass(frozen=True, slots=True)
class Features:
    oi_change_base_pct: float | None = None
    oi_change_usd_pct: float | None = None
    oi_drawdown_pct: float | None = None
    oi_usd: float | None = None
    liq_long_usd: float = 0.0
    liq_short_usd: float = 0.0
    liq_long_count: int = 0
    liq_short_count: int = 0
    liq_bp_of_oi: float | None = None
    forced_share: float | None = None
    funding_1h: float | None = None
    funding_change_1h: float | None = None
    mark_return_pct: float | None = None
    liq_sampled: bool | None = None

    def as_dict(self) -> dict[str, float | None]:
        """The features as :attr:`Pressure.features` carries them."""
        return {
            "oi_change_base_pct": self.oi_change_base_pct,
            "oi_change_usd_pct": self.oi_change_usd_pct,
            "oi_drawdown_pct": self.oi_drawdown_pct,
            "oi_usd": self.oi_usd,
            "liq_long_usd": self.liq_long_usd,
            "liq_short_usd": self.liq_short_usd,
            "liq_long_count": float(self.liq_long_count),
            "liq_short_count": float(self.liq_short_count),
            "liq_bp_of_oi": self.liq_bp_of_oi,
            "forced_share": self.forced_share,
            "funding_1h": self.funding_1h,
            "funding_change_1h": self.funding_change_1h,
            "mark_return_pct": self.mark_return_pct,
            "liq_sampled": None if self.liq_sampled is None else float(self.liq_sampled),
        }


@dataclass(frozen=True, slots=True)
class Assessment:
    """The score of one window and the state it argues for (before hysteresis)."""

    score: float
    candidate: State
    side: Side | None
    features: Features
    reasons: list[str] = field(default_factory=list)


def compute_features(w: InstrumentWindow) -> Features:
    """The features of a window (call :meth:`InstrumentWindow.advance` first)."""
    start = w.start_ms
    base0, base1 = w.oi_base.value_at(start), w.oi_base.last
    usd1 = w.oi_usd.last
    mark1 = w.mark.last
    liq_usd = w.liq.long_usd + w.liq.short_usd
    has_change = len(w.oi_base) > 1
    forced: float | None = None
    if has_change and base0 is not None and base1 is not None and base1 < base0:
        price = mark1 if mark1 else _ratio(usd1, base1)
        if price:
            forced = min(1.0, max(0.0, liq_usd / ((base0 - base1) * price)))
    peak = w.oi_base.peak_since(start)
    f0, f1 = w.funding.first, w.funding.last
    return Features(
        oi_change_base_pct=_pct(base0, base1) if has_change else None,
        oi_change_usd_pct=_pct(w.oi_usd.value_at(start), usd1) if has_change else None,
        oi_drawdown_pct=_pct(peak, base1),
        oi_usd=usd1,
        liq_long_usd=w.liq.long_usd,
        liq_short_usd=w.liq.short_usd,
        liq_long_count=w.liq.long_n,
        liq_short_count=w.liq.short_n,
        liq_bp_of_oi=liq_usd / usd1 * 1e4 if usd1 else None,
        forced_share=forced,
        funding_1h=f1,
        funding_change_1h=f1 - f0 if f0 is not None and f1 is not None else None,
        mark_return_pct=_pct(w.mark.value_at(start), mark1) if len(w.mark) > 1 else None,
        liq_sampled=w.liq_sampled,
    )


def assess(w: InstrumentWindow, settings: DetectorSettings) -> Assessment:
    """Score a window and name its candidate state and side (see the module doc)."""
    return assess_features(compute_features(w), settings)


def assess_features(f: Features, s: DetectorSettings) -> Assessment:
    oi_change = f.oi_change_base_pct or 0.0
    r_down = max(0.0, -oi_change) / s.oi_unwind_pct
    r_up = max(0.0, oi_change) / s.oi_build_pct
    r_liq = (f.liq_bp_of_oi or 0.0) / s.liq_cascade_bp
    ret = f.mark_return_pct or 0.0
    x_unwind = r_down + r_liq
    x = max(x_unwind, r_up)
    confirm = min(1.0, abs(ret) / s.price_move_pct)
    x_q = x + QUADRANT_GAIN * confirm * max(0.0, x - 1.0)
    score = round(100.0 * x_q / (1.0 + x_q), 1)

    side: Side | None = None
    if x_unwind >= 1.0 and x_unwind >= r_up:
        forced = f.forced_share is not None and f.forced_share >= s.forced_share_cascade
        candidate = State.CASCADE if r_liq >= 1.0 and forced else State.UNWINDING
        side = _liquidation_side(f) if r_liq >= MATERIAL_LIQ else None
        side = side or _quadrant_side(ret, -1)
    elif r_up >= 1.0:
        candidate = State.BUILDING
        side = _quadrant_side(ret, +1)
    else:
        candidate = State.CALM
    reasons = _reasons(f, s, candidate, r_down + r_up, r_liq)
    return Assessment(score, candidate, side, f, reasons)


def _liquidation_side(f: Features) -> Side | None:
    if f.liq_long_usd > f.liq_short_usd:
        return Side.LONG
    if f.liq_short_usd > f.liq_long_usd:
        return Side.SHORT
    return None


def _quadrant_side(mark_return_pct: float, oi_direction: int) -> Side | None:
    """Whose positions move: OI down (-1) unwinds the losers, OI up (+1) adds to the winners."""
    if mark_return_pct == 0.0:
        return None
    price_up = mark_return_pct > 0
    if oi_direction < 0:
        return Side.SHORT if price_up else Side.LONG
    return Side.LONG if price_up else Side.SHORT


def _reasons(
    f: Features, s: DetectorSettings, candidate: State, r_oi: float, r_liq: float
) -> list[str]:
    active = candidate is not State.CALM
    span = span_text(s.window_s)
    out: list[str] = []
    if f.oi_change_base_pct is not None and (active or r_oi >= 0.5):
        out.append(f"OI {f.oi_change_base_pct:+.1f}% (base) in {span}")
    if active and f.mark_return_pct is not None:
        out.append(f"price {f.mark_return_pct:+.1f}% in {span}")
    liq_usd = f.liq_long_usd + f.liq_short_usd
    if liq_usd > 0 and (active or r_liq >= 0.5):
        out.extend(_liq_reasons(f))
        if f.liq_sampled:
            out.append("liquidation feed is sampled: totals are a lower bound")
    if candidate is State.CASCADE and f.forced_share is not None:
        out.append(f"forced liquidations = {f.forced_share:.0%} of the OI decline")
    if candidate is State.UNWINDING and r_liq >= 1.0 and f.forced_share is None:
        out.append("liquidations heavy but OI not (yet) falling")
    return out


def _liq_reasons(f: Features) -> list[str]:
    """One reason per side that has at least :data:`MINOR_SIDE` of the liquidated notional."""
    total = f.liq_long_usd + f.liq_short_usd
    out = []
    for side, usd in (("long", f.liq_long_usd), ("short", f.liq_short_usd)):
        if usd > 0 and usd >= MINOR_SIDE * total:
            bp = f" = {usd / f.oi_usd * 1e4:.0f} bp of OI" if f.oi_usd else ""
            out.append(f"{side} liquidations {usd_text(usd)}{bp}")
    return out


def span_text(seconds: float) -> str:
    """``300`` -> ``"5m"``, ``90`` -> ``"90s"``, ``3600`` -> ``"1h"``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def usd_text(usd: float) -> str:
    """``4_100_000`` -> ``"$4.1M"``, ``625_000`` -> ``"$625k"``."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(usd) >= scale:
            value = usd / scale
            return f"${value:.0f}{unit}" if abs(value) >= 100 else f"${value:.1f}{unit}"
    return f"${usd:.0f}"


def _pct(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return (new / old - 1.0) * 100.0


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None
