"""The liquidity figures the detector reports beside its score (pure): the spread, the size at
the top of the book and the depth within 1 % of mid, each against a robust baseline of its
own, and the fragility they add up to; never evidence.

Gradual deleveraging shows in liquidity before it shows in liquidations: spreads widen and
books thin, most in the leveraged perpetuals, and a thin book makes a cascade move price
further per dollar liquidated (issue 16). The venues' top of book
(:class:`~service.events.BookTop`, at most one a second per instrument) reaches the detector
through the hand-off with the rest of the market data.

* **spread**: ``(ask - bid) / mid`` in basis points;
* **top of book**: the USD resting at the best bid plus the best ask;
* **depth**: the USD within :data:`DEPTH_BAND_PCT` of mid (:class:`~service.events.BookDepth`,
  bids and asks summed); its minute means' log change over :data:`DEPTH_CHANGE_MINUTES`
  minutes is the sample (a thinning book is a relative change, "-45 % in 15m"), against a
  baseline of such changes that outliers do not enter (:class:`_DepthChange`). A book
  whose received levels do not reach the band on both sides (its figure is a lower bound:
  :meth:`~service.events.BookDepth.exact`) is reported with ``depth_1pct_exact`` 0 and not
  sampled: a lower bound that comes and goes would read as thinning;
* **traded volume** (:class:`~service.events.Volume`, one per instrument and second that
  traded): the last minute's taker buys and taker sells in USD, and the z of the last
  complete minute's total (its log: volume moves by factors) against the minutes before; a
  minute without a trade counts as none traded.

A baseline of second-by-second values would be dominated by the book's flicker, so each
figure is averaged over a minute and the minute's mean is the sample: the z of a figure is
that of the last complete minute against the minutes before it (:data:`SAMPLES` of them,
answering after :data:`MIN_SAMPLES`). A figure is a feature while its newest value is younger
than :data:`FRESH_MS`; an instrument that is not calm gets a reason for a spread
:data:`REASON_Z` sigmas or more above its baseline, or a top of book or a depth change as
far below. The
baselines are not in the checkpoint: after a restart they fill again.

**Fragility** (:func:`fragility`): a thin or wide book (depth or top of book
:data:`REASON_Z` sigmas below its baseline, or the spread as far above) while open interest
falls or builds with at least :data:`FRAGILE_EVIDENCE` of the evidence a state needs. A thin
book makes a cascade move price further per dollar liquidated, so this is a warning (the
feature ``fragile``, and a reason on a non-calm state: "building, fragile"); it never makes
a state: the score and the state are the open interest's and the liquidations' alone.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque
from typing import Final

from ..events import BookDepth, BookTop, Volume
from .stress import PRIOR_SCALE, Figure, rounded_z

MINUTE_MS: Final = 60_000
SPREAD_FLOOR_BP: Final = 0.5
"""Floor of the spread's sigma: half a basis point (a tick on the majors)."""
TOP_FLOOR_PCT: Final = 5.0
"""Floor of the sigma of the top of book's log change, in %."""
FRESH_MS: Final = 60_000
"""A top of book older than this (a feed that stopped) is not reported; likewise traded
volume whose newest second is older."""
VOLUME_FLOOR_PCT: Final = 10.0
"""Floor of the sigma of a minute's traded USD's log change, in %."""
MAX_EMPTY_MINUTES: Final = 10
"""Minutes without a trade sampled as none traded, at most (a feed back after a long gap
does not fill the baseline with zeros)."""
REASON_Z: Final = 3.0
DEPTH_BAND_PCT: Final = 1.0
DEPTH_FLOOR_PCT: Final = 5.0
"""Floor of the sigma of the depth's log change, in %."""
DEPTH_CHANGE_MINUTES: Final = 15
FRAGILE_EVIDENCE: Final = 0.5
"""Open interest evidence (threshold units: 1 makes a state) that counts as falling or
building for :func:`fragility`: about half the z a state needs, sustained (gated) as the
state's own evidence is."""


