"""Whose positions an unwinding or a build-up moves (pure): from the liquidations, the
price/OI quadrant, an intrabar price excursion, or funding (see :mod:`.scoring`)."""

from __future__ import annotations

from ..events import Side
from .evidence import ONE_SIDED, Window, sweep
from .features import Snapshot, WindowFeatures

MATERIAL_LIQ = 0.3
STRONG_SIDE_Z = 2.0
ELEVATED_LIQ_Z = 0.5
STRONG_LIQ_Z = 1.5
FUNDING_SIDE_Z = 2.0
SIDE_PRICE_Z = 1.0
ADL_SIDE_Z = 1.5
"""Sigmas of price move that name the bankrupt side of observed ADL (a wrong side is worse
than a cascade called a few seconds later)."""


def adl_side(
    ws: list[Window], w_liq: Window, burst: float, ref_span: float
) -> tuple[Side | None, bool]:
    """Whose positions went bankrupt while the venue says ADL is active (the profitable other
    side is closed against them), and whether that is strongly established: the side of a
    material burst; else the side the price moved against, in the window up to the
    reference with the clearest move (at least :data:`ADL_SIDE_Z` sigmas: a venue
    auto-deleverages when the bankrupt positions' losses outrun the book and the fund, so
    the price has moved); else of liquidations that are elevated and one-sided; else
    ``None`` (not known yet: ADL is then no cascade)."""
    if burst >= MATERIAL_LIQ:
        side = _liquidation_side(w_liq.f)
        if side is not None:
            return side, burst >= 1.0
    moves = [w.z_ret for w in ws if w.z_ret is not None and w.f.span_s <= ref_span]
    z_ret = max(moves, key=abs, default=0.0)
    if abs(z_ret) >= ADL_SIDE_Z:
        return Side.LONG if z_ret < 0 else Side.SHORT, abs(z_ret) >= STRONG_SIDE_Z
    lopsided = [w for w in ws if w.z_liq is not None and w.z_liq >= ELEVATED_LIQ_Z
                and _one_sided(w.f) is not None]  # fmt: skip
    if lopsided:
        w = max(lopsided, key=lambda w: w.z_liq or 0.0)
        return _one_sided(w.f), (w.z_liq or 0.0) >= STRONG_LIQ_Z
    return None, False


def unwind_side(
    ws: list[Window], w_liq: Window, w_move: Window, burst: float, snap: Snapshot
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


def _excursion_side(snap: Snapshot, w: Window, z_ret: float | None) -> Side | None:
    """The side a price excursion within the window names (:func:`sweep`). On hourly bars
    a crash that rebounded by the close (ETH on 2025-10-10: -12 % intrabar, +2 % close to
    close) is still a long flush."""
    swept = sweep(snap, w.f.span_s, z_ret, w.ret_scale)
    return None if swept is None else swept[1]


def _price_z(ws: list[Window], w: Window) -> float | None:
    """The price move that names a side: the mean z of the window's return and of the next
    longer window's (a gradual unwind drifts both ways; one window's noise is not a side)."""
    i = next((k for k, x in enumerate(ws) if x is w), 0)
    zs = [x.z_ret for x in ws[i : i + 2] if x.z_ret is not None]
    return sum(zs) / len(zs) if zs else None


def build_side(ws: list[Window], w_up: Window, snap: Snapshot) -> tuple[Side | None, bool]:
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
