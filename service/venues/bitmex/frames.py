"""The frames of BitMEX's realtime websocket, as typed msgspec structs, and the rows the parser
keeps. A field absent from an ``update`` diff is :data:`~msgspec.UNSET` (unchanged); ``null`` is
``None`` (no value, e.g. a dated future's funding rate). What the venue sends is pasted in each
docstring."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

NO_DATA = msgspec.Raw(b"")
Time = Annotated[datetime, msgspec.Meta(tz=True)]
"""A time with its zone, as BitMEX writes them (``...Z``): one without would not compare
with an aware one (``TypeError``), so it fails the decoding like any other bad field."""
FUNDING_INTERVAL_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""BitMEX writes a duration as a time after 2000-01-01: ``2000-01-01T08:00:00.000Z`` is 8 h."""


class Envelope(msgspec.Struct):
    """A table push ``{"table":…,"action":"partial|insert|update|delete","data":[…]}`` (a
    ``partial`` also has ``keys``, ``types``, ``filter``…), or a protocol frame: the welcome
    ``{"info":"Welcome to the BitMEX Realtime API.","version":…,"timestamp":…,"docs":…,
    "limit":{"remaining":39}}``, an ack ``{"success":true,"subscribe":"trade:XBTUSD",
    "request":{…}}`` or an error ``{"status":400,"error":"Unknown table: x","meta":{},
    "request":{…}}``."""

    table: str | None = None
    action: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: NO_DATA)
    filter: dict[str, Any] | None = None
    success: bool | None = None
    subscribe: str | None = None
    unsubscribe: str | None = None
    info: str | None = None
    error: str | None = None


class InstrumentRow(msgspec.Struct):
    """One row of the ``instrument`` table: the whole instrument in a ``partial``, only what
    changed in an ``update``: ``{"table":"instrument","action":"update","data":[{"symbol":
    "ETHUSD","openInterest":58922153}]}``. The fields we read; the others are ignored."""

    symbol: str
    markPrice: float | UnsetType | None = UNSET
    indexPrice: float | UnsetType | None = UNSET
    indicativeSettlePrice: float | UnsetType | None = UNSET
    """A perpetual's index (``.BXBT`` for XBTUSD): its "settlement" price."""
    openInterest: float | UnsetType | None = UNSET
    """Contracts."""
    fundingRate: float | UnsetType | None = UNSET
    fundingTimestamp: Time | UnsetType | None = UNSET
    """The coming funding time."""
    fundingInterval: Time | UnsetType | None = UNSET
    timestamp: Time | UnsetType = UNSET


class LiquidationRow(msgspec.Struct):
    """One row of the ``liquidation`` table (no timestamp): ``{"table":"liquidation",
    "action":"insert","data":[{"orderID":"dd9cea25-207c-0dab-15b5-b88da776f500",
    "symbol":"XBTUSD","side":"Buy","price":10106,"leavesQty":9214}]}``; an ``update``
    carries ``orderID``, ``symbol`` and the new ``leavesQty``, a ``delete`` only the keys."""

    orderID: str
    symbol: str = ""
    side: str | UnsetType = UNSET
    price: float | UnsetType = UNSET
    leavesQty: float | UnsetType = UNSET


class QuoteRow(msgspec.Struct):
    """One row of the ``quote`` table, the top of the book (real, 2026-02-22):
    ``{"table":"quote","action":"insert","data":[{"timestamp":"2026-02-22T00:55:57.903Z",
    "symbol":"BCHUSDT","bidSize":3727000,"bidPrice":563.55,"askPrice":563.6,"askSize":1000}]}``.
    Sizes in contracts; a side with no order is ``null``."""

    symbol: str
    timestamp: Time
    bidPrice: float | None = None
    bidSize: float | None = None
    askPrice: float | None = None
    askSize: float | None = None