class _Minute:
    """One figure's running mean over the current minute, sampled into a :class:`Figure`
    when the next minute begins."""

    __slots__ = ("count", "figure", "minute", "total")

    def __init__(self, floor: float) -> None:
        self.figure = Figure(floor)
        self.minute = -1
        self.total = 0.0
        self.count = 0

    def add(self, value: float, ts_ms: int) -> None:
        minute = ts_ms // MINUTE_MS
        if minute != self.minute:
            if self.count and minute > self.minute:
                self._sample(self.total / self.count, self.minute * MINUTE_MS)
            if minute < self.minute:
                return  # an older minute than the one being summed: late, ignored
            self.minute, self.total, self.count = minute, 0.0, 0
        self.total += value
        self.count += 1

    def _sample(self, mean: float, ts_ms: int) -> None:
        self.figure.add(mean, ts_ms)


class _DepthChange(_Minute):
    """The depth's minute means (``100 * ln(USD)``), sampled as their change over
    :data:`DEPTH_CHANGE_MINUTES`: a log change against a baseline of log changes, so a
    book that settled thinner is the new normal once the change is behind it. A change
    :data:`REASON_Z` sigmas or more from the baseline is not sampled: a quarter of an hour of
    thinning would otherwise fill the baseline's tail (its scale takes the 90th percentile's)
    within minutes and stop standing out while it lasts."""

    __slots__ = ("means",)

    def __init__(self) -> None:
        super().__init__(DEPTH_FLOOR_PCT)
        self.means: deque[tuple[int, float]] = deque(maxlen=DEPTH_CHANGE_MINUTES + 1)
        """The last minutes' ``(minute start ms, mean)``."""

    def _sample(self, mean: float, ts_ms: int) -> None:
        means = self.means
        while means and means[0][0] < ts_ms - DEPTH_CHANGE_MINUTES * MINUTE_MS:
            means.popleft()  # after a gap: only minutes within the span
        means.append((ts_ms, mean))
        if means[0][0] != ts_ms - DEPTH_CHANGE_MINUTES * MINUTE_MS:
            return  # no mean of the minute the change starts from
        f = self.figure
        change = mean - means[0][1]
        b = f.baseline
        z = b.z(change, f.floor, PRIOR_SCALE) if b.ready else None
        if z is None or abs(z) < REASON_Z:
            b.add(change)
        f.value, f.z, f.ts_ms = change, z, ts_ms


class _Tape:
    """One instrument's traded volume: its seconds of the last minute, and the baseline of its
    minutes' totals (sampled as ``100 * ln(1 + USD)``).

    A second is kept as three numbers (when, taker buys and taker sells in USD) in arrays, not
    as its :class:`Volume`: a minute of a whole market's seconds held as events was 182,000 of
    them at 3,036 instruments, about 45 MB (``docs/performance.md``, "The writer behind the
    whole market"), and the arrays hold the same minute in under 2 KB an instrument."""

    __slots__ = ("buy", "figure", "minute", "sell", "total", "ts")

    def __init__(self) -> None:
        self.figure = Figure(VOLUME_FLOOR_PCT)
        self.ts = array("q")
        """Each kept second's ``ts_ms``, oldest first (the seconds within a minute of the
        newest)."""
        self.buy = array("d")
        self.sell = array("d")
        self.minute = -1
        self.total = 0.0

    def add(self, ev: Volume) -> None:
        ts = self.ts
        if ts and ev.ts_ms <= ts[-1]:
            return  # a repeat, or out of order
        self.buy.append(ev.taker_buy_usd)
        self.sell.append(ev.taker_sell_usd)
        ts.append(ev.ts_ms)
        old = bisect.bisect_right(ts, ev.ts_ms - MINUTE_MS)
        if old:
            del ts[:old], self.buy[:old], self.sell[:old]
        minute = ev.ts_ms // MINUTE_MS
        if minute != self.minute:
            if self.minute >= 0:
                self.figure.add(100.0 * math.log1p(self.total), self.minute * MINUTE_MS)
                empty = min(minute - self.minute - 1, MAX_EMPTY_MINUTES)
                for m in range(minute - empty, minute):  # minutes without a trade
                    self.figure.add(0.0, m * MINUTE_MS)
            self.minute, self.total = minute, 0.0
        self.total += ev.taker_buy_usd + ev.taker_sell_usd

    def last_minute(self, now_ms: int) -> tuple[float, float] | None:
        """``(taker buy USD, taker sell USD)`` of the seconds within a minute of ``now_ms``;
        ``None`` when the newest second is older than :data:`FRESH_MS`."""
        ts = self.ts
        if not ts or now_ms - ts[-1] > FRESH_MS:
            return None
        since = bisect.bisect_left(ts, now_ms - MINUTE_MS)  # the seconds that started within it
        return sum(self.buy[since:]), sum(self.sell[since:])


