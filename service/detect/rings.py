"""Time-bucketed history of one instrument, bounded whatever the event rate (pure).

An instrument keeps a running *state*: the newest open interest (base and USD), mark, index
and funding, and running totals of liquidated notional by side and of the seconds that had a
liquidation. Two rings of time buckets remember that state at the end of each bucket:

* the fine ring, 1-second buckets over the short windows (a few minutes);
* the coarse ring, 1-minute buckets (longer when the windows are very long) over the
  longest window.

A bucket is written only when time leaves it (the newest bucket is the running state), and
the buckets a quiet feed skipped are filled with the state carried forward, so adding an
event costs a few attribute writes and one integer division per ring; nothing is kept per
event. A value at a past time is a read of one slot; the liquidated notional of a window is a
difference of two running totals, O(1) whatever the window.

Reads at a time after the newest bucket see the running state: a quiet feed needs no
bookkeeping. Out-of-order input: an OI, mark or funding sample older than that field's
newest is dropped (older information); one that is only late (older than the newest bucket,
e.g. a polled OI stamped before the last mark) rewrites the closed buckets from its time
on; a late liquidation is counted in the newest bucket.

Memory: the rings keep the levels (open interest, mark, funding) at single precision (about
7 significant digits, far finer than any change the detector reads) and the running totals
at double (a window's total is a difference of two large ones). The state keeps every
value as received (what the scores report); a change of a level is read between values of
the rings' precision (:meth:`InstrumentHistory.now`, and :meth:`~InstrumentHistory.at`
for the newest bucket), so a level that did not move changed by exactly 0. With the default
windows an instrument's rings hold 51 KB of columns (:meth:`Ring.nbytes`), allocated once,
whatever the event rate or the time it runs.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Any, Final

from ..events import AdlLevel, AdlRisk, FundingRate, Liquidation, MarkPrice, OpenInterest, Side

NAN: Final = math.nan
FINE_MS: Final = 1000
FINE_MAX_WINDOW_S: Final = 600.0
"""Windows up to this long read the fine ring."""
CADENCE_GAPS: Final = 9
"""Open-interest spacings kept to measure the data's resolution (their median)."""
CADENCE_MIN_GAPS: Final = 3

# Fields of the state, in the order of the rings' columns.
OI_BASE, OI_USD, MARK, FUNDING, LIQ_LONG, LIQ_SHORT, ACTIVE = range(7)
LEVELS: Final = (OI_BASE, OI_USD, MARK, FUNDING)
"""The level fields: the first four (``at`` relies on the order)."""
FIELDS: Final = 7
TYPECODES: Final = ("f", "f", "f", "f", "d", "d", "d")
"""Per column: single precision for the levels, double for the running totals."""
_SINGLE = array("f", [0.0])


def single(value: float) -> float:
    """``value`` rounded to single precision, as the rings keep a level."""
    _SINGLE[0] = value
    return _SINGLE[0]


