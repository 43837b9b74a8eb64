"""Evidence, score, candidate state and side of one instrument (pure).

Every window's feature is turned into a robust z-score against its own baseline
(:mod:`.features`, :mod:`.baseline`); evidence is measured in *threshold units*: 1 means the
z-score reached ``z_enter`` (``liq_z_enter`` for liquidations). With ``i`` over the windows:

* ``U`` (OI decline) ``= max_i max(0, -z_oi_i) / z_enter x gate_i``;
* ``B`` (OI build-up) ``= max_i max(0, z_oi_i) / z_enter x gate_i``;
* ``L`` (liquidation burst) ``= max_i max(0, z_liq_i) / liq_z_enter`` over the liquidation
  windows that had at least ``liq_min_active_s`` seconds with a liquidation, times its
  one-sidedness (1 when >= 70 % of the notional is on one side, 0 for an even split) and
  its confirmation (1 when the price moved against the liquidated side by 1 sigma or OI fell
  by 1.5 sigma in the window, or the burst is two units or more; else 0.6);

``gate_i`` asks whether the move is still going on: with ``z_q`` the z-score of the
window's last quarter on the window's scale (a steady drift gives ``z_q = z/2``), ``gate =
clip((z_q - 1) / (z/2 - 1), 0, 1)`` (moves under z = 3 are not gated). A decline that stopped
no longer counts, so a state ends when the move ends, not when it leaves the longest window.
Windows longer than 3 x ``window_s`` (1 h, 4 h) count only while the 15 m window shows at
least 0.75 of its threshold the same way, weighted by the pace of its last quarter over
theirs (0..1). A long liquidation window is gated by the share of its notional in its last
quarter (x4, clipped).

Confirmations (0..1) raise OI evidence: a price move in the same window (``c_p =
min(1, |z_ret| / 2)``: a directional move, long flush or short covering, not flat-price
churn); funding normalising from an extreme (``c_f``); the premium moving with the price
(``c_q``)::

    x_down  = U x (1 + confirm_gain_price c_p + confirm_gain_funding c_f + confirm_gain_premium c_q)
    x_build = B x (1 + confirm_gain_price c_p + confirm_gain_funding c_f')
    x       = max(x_down, L, x_build)          score = 100 x / (1 + x)

so the score is 50 (``enter_score``) at one unit of evidence. Candidate: ``cascade`` when
``L >= 1`` and the liquidations dominate: forced share >= ``forced_share_cascade`` (measured
over the longest window up to ``window_s`` whose OI decline is significant, z <= -1), or, on
a sampled feed (whose totals are a lower bound), at least ``sampled_saturation_cascade`` of
the seconds carry a print, or the OI decline is not significant yet and the price confirms;
an instrument already in a cascade stays there while these are above 70 % of their bars;
``unwinding`` when ``max(x_down, L) >= 1`` (and beats ``x_build``); ``building`` when
``x_build >= 1``; else ``calm``. Funding and premium never make a candidate by themselves.

When both directions pass (OI fell lately after rising over a longer window), the one seen
in the shorter window wins: it is the newer.

Side of an unwinding or cascade: the side with the larger liquidated notional when the burst
is material (``L >= 0.3``); else the side of liquidations that are elevated (z >= 0.5) and
one-sided (>= 70 % of the notional); else the price/OI quadrant (price down and OI down:
longs; price up and OI down: shorts; the mean z of the window's return and the next longer
window's, at least 1); else the sign of funding (positive: longs were paying).
Building: the side funding is stretched toward (|z| >= 2: rising funding means longs pay
up); else the price (up: longs); else the sign of the funding change. A side is *strong*
when it comes from a full burst, clearly elevated liquidations, a price move of 2 sigmas or
funding 3 sigmas away; only a strong side may flip the side of a running state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..events import Side
from .features import (
    SATURATION_SPAN_S,
    Baselines,
    Snapshot,
    WindowFeatures,
    oi_floor,
    price_floor,
)
from .model import State
from .text import usd_text

MATERIAL_LIQ = 0.3
OVERWHELMING_BURST = 2.0
UNCONFIRMED_BURST = 0.6
STRONG_SIDE_Z = 2.0
ELEVATED_LIQ_Z = 0.5
STRONG_LIQ_Z = 1.5
ONE_SIDED = 0.7
FUNDING_SIDE_Z = 2.0
SIGNIFICANT_DECLINE_Z = 1.0
CONFIRMING_DECLINE_Z = 1.5
CASCADE_HOLD = 0.5
RECENT_SPAN = 4.0
RECENT_SUPPORT = 0.75
"""A cascade stays a cascade while burst and forced share are above half their bars."""
PRICE_CONFIRM_Z = 2.0
INFERRED_CASCADE_UNITS = 2.0
INFERRED_CASCADE_PRICE_Z = 4.0
EXCURSION_SIDE_Z = 3.0
"""An intrabar (in-window) price excursion this many sigmas out names the side when it is
at least twice the close-to-close move: a flush that rebounded by the close."""
SIDE_PRICE_Z = 1.0
MINOR_SIDE = 0.1


@dataclass(frozen=True, slots=True)
class Assessment:
    """The score of one instrument and the state it argues for (before hysteresis)."""

    score: float
    candidate: State
    side: Side | None
    side_strong: bool
    """The side comes from a strong source (a confirmed burst, a clear price move): only
    such a side may flip a running state's side."""
    evidence: float
    """``x``: evidence in threshold units."""
    x_unwind: float
    x_build: float
    burst: float
    """``L``: the liquidation burst evidence."""
    forced_share: float | None
    features: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    saturated: bool = False
    """A cascade called on a saturated sampled feed: liquidation evidence, so it leaves
    calm at once like a burst."""


