"""Normalized events: what every venue's parser produces and every later step consumes.

Events are msgspec structs: immutable, cheap to build (no per-instance ``__dict__``, no GC
tracking) and encoded to JSON in one call. Units are in the field names. Times are epoch
milliseconds: ``ts_ms`` is the venue's event time, ``recv_ms`` our receive time.

Conventions shared by every venue:

* ``Liquidation.side`` is the side of the *position* that was liquidated (``long`` when a
  long was forcibly closed by a sell order), whatever the venue's own convention.
* ``notional_usd`` is the USD value of what changed hands, computed with the contract's
  metadata (linear: base quantity x price; inverse: contracts x contract size in USD).
* Funding is kept as the venue quotes it (``funding_rate`` per ``interval_h`` hours) and as
  a per-hour rate, so venues with 1 h, 4 h and 8 h intervals compare.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import msgspec

HOURS_PER_YEAR: Final = 8760


InstrumentId: TypeAlias = tuple[str, str]
"""One instrument, the same in every layer: ``(venue, symbol)``, the venue's id and the venue's
own symbol for it (``("okx", "BTC-USDT-SWAP")``)."""


class Kind(enum.StrEnum):
    """The kinds of normalized events; each has its own Redis stream."""

    LIQUIDATION = "liquidation"
    FUNDING = "funding"
    OPEN_INTEREST = "open_interest"
    MARK = "mark"


class Side(enum.StrEnum):
    """The side of the position concerned (never the order side)."""

    LONG = "long"
    SHORT = "short"


class _Event(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    venue: str
    symbol: str
    """The venue's native symbol, e.g. ``BTCUSDT``."""
    base: str
    """Base asset, e.g. ``BTC``: the key of the cross-venue asset view."""
    ts_ms: int
    recv_ms: int


class Liquidation(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.LIQUIDATION.value):
    """A forced close of a position."""

    side: Side
    price: float
    """Average fill price where the venue gives one, else the order or bankruptcy price."""
    quantity: float
    """Filled quantity in the venue's native unit (base coin or contracts)."""
    quantity_base: float
    notional_usd: float
    sampled: bool
    """True when the venue publishes only a sample (e.g. Binance: one per symbol per second)."""
    event_id: str = ""
    """A stable identity within the venue and symbol, the same whenever the venue re-sends
    this liquidation (after a reconnect, on subscribe). Built by the parser from the venue's
    own fields (an id where the venue has one; else time, side, size and price). The store
    keeps each identity once (checked atomically in Redis)."""


class FundingRate(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.FUNDING.value):
    """The current (predicted) funding rate of a perpetual."""

    funding_rate: float
    """Rate per funding interval, as the venue quotes it (0.0001 = 0.01 %)."""
    interval_h: float
    funding_rate_1h: float
    next_funding_ms: int | None


class OpenInterest(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.OPEN_INTEREST.value):
    """Open interest of one instrument; USD valued at the mark price where needed."""

    oi_contracts: float
    oi_base: float
    oi_usd: float


class MarkPrice(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.MARK.value):
    """Mark and index price."""

    mark_price: float
    index_price: float | None


Event = Liquidation | FundingRate | OpenInterest | MarkPrice

KIND_OF: Final[dict[type[_Event], Kind]] = {
    Liquidation: Kind.LIQUIDATION,
    FundingRate: Kind.FUNDING,
    OpenInterest: Kind.OPEN_INTEREST,
    MarkPrice: Kind.MARK,
}

encode = msgspec.json.Encoder().encode
"""Encode an event (or a list of events) to compact JSON bytes, tagged with its kind."""

_decoder = msgspec.json.Decoder(Event)
_list_decoder = msgspec.json.Decoder(list[Event])


def decode(data: bytes | str) -> Event:
    """Decode one event encoded by :data:`encode`."""
    event: Event = _decoder.decode(data)
    return event


def decode_many(data: bytes | str) -> list[Event]:
    """Decode a JSON array of events encoded by :data:`encode`."""
    return _list_decoder.decode(data)


def per_hour(rate: float, interval_h: float) -> float:
    """A funding rate per ``interval_h`` hours as a rate per hour."""
    return rate / interval_h if interval_h > 0 else rate


def annualized(rate_1h: float) -> float:
    """A per-hour funding rate as a simple annual rate (``0.0001``/h is 87.6 %/year)."""
    return rate_1h * HOURS_PER_YEAR