class Ring:
    """``cap`` buckets of ``res_ms``; bucket ``b`` (``ts // res_ms``) lives at ``b % cap``."""

    __slots__ = ("cap", "cols", "head", "res_ms")

    def __init__(self, res_ms: int, cap: int) -> None:
        self.res_ms = res_ms
        self.cap = cap
        self.head = -1
        """The newest bucket (its values are the instrument's running state)."""
        self.cols = [array(code, [NAN]) * cap for code in TYPECODES]

    def nbytes(self) -> int:
        """The bytes of the ring's columns (fixed: allocated once, never resized)."""
        return sum(col.itemsize * len(col) for col in self.cols)

    def roll(self, bucket: int, state: list[float]) -> None:
        """Close the buckets before ``bucket`` with ``state`` (the state at their end)."""
        head = self.head
        if head >= 0 and bucket > head:
            cap = self.cap
            first = max(head, bucket - cap)
            for col, value in zip(self.cols, state, strict=True):
                self._fill(col, first, bucket, value)
        self.head = bucket

    def _fill(self, col: array[Any], first: int, end: int, value: float) -> None:
        """Set buckets ``first`` to ``end`` (excluded; at most ``cap``) of ``col`` to
        ``value``: one or two slice assignments, not a loop per bucket."""
        n = end - first
        if n <= 0:
            return
        cap = self.cap
        lo = first % cap
        if n == 1:
            col[lo] = value
            return
        fill = array(col.typecode, [value])
        if lo + n <= cap:
            col[lo : lo + n] = fill * n
        else:  # wraps around the end of the ring
            col[lo:] = fill * (cap - lo)
            col[: n - (cap - lo)] = fill * (n - (cap - lo))

    def rewrite(self, field: int, since_ms: int, value: float) -> None:
        """Set ``field`` to ``value`` in the closed buckets from ``since_ms``'s on (a late
        level: see :meth:`InstrumentHistory._level`)."""
        self._fill(self.cols[field], max(since_ms // self.res_ms, self.oldest()), self.head, value)

    def oldest(self) -> int:
        return self.head - self.cap + 1


class AdlSeen:
    """The newest ADL level a venue published for one instrument (:class:`~service.events.
    AdlRisk`), and since when it has said ADL is active (``None``: it does not)."""

    __slots__ = ("active_since_ms", "level", "native", "native_kind", "seen_ms", "trigger")

    def __init__(self) -> None:
        self.level = AdlLevel.LOW
        self.native = ""
        self.native_kind = ""
        self.trigger: float | None = None
        self.seen_ms = 0
        """Receive time of the newest publication."""
        self.active_since_ms: int | None = None
        """Receive time of the first of the publications in a row that said ``ACTIVE``."""


class InstrumentHistory:
    """The running state and the two rings of one instrument."""

    __slots__ = (
        "_peaks",
        "adl",
        "asset",
        "coarse",
        "fine",
        "first_ms",
        "funding_seen_ms",
        "index",
        "last_active_s",
        "last_ts",
        "liq_sampled",
        "liq_seen_ms",
        "liq_start_ms",
        "mark_seen_ms",
        "oi_gaps",
        "oi_seen_ms",
        "oi_updates",
        "seeded_from_ms",
        "state",
        "symbol",
        "venue",
    )

    def __init__(self, venue: str, symbol: str, asset: str, fine: Ring, coarse: Ring) -> None:
        self.venue = venue
        self.symbol = symbol
        self.asset = asset
        self.fine = fine
        self.coarse = coarse
        self.state = [NAN, NAN, NAN, NAN, 0.0, 0.0, 0.0]
        self.index = NAN
        """Newest index price (the premium's reference), ``nan`` when the venue has none."""
        self.last_active_s = -1
        self.last_ts = [0, 0, 0, 0]
        """Per level field, the event time of its newest sample."""
        self.liq_sampled: bool | None = None
        self.first_ms: dict[int, int] = {}
        """Per level field, the event time of its first live value."""
        self.liq_start_ms: int | None = None
        """When the liquidation totals started counting (the first event of any kind)."""
        self.seeded_from_ms: int | None = None
        self.oi_updates = 0
        self.oi_gaps: list[int] = []
        """The spacing of the newest open-interest samples (ms): the data's resolution."""
        self.oi_seen_ms: int | None = None
        self.mark_seen_ms: int | None = None
        self.funding_seen_ms: int | None = None
        self.liq_seen_ms: int | None = None
        self.adl: AdlSeen | None = None
        """The venue's newest ADL level for the instrument (``None``: none published)."""
        self._peaks: deque[tuple[int, float]] | None = deque()
        """Closed coarse buckets' open interest, decreasing: ``(last bucket, value)`` of
        each run that could still be the peak (a sliding-window maximum); ``None`` after a
        rewrite of closed buckets (rebuilt at the next read)."""

    # -- input ---------------------------------------------------------------------------

    def _tick(self, ts_ms: int) -> bool:
        """Move both rings to ``ts_ms``; False when ``ts_ms`` is older than the newest bucket."""
        fine, coarse = self.fine, self.coarse
        b = ts_ms // fine.res_ms
        if b != fine.head:
            if b < fine.head:
                return False
            fine.roll(b, self.state)
            if self.liq_start_ms is None:
                self.liq_start_ms = ts_ms
        c = ts_ms // coarse.res_ms
        if c > coarse.head:
            if coarse.head >= 0:
                self._peak_push(c - 1, self.now(OI_BASE))
            coarse.roll(c, self.state)
        return True

    def _peak_push(self, bucket: int, value: float) -> None:
        peaks = self._peaks
        if peaks is None or value != value:
            return
        while peaks and peaks[-1][1] <= value:
            peaks.pop()
        peaks.append((bucket, value))

    def _level(self, field: int, ts_ms: int, value: float) -> bool:
        """Set a level; a sample older than the field's newest is dropped, a late one (older
        than the newest bucket, e.g. a polled OI stamped before the last mark) rewrites the
        closed buckets from its time on."""
        if ts_ms < self.last_ts[field]:
            return False
        self.last_ts[field] = ts_ms
        if not self._tick(ts_ms):
            if field == OI_BASE:
                self._peaks = None
            self.fine.rewrite(field, ts_ms, value)
            self.coarse.rewrite(field, ts_ms, value)
        self.state[field] = value
        if field not in self.first_ms:
            self.first_ms[field] = ts_ms
        return True

    def add_open_interest(self, ev: OpenInterest) -> bool:
        before = self.last_ts[OI_BASE]
        if self._level(OI_BASE, ev.ts_ms, ev.oi_base):
            if before and ev.ts_ms > before:
                gaps = self.oi_gaps
                gaps.append(ev.ts_ms - before)
                if len(gaps) > CADENCE_GAPS:
                    del gaps[0]
            self.state[OI_USD] = ev.oi_usd
            self.first_ms.setdefault(OI_USD, ev.ts_ms)
            self.oi_updates += 1
        self.oi_seen_ms = _newest(self.oi_seen_ms, ev.recv_ms)
        return True

    def add_mark(self, ev: MarkPrice) -> bool:
        if self._level(MARK, ev.ts_ms, ev.mark_price) and ev.index_price:
            self.index = ev.index_price
        self.mark_seen_ms = _newest(self.mark_seen_ms, ev.recv_ms)
        return True

    def add_funding(self, ev: FundingRate) -> bool:
        self._level(FUNDING, ev.ts_ms, ev.funding_rate_1h)
        self.funding_seen_ms = _newest(self.funding_seen_ms, ev.recv_ms)
        return True

    def add_liquidation(self, ev: Liquidation) -> bool:
        self._tick(ev.ts_ms)  # a late one counts in the newest bucket
        state = self.state
        state[LIQ_LONG if ev.side is Side.LONG else LIQ_SHORT] += ev.notional_usd
        second = ev.ts_ms // 1000
        if second > self.last_active_s:
            self.last_active_s = second
            state[ACTIVE] += 1.0
        self.liq_sampled = ev.sampled
        self.liq_seen_ms = _newest(self.liq_seen_ms, ev.recv_ms)
        return True

    def add_adl(self, ev: AdlRisk) -> bool:
        """A published ADL level (by receive time: the venues stamp their ratings coarsely,
        Binance on the half hour); False for one older than the newest."""
        adl = self.adl
        if adl is None:
            adl = self.adl = AdlSeen()
        elif ev.recv_ms < adl.seen_ms:
            return False
        if ev.level is not AdlLevel.ACTIVE:
            adl.active_since_ms = None
        elif adl.active_since_ms is None:
            adl.active_since_ms = ev.recv_ms
        adl.level, adl.native, adl.native_kind = ev.level, ev.native, ev.native_kind
        adl.trigger, adl.seen_ms = ev.trigger, ev.recv_ms
        return True

    # -- reads ---------------------------------------------------------------------------

    def now(self, field: int) -> float:
        """The field's newest value at the rings' precision: what a change against a value
        read from the rings starts from (``state`` holds it as received)."""
        value = self.state[field]
        return single(value) if field <= FUNDING else value

    def at(self, field: int, ts_ms: int) -> float:
        """The field's value at the end of the bucket holding ``ts_ms`` (the newest value for
        the newest bucket and later; a level's first value before it was first seen;
        ``nan`` when outside both rings)."""
        if field <= FUNDING:  # a level (see LEVELS)
            first = self.first_ms.get(field)
            if first is None:
                return NAN
            if ts_ms < first:
                ts_ms = first
        ring = self.fine  # then the coarse ring: the same steps, unrolled (a hot path)
        b, head, cap = ts_ms // ring.res_ms, ring.head, ring.cap
        if b >= head:
            return self.now(field)
        if b > head - cap:  # b >= ring.oldest()
            value = ring.cols[field][b % cap]
            if value == value:  # not nan
                return value
        ring = self.coarse
        b, head, cap = ts_ms // ring.res_ms, ring.head, ring.cap
        if b >= head:
            return self.now(field)
        if b > head - cap:
            value = ring.cols[field][b % cap]
            if value == value:
                return value
        return NAN

    def cadence_ms(self) -> int | None:
        """The open interest's resolution: the median spacing of its newest samples
        (``None`` until :data:`CADENCE_MIN_GAPS` are known). Live feeds update every few
        seconds; bars every bar."""
        gaps = self.oi_gaps
        if len(gaps) < CADENCE_MIN_GAPS:
            return None
        return sorted(gaps)[len(gaps) // 2]

    def extremes(self, field: int, since_ms: int, *, fine: bool) -> tuple[float, float]:
        """The lowest and highest value of a level after ``since_ms`` (bucket ends and now):
        a bar's intrabar low, a flash crash that rebounded within the window."""
        ring = self.fine if fine else self.coarse
        now = self.now(field)
        lo = hi = now
        if ring.head < 0:
            return lo, hi
        col, cap = ring.cols[field], ring.cap
        for b in range(max(since_ms // ring.res_ms, ring.oldest()), ring.head):
            v = col[b % cap]
            if v == v:
                if not v >= lo:
                    lo = v
                if not v <= hi:
                    hi = v
        return lo, hi

    def covered_since(self, field: int) -> int | None:
        """The oldest time a window can start at and read ``field`` (``None``: no data)."""
        if field in LEVELS:
            first = self.first_ms.get(field)
            if first is None:
                return None
            return max(first, self._oldest_ms())
        return None if self.liq_start_ms is None else max(self.liq_start_ms, self._oldest_ms())

    def _oldest_ms(self) -> int:
        c = self.coarse
        return (c.oldest() + 1) * c.res_ms

    def max_bucket(self, since_ms: int, *, fine: bool) -> float:
        """The largest liquidated notional (both sides) of one bucket after ``since_ms``:
        what a single print, or a single throttled second, could have contributed. One
        second on the fine ring, one coarse bucket on the coarse ring."""
        ring = self.fine if fine else self.coarse
        if ring.head < 0:
            return 0.0
        state, cap = self.state, ring.cap
        lo = max(since_ms // ring.res_ms, ring.oldest())
        longs, shorts = ring.cols[LIQ_LONG], ring.cols[LIQ_SHORT]
        prev = (
            longs[lo % cap] + shorts[lo % cap]
            if lo < ring.head
            else state[LIQ_LONG] + state[LIQ_SHORT]
        )
        if prev != prev:  # nan: the window starts before the first bucket
            prev = 0.0
        best = 0.0
        for b in range(lo + 1, ring.head):
            cur = longs[b % cap] + shorts[b % cap]
            if cur == cur:
                if cur - prev > best:
                    best = cur - prev
                prev = cur
        newest = state[LIQ_LONG] + state[LIQ_SHORT] - prev
        return newest if newest > best else best

    def oi_peak(self) -> float:
        """The highest open interest (base) over the coarse ring and now (bucket ends, kept as
        a sliding-window maximum: O(1) per read)."""
        coarse = self.coarse
        peaks = self._peaks
        if peaks is None:  # closed buckets were rewritten: scan them once
            peaks = self._rebuild_peaks()
        oldest = coarse.oldest()
        while peaks and peaks[0][0] < oldest:
            peaks.popleft()
        now = self.now(OI_BASE)
        best = peaks[0][1] if peaks else NAN
        return now if not best >= now else best

    def _rebuild_peaks(self) -> deque[tuple[int, float]]:
        """The sliding-window maximum of the closed coarse buckets, from a scan of them."""
        coarse = self.coarse
        peaks: deque[tuple[int, float]] = deque()
        col, cap = coarse.cols[OI_BASE], coarse.cap
        for b in range(coarse.oldest(), coarse.head):
            value = col[b % cap]
            if value == value:
                while peaks and peaks[-1][1] <= value:
                    peaks.pop()
                peaks.append((b, value))
        self._peaks = peaks
        return peaks

    # -- warm start ----------------------------------------------------------------------

    def seed_levels(self, points: list[tuple[int, float, float, float]]) -> int:
        """Fill coarse buckets older than the live data with ``(ts_ms, oi_base, oi_usd,
        mark)`` history (``nan`` for unknown); return the buckets filled."""
        coarse = self.coarse
        if not points:
            return 0
        points = sorted(points)
        live = self.first_ms.get(OI_BASE)
        end_b = (live // coarse.res_ms) if live is not None else points[-1][0] // coarse.res_ms + 1
        if coarse.head < 0:
            coarse.head = end_b
        lo = max(coarse.oldest(), points[0][0] // coarse.res_ms)
        cols, cap = coarse.cols, coarse.cap
        filled, i = 0, 0
        cur: tuple[int, float, float, float] | None = None
        for b in range(lo, min(end_b, coarse.head)):
            while i < len(points) and points[i][0] // coarse.res_ms <= b:
                cur = points[i]
                i += 1
            if cur is None:
                continue
            _, base, usd, mark = cur
            cols[OI_BASE][b % cap], cols[OI_USD][b % cap] = base, usd
            if mark == mark:
                cols[MARK][b % cap] = mark
            cols[LIQ_LONG][b % cap] = cols[LIQ_SHORT][b % cap] = cols[ACTIVE][b % cap] = 0.0
            filled += 1
        if filled and cur is not None:
            self._rebuild_peaks()
            start = points[0][0]
            for field in (OI_BASE, OI_USD):
                self.first_ms[field] = min(self.first_ms.get(field, start), start)
            if any(p[3] == p[3] for p in points):
                self.first_ms[MARK] = min(self.first_ms.get(MARK, start), start)
            self.seeded_from_ms = start
            if live is None:
                self.state[OI_BASE], self.state[OI_USD] = cur[1], cur[2]
                if cur[3] == cur[3] and self.state[MARK] != self.state[MARK]:
                    self.state[MARK] = cur[3]
        return filled


def _newest(seen: int | None, recv_ms: int) -> int:
    return recv_ms if seen is None or recv_ms > seen else seen


def make_rings(windows_s: list[float]) -> tuple[Ring, Ring]:
    """A fine and a coarse ring sized for ``windows_s``."""
    fine_windows = [w for w in windows_s if w <= FINE_MAX_WINDOW_S] or [60.0]
    fine_cap = math.ceil(max(fine_windows) * 1.25) + 5
    longest = max(windows_s)
    # at most about 1000 coarse buckets per longest window, in whole minutes
    coarse_ms = 60_000 * max(1, math.ceil(longest / 60_000))
    coarse_cap = math.ceil(longest * 1.25 * 1000 / coarse_ms) + 3
    return Ring(FINE_MS, fine_cap), Ring(coarse_ms, coarse_cap)