EMPTY = Assessment(0.0, State.CALM, None, False, 0.0, 0.0, 0.0, 0.0, None, {})


@dataclass(slots=True)
class _Window:
    f: WindowFeatures
    z_oi: float | None
    z_ret: float | None
    z_liq: float | None
    down: float
    up: float
    burst: float
    z_q: float | None = None
    """The OI change of the window's last quarter, on the window's scale."""
    ret_scale: float = 1.0
    liq_window: bool = False
    """Its liquidation bursts count (see :func:`_liquidation_span`)."""


def window_z_enter(z_enter: float, span_s: float, window_s: float) -> float:
    """The OI threshold of a window: ``z_enter`` for ``window_s``, adjusted so that every
    window raises false alarms at the same rate per day on Gaussian noise. A window ``k``
    times shorter is tested ``k`` times as often: ``z^2 = z_enter^2 + 2 ln(window_s /
    span)`` (the Gaussian tail), so 1 m needs 4.8 and 4 h 3.5 where 5 m needs 4.5."""
    return math.sqrt(max(1.0, z_enter**2 + 2 * math.log(window_s / span_s)))


def _scale(own: float | None, floor: float, prior_scale: float, implied: float | None) -> float:
    """A window's robust sigma: its own once ready, never below the floor nor below what
    the shorter ready windows imply for a random walk (their sigma scaled by the square
    root of the lengths): a long window has few independent samples, so its own MAD is the
    least reliable; a window not ready yet borrows; with nothing to borrow,
    ``prior_scale x floor``."""
    if own is None:
        return max(floor, implied) if implied is not None else floor * prior_scale
    return max(own, floor, implied or 0.0)


def _units(scales: list[float | None], spans: list[float]) -> list[float | None]:
    """Per window, the largest ready noise sigma per square-root second among the shorter
    windows (a long window has few independent samples: it lends to nobody)."""
    out: list[float | None] = []
    best: float | None = None
    for own, span in zip(scales, spans, strict=True):
        out.append(best)
        if own is not None:
            unit = own / math.sqrt(span)
            best = unit if best is None or unit > best else best
    return out


