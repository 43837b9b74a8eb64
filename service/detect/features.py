"""The features of one instrument over each window, and their robust baselines (pure).

Per window ``w`` (read from :class:`~.rings.InstrumentHistory` at evaluation time ``now``):

* ``oi``: open-interest change in base units, ``100 x ln(OI_now / OI_{now-w})`` (a log %:
  base units remove the price effect; logs add up across windows); also in USD;
* ``oi_recent``: the same over the last quarter of the window (is the move still going on?);
* ``ret``: mark-price return, log %;
* liquidated notional by side in the window, the seconds that had one (``active_s``), and
  the *trimmed* notional: the total minus its largest bucket (one second on the short
  windows), so that one huge print is not a burst;
* ``liq_y``: the burst intensity in log space, ``ln(trimmed / OI_usd x 10^4 + floor_w)`` with
  ``floor_w = liq_floor_bp x w / window_s``;
* ``forced_share``: liquidated notional / USD value of the OI decline (0-1), ``None`` when
  OI did not fall.

Per instrument: funding per hour (level, its change over the slow window, z against its
baseline, and ``normalising``: it was extreme a slow window ago and has come at least half
way back), the premium of mark over index (bp).

Baselines (:class:`~.baseline.Baseline`) are sampled at evaluation time, each window every
``max(w / 4, lookback / max_samples)`` (every ``w / 4`` until ready), only when the window is
fully covered by data and the data is fresh: a feed gap or a young instrument never teaches
a baseline zeros. A second, *recent* scale per window comes from the differences of its
changes one quarter window apart (the last :data:`RECENT_SAMPLES`): a drift cancels out of
them, so they measure the noise alone. The scale used is the larger of the two, so a noisier
regime raises it within minutes, while the centre stays the long baseline's.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from ..config import DetectorSettings
from ..scores import WARMING
from .baseline import Baseline
from .rings import (
    ACTIVE,
    FINE_MAX_WINDOW_S,
    FUNDING,
    LIQ_LONG,
    LIQ_SHORT,
    MARK,
    OI_BASE,
    OI_USD,
    AdlSeen,
    InstrumentHistory,
)
from .text import span_text

MIN_WINDOW_SAMPLES = 32
SATURATION_SPAN_S = 20.0
MEASURABLE = 0.99
"""A window is measurable when it is at least this share of the open interest's spacing."""
RECENT_SAMPLES = 60
RECENT_MIN_SAMPLES = 20
RECENT_TAIL = 20


@dataclass(slots=True)
class WindowFeatures:
    span_s: float
    label: str
    oi: float | None = None
    oi_usd: float | None = None
    oi_recent: float | None = None
    ret: float | None = None
    liq_long_usd: float = 0.0
    liq_short_usd: float = 0.0
    liq_trimmed_usd: float = 0.0
    liq_recent_usd: float = 0.0
    """Liquidated notional in the window's last quarter."""
    active_s: float = 0.0
    liq_y: float | None = None
    forced_share: float | None = None
    full: bool = False
    """The window is fully covered by open-interest and mark data."""
    liq_full: bool = False

    @property
    def liq_usd(self) -> float:
        return self.liq_long_usd + self.liq_short_usd


@dataclass(slots=True)
class Snapshot:
    """Everything the score reads about one instrument at one time."""

    windows: list[WindowFeatures]
    oi_usd: float | None
    mark: float | None
    funding_1h: float | None
    funding_change_1h: float | None
    funding_z: float | None
    funding_normalising: bool
    funding_flip: bool
    premium_bp: float | None
    premium_z: float | None
    oi_drawdown_pct: float | None
    liq_sampled: bool | None
    resolution: Resolution
    history: InstrumentHistory
    now_ms: int
    liq_feed: bool = True
    """The venue publishes liquidations (some were seen): without, a cascade is inferred
    from open interest and price alone."""
    liq_recent_active_s: float = 0.0
    """Seconds with a liquidation in the last :data:`SATURATION_SPAN_S` (a sampled feed
    prints at most once a second: all of them means it is saturated)."""
    adl: AdlSeen | None = None
    """The venue's ADL level for the instrument, received within ``adl_hold_s``."""
    adl_oi_pct: float | None = None
    """While ADL is active: the open interest's change since it became active (log %, base)."""

    @property
    def adl_active(self) -> bool:
        """The venue says ADL is under way (or armed) on the instrument."""
        return self.adl is not None and self.adl.active_since_ms is not None

    def excursion(self, span_s: float) -> tuple[float, float] | None:
        """The lowest and highest mark over the window vs its start, log % (``None``
        without a mark at the start): an intrabar crash that closed near its open."""
        h, start = self.history, self.now_ms - int(span_s * 1000)
        first = h.at(MARK, start)
        if not first > 0:
            return None
        lo, hi = h.extremes(MARK, start, fine=span_s <= FINE_MAX_WINDOW_S)
        if not (lo > 0 and hi > 0):
            return None
        return 100.0 * math.log(lo / first), 100.0 * math.log(hi / first)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which windows the data can measure: a window shorter than the spacing of the open
    interest sees either nothing or a whole step (hourly bars: 1 m to 15 m are blind), so it
    is neither scored nor sampled. The *reference* window is the shortest measurable one at
    least ``window_s`` long (5 m live, 1 h on hourly bars, 1 d on daily bars): thresholds,
    liquidation windows and the support of long windows are taken relative to it."""

    cadence_s: float | None
    """The open interest's spacing (``None``: not measured yet)."""
    measurable: tuple[bool, ...]
    ref: int | None
    """Index of the reference window (``None``: the data is coarser than every window)."""

    @property
    def known(self) -> bool:
        return self.cadence_s is not None and self.ref is not None


