"""Rolling per-instrument windows over event time (pure: no I/O, no clock).

A window covers ``(now - span, now]``. Every series keeps, besides the samples inside the
window, the newest sample at or before the window start: the *baseline*, so that a change
over the window is well defined even when a feed updates rarely (Binance open interest is
polled every few tens of seconds). :meth:`Series.value_at` interpolates between the baseline
and the next sample to estimate the value at the window start: the OI change and the
liquidations summed in the window then cover the same interval (otherwise a coarse OI poll
stretches the OI change up to one poll interval further back than the liquidation sums, and
their ratio, the forced share, is wrong while a cascade leaves the window).

Memory is bounded whatever the event rate: samples are coalesced to one per
:data:`RESOLUTION_MS` (the newest wins) and liquidations are summed into buckets of the same
width, so a series holds at most ``span / RESOLUTION_MS + 2`` entries. Adding a sample is
O(1) amortized and allocates nothing but the deque slots (timestamps and values live in
parallel deques, no tuple per sample).

Out-of-order input: a sample older than the newest one of its series is dropped (it is older
information); a late liquidation still inside the window is added to the newest bucket.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from ..events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side

RESOLUTION_MS = 1000
"""Samples of one series closer than this are coalesced; liquidation bucket width."""


class Series:
    """Time-ordered samples of one value with a baseline before the window start."""

    __slots__ = ("span_ms", "ts", "values")

    def __init__(self, span_ms: int) -> None:
        self.span_ms = span_ms
        self.ts: deque[int] = deque()
        self.values: deque[float] = deque()

    def __len__(self) -> int:
        return len(self.ts)

    def add(self, ts_ms: int, value: float) -> bool:
        """Append a sample; return False when it was older than the newest and dropped."""
        ts = self.ts
        if ts:
            last = ts[-1]
            if ts_ms < last:
                return False
            if ts_ms // RESOLUTION_MS == last // RESOLUTION_MS:
                ts[-1] = ts_ms
                self.values[-1] = value
                return True
        ts.append(ts_ms)
        self.values.append(value)
        if len(ts) > 2 and ts[1] <= ts_ms - self.span_ms:
            self.evict(ts_ms - self.span_ms)
        return True

    def evict(self, start_ms: int) -> None:
        """Drop samples before the baseline: keep the newest sample at or before ``start_ms``."""
        ts, values = self.ts, self.values
        while len(ts) > 1 and ts[1] <= start_ms:
            ts.popleft()
            values.popleft()

    @property
    def first(self) -> float | None:
        """The baseline (or the oldest sample when the series is younger than the window)."""
        return self.values[0] if self.values else None

    @property
    def last(self) -> float | None:
        return self.values[-1] if self.values else None

    def value_at(self, ms: int) -> float | None:
        """The value at ``ms`` (after :meth:`evict` to ``ms``): interpolated between the
        baseline and the next sample, else the oldest (a series younger than the window
        starts at its oldest sample)."""
        ts, values = self.ts, self.values
        if not ts:
            return None
        if len(ts) == 1 or ts[0] >= ms:
            return values[0]
        t0, t1 = ts[0], ts[1]
        if t1 <= ms:  # not evicted up to ``ms`` yet
            return values[1]
        return values[0] + (values[1] - values[0]) * (ms - t0) / (t1 - t0)

    def peak_since(self, ms: int) -> float | None:
        """The largest value in ``(ms, newest]``, counting the interpolated one at ``ms``."""
        start = self.value_at(ms)
        if start is None:
            return None
        # after eviction to ``ms`` only the baseline can be at or before it
        inside = islice(self.values, 1, None) if self.ts[0] <= ms else iter(self.values)
        return max(start, max(inside, default=start))

    def next_change_ms(self) -> int | None:
        """When the baseline will move if nothing new arrives (``None``: never)."""
        return self.ts[1] + self.span_ms if len(self.ts) > 1 else None


class _Bucket:
    __slots__ = ("last_ms", "long_n", "long_usd", "short_n", "short_usd", "start_ms")

    def __init__(self, ts_ms: int) -> None:
        self.start_ms = ts_ms - ts_ms % RESOLUTION_MS
        self.last_ms = ts_ms
        self.long_usd = 0.0
        self.short_usd = 0.0
        self.long_n = 0
        self.short_n = 0


class LiquidationTape:
    """Liquidated notional by position side within the window, as running sums."""

    __slots__ = ("_buckets", "long_n", "long_usd", "short_n", "short_usd", "span_ms")

    def __init__(self, span_ms: int) -> None:
        self.span_ms = span_ms
        self._buckets: deque[_Bucket] = deque()
        self.long_usd = 0.0
        self.short_usd = 0.0
        self.long_n = 0
        self.short_n = 0

    def add(self, ts_ms: int, side: Side, notional_usd: float) -> bool:
        """Count one liquidation; return False when it is already outside the window."""
        buckets = self._buckets
        if buckets:
            newest = buckets[-1]
            if ts_ms <= newest.last_ms - self.span_ms:
                return False
            if ts_ms < newest.start_ms + RESOLUTION_MS:
                newest.last_ms = max(newest.last_ms, ts_ms)
            else:
                newest = _Bucket(ts_ms)
                buckets.append(newest)
                self.evict(ts_ms - self.span_ms)
        else:
            newest = _Bucket(ts_ms)
            buckets.append(newest)
        if side is Side.LONG:
            newest.long_usd += notional_usd
            newest.long_n += 1
            self.long_usd += notional_usd
            self.long_n += 1
        else:
            newest.short_usd += notional_usd
            newest.short_n += 1
            self.short_usd += notional_usd
            self.short_n += 1
        return True

    def evict(self, start_ms: int) -> None:
        """Drop buckets whose newest liquidation is at or before ``start_ms``."""
        buckets = self._buckets
        while buckets and buckets[0].last_ms <= start_ms:
            old = buckets.popleft()
            self.long_usd -= old.long_usd
            self.short_usd -= old.short_usd
            self.long_n -= old.long_n
            self.short_n -= old.short_n
        if not buckets:  # reset exactly: running float sums drift
            self.long_usd = self.short_usd = 0.0
            self.long_n = self.short_n = 0

    def next_change_ms(self) -> int | None:
        return self._buckets[0].last_ms + self.span_ms if self._buckets else None


class InstrumentWindow:
    """Everything the score needs about one instrument over the rolling window.

    ``*_seen_ms`` are receive times of the newest event of each feed (data quality).
    ``dirty`` is set by every accepted event and cleared by whoever evaluates the window.
    """

    __slots__ = (
        "asset",
        "dirty",
        "funding",
        "funding_seen_ms",
        "liq",
        "liq_sampled",
        "liq_seen_ms",
        "mark",
        "mark_seen_ms",
        "oi_base",
        "oi_seen_ms",
        "oi_usd",
        "span_ms",
        "start_ms",
        "symbol",
        "venue",
    )

    def __init__(self, venue: str, symbol: str, asset: str, span_ms: int) -> None:
        self.venue = venue
        self.symbol = symbol
        self.asset = asset
        self.span_ms = span_ms
        self.start_ms = 0
        """The window start as of the last :meth:`advance`."""
        self.oi_base = Series(span_ms)
        self.oi_usd = Series(span_ms)
        self.mark = Series(span_ms)
        self.funding = Series(span_ms)
        self.liq = LiquidationTape(span_ms)
        self.liq_sampled: bool | None = None
        """Whether the newest liquidation came from a sampled feed (``None``: none seen)."""
        self.oi_seen_ms: int | None = None
        self.mark_seen_ms: int | None = None
        self.funding_seen_ms: int | None = None
        self.liq_seen_ms: int | None = None
        self.dirty = False

    def add_open_interest(self, ev: OpenInterest) -> None:
        if self.oi_base.add(ev.ts_ms, ev.oi_base):
            self.oi_usd.add(ev.ts_ms, ev.oi_usd)
            self.dirty = True
        self.oi_seen_ms = _newest(self.oi_seen_ms, ev.recv_ms)

    def add_mark(self, ev: MarkPrice) -> None:
        if self.mark.add(ev.ts_ms, ev.mark_price):
            self.dirty = True
        self.mark_seen_ms = _newest(self.mark_seen_ms, ev.recv_ms)

    def add_funding(self, ev: FundingRate) -> None:
        if self.funding.add(ev.ts_ms, ev.funding_rate_1h):
            self.dirty = True
        self.funding_seen_ms = _newest(self.funding_seen_ms, ev.recv_ms)

    def add_liquidation(self, ev: Liquidation) -> None:
        if self.liq.add(ev.ts_ms, ev.side, ev.notional_usd):
            self.dirty = True
            self.liq_sampled = ev.sampled
        self.liq_seen_ms = _newest(self.liq_seen_ms, ev.recv_ms)

    def advance(self, now_ms: int) -> None:
        """Move the window to end at ``now_ms``: evict what fell out of it."""
        self.start_ms = start = now_ms - self.span_ms
        self.oi_base.evict(start)
        self.oi_usd.evict(start)
        self.mark.evict(start)
        self.funding.evict(start)
        self.liq.evict(start)

    def next_change_ms(self) -> int | None:
        """The earliest time at which the window's content changes with no new data."""
        times = (
            self.oi_base.next_change_ms(),
            self.mark.next_change_ms(),
            self.funding.next_change_ms(),
            self.liq.next_change_ms(),
        )
        return min((t for t in times if t is not None), default=None)


def _newest(seen: int | None, recv_ms: int) -> int:
    return recv_ms if seen is None or recv_ms > seen else seen