def _windows(snap: Snapshot, b: Baselines, s: DetectorSettings, ref_span: float) -> list[_Window]:
    """The measurable windows, scored (see the module doc); ``ref_span`` is the reference."""
    ok = snap.resolution.measurable
    wbs = [wb for wb, m in zip(b.windows, ok, strict=True) if m]
    fs = [f for f, m in zip(snap.windows, ok, strict=True) if m]
    out = []
    spans = [wb.span_s for wb in wbs]
    oi_scales = [wb.oi_scale() for wb in wbs]
    ret_scales = [wb.ret_scale() for wb in wbs]
    # what a window lends is its drift-free noise scale: a short window's long baseline
    # mixes regimes (calm, then a build-up) and would inflate everything above it
    oi_units = _units([wb.oi_noise.own_scale() for wb in wbs], spans)
    ret_units = _units([wb.ret_noise.own_scale() for wb in wbs], spans)
    liq_lo, liq_hi = _liquidation_span(s, ref_span)
    for i, (wb, f) in enumerate(zip(wbs, fs, strict=True)):
        z_oi = z_ret = z_liq = None
        down = up = burst = 0.0
        root = math.sqrt(wb.span_s)
        long_window = wb.span_s > ref_span
        unit_ret, unit_oi = ret_units[i], oi_units[i]
        ret_scale = _scale(ret_scales[i], price_floor(s, wb.span_s), s.prior_scale,
                           unit_ret * root if unit_ret else None)  # fmt: skip
        if f.ret is not None:
            z_ret = (f.ret - wb.ret.center()) / ret_scale
        oi_scale = _scale(oi_scales[i], oi_floor(s, wb.span_s), s.prior_scale,
                          unit_oi * root if unit_oi else None)  # fmt: skip
        z_q = None
        if f.oi is not None:
            z_oi = (f.oi - wb.oi.center()) / oi_scale
            down, up = max(0.0, -z_oi), max(0.0, z_oi)
            ongoing = 1.0
            if f.oi_recent is not None:
                # the last quarter, on the window's scale (a quarter of the drift, half the noise)
                z_q = (f.oi_recent - wb.oi.center() / 4) / (oi_scale / 2)
                ongoing = _gate(-z_q, down, strict=True)
                down *= _gate(-z_q, down)
                up *= _gate(z_q, up)
            z_enter = window_z_enter(s.z_enter, wb.span_s, ref_span)
            flush = 0.0
            if z_ret is not None:
                # open interest falling with a directional price move (a long flush or short
                # covering) is rarer than either alone: it needs fewer sigmas of each, and
                # counts only while the decline goes on
                moved = abs(z_ret)
                if down * ongoing > moved:
                    moved = max(moved, _swept(snap, wb.span_s, z_ret, ret_scale))
                joint = min(down * ongoing, moved)
                flush = joint / (s.flush_z_enter * z_enter / s.z_enter)
            down = max(down / z_enter, flush)
            up /= z_enter
        liq_window = liq_lo <= wb.span_s <= liq_hi
        if liq_window and f.liq_y is not None:
            z_liq = wb.liq.z(f.liq_y, s.liq_log_floor, s.prior_scale)
            if f.active_s >= s.liq_min_active_s:
                burst = max(0.0, z_liq) / s.liq_z_enter
                if long_window and f.liq_usd > 0:
                    burst *= min(1.0, f.liq_recent_usd / (f.liq_usd / 4))
                burst *= _burst_confirmation(f, z_ret, z_oi, burst) * _one_sidedness(f)
        out.append(_Window(f, z_oi, z_ret, z_liq, down, up, burst, z_q, ret_scale, liq_window))
    _need_recent_support(out, RECENT_SPAN * ref_span)
    return out


def _liquidation_span(s: DetectorSettings, ref_span: float) -> tuple[float, float]:
    """The window lengths whose liquidation bursts count: ``liquidation_window_factors``
    times the reference window (1 m to 15 m live, the hour on hourly bars)."""
    f = s.liquidation_window_factors
    return min(f) * ref_span * (1 - 1e-9), max(f) * ref_span * (1 + 1e-9)