class TradeRow(msgspec.Struct):
    """One row of the ``trade`` table (real, cryptofeed's 2021 recording): ``{"table":
    "trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:11.685Z","symbol":
    "XBTUSD","side":"Buy","size":100,"price":32180.5,"tickDirection":"PlusTick",
    "trdMatchID":"6e70bebe-235e-08a6-d11b-e1042bf1f2ed","grossValue":310747,
    "homeNotional":0.00310747,"foreignNotional":100}]}``. ``side`` is the taker's,
    ``size`` contracts; ``grossValue``, ``homeNotional`` and ``foreignNotional`` (BitMEX's
    own valuation) are not read: the instrument's is the one every table uses."""

    symbol: str
    timestamp: Time
    side: str
    size: float
    price: float
    trdMatchID: str | None = None


class L2Row(msgspec.Struct):
    """One level of ``orderBookL2`` (real, 2026-02-22): ``{"table":"orderBookL2","action":
    "update","data":[{"symbol":"ARBUSDT","id":186898796284,"side":"Buy","size":535200,
    "price":0.088,"timestamp":"2026-02-22T00:55:59.948Z","transactTime":
    "2026-02-22T00:55:59.943Z"}]}``. ``id`` names the level (arbitrary since 2023, no longer
    a function of the price); a ``delete`` carries no ``size``; the time is read as text, and
    only the last row's is converted."""

    symbol: str
    id: int
    side: str
    price: float | UnsetType = UNSET
    size: float | UnsetType = UNSET
    timestamp: str | UnsetType = UNSET


class RowSymbol(msgspec.Struct):
    """The ``symbol`` of any table's row (the rest ignored)."""

    symbol: str


envelope = msgspec.json.Decoder(Envelope)
instruments = msgspec.json.Decoder(list[InstrumentRow])
liquidations = msgspec.json.Decoder(list[LiquidationRow])
quotes = msgspec.json.Decoder(list[QuoteRow])
trades = msgspec.json.Decoder(list[TradeRow])
l2_rows = msgspec.json.Decoder(list[L2Row])
row_symbols = msgspec.json.Decoder(list[RowSymbol])


def ms(t: datetime) -> int:
    """An aware datetime in epoch milliseconds."""
    return round(t.timestamp() * 1000)


def text_ms(text: str) -> int:
    """A BitMEX time as text (``2026-02-22T00:55:59.948Z``) in epoch milliseconds. Raises
    ``ValueError`` when it is no time with its zone."""
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(f"a time without its zone: {text!r}")
    return ms(t)


def interval_h(interval: datetime) -> float:
    """A BitMEX duration (a time after 2000-01-01) in hours."""
    return (interval - FUNDING_INTERVAL_EPOCH).total_seconds() / 3600


@dataclass(slots=True)
class InstrumentState:
    """One instrument as last known: its partial with every update applied."""

    mark: float | None = None
    index_price: float | None = None
    settle_price: float | None = None
    open_interest: float | None = None
    funding_rate: float | None = None
    interval_h: float | None = None
    next_funding_ms: int | None = None

    @property
    def index(self) -> float | None:
        """``indexPrice`` when the venue sends one, else ``indicativeSettlePrice``."""
        return self.index_price if self.index_price is not None else self.settle_price

    def apply(self, r: InstrumentRow) -> None:
        """Merge the fields present in ``r``."""
        if r.markPrice is not UNSET:
            self.mark = r.markPrice
        if r.indexPrice is not UNSET:
            self.index_price = r.indexPrice
        if r.indicativeSettlePrice is not UNSET:
            self.settle_price = r.indicativeSettlePrice
        if r.openInterest is not UNSET:
            self.open_interest = r.openInterest
        if r.fundingRate is not UNSET:
            self.funding_rate = r.fundingRate
        if r.fundingInterval is not UNSET:
            interval = r.fundingInterval
            self.interval_h = None if interval is None else interval_h(interval)
        if r.fundingTimestamp is not UNSET:
            ts = r.fundingTimestamp
            self.next_funding_ms = None if ts is None else ms(ts)


@dataclass(frozen=True, slots=True)
class RestingOrder:
    """A liquidation order in the book, as last known."""

    symbol: str
    leaves_qty: float