def resolution(h: InstrumentHistory, spans: list[float], window_s: float) -> Resolution:
    """The windows the instrument's data can measure (see :class:`Resolution`)."""
    cadence = h.cadence_ms()
    cadence_s = None if cadence is None else cadence / 1000
    measurable = tuple(cadence_s is None or span >= MEASURABLE * cadence_s for span in spans)
    ref = next((i for i, span in enumerate(spans) if measurable[i] and span >= window_s), None)
    return Resolution(cadence_s, measurable, ref)


@dataclass(slots=True)
class WindowBaselines:
    span_s: float
    interval_ms: int
    oi: Baseline
    ret: Baseline
    liq: Baseline
    oi_noise: Baseline
    """Differences of successive changes about a quarter window apart, normalized to the
    window's sigma (the last :data:`RECENT_SAMPLES`): a drift, or a change of drift, cancels
    out of them, so their spread is the noise alone, and follows a noisier regime within a
    few windows."""
    ret_noise: Baseline
    last_oi: float | None = None
    last_ret: float | None = None
    last_ms: int = 0
    next_ms: int = 0
    next_recent_ms: int = 0

    def oi_scale(self) -> float | None:
        """The robust sigma of the OI change: the larger of the long and recent ones."""
        return _larger(self.oi.own_scale(), _noise(self.oi_noise))

    def ret_scale(self) -> float | None:
        return _larger(self.ret.own_scale(), _noise(self.ret_noise))


def _noise(diffs: Baseline) -> float | None:
    return diffs.own_scale()


def _larger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


@dataclass(slots=True)
class Baselines:
    """The robust baselines of one instrument, one set per window plus funding and premium."""

    windows: list[WindowBaselines]
    funding: Baseline
    premium: Baseline
    scalar_interval_ms: int
    next_scalar_ms: int = 0
    sampled: int = field(default=0)

    @classmethod
    def for_settings(cls, s: DetectorSettings) -> Baselines:
        # The windows' baselines keep single floats (half the memory; the real-history
        # evaluation gives the same figures); funding's and the premium's stay double (in
        # single, one more calm bar flagged on the real history).
        out = []
        for w in s.windows_s():
            lookback = s.lookback_s(w)
            interval_s = max(w / 4, lookback / s.baseline_max_samples)
            wanted = math.ceil(lookback / interval_s)
            cap = max(MIN_WINDOW_SAMPLES, min(s.baseline_max_samples, wanted))
            out.append(
                WindowBaselines(
                    w,
                    int(interval_s * 1000),
                    Baseline(cap, s.baseline_min_samples, fat_tails=True, typecode="f"),
                    Baseline(cap, s.baseline_min_samples, fat_tails=True, typecode="f"),
                    Baseline(
                        cap,
                        s.baseline_min_samples,
                        math.log(liq_floor(s, w)),
                        fat_tails=True,
                        typecode="f",
                    ),
                    Baseline(RECENT_SAMPLES, RECENT_MIN_SAMPLES, tail=RECENT_TAIL, typecode="f"),
                    Baseline(RECENT_SAMPLES, RECENT_MIN_SAMPLES, tail=RECENT_TAIL, typecode="f"),
                )
            )
        scalar_s = s.baseline_lookback_s / s.baseline_max_samples
        cap = s.baseline_max_samples
        return cls(
            out,
            Baseline(cap, s.baseline_min_samples),
            Baseline(cap, s.baseline_min_samples),
            int(scalar_s * 1000),
        )

    def slow(self) -> WindowBaselines:
        """The window funding changes are measured over (the second longest)."""
        return self.windows[-2] if len(self.windows) > 1 else self.windows[-1]


def liq_floor(s: DetectorSettings, span_s: float) -> float:
    return s.liq_floor_bp * span_s / s.window_s


def oi_floor(s: DetectorSettings, span_s: float) -> float:
    return s.oi_floor_pct * math.sqrt(span_s / s.window_s)