def _need_recent_support(ws: list[_Window], recent_span: float) -> None:
    """A window longer than ``recent_span`` (:data:`RECENT_SPAN` x the reference) counts only
    while its move goes on now, seen by the longest shorter window (15 m live): that window
    must show at least
    :data:`RECENT_SUPPORT` of a threshold the same way (gated: a move that stopped shows
    none), and the long window's weight is then the pace of that window's last quarter over
    its own pace, clipped to 0..1. A build-up or a cascade an hour old no longer counts,
    whatever the noise of the last few minutes."""
    short = [w for w in ws if w.f.span_s <= recent_span]
    recent = short[-1] if short else None
    if recent is None or recent.f.oi_recent is None:
        return
    pace = recent.f.oi_recent / (recent.f.span_s / 4)
    for w in ws:
        if w.f.span_s > recent_span and w.f.oi:
            support = recent.down if w.f.oi < 0 else recent.up
            ratio = min(1.0, max(0.0, pace / (w.f.oi / w.f.span_s)))
            weight = ratio if support >= RECENT_SUPPORT else 0.0
            w.down *= weight
            w.up *= weight


def _one_sidedness(f: WindowFeatures) -> float:
    """1 when at least :data:`ONE_SIDED` of the liquidated notional is on one side, falling
    to 0 for an even split: forced selling feeds on itself on one side; both sides
    liquidated at once is churn."""
    total = f.liq_usd
    if total <= 0:
        return 0.0
    share = max(f.liq_long_usd, f.liq_short_usd) / total
    return min(1.0, max(0.0, (share - 0.5) / (ONE_SIDED - 0.5)))


def _burst_confirmation(
    f: WindowFeatures, z_ret: float | None, z_oi: float | None, burst: float
) -> float:
    """A burst counts in full when the price moved against the liquidated side, or open
    interest fell, in the same window, or when it is overwhelming (two thresholds);
    otherwise at :data:`UNCONFIRMED_BURST`: a cluster of large prints in a still market
    is most often noise."""
    if burst >= OVERWHELMING_BURST:
        return 1.0
    against = -1.0 if f.liq_long_usd >= f.liq_short_usd else 1.0
    if z_ret is not None and z_ret * against >= 1.0:
        return 1.0
    if z_oi is not None and z_oi <= -CONFIRMING_DECLINE_Z:
        return 1.0
    return UNCONFIRMED_BURST


def _gate(z_recent: float, z_window: float, *, strict: bool = False) -> float:
    """How much of a long window's move is still going on: 1 when its last quarter moves at
    the window's pace (``z_recent = z_window / 2`` for a steady drift), 0 when the last
    quarter is within one sigma of flat (the move stopped). Small moves are not gated,
    unless ``strict``: then the last quarter must be at least 1.5 sigmas out."""
    half = z_window / 2 - 1.0
    if half <= 0.5:
        if strict:
            return min(1.0, max(0.0, (z_recent - 1.0) / 0.5))
        return 1.0
    return min(1.0, max(0.0, (z_recent - 1.0) / half))


