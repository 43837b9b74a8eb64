"""Per-window evidence of one instrument (pure): z-scores of the open interest, price and
liquidation features of every measurable window against their baselines, the gates that ask
whether a move still goes on, the long-flush evidence and the liquidation bursts (the
formulas are in :mod:`.scoring`'s docstring and ``docs/detector.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import DetectorSettings
from ..events import Side
from .features import Baselines, Snapshot, WindowFeatures, oi_floor, price_floor

OVERWHELMING_BURST = 2.0
UNCONFIRMED_BURST = 0.6
ONE_SIDED = 0.7
CONFIRMING_DECLINE_Z = 1.5
RECENT_SPAN = 4.0
RECENT_SUPPORT = 0.75
EXCURSION_SIDE_Z = 3.0
"""An intrabar (in-window) price excursion this many sigmas out names the side when it is
at least twice the close-to-close move: a flush that rebounded by the close."""


@dataclass(slots=True)
class Window:
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


def score_windows(
    snap: Snapshot, b: Baselines, s: DetectorSettings, ref_span: float
) -> list[Window]:
    """The measurable windows, scored (see :mod:`.scoring`); ``ref_span`` is the reference."""
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
                    moved = max(moved, swept(snap, wb.span_s, z_ret, ret_scale))
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
                burst *= _burst_confirmation(f, z_ret, z_oi, burst) * one_sidedness(f)
        out.append(Window(f, z_oi, z_ret, z_liq, down, up, burst, z_q, ret_scale, liq_window))
    _need_recent_support(out, RECENT_SPAN * ref_span)
    return out


def _liquidation_span(s: DetectorSettings, ref_span: float) -> tuple[float, float]:
    """The window lengths whose liquidation bursts count: ``liquidation_window_factors``
    times the reference window (1 m to 15 m live, the hour on hourly bars)."""
    f = s.liquidation_window_factors
    return min(f) * ref_span * (1 - 1e-9), max(f) * ref_span * (1 + 1e-9)


def _need_recent_support(ws: list[Window], recent_span: float) -> None:
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


def one_sidedness(f: WindowFeatures) -> float:
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


def swept(snap: Snapshot, span_s: float, z_ret: float, ret_scale: float) -> float:
    """The price move of a flush that rebounded by the window's close, in sigmas (0 when
    the excursion names no side): on daily bars the day's low is the flush (SOL on
    2024-08-05: -24 % intraday, -6 % close to close)."""
    swept = sweep(snap, span_s, z_ret, ret_scale)
    return 0.0 if swept is None else swept[0]


def sweep(
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