class InstrumentLiquidity:
    """One instrument's top of book: the newest, and the minute means' baselines; its depth
    within 1 % and its traded volume, likewise (created at its first such event)."""

    __slots__ = ("depth", "newest", "newest_depth", "spread", "tape", "top")

    def __init__(self) -> None:
        self.newest: BookTop | None = None
        self.spread = _Minute(SPREAD_FLOOR_BP)
        self.top = _Minute(TOP_FLOOR_PCT)
        """Sampled as ``100 * ln(USD at the top)``: a thinning book is a relative change."""
        self.tape: _Tape | None = None
        """Its traded volume, from its venue's first :class:`Volume` on."""
        self.newest_depth: BookDepth | None = None
        self.depth = _DepthChange()
        """From complete books only."""

    def add_depth(self, ev: BookDepth) -> None:
        newest = self.newest_depth
        if newest is not None and ev.ts_ms <= newest.ts_ms:
            return  # a repeat, or out of order
        self.newest_depth = ev
        usd = ev.bid_usd_1 + ev.ask_usd_1
        if usd > 0 and ev.exact("bid", DEPTH_BAND_PCT) and ev.exact("ask", DEPTH_BAND_PCT):
            self.depth.add(100.0 * math.log(usd), ev.ts_ms)

    def fresh_depth(self, now_ms: int) -> BookDepth | None:
        newest = self.newest_depth
        return newest if newest is not None and now_ms - newest.ts_ms <= FRESH_MS else None

    def depth_change(self) -> float | None:
        """The depth's change in % over the last :data:`DEPTH_CHANGE_MINUTES` complete
        minutes (``None`` until they are sampled)."""
        f = self.depth.figure
        return None if f.ts_ms < 0 else 100.0 * math.expm1(f.value / 100.0)

    def add_volume(self, ev: Volume) -> None:
        tape = self.tape
        if tape is None:
            tape = self.tape = _Tape()
        tape.add(ev)

    def add(self, ev: BookTop) -> None:
        newest = self.newest
        if newest is not None and ev.ts_ms <= newest.ts_ms:
            return  # a repeat, or out of order
        self.newest = ev
        self.spread.add(ev.spread_bp, ev.ts_ms)
        top = ev.bid_usd + ev.ask_usd
        if top > 0:
            self.top.add(100.0 * math.log(top), ev.ts_ms)

    def fresh(self, now_ms: int) -> BookTop | None:
        newest = self.newest
        return newest if newest is not None and now_ms - newest.ts_ms <= FRESH_MS else None


def depth_1pct(ev: BookDepth) -> tuple[float, bool]:
    """The USD within :data:`DEPTH_BAND_PCT` of mid, bids plus asks, and whether the received
    levels reach the band on both sides (else the figure is a lower bound); in USD to the
    cent. The outputs show an instrument's newest depth with it, scored or not."""
    exact = ev.exact("bid", DEPTH_BAND_PCT) and ev.exact("ask", DEPTH_BAND_PCT)
    return round(ev.bid_usd_1 + ev.ask_usd_1, 2), exact


def liquidity_features(liq: InstrumentLiquidity | None, now_ms: int) -> dict[str, float | None]:
    """The fresh top of book of one instrument, with the z of its last complete minute
    (``None`` until the baseline is ready); its last minute's traded volume, likewise."""
    if liq is None:
        return {}
    out: dict[str, float | None] = {}
    book = liq.fresh(now_ms)
    if book is not None:
        out["spread_bp"] = round(book.spread_bp, 3)
        out["spread_z"] = rounded_z(liq.spread.figure.z)
        out["book_top_usd"] = round(book.bid_usd + book.ask_usd, 2)
        out["book_top_z"] = rounded_z(liq.top.figure.z)
    depth = liq.fresh_depth(now_ms)
    if depth is not None:
        usd, exact = depth_1pct(depth)
        out["depth_1pct_usd"] = usd
        out["depth_1pct_exact"] = 1.0 if exact else 0.0
        out["depth_1pct_z"] = rounded_z(liq.depth.figure.z)
        change = liq.depth_change()
        out["depth_1pct_change_pct"] = None if change is None else round(change, 2)
    tape = liq.tape
    minute = None if tape is None else tape.last_minute(now_ms)
    if tape is not None and minute is not None:
        out["volume_1m_buy_usd"] = round(minute[0], 2)
        out["volume_1m_sell_usd"] = round(minute[1], 2)
        out["volume_z"] = rounded_z(tape.figure.z)
    return out