def assess(
    snap: Snapshot, b: Baselines, s: DetectorSettings, current: State = State.CALM
) -> Assessment:
    """Score one instrument's snapshot (see the module doc); ``current`` is its state."""
    ref = snap.resolution.ref
    if ref is None:
        return EMPTY
    ref_span = b.windows[ref].span_s
    ws = _windows(snap, b, s, ref_span)
    w_down = max(ws, key=lambda w: w.down)
    w_up = max(ws, key=lambda w: w.up)
    w_liq = max(ws, key=lambda w: w.burst)
    u, bu, burst = w_down.down, w_up.up, w_liq.burst

    c_p = _confirm(w_down.z_ret)
    c_f = 1.0 if snap.funding_normalising else 0.0
    c_q = 0.0
    if (
        snap.premium_z is not None
        and w_down.z_ret is not None
        and snap.premium_z * w_down.z_ret > 0
    ):
        c_q = min(1.0, abs(snap.premium_z) / PRICE_CONFIRM_Z)
    x_down = u * (1 + s.confirm_gain_price * c_p + s.confirm_gain_funding * c_f
                  + s.confirm_gain_premium * c_q)  # fmt: skip
    c_pb = _confirm(w_up.z_ret)
    c_fb = 0.0
    if snap.funding_z is not None and w_up.z_ret is not None and snap.funding_z * w_up.z_ret > 0:
        c_fb = min(1.0, abs(snap.funding_z) / PRICE_CONFIRM_Z)
    x_build = bu * (1 + s.confirm_gain_price * c_pb + s.confirm_gain_funding * c_fb)
    x_unwind = max(x_down, burst)
    x = max(x_unwind, x_build)

    forced = _forced_share(ws, ref_span)
    side: Side | None = None
    strong = saturated = False
    unwinding = x_unwind >= 1.0 and (x_build < 1.0 or _more_recent(w_down, w_liq, w_up, burst))
    if unwinding:
        candidate = State.UNWINDING
        relax = CASCADE_HOLD if current is State.CASCADE else 1.0
        saturated = _saturated_cascade(ws, snap, s, u, relax)
        if (
            (burst >= relax and _dominant(w_liq, forced, snap, s, relax))
            or saturated
            or _inferred_cascade(w_down, ws, snap, relax)
        ):
            candidate = State.CASCADE
        side, strong = _unwind_side(ws, w_liq, w_down if u > 0 else w_liq, burst, snap)
    elif x_build >= 1.0:
        candidate = State.BUILDING
        side, strong = _build_side(ws, w_up, snap)
    else:
        candidate = State.CALM
    score = round(100.0 * x / (1.0 + x), 1)
    evidence = {
        "evidence_oi_down": round(u, 3),
        "evidence_oi_up": round(bu, 3),
        "evidence_liq": round(burst, 3),
        "confirm_price": round(c_p, 3),
        "confirm_funding": c_f,
        "confirm_premium": round(c_q, 3),
    }
    features = _features(snap, ws, s, forced, ref_span) | evidence
    reasons = _reasons(snap, s, candidate, (w_down, w_up, w_liq), (c_p, c_f, c_q), forced)
    if saturated and candidate is State.CASCADE:
        reasons.insert(0, f"sampled liquidation feed saturated: {snap.liq_recent_active_s:.0f} "
                       f"of the last {SATURATION_SPAN_S:.0f} s")  # fmt: skip
    return Assessment(score, candidate, side, strong, x, x_unwind, x_build, burst, forced,
                      features, reasons, saturated and candidate is State.CASCADE)  # fmt: skip


def _more_recent(w_down: _Window, w_liq: _Window, w_up: _Window, burst: float) -> bool:
    """Both directions past the threshold (OI fell lately after rising over a longer
    window, or the reverse): the evidence from the shorter window is the newer one."""
    down_span = w_liq.f.span_s if burst >= 1.0 else w_down.f.span_s
    if burst >= 1.0 and w_down.down >= 1.0:
        down_span = min(down_span, w_down.f.span_s)
    if down_span != w_up.f.span_s:
        return down_span < w_up.f.span_s
    return w_down.down >= w_up.up


def _unwind_side(
    ws: list[_Window], w_liq: _Window, w_move: _Window, burst: float, snap: Snapshot
) -> tuple[Side | None, bool]:
    """Whose positions are unwound, and whether that is strongly established: the side of a
    material burst; else of liquidations that are elevated and one-sided; else the price/OI
    quadrant; else funding's sign (positive: longs were crowded)."""
    if burst >= MATERIAL_LIQ:
        side = _liquidation_side(w_liq.f)
        if side is not None:
            return side, burst >= 1.0
    lopsided = [w for w in ws if w.z_liq is not None and w.z_liq >= ELEVATED_LIQ_Z
                and _one_sided(w.f) is not None]  # fmt: skip
    if lopsided:
        w = max(lopsided, key=lambda w: w.z_liq or 0.0)
        return _one_sided(w.f), (w.z_liq or 0.0) >= STRONG_LIQ_Z
    z_ret = _price_z(ws, w_move)
    flushed = _excursion_side(snap, w_move, z_ret)
    if flushed is not None:
        return flushed, True
    side = _price_side(z_ret, -1)
    if side is not None:
        return side, abs(z_ret or 0.0) >= STRONG_SIDE_Z
    return _funding_side(snap.funding_1h), False


