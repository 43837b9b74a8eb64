"""The invariants of a normalized event, checked before anything downstream relies on them.

Two checks, one set of rules:

* :func:`problem` needs nothing but the event: finite values, sizes and values that are not
  negative, prices that are positive, a funding rate and interval that can be real, a known
  side, and times that are plausible epoch milliseconds. Every venue parser applies it to
  what it emits (:meth:`service.venues.base.Parser.parse`, through :func:`all_valid`, the
  same rules over a frame's events in one call), so the collector, the simulator driven
  evaluation and the tests all see the same clean events.
* :func:`check` adds what needs the clock: the event time is neither before
  :data:`TS_MIN_MS` nor more than :data:`FUTURE_SLACK_MS` after our receive time. The
  collectors apply it to every event, websocket or REST, before it is deduplicated and
  stored (:class:`Boundary`): a time far in the future would otherwise hide every later
  value of its instrument from the deduplicator.

The bounds are generous on purpose: they reject what cannot be a market (NaN, infinities,
negative sizes, a 1e300 price, a funding rate of 200 % per interval), not what is merely
unusual. Checks are plain comparisons: a chained ``0 < x < MAX`` is false for NaN and for
both infinities, so the common case costs a few attribute reads and comparisons per event
(about 0.1-0.2 us in CPython 3.11); the reason is worked out only for an event that fails.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import structlog

from .events import (
    STRESS_KIND_OF,
    AdlRisk,
    Basis,
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    HandoffEvent,
    InsuranceFund,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Positioning,
    Side,
    Volume,
)

log = structlog.get_logger(__name__)

MAX_VALUE: Final = 1e18
"""Upper bound of any price, size or USD value: far above any real one (all the world's
money is about 1e14 USD, a meme coin's supply about 1e15 units) and far below a float's
overflow, even summed over millions of events."""
MAX_FUNDING_RATE: Final = 1.0
"""Bound of ``|funding_rate|`` (per interval) and ``|funding_rate_1h|``: 100 %, twenty
times the widest cap a venue applies (Hyperliquid: 4 % an hour)."""
MAX_INTERVAL_H: Final = 168.0
"""A funding interval is in ``(0, 168]`` hours (real ones: 1, 2, 4 and 8)."""
TS_MIN_MS: Final = 1_420_070_400_000
"""2015-01-01T00:00:00Z: no perpetual swap this service reads existed before."""
TS_MAX_MS: Final = 4_102_444_800_000
"""2100-01-01T00:00:00Z: the bound of a time read without a clock (:func:`problem`)."""
FUTURE_SLACK_MS: Final = 3_600_000
"""How far an event time may be ahead of our receive time (clock skew, venues that stamp
the end of a window): one hour."""
NEXT_FUNDING_AHEAD_MS: Final = 31 * 24 * 3_600_000
"""How far ahead the next funding time may be: a month (real ones: at most a day)."""
MAX_EVENT_ID: Final = 256
"""Characters of a liquidation's ``event_id`` (built from wire fields; real ones < 100)."""

NON_FINITE: Final = "non_finite"
NEGATIVE: Final = "negative"
BAD_PRICE: Final = "bad_price"
TOO_LARGE: Final = "too_large"
BAD_FUNDING: Final = "bad_funding"
BAD_TIME: Final = "bad_time"
BAD_SIDE: Final = "bad_side"
BAD_ID: Final = "bad_id"
CROSSED_BOOK: Final = "crossed_book"
"""A top of book whose best bid is above its best ask: not a book (a locked one, equal
prices, is kept: it happens for an instant on real venues)."""
_MIN_FUNDING_RATE: Final = -MAX_FUNDING_RATE
_LONG: Final = Side.LONG
_SHORT: Final = Side.SHORT
"""Bound once: reading an enum member off its class costs 100 ns."""
REASONS: Final = (
    NON_FINITE, NEGATIVE, BAD_PRICE, TOO_LARGE, BAD_FUNDING, BAD_TIME, BAD_SIDE, BAD_ID,
    CROSSED_BOOK,
)  # fmt: skip
"""Every reason :func:`problem` and :func:`check` give."""


def _stress_numbers(e: AdlRisk | InsuranceFund | Positioning | Basis) -> list[float]:
    """The numbers of a stress event that must be finite (its parser checked the rest)."""
    values: list[float | None]
    if isinstance(e, AdlRisk):
        values = [e.trigger, e.pool_balance]
    elif isinstance(e, InsuranceFund):
        values = [e.balance, e.balance_usd, e.change]
    elif isinstance(e, Positioning):
        values = [e.long_short_ratio, e.long_share, e.buy_volume, e.sell_volume]
    else:
        values = [e.futures_price, e.index_price, e.basis, e.basis_rate, e.annualized_rate]
    return [x for x in values if x is not None]


def all_valid(events: Sequence[HandoffEvent]) -> bool:
    """Whether no event of ``events`` has a :func:`problem`: the same rules, in one loop
    over a frame's events (the hot path; :func:`problem` names what is wrong)."""
    e: Any  # branches on type(e) is X: four times faster than isinstance on msgspec structs
    for e in events:
        t = type(e)
        if t is MarkPrice:
            index = e.index_price
            if not (0.0 < e.mark_price < MAX_VALUE and (index is None or 0.0 < index < MAX_VALUE)):
                return False
        elif t is Liquidation:
            side = e.side
            if not (
                0.0 < e.price < MAX_VALUE
                and 0.0 <= e.quantity < MAX_VALUE
                and 0.0 <= e.quantity_base < MAX_VALUE
                and 0.0 <= e.notional_usd < MAX_VALUE
                and (side is _LONG or side is _SHORT)
                and len(e.event_id) <= MAX_EVENT_ID
            ):
                return False
        elif t is FundingRate:
            nf = e.next_funding_ms
            if not (
                _MIN_FUNDING_RATE <= e.funding_rate <= MAX_FUNDING_RATE
                and _MIN_FUNDING_RATE <= e.funding_rate_1h <= MAX_FUNDING_RATE
                and 0.0 < e.interval_h <= MAX_INTERVAL_H
                and (nf is None or 0 <= nf <= TS_MAX_MS)
            ):
                return False
        elif t is BookTop:
            if not (
                0.0 < e.bid_price <= e.ask_price < MAX_VALUE
                and 0.0 <= e.bid_base < MAX_VALUE
                and 0.0 <= e.ask_base < MAX_VALUE
                and 0.0 <= e.bid_usd < MAX_VALUE
                and 0.0 <= e.ask_usd < MAX_VALUE
            ):
                return False
        elif t is Volume:
            if not (
                0.0 <= e.taker_buy_base < MAX_VALUE
                and 0.0 <= e.taker_buy_usd < MAX_VALUE
                and 0.0 <= e.taker_sell_base < MAX_VALUE
                and 0.0 <= e.taker_sell_usd < MAX_VALUE
                and 0 <= e.trades < MAX_VALUE
            ):
                return False
        elif t is BookDepth:
            if not (
                0.0 < e.mid < MAX_VALUE
                and 0.0 <= e.bid_usd_0p5 < MAX_VALUE
                and 0.0 <= e.bid_usd_1 < MAX_VALUE
                and 0.0 <= e.bid_usd_2 < MAX_VALUE
                and 0.0 <= e.ask_usd_0p5 < MAX_VALUE
                and 0.0 <= e.ask_usd_1 < MAX_VALUE
                and 0.0 <= e.ask_usd_2 < MAX_VALUE
                and 0.0 <= e.bid_reach_pct < MAX_VALUE
                and 0.0 <= e.ask_reach_pct < MAX_VALUE
            ):
                return False
        elif t in STRESS_KIND_OF:  # an ADL level, a pool, a positioning or basis figure
            if not all(-MAX_VALUE < x < MAX_VALUE for x in _stress_numbers(e)):
                return False
        elif not (
            0.0 <= e.oi_contracts < MAX_VALUE
            and 0.0 <= e.oi_base < MAX_VALUE
            and 0.0 <= e.oi_usd < MAX_VALUE
        ):
            return False
        if not 0 <= e.ts_ms <= TS_MAX_MS:
            return False
    return True


def problem(ev: HandoffEvent) -> str | None:
    """Why ``ev`` cannot be a real event (one of :data:`REASONS`), or ``None``. Needs no
    clock: times are only checked to be epoch milliseconds before 2100."""
    return None if all_valid((ev,)) else _reason(ev)


def check(ev: Event, now_ms: int) -> str | None:
    """:func:`problem`, and times against the clock (:func:`check_times`)."""
    return check_times(ev, now_ms) or problem(ev)


def check_times(ev: Event, now_ms: int) -> str | None:
    """``bad_time`` unless ``ts_ms`` is within ``[TS_MIN_MS, now_ms + FUTURE_SLACK_MS]``
    and a next funding time (when given) within ``[TS_MIN_MS, now_ms +
    NEXT_FUNDING_AHEAD_MS]``: the part of :func:`check` that :func:`problem` lacks."""
    if not TS_MIN_MS <= ev.ts_ms <= now_ms + FUTURE_SLACK_MS:
        return BAD_TIME
    if type(ev) is FundingRate:
        nf = ev.next_funding_ms
        if nf is not None and not TS_MIN_MS <= nf <= now_ms + NEXT_FUNDING_AHEAD_MS:
            return BAD_TIME
    return None


def _reason(ev: HandoffEvent) -> str:
    """The reason an event failed :func:`problem` (the slow path)."""
    prices: list[float] = []
    sizes: list[float] = []
    rates: list[float] = []
    if isinstance(ev, AdlRisk | InsuranceFund | Positioning | Basis):  # a stress figure
        if not all(math.isfinite(x) for x in _stress_numbers(ev)):
            return NON_FINITE
        return BAD_TIME if not 0 <= ev.ts_ms <= TS_MAX_MS else TOO_LARGE
    if isinstance(ev, MarkPrice):
        prices = [ev.mark_price] if ev.index_price is None else [ev.mark_price, ev.index_price]
    elif isinstance(ev, FundingRate):
        rates = [ev.funding_rate, ev.funding_rate_1h, ev.interval_h]
    elif isinstance(ev, OpenInterest):
        sizes = [ev.oi_contracts, ev.oi_base, ev.oi_usd]
    elif isinstance(ev, BookTop):
        prices = [ev.bid_price, ev.ask_price]
        sizes = [ev.bid_base, ev.ask_base, ev.bid_usd, ev.ask_usd]
    elif isinstance(ev, Volume):
        sizes = [ev.taker_buy_base, ev.taker_buy_usd, ev.taker_sell_base, ev.taker_sell_usd]
        sizes.append(float(ev.trades))
    elif isinstance(ev, BookDepth):
        prices = [ev.mid]
        sizes = [ev.bid_usd_0p5, ev.bid_usd_1, ev.bid_usd_2, ev.bid_reach_pct]
        sizes += [ev.ask_usd_0p5, ev.ask_usd_1, ev.ask_usd_2, ev.ask_reach_pct]
    else:
        prices, sizes = [ev.price], [ev.quantity, ev.quantity_base, ev.notional_usd]
    if not all(math.isfinite(x) for x in (*prices, *sizes, *rates)):
        return NON_FINITE
    next_ms = ev.next_funding_ms if isinstance(ev, FundingRate) else None
    if not 0 <= ev.ts_ms <= TS_MAX_MS or not (next_ms is None or 0 <= next_ms <= TS_MAX_MS):
        return BAD_TIME
    if any(x < 0 for x in sizes):
        return NEGATIVE
    if any(x <= 0 for x in prices):
        return BAD_PRICE
    if any(x >= MAX_VALUE for x in (*prices, *sizes)):
        return TOO_LARGE
    if isinstance(ev, BookTop):
        return CROSSED_BOOK
    if isinstance(ev, Liquidation):
        return BAD_SIDE if ev.side is not _LONG and ev.side is not _SHORT else BAD_ID
    return BAD_FUNDING


class Boundary:
    """Drops the events of one venue that fail :func:`check`, counted in ``counts`` by
    reason (the venue's health counter) and logged once per reason with the event."""

    def __init__(self, venue: str, counts: Counter[str]) -> None:
        self.venue = venue
        self.counts = counts

    def keep(self, events: list[Event], now_ms: int, *, parsed: bool = False) -> list[Event]:
        """``events`` without the invalid ones (the same list when all are valid).
        ``parsed``: they come from :meth:`~service.venues.base.Parser.parse`, which has
        applied :func:`problem` already; only their times are checked."""
        test = check_times if parsed else check
        for ev in events:
            if test(ev, now_ms) is not None:
                break
        else:
            return events
        out: list[Event] = []
        for ev in events:
            reason = test(ev, now_ms)
            if reason is None:
                out.append(ev)
                continue
            self.counts[reason] += 1
            if self.counts[reason] == 1:
                log.warning(
                    "dropped an invalid event", venue=self.venue, reason=reason,
                    sample=repr(ev)[:300],
                )  # fmt: skip
        return out