def price_floor(s: DetectorSettings, span_s: float) -> float:
    return s.price_floor_pct * math.sqrt(span_s / s.window_s)


def _log_pct(new: float, old: float) -> float | None:
    if not (new > 0 and old > 0):  # also false for nan
        return None
    return 100.0 * math.log(new / old)


def window_features(
    h: InstrumentHistory,
    span_s: float,
    now_ms: int,
    s: DetectorSettings,
    liq: bool,
    covered: tuple[int | None, int | None, int | None],
) -> WindowFeatures:
    """The features of ``h`` over ``(now - span, now]``; ``covered`` is when its OI, mark and
    liquidation data start (:meth:`InstrumentHistory.covered_since`)."""
    span_ms = int(span_s * 1000)
    start = now_ms - span_ms
    f = WindowFeatures(span_s, span_text(span_s))
    state = h.state
    oi_from, mark_from, liq_from = covered
    base0 = math.nan
    if oi_from is not None and h.oi_updates + (h.seeded_from_ms is not None) >= 2:
        t0 = max(start, oi_from)
        base0, oi_now = h.at(OI_BASE, t0), h.now(OI_BASE)
        f.oi = _log_pct(oi_now, base0)
        f.oi_usd = _log_pct(h.now(OI_USD), h.at(OI_USD, t0))
        f.oi_recent = _log_pct(oi_now, h.at(OI_BASE, max(now_ms - span_ms // 4, oi_from)))
        f.full = oi_from <= start and mark_from is not None and mark_from <= start
    if mark_from is not None:
        f.ret = _log_pct(h.now(MARK), h.at(MARK, max(start, mark_from)))
    if liq_from is None:
        return f
    t0 = max(start, liq_from)
    f.liq_full = liq_from <= start
    f.liq_long_usd = max(0.0, state[LIQ_LONG] - _zero(h.at(LIQ_LONG, t0)))
    f.liq_short_usd = max(0.0, state[LIQ_SHORT] - _zero(h.at(LIQ_SHORT, t0)))
    total = f.liq_long_usd + f.liq_short_usd
    if total > 0:
        f.active_s = max(0.0, state[ACTIVE] - _zero(h.at(ACTIVE, t0)))
        q0 = max(now_ms - span_ms // 4, liq_from)
        recent = state[LIQ_LONG] + state[LIQ_SHORT]
        f.liq_recent_usd = max(0.0, recent - _zero(h.at(LIQ_LONG, q0)) - _zero(h.at(LIQ_SHORT, q0)))
    oi_usd = state[OI_USD]
    if liq and oi_usd > 0:
        if total > 0 and f.active_s >= s.liq_min_active_s:
            biggest = h.max_bucket(t0, fine=span_s <= FINE_MAX_WINDOW_S)
            f.liq_trimmed_usd = max(0.0, total - biggest)
        f.liq_y = math.log(f.liq_trimmed_usd / oi_usd * 1e4 + liq_floor(s, span_s))
    if f.oi is not None and f.oi < 0 and state[MARK] > 0:
        decline_usd = (base0 - h.now(OI_BASE)) * state[MARK]
        if decline_usd > 0:
            f.forced_share = min(1.0, total / decline_usd)
    return f


def _zero(x: float) -> float:
    return 0.0 if x != x else x


def snapshot(h: InstrumentHistory, b: Baselines, now_ms: int, s: DetectorSettings) -> Snapshot:
    """All windows' features and the instrument's funding and premium."""
    covered = (h.covered_since(OI_BASE), h.covered_since(MARK), h.covered_since(LIQ_LONG))
    res = resolution(h, [wb.span_s for wb in b.windows], s.window_s)
    windows = [window_features(h, wb.span_s, now_ms, s, ok, covered)
               for wb, ok in zip(b.windows, res.measurable, strict=True)]  # fmt: skip
    state = h.state
    funding = state[FUNDING] if state[FUNDING] == state[FUNDING] else None
    f_change = f_z = None
    normalising = flip = False
    if funding is not None:
        slow_ms = int(b.slow().span_s * 1000)
        then = h.at(FUNDING, now_ms - slow_ms)
        floor = s.funding_floor_1h
        f_z = b.funding.z(funding, floor, s.prior_scale)
        if then == then:
            f_change = h.now(FUNDING) - then
            z_then = b.funding.z(then, floor, s.prior_scale)
            normalising = abs(z_then) >= 2.0 and abs(f_z) <= abs(z_then) / 2 and z_then * f_z >= 0
            normalising = normalising or (abs(z_then) >= 2.0 and z_then * f_z < 0)
        center = b.funding.center()
        flip = (
            b.funding.ready
            and abs(funding) > floor
            and funding * center < 0
            and abs(funding - center) > 2 * b.funding.scale(floor, s.prior_scale)
        )
    mark, index = state[MARK], h.index
    premium = (mark / index - 1.0) * 1e4 if mark > 0 and index > 0 else None
    p_z = b.premium.z(premium, s.premium_floor_bp, s.prior_scale) if premium is not None else None
    peak = h.oi_peak()
    oi_now = h.now(OI_BASE)
    drawdown = (oi_now / peak - 1.0) * 100.0 if peak > 0 and oi_now > 0 else None
    oi_usd = state[OI_USD] if state[OI_USD] > 0 else None
    recent_active = 0.0
    if covered[2] is not None and state[ACTIVE] > 0:
        since = max(now_ms - int(SATURATION_SPAN_S * 1000), covered[2])
        recent_active = max(0.0, state[ACTIVE] - _zero(h.at(ACTIVE, since)))
    adl = h.adl
    adl_oi = None
    if adl is not None and now_ms - adl.seen_ms > s.adl_hold_s * 1000:
        adl = None  # a level not heard again for too long says nothing now
    if adl is not None and adl.active_since_ms is not None:
        adl_oi = _log_pct(h.now(OI_BASE), h.at(OI_BASE, adl.active_since_ms))
    return Snapshot(
        windows,
        oi_usd,
        mark if mark > 0 else None,
        funding,
        f_change,
        f_z,
        normalising,
        flip,
        premium,
        p_z,
        drawdown,
        h.liq_sampled,
        res,
        h,
        now_ms,
        liq_recent_active_s=recent_active,
        adl=adl,
        adl_oi_pct=adl_oi,
    )


def sample_baselines(b: Baselines, snap: Snapshot, now_ms: int) -> None:
    """Feed the baselines whose sampling time has come (call only on fresh data)."""
    for wb, f, ok in zip(b.windows, snap.windows, snap.resolution.measurable, strict=True):
        if not ok:
            continue  # a window the data cannot measure learns nothing
        if now_ms >= wb.next_recent_ms:
            if f.full and f.oi is not None and f.ret is not None:
                if wb.last_oi is not None and wb.last_ret is not None:
                    # windows d apart share all but d of their span: the difference of
                    # their changes has variance 2 sigma^2 min(d, w) / w
                    d = min(now_ms - wb.last_ms, int(wb.span_s * 1000))
                    norm = math.sqrt(2.0 * d / (wb.span_s * 1000))
                    wb.oi_noise.add((f.oi - wb.last_oi) / norm)
                    wb.ret_noise.add((f.ret - wb.last_ret) / norm)
                wb.last_oi, wb.last_ret, wb.last_ms = f.oi, f.ret, now_ms
            else:
                wb.last_oi = wb.last_ret = None
            wb.next_recent_ms = now_ms + int(wb.span_s * 250)
        if now_ms < wb.next_ms:
            continue
        if f.full and f.oi is not None and f.ret is not None:
            wb.oi.add(f.oi)
            wb.ret.add(f.ret)
            b.sampled += 1
        if f.liq_full and f.liq_y is not None:
            wb.liq.add(f.liq_y)
        # until ready, every quarter window: a baseline is usable after a few windows
        wb.next_ms = now_ms + (wb.interval_ms if wb.oi.ready else int(wb.span_s * 250))
    if now_ms >= b.next_scalar_ms:
        if snap.funding_1h is not None:
            b.funding.add(snap.funding_1h)
        if snap.premium_bp is not None:
            b.premium.add(snap.premium_bp)
        b.next_scalar_ms = now_ms + b.scalar_interval_ms


def burn_in(b: Baselines, snap: Snapshot, now_ms: int, s: DetectorSettings) -> str | None:
    """Why the instrument reports no state yet, or ``None`` once the reference window's
    baselines hold ``burn_in_samples`` samples (a warm start fills them at once). Before
    that a z-score would be against the priors, a guess: on daily bars the first
    weeks of a history would score anything as extreme."""
    res = snap.resolution
    if s.burn_in_samples == 0 and res.ref is not None:
        return None
    if res.cadence_s is None:
        return f"{WARMING} the data's spacing is known (3 open-interest updates)"
    if res.ref is None:
        return (
            f"{WARMING} never: open interest every {span_text(res.cadence_s)} is coarser "
            "than every window"
        )
    wb = b.windows[res.ref]
    need = min(s.burn_in_samples, wb.oi.capacity)
    missing = need - min(len(wb.oi), len(wb.ret))
    if missing <= 0:
        return None
    step_ms = max(wb.span_s * 250, res.cadence_s * 1000)
    until = now_ms + int(missing * step_ms)
    if not snap.windows[res.ref].full:
        until += int(wb.span_s * 1000)
    stamp = dt.datetime.fromtimestamp(until / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"{WARMING} ~{stamp} ({span_text(wb.span_s)} baselines: {len(wb.oi)} of {need} samples)"