def _excursion_side(snap: Snapshot, w: _Window, z_ret: float | None) -> Side | None:
    """The side a price excursion within the window names (:func:`_sweep`). On hourly bars
    a crash that rebounded by the close (ETH on 2025-10-10: -12 % intrabar, +2 % close to
    close) is still a long flush."""
    swept = _sweep(snap, w.f.span_s, z_ret, w.ret_scale)
    return None if swept is None else swept[1]


def _swept(snap: Snapshot, span_s: float, z_ret: float, ret_scale: float) -> float:
    """The price move of a flush that rebounded by the window's close, in sigmas (0 when
    the excursion names no side): on daily bars the day's low is the flush (SOL on
    2024-08-05: -24 % intraday, -6 % close to close)."""
    swept = _sweep(snap, span_s, z_ret, ret_scale)
    return 0.0 if swept is None else swept[0]


def _sweep(
    snap: Snapshot, span_s: float, z_ret: float | None, ret_scale: float
) -> tuple[float, Side] | None:
    """The price excursion within the window, in sigmas, and the side it flushed: a low
    :data:`EXCURSION_SIDE_Z` sigmas down, twice the high and twice the close-to-close move,
    flushed the longs (and the mirror: the shorts); else ``None``."""
    ex = snap.excursion(span_s)
    if ex is None:
        return None
    low, high = -ex[0] / ret_scale, ex[1] / ret_scale
    big = max(low, high)
    if big < EXCURSION_SIDE_Z or big < 2 * abs(z_ret or 0.0) or big < 2 * min(low, high):
        return None
    return big, (Side.LONG if low > high else Side.SHORT)


def _price_z(ws: list[_Window], w: _Window) -> float | None:
    """The price move that names a side: the mean z of the window's return and of the next
    longer window's (a gradual unwind drifts both ways; one window's noise is not a side)."""
    i = next((k for k, x in enumerate(ws) if x is w), 0)
    zs = [x.z_ret for x in ws[i : i + 2] if x.z_ret is not None]
    return sum(zs) / len(zs) if zs else None


def _build_side(ws: list[_Window], w_up: _Window, snap: Snapshot) -> tuple[Side | None, bool]:
    """Who piles in: the side funding is stretched toward (longs pay when it rises); else the
    price (up: longs); else the sign of the funding change."""
    fz = snap.funding_z
    if fz is not None and abs(fz) >= FUNDING_SIDE_Z:
        return (Side.LONG if fz > 0 else Side.SHORT), abs(fz) >= 1.5 * FUNDING_SIDE_Z
    z_ret = _price_z(ws, w_up)
    side = _price_side(z_ret, +1)
    if side is not None:
        return side, abs(z_ret or 0.0) >= STRONG_SIDE_Z
    return _funding_side(snap.funding_change_1h), False


def _one_sided(f: WindowFeatures) -> Side | None:
    total = f.liq_usd
    if total <= 0 or f.active_s < 3:
        return None
    if f.liq_long_usd >= ONE_SIDED * total:
        return Side.LONG
    if f.liq_short_usd >= ONE_SIDED * total:
        return Side.SHORT
    return None


def _confirm(z_ret: float | None) -> float:
    return 0.0 if z_ret is None else min(1.0, abs(z_ret) / PRICE_CONFIRM_Z)


def _forced_share(ws: list[_Window], ref_span: float) -> float | None:
    """Liquidations over the OI decline, in the longest window up to the reference whose
    decline is significant (z <= -1: a decline within the noise makes any ratio); ``None``
    when none is. A short window's ratio flickers with every OI poll."""
    for w in reversed(ws):
        if w.f.span_s > ref_span or w.f.forced_share is None:
            continue
        if w.z_oi is not None and w.z_oi <= -SIGNIFICANT_DECLINE_Z:
            return w.f.forced_share
    return None


