"""The features and the plain-language reasons reported with an assessment (pure)."""

from __future__ import annotations

import math
from functools import lru_cache

from ..config import DetectorSettings
from ..scores import State
from .evidence import Window
from .features import Snapshot
from .sides import SIDE_PRICE_Z
from .text import usd_text

MINOR_SIDE = 0.1


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def feature_values(
    snap: Snapshot,
    ws: list[Window],
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
        k_oi, k_oi_z, k_ret_z, k_liq, k_liq_z = _window_keys(w.f.label)
        f, z_oi, z_ret = w.f, w.z_oi, w.z_ret
        out[k_oi] = None if f.oi is None else round(f.oi, 4)
        out[k_oi_z] = None if z_oi is None else round(z_oi, 2)
        out[k_ret_z] = None if z_ret is None else round(z_ret, 2)
        if w.z_liq is not None:
            out[k_liq] = round(f.liq_long_usd + f.liq_short_usd, 0)
            out[k_liq_z] = round(w.z_liq, 2)
    return out


@lru_cache(maxsize=64)
def _window_keys(label: str) -> tuple[str, str, str, str, str]:
    """The feature names of one window (built once per window length: a hot path)."""
    return (
        f"oi_change_base_pct_{label}",
        f"oi_z_{label}",
        f"mark_return_z_{label}",
        f"liq_usd_{label}",
        f"liq_z_{label}",
    )


def _simple(log_pct: float) -> float:
    """A log % change as the plain % a reader expects (-69.3 log % is -50 %)."""
    return 100.0 * math.expm1(log_pct / 100.0)


def _quadrant(z_ret: float | None, oi_down: bool) -> str:
    if z_ret is None or abs(z_ret) < SIDE_PRICE_Z:
        return "flat price"
    if oi_down:
        return "long flush" if z_ret < 0 else "short covering"
    return "new longs" if z_ret > 0 else "new shorts"


def reasons_of(
    snap: Snapshot,
    s: DetectorSettings,
    candidate: State,
    windows: tuple[Window, Window, Window],
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
