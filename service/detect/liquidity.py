"""The liquidity figures the detector reports beside its score (pure): the spread and the size
at the top of the book, each against a robust baseline of its own; not yet evidence.

Gradual deleveraging shows in liquidity before it shows in liquidations: spreads widen and
books thin, most in the leveraged perpetuals, and a thin book makes a cascade move price
further per dollar liquidated (issue 16). The venues' top of book
(:class:`~service.events.BookTop`, at most one a second per instrument) reaches the detector
through the hand-off with the rest of the market data.

* **spread**: ``(ask - bid) / mid`` in basis points;
* **top of book**: the USD resting at the best bid plus the best ask.

A baseline of second-by-second values would be dominated by the book's flicker, so each
figure is averaged over a minute and the minute's mean is the sample: the z of a figure is
that of the last complete minute against the minutes before it (:data:`SAMPLES` of them,
answering after :data:`MIN_SAMPLES`). A figure is a feature while its newest value is younger
than :data:`FRESH_MS`; an instrument that is not calm gets a reason for a spread
:data:`REASON_Z` sigmas or more above its baseline, or a top of book as far below. The
baselines are not in the checkpoint: after a restart they fill again.
"""

from __future__ import annotations

import math
from typing import Final

from ..events import BookTop
from .stress import Figure, rounded_z

MINUTE_MS: Final = 60_000
SPREAD_FLOOR_BP: Final = 0.5
"""Floor of the spread's sigma: half a basis point (a tick on the majors)."""
TOP_FLOOR_PCT: Final = 5.0
"""Floor of the sigma of the top of book's log change, in %."""
FRESH_MS: Final = 60_000
"""A top of book older than this (a feed that stopped) is not reported."""
REASON_Z: Final = 3.0


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
                self.figure.add(self.total / self.count, self.minute * MINUTE_MS)
            if minute < self.minute:
                return  # an older minute than the one being summed: late, ignored
            self.minute, self.total, self.count = minute, 0.0, 0
        self.total += value
        self.count += 1


class InstrumentLiquidity:
    """One instrument's top of book: the newest, and the minute means' baselines (created at
    its first top of book)."""

    __slots__ = ("newest", "spread", "top")

    def __init__(self) -> None:
        self.newest: BookTop | None = None
        self.spread = _Minute(SPREAD_FLOOR_BP)
        self.top = _Minute(TOP_FLOOR_PCT)
        """Sampled as ``100 * ln(USD at the top)``: a thinning book is a relative change."""

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


def liquidity_features(liq: InstrumentLiquidity | None, now_ms: int) -> dict[str, float | None]:
    """The fresh top of book of one instrument, with the z of its last complete minute
    (``None`` until the baseline is ready)."""
    book = None if liq is None else liq.fresh(now_ms)
    if liq is None or book is None:
        return {}
    return {
        "spread_bp": round(book.spread_bp, 3),
        "spread_z": rounded_z(liq.spread.figure.z),
        "book_top_usd": round(book.bid_usd + book.ask_usd, 2),
        "book_top_z": rounded_z(liq.top.figure.z),
    }


def liquidity_reasons(liq: InstrumentLiquidity | None, now_ms: int) -> list[str]:
    """A reason for a spread :data:`REASON_Z` sigmas above its baseline, and one for a top of
    book as far below its own."""
    book = None if liq is None else liq.fresh(now_ms)
    if liq is None or book is None:
        return []
    out: list[str] = []
    z = liq.spread.figure.z
    if z is not None and z >= REASON_Z:
        out.append(f"spread {liq.spread.figure.value:.1f} bp over 1m (z {z:+.1f}): widening")
    z = liq.top.figure.z
    if z is not None and z <= -REASON_Z:
        usd = math.exp(liq.top.figure.value / 100.0)
        out.append(f"top of book ${_short(usd)} over 1m (z {z:+.1f}): thinning")
    return out


def _short(usd: float) -> str:
    """``1.2M``, ``45k``, ``830``."""
    if usd >= 1e6:
        return f"{usd / 1e6:.1f}M"
    if usd >= 1e3:
        return f"{usd / 1e3:.0f}k"
    return f"{usd:.0f}"