def _dominant(
    w: _Window, forced: float | None, snap: Snapshot, s: DetectorSettings, relax: float
) -> bool:
    """Do the liquidations dominate the unwinding (a cascade)? ``relax`` (< 1 while already
    in a cascade) lowers the bars: hysteresis between cascade and unwinding."""
    if forced is not None and forced >= s.forced_share_cascade * relax:
        return True
    saturation = w.f.active_s / max(1.0, w.f.span_s)
    if snap.liq_sampled and saturation >= s.sampled_saturation_cascade * relax:
        return True
    return forced is None and _confirm(w.z_ret) >= 0.5


def _saturated_cascade(
    ws: list[_Window], snap: Snapshot, s: DetectorSettings, oi_down: float, relax: float
) -> bool:
    """A sampled feed (one print per symbol per second at most) that stays saturated while
    open interest falls fast is a cascade, whatever its totals say: the sample hides how
    much was liquidated, not that every second had a liquidation. Saturated: at least
    ``sampled_saturation_cascade`` of the last :data:`~.features.SATURATION_SPAN_S` seconds
    carry a print, one-sided in the shortest liquidation window; falling fast: one unit of
    OI evidence (half while already in a cascade)."""
    if not snap.liq_sampled or oi_down < relax:
        return False
    if snap.liq_recent_active_s < s.sampled_saturation_cascade * relax * SATURATION_SPAN_S:
        return False
    short = next((w for w in ws if w.liq_window), None)
    return short is not None and _one_sidedness(short.f) >= 1.0


def _inferred_cascade(w_down: _Window, ws: list[_Window], snap: Snapshot, relax: float) -> bool:
    """Without any liquidation feed on the venue (polled venues, history without
    liquidation columns), a cascade is inferred from what it does to the market: open
    interest falling by :data:`INFERRED_CASCADE_UNITS` thresholds in the shortest measurable
    window while the price crashed through :data:`INFERRED_CASCADE_PRICE_Z` sigmas at some
    point of that window (a crash can rebound before the close)."""
    if snap.liq_feed or w_down is not ws[0] or w_down.down < INFERRED_CASCADE_UNITS * relax:
        return False
    ex = snap.excursion(w_down.f.span_s)
    if ex is None:
        return False
    low, high = ex
    return -low / w_down.ret_scale >= INFERRED_CASCADE_PRICE_Z * relax and -low > 2 * high


def _liquidation_side(f: WindowFeatures) -> Side | None:
    if f.liq_long_usd > f.liq_short_usd:
        return Side.LONG
    if f.liq_short_usd > f.liq_long_usd:
        return Side.SHORT
    return None


def _price_side(z_ret: float | None, oi_direction: int) -> Side | None:
    """OI down (-1) unwinds the losing side; OI up (+1) adds to the winning side."""
    if z_ret is None or abs(z_ret) < SIDE_PRICE_Z:
        return None
    up = z_ret > 0
    if oi_direction < 0:
        return Side.SHORT if up else Side.LONG
    return Side.LONG if up else Side.SHORT


def _funding_side(funding: float | None) -> Side | None:
    if not funding:
        return None
    return Side.LONG if funding > 0 else Side.SHORT


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def _features(
    snap: Snapshot,
    ws: list[_Window],
    s: DetectorSettings,
    forced: float | None,
    ref_span: float | None = None,
) -> dict[str, float | None]:
    ref = ws[0] if ref_span is None else next((w for w in ws if w.f.span_s == ref_span), ws[0])
    f = ref.f
    oi_usd = snap.oi_usd
    out: dict[str, float | None] = {
        "oi_change_base_pct": _r(f.oi),
        "oi_change_usd_pct": _r(f.oi_usd),
        "oi_drawdown_pct": _r(snap.oi_drawdown_pct),
        "oi_usd": _r(oi_usd, 0),
        "mark_return_pct": _r(f.ret),
        "liq_long_usd": round(f.liq_long_usd, 0),
        "liq_short_usd": round(f.liq_short_usd, 0),
        "liq_bp_of_oi": _r(f.liq_usd / oi_usd * 1e4) if oi_usd else None,
        "forced_share": _r(forced, 3),
        "funding_1h": snap.funding_1h,
        "funding_change_1h": snap.funding_change_1h,
        "funding_z": _r(snap.funding_z, 2),
        "funding_normalising": 1.0 if snap.funding_normalising else 0.0,
        "funding_flip": 1.0 if snap.funding_flip else 0.0,
        "premium_bp": _r(snap.premium_bp, 2),
        "premium_z": _r(snap.premium_z, 2),
        "liq_sampled": None if snap.liq_sampled is None else float(snap.liq_sampled),
    }
    for w in ws:
        label = w.f.label
        out[f"oi_change_base_pct_{label}"] = _r(w.f.oi)
        out[f"oi_z_{label}"] = _r(w.z_oi, 2)
        out[f"mark_return_z_{label}"] = _r(w.z_ret, 2)
        if w.z_liq is not None:
            out[f"liq_usd_{label}"] = round(w.f.liq_usd, 0)
            out[f"liq_z_{label}"] = _r(w.z_liq, 2)
    return out


