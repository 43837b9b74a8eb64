"""The normalized events as every parser builds them.

Every event of one instrument carries the venue, the instrument's symbol and base, the
venue's time and ours; these functions take those first (``venue, inst, ts_ms, recv_ms``)
and value quantities through the instrument (:meth:`.Instrument.base_units`,
:meth:`.Instrument.notional_usd`), so that a venue's parser names only what its frame says::

    eid = f"{row.T}:{row.S}:{row.v}:{row.p}"
    out.append(
        _stamp.liquidation(self.venue, inst, row.T, recv_ms, side, price=price, quantity=qty,
                           sampled=False, event_id=eid)
    )

Functions, not an object holding the four: a parser builds one per row on the hot path, and
an object per row cost 0.15 µs of the 0.5 µs a liquidation takes to build (``bench wire
--run collect``: 8.1–8.2 µs per event with a per-row object, 7.4–7.8 without).
"""

from __future__ import annotations

from typing import Final

from ..events import (
    BookTop,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    per_hour,
    spread_bp,
)
from .base import Instrument

REPORT_AHEAD_MS: Final = 60_000
"""A last report timed more than this after a frame's time is no report of now (a time in
another unit, a venue clock gone wrong: its event was dropped as invalid): it does not hold
the next report back."""


def held_back(ts_ms: int, last_ms: int | None, every_ms: int) -> bool:
    """Whether a report at venue time ``ts_ms`` waits: one was made at ``last_ms``, less than
    ``every_ms`` before it (a report timed more than :data:`REPORT_AHEAD_MS` after ``ts_ms``
    does not count: otherwise it would hold every later report back until a restart)."""
    return last_ms is not None and -REPORT_AHEAD_MS <= ts_ms - last_ms < every_ms


def mark(
    venue: str, inst: Instrument, ts_ms: int, recv_ms: int, mark_price: float,
    index_price: float | None,
) -> MarkPrice:  # fmt: skip
    return MarkPrice(
        venue=venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        mark_price=mark_price,
        index_price=index_price,
    )


def funding(
    venue: str, inst: Instrument, ts_ms: int, recv_ms: int, rate: float, interval_h: float,
    next_funding_ms: int | None,
) -> FundingRate:  # fmt: skip
    """``rate`` per ``interval_h`` hours (and per hour); ``next_funding_ms``: the coming
    settlement (``None``: none known, or a continuous rate)."""
    return FundingRate(
        venue=venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        funding_rate=rate,
        interval_h=interval_h,
        funding_rate_1h=per_hour(rate, interval_h),
        next_funding_ms=next_funding_ms,
    )


def open_interest(
    venue: str, inst: Instrument, ts_ms: int, recv_ms: int, contracts: float, price: float
) -> OpenInterest:
    """``contracts`` native units of the instrument, valued at ``price`` (the mark)."""
    base, usd = inst.base_units(contracts, price), inst.notional_usd(contracts, price)
    return open_interest_of(venue, inst, ts_ms, recv_ms, contracts, base, usd)


def open_interest_of(
    venue: str, inst: Instrument, ts_ms: int, recv_ms: int, contracts: float, base: float,
    usd: float,
) -> OpenInterest:  # fmt: skip
    """Open interest valued by the venue's own rule (BitMEX quantos, ccxt's values)."""
    return OpenInterest(
        venue=venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        oi_contracts=contracts,
        oi_base=base,
        oi_usd=usd,
    )


def liquidation(
    venue: str,
    inst: Instrument,
    ts_ms: int,
    recv_ms: int,
    side: Side,
    *,
    price: float,
    quantity: float,
    sampled: bool,
    event_id: str,
    quantity_base: float | None = None,
    notional_usd: float | None = None,
) -> Liquidation:
    """The liquidation of a ``side`` position of ``quantity`` native units at ``price``;
    ``quantity_base`` and ``notional_usd`` where the venue's own rule values it (Bitget's
    USD amount, BitMEX quantos), else the instrument's valuation."""
    if quantity_base is None:
        quantity_base = inst.base_units(quantity, price)
    if notional_usd is None:
        notional_usd = inst.notional_usd(quantity, price)
    return Liquidation(
        venue=venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        side=side,
        price=price,
        quantity=quantity,
        quantity_base=quantity_base,
        notional_usd=notional_usd,
        sampled=sampled,
        event_id=event_id,
    )


def book_top(
    venue: str, inst: Instrument, ts_ms: int, recv_ms: int, bid: float, bid_qty: float,
    ask: float, ask_qty: float,
) -> BookTop:  # fmt: skip
    """The best ``bid`` and ``ask`` with ``bid_qty`` and ``ask_qty`` native units resting at
    each, valued as a liquidation's quantity at its own price."""
    return BookTop(
        venue=venue,
        symbol=inst.symbol,
        base=inst.base,
        ts_ms=ts_ms,
        recv_ms=recv_ms,
        bid_price=bid,
        ask_price=ask,
        bid_base=inst.base_units(bid_qty, bid),
        ask_base=inst.base_units(ask_qty, ask),
        bid_usd=inst.notional_usd(bid_qty, bid),
        ask_usd=inst.notional_usd(ask_qty, ask),
        spread_bp=spread_bp(bid, ask),
    )