def liquidity_reasons(liq: InstrumentLiquidity | None, now_ms: int) -> list[str]:
    """A reason for a spread :data:`REASON_Z` sigmas above its baseline, one for a top of
    book as far below its own, and one for a minute's traded volume as far from its own
    (either way: drying up or surging)."""
    if liq is None:
        return []
    out: list[str] = []
    if liq.fresh(now_ms) is not None:
        z = liq.spread.figure.z
        if z is not None and z >= REASON_Z:
            out.append(f"spread {liq.spread.figure.value:.1f} bp over 1m (z {z:+.1f}): widening")
        z = liq.top.figure.z
        if z is not None and z <= -REASON_Z:
            usd = math.exp(liq.top.figure.value / 100.0)
            out.append(f"top of book ${_short(usd)} over 1m (z {z:+.1f}): thinning")
    thinning = _depth_thinning(liq, now_ms)
    if thinning is not None:
        out.append(f"{thinning}: thinning")
    tape = liq.tape
    if tape is not None and tape.last_minute(now_ms) is not None:
        z = tape.figure.z
        if z is not None and abs(z) >= REASON_Z:
            usd = math.expm1(tape.figure.value / 100.0)
            move = "surging" if z > 0 else "drying up"
            out.append(f"traded ${_short(usd)} over 1m (z {z:+.1f}): volume {move}")
    return out


def _depth_thinning(liq: InstrumentLiquidity, now_ms: int) -> str | None:
    """``depth within 1 % -45 % in 15m (z -4.2)`` when the fresh depth's change is
    :data:`REASON_Z` sigmas or more below its baseline."""
    if liq.fresh_depth(now_ms) is None:
        return None
    z = liq.depth.figure.z
    change = liq.depth_change()
    if z is None or z > -REASON_Z or change is None:
        return None
    return f"depth within 1 % {change:+.0f} % in {DEPTH_CHANGE_MINUTES}m (z {z:+.1f})"


def fragility(
    liq: InstrumentLiquidity | None, features: dict[str, float | None], now_ms: int
) -> str | None:
    """``fragile: <what is thin or wide> while <open interest falls | leverage builds>``,
    or ``None``: the book is not thin or wide against its baselines, or open interest moves
    with less than :data:`FRAGILE_EVIDENCE` (``features``: the assessment's, with its
    ``evidence_oi_down`` and ``evidence_oi_up``)."""
    if liq is None:
        return None
    down = features.get("evidence_oi_down") or 0.0
    up = features.get("evidence_oi_up") or 0.0
    if max(down, up) < FRAGILE_EVIDENCE:
        return None
    what: list[str] = []
    thinning = _depth_thinning(liq, now_ms)
    if thinning is not None:
        what.append(thinning)
    if liq.fresh(now_ms) is not None:
        z = liq.top.figure.z
        if z is not None and z <= -REASON_Z and thinning is None:
            what.append(f"top of book z {z:+.1f}")
        z = liq.spread.figure.z
        if z is not None and z >= REASON_Z:
            what.append(f"spread {liq.spread.figure.value:.1f} bp (z {z:+.1f})")
    if not what:
        return None
    move = "open interest falls" if down >= up else "leverage builds"
    return f"fragile: {', '.join(what)} while {move}"


def _short(usd: float) -> str:
    """``1.2M``, ``45k``, ``830``."""
    if usd >= 1e6:
        return f"{usd / 1e6:.1f}M"
    if usd >= 1e3:
        return f"{usd / 1e3:.0f}k"
    return f"{usd:.0f}"