def _simple(log_pct: float) -> float:
    """A log % change as the plain % a reader expects (-69.3 log % is -50 %)."""
    return 100.0 * math.expm1(log_pct / 100.0)


def _quadrant(z_ret: float | None, oi_down: bool) -> str:
    if z_ret is None or abs(z_ret) < SIDE_PRICE_Z:
        return "flat price"
    if oi_down:
        return "long flush" if z_ret < 0 else "short covering"
    return "new longs" if z_ret > 0 else "new shorts"


def _reasons(
    snap: Snapshot,
    s: DetectorSettings,
    candidate: State,
    windows: tuple[_Window, _Window, _Window],
    confirms: tuple[float, float, float],
    forced: float | None,
) -> list[str]:
    """Reasons with their weight in threshold units, the strongest first."""
    w_down, w_up, w_liq = windows
    c_p, c_f, c_q = confirms
    active = candidate is not State.CALM
    out: list[tuple[float, str]] = []
    building = candidate is State.BUILDING
    for w, weight, ours in ((w_down, w_down.down, not building), (w_up, w_up.up, building)):
        if w.f.oi is None or w.z_oi is None:
            continue
        if weight >= 0.5 or (active and ours and weight > 0):
            # the other direction (a build-up before this unwind) after this state's reasons
            rank = weight if ours or not active else weight / 10
            text = f"OI {_simple(w.f.oi):+.2f}% (base) in {w.f.label}, z {w.z_oi:+.1f}"
            out.append((rank, text))
    liq = w_liq.f
    if w_liq.burst >= 0.5 or (active and w_liq.burst > 0):
        total = liq.liq_usd
        for side, usd in (("long", liq.liq_long_usd), ("short", liq.liq_short_usd)):
            if usd > 0 and usd >= MINOR_SIDE * total:
                z = f", z {w_liq.z_liq:+.1f}" if w_liq.z_liq is not None else ""
                text = f"{side} liquidations {usd_text(usd)} in {liq.label}{z}"
                out.append((w_liq.burst * usd / total, text))
        if snap.liq_sampled:
            out.append((0.0, "liquidation feed is sampled: totals are a lower bound"))
    ref = w_down if w_down.down >= w_up.up else w_up
    if (active or c_p >= 1.0) and ref.f.ret is not None:
        quadrant = _quadrant(ref.z_ret, ref is w_down)
        weight = s.confirm_gain_price * c_p * max(ref.down, ref.up)
        text = f"price {_simple(ref.f.ret):+.2f}% in {ref.f.label} ({quadrant})"
        out.append((weight, text))
    if c_f and snap.funding_1h is not None:
        out.append((s.confirm_gain_funding, f"funding normalising: {snap.funding_1h:.4%}/h now"))
    if snap.funding_flip and snap.funding_1h is not None:
        out.append((0.05, f"funding flipped sign: {snap.funding_1h:.4%}/h"))
    if c_q and snap.premium_bp is not None:
        out.append((s.confirm_gain_premium * c_q, f"premium {snap.premium_bp:+.1f} bp"))
    if candidate is State.CASCADE and forced is not None:
        out.append((1.0, f"forced liquidations = {forced:.0%} of the OI decline"))
    out.sort(key=lambda r: -r[0])
    return [text for _, text in out]
