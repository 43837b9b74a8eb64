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

Observed ADL (the venue says auto-deleveraging is active on the instrument: its level
``ACTIVE``, received within ``adl_hold_s``) is a forced unwind that no liquidation tape shows:
an unwinding on OI evidence (``x_down >= 1``) while ADL is active is a ``cascade``, leaving
calm at once like a burst. ADL adds no evidence of its own: a venue can say ADL is armed for
hours (a pool in deficit) while nobody unwinds. The part of the reference window's OI
decline that came since ADL became active counts as forced. The side is the bankrupt
positions' (a material burst's side, else the side the price moved against by 1.5 sigmas or
more: until one is known, ADL makes no cascade), and the first reason names the profitable
side closed against them. A level short of ``ACTIVE`` (Binance's ``high`` rating) is a
feature and a reason, never evidence.

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

Code: the per-window evidence is in :mod:`.evidence`, the side in :mod:`.sides`, the
reported features and reasons in :mod:`.reasons`; this module combines them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..events import AdlLevel, Side
from ..scores import State
from .evidence import Window, one_sidedness, score_windows
from .features import SATURATION_SPAN_S, Baselines, Snapshot, WindowFeatures
from .reasons import feature_values, reasons_of
from .sides import adl_side, build_side, unwind_side

SIGNIFICANT_DECLINE_Z = 1.0
CASCADE_HOLD = 0.5
"""A cascade stays a cascade while burst and forced share are above half their bars."""
PRICE_CONFIRM_Z = 2.0
INFERRED_CASCADE_UNITS = 2.0
INFERRED_CASCADE_PRICE_Z = 4.0


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
    adl: bool = False
    """A cascade called on observed ADL: forced closes, so it leaves calm at once."""


EMPTY = Assessment(0.0, State.CALM, None, False, 0.0, 0.0, 0.0, 0.0, None, {})


def assess(
    snap: Snapshot, b: Baselines, s: DetectorSettings, current: State = State.CALM
) -> Assessment:
    """Score one instrument's snapshot (see the module doc); ``current`` is its state."""
    ref = snap.resolution.ref
    if ref is None:
        return EMPTY
    ref_span = b.windows[ref].span_s
    ws = score_windows(snap, b, s, ref_span)
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
    if snap.adl_active:
        forced = _with_adl(forced, snap.windows[ref], snap)
    side: Side | None = None
    strong = saturated = adl = False
    unwinding = x_unwind >= 1.0 and (x_build < 1.0 or _more_recent(w_down, w_liq, w_up, burst))
    if unwinding:
        candidate = State.UNWINDING
        relax = CASCADE_HOLD if current is State.CASCADE else 1.0
        saturated = _saturated_cascade(ws, snap, s, u, relax)
        if snap.adl_active and x_down >= relax:
            # observed ADL closes profitable positions against bankrupt ones: the decline
            # is forced, whatever the liquidation tape shows (docs/detector.md)
            side, strong = adl_side(ws, w_liq, burst, ref_span)
            adl = side is not None or current is State.CASCADE
        if (
            (burst >= relax and _dominant(w_liq, forced, snap, s, relax))
            or saturated
            or adl
            or _inferred_cascade(w_down, ws, snap, relax)
        ):
            candidate = State.CASCADE
        if side is None:
            side, strong = unwind_side(ws, w_liq, w_down if u > 0 else w_liq, burst, snap)
    elif x_build >= 1.0:
        candidate = State.BUILDING
        side, strong = build_side(ws, w_up, snap)
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
    features = feature_values(snap, ws, s, forced, ref_span) | evidence
    reasons = reasons_of(snap, s, candidate, (w_down, w_up, w_liq), (c_p, c_f, c_q), forced)
    if saturated and candidate is State.CASCADE:
        reasons.insert(0, f"sampled liquidation feed saturated: {snap.liq_recent_active_s:.0f} "
                       f"of the last {SATURATION_SPAN_S:.0f} s")  # fmt: skip
    if snap.adl is not None:
        features |= adl_features(snap)
        if adl:
            reasons.insert(0, adl_reason(snap, side))
        elif candidate is not State.CALM and snap.adl.level >= AdlLevel.HIGH:
            reasons.append(adl_reason(snap, None))
    return Assessment(score, candidate, side, strong, x, x_unwind, x_build, burst, forced,
                      features, reasons, saturated and candidate is State.CASCADE,
                      adl and candidate is State.CASCADE)  # fmt: skip


def _with_adl(forced: float | None, ref: WindowFeatures, snap: Snapshot) -> float | None:
    """The forced share with observed ADL: the part of the reference window's OI decline that
    came while the venue said ADL was active is forced (its closes are not on the tape)."""
    decline, since = ref.oi, snap.adl_oi_pct
    if decline is None or decline >= 0 or since is None or since >= 0:
        return forced
    share = min(1.0, since / decline)
    return share if forced is None or share > forced else forced


def adl_features(snap: Snapshot) -> dict[str, float | None]:
    """The ADL figures of an instrument whose venue publishes a level."""
    assert snap.adl is not None
    return {
        "adl_level": float(snap.adl.level),
        "adl_oi_change_pct": None if snap.adl_oi_pct is None else round(snap.adl_oi_pct, 3),
    }


def adl_reason(snap: Snapshot, bankrupt: Side | None) -> str:
    """Why ADL weighs in: observed (``bankrupt`` given: a forced unwind, naming the profitable
    side closed against the bankrupt one) or only a risk (the venue's level)."""
    adl = snap.adl
    assert adl is not None
    trigger = "" if adl.trigger is None else f", trigger {adl.trigger:g}"
    native = f"{adl.native_kind.replace('_', ' ')} {adl.native}{trigger}"
    venue = snap.history.venue
    if bankrupt is None:
        return f"ADL {adl.level.name.lower()} on {venue} ({native})"
    winners = Side.SHORT if bankrupt is Side.LONG else Side.LONG
    moved = "" if snap.adl_oi_pct is None else f"; open interest {snap.adl_oi_pct:+.2f}% since"
    return (
        f"ADL active on {venue} ({native}): profitable {winners.value}s closed against "
        f"bankrupt {bankrupt.value}s{moved}"
    )


def _more_recent(w_down: Window, w_liq: Window, w_up: Window, burst: float) -> bool:
    """Both directions past the threshold (OI fell lately after rising over a longer
    window, or the reverse): the evidence from the shorter window is the newer one."""
    down_span = w_liq.f.span_s if burst >= 1.0 else w_down.f.span_s
    if burst >= 1.0 and w_down.down >= 1.0:
        down_span = min(down_span, w_down.f.span_s)
    if down_span != w_up.f.span_s:
        return down_span < w_up.f.span_s
    return w_down.down >= w_up.up


def _confirm(z_ret: float | None) -> float:
    return 0.0 if z_ret is None else min(1.0, abs(z_ret) / PRICE_CONFIRM_Z)


def _forced_share(ws: list[Window], ref_span: float) -> float | None:
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
    w: Window, forced: float | None, snap: Snapshot, s: DetectorSettings, relax: float
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
    ws: list[Window], snap: Snapshot, s: DetectorSettings, oi_down: float, relax: float
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
    return short is not None and one_sidedness(short.f) >= 1.0


def _inferred_cascade(w_down: Window, ws: list[Window], snap: Snapshot, relax: float) -> bool:
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
