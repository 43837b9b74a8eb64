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
    BOOK_TOP = "book_top"
    VOLUME = "volume"
    BOOK_DEPTH = "book_depth"


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


class BookTop(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.BOOK_TOP.value):
    """The best bid and ask of an instrument's order book, with the size resting at each
    (liquidity: a spread that widens and a top that thins come before a cascade moves price
    further per dollar liquidated). Prices in the quote currency; sizes valued as a
    liquidation's (linear: base x price; inverse: contracts x contract size in USD)."""

    bid_price: float
    ask_price: float
    bid_base: float
    """Size at the best bid, in base units."""
    ask_base: float
    bid_usd: float
    """USD value of the size at the best bid."""
    ask_usd: float
    spread_bp: float
    """``(ask - bid) / mid`` in basis points (0 for a locked book)."""


class Volume(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.VOLUME.value):
    """What traded on an instrument in one second, ``[ts_ms, ts_ms + 1000)`` of the venue's
    clock, split by the taker's side (liquidity: volume that dries up, or one side's that
    surges, before a cascade). One event per instrument and second that had trades, made
    by the collector from the venue's trade prints (:mod:`service.venues._volume`); a
    liquidation printed as a trade counts too (it is one). Sizes valued as a
    liquidation's (linear: base x price; inverse: contracts x contract size in USD), each
    trade at its own price."""

    taker_buy_base: float
    """Base units bought by takers (their sell-side makers were filled)."""
    taker_buy_usd: float
    taker_sell_base: float
    taker_sell_usd: float
    trades: int
    """The trade prints summed (a venue's print may be several fills of one taker order)."""


DEPTH_BANDS_PCT: Final = (0.5, 1.0, 2.0)
"""The bands of :class:`BookDepth`, in % of mid on each side."""


class BookDepth(_Event, frozen=True, gc=False, kw_only=True, tag=Kind.BOOK_DEPTH.value):
    """The USD resting in an instrument's order book within 0.5 %, 1 % and 2 % of mid on each
    side (liquidity: books thin out before a cascade moves price further per dollar
    liquidated). From the venue's order book channel, for a configured set of instruments
    (by default the top N by open interest), at most one a second per instrument. Sizes
    valued as a liquidation's (linear: base x price; inverse: contracts x contract size in
    USD), each level at its own price.

    A venue sends only its best levels (Bybit: 200 a side), so a band can reach past the
    deepest level received: :attr:`bid_reach_pct` and :attr:`ask_reach_pct` say how far the
    figures are complete, and a band beyond them is a lower bound (:meth:`exact`)."""

    mid: float
    """``(best bid + best ask) / 2``."""
    bid_usd_0p5: float
    """USD of the bids priced at or above ``mid x (1 - 0.5 %)``."""
    bid_usd_1: float
    bid_usd_2: float
    ask_usd_0p5: float
    """USD of the asks priced at or below ``mid x (1 + 0.5 %)``."""
    ask_usd_1: float
    ask_usd_2: float
    bid_reach_pct: float
    """How far below mid, in % of mid, the received bids reach: the deepest level's
    distance. A band wider than this is a lower bound (a book thinner than the venue's depth
    may in truth be complete: it is still flagged, never overstated)."""
    ask_reach_pct: float
    """The same above mid for the asks."""

    def exact(self, side: str, band_pct: float) -> bool:
        """Whether the ``side`` (``bid`` or ``ask``) figure of ``band_pct`` is complete (the
        received levels reach the band's edge), not a lower bound."""
        return (self.bid_reach_pct if side == "bid" else self.ask_reach_pct) >= band_pct


Event = Liquidation | FundingRate | OpenInterest | MarkPrice | BookTop | Volume | BookDepth

KIND_OF: Final[dict[type[_Event], Kind]] = {
    Liquidation: Kind.LIQUIDATION,
    FundingRate: Kind.FUNDING,
    OpenInterest: Kind.OPEN_INTEREST,
    MarkPrice: Kind.MARK,
    BookTop: Kind.BOOK_TOP,
    Volume: Kind.VOLUME,
    BookDepth: Kind.BOOK_DEPTH,
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


def spread_bp(bid: float, ask: float) -> float:
    """The spread of a top of book in basis points of its mid."""
    return (ask - bid) / (ask + bid) * 20_000.0


def per_hour(rate: float, interval_h: float) -> float:
    """A funding rate per ``interval_h`` hours as a rate per hour."""
    return rate / interval_h if interval_h > 0 else rate


def annualized(rate_1h: float) -> float:
    """A per-hour funding rate as a simple annual rate (``0.0001``/h is 87.6 %/year)."""
    return rate_1h * HOURS_PER_YEAR


# --- Leverage stress (issue 17) -------------------------------------------------------------
#
# What venues publish of the stress behind a deleveraging: ADL risk, insurance funds,
# positioning and basis (docs/stress.md has, per venue, the source, unit and cadence of each).
# These events have kinds of their own (:class:`StressKind`) and a union of their own
# (:data:`StressEvent`), outside :data:`Event`: the collector, the store and the detector
# handle :data:`Event` exhaustively, and take these only when their wiring lands.


class StressKind(enum.StrEnum):
    """The kinds of leverage-stress events."""

    ADL_RISK = "adl_risk"
    INSURANCE = "insurance"
    POSITIONING = "positioning"
    BASIS = "basis"


class AdlLevel(enum.IntEnum):
    """One scale for every venue's ADL risk (the venue's own value is kept beside it).

    * ``LOW`` (1): the venue rates the risk low, or its trigger is far (less than a third of
      the way).
    * ``MEDIUM`` (2): rated medium, or a third to two thirds of the way to its trigger.
    * ``HIGH`` (3): rated high, or more than two thirds of the way.
    * ``ACTIVE`` (4): the venue's own trigger condition holds: ADL is under way or armed.
    """

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    ACTIVE = 4


class PositioningMetric(enum.StrEnum):
    """What a long/short figure counts."""

    ACCOUNTS = "accounts"
    """Accounts net long vs net short, all traders."""
    TOP_ACCOUNTS = "top_accounts"
    """The same among the venue's top traders (each venue defines its own top)."""
    TOP_POSITIONS = "top_positions"
    """Position size long vs short among the top traders."""
    TAKER_VOLUME = "taker_volume"
    """Taker buy volume vs taker sell volume over the period."""


class AdlRisk(_Event, frozen=True, gc=False, kw_only=True, tag=StressKind.ADL_RISK.value):
    """An instrument's auto-deleveraging risk, on the :class:`AdlLevel` scale."""

    level: AdlLevel
    native: str
    """The venue's own value as published (``"high"``, or a ratio's text)."""
    native_kind: str
    """What :attr:`native` is: ``rating`` (Binance) or ``pnl_drawdown_ratio`` (Bybit)."""
    trigger: float | None = None
    """The venue's trigger for :attr:`native`, where it publishes one (Bybit ``i_pr``)."""
    pool_balance: float | None = None
    """The balance of the insurance pool behind the instrument, in the pool's coin, where the
    same publication carries it (Bybit)."""


class InsuranceFund(_Event, frozen=True, gc=False, kw_only=True, tag=StressKind.INSURANCE.value):
    """The balance of one insurance pool in one asset. ``symbol`` is the pool's id (the venue's
    name for it, or the first of its symbols); ``base`` is the base asset when every symbol of
    the pool has the same one, else ``*``."""

    pool: str
    asset: str
    """The currency of :attr:`balance` (``USDT``, ``BTC``)."""
    balance: float
    """In :attr:`asset`; may be negative (a pool in deficit)."""
    balance_usd: float | None
    """In USD: the venue's own USD value where it gives one, stablecoins at par, else
    ``None``."""
    symbols: tuple[str, ...] = ()
    """The instruments the pool covers, where the venue lists them."""
    change: float | None = None
    """The change of :attr:`balance` the venue publishes with it (OKX ``amt``), if any."""


class Positioning(_Event, frozen=True, gc=False, kw_only=True, tag=StressKind.POSITIONING.value):
    """A long/short figure over one period ending at ``ts_ms`` (or starting there, as the
    venue stamps it)."""

    metric: PositioningMetric
    period_s: int
    long_short_ratio: float
    """Long over short: worked out from :attr:`long_share` where the venue gives shares."""
    long_share: float | None
    """The long part of the whole, in ``[0, 1]``."""
    native_ratio: float | None = None
    """The ratio as the venue publishes it (it can disagree with the shares)."""
    buy_volume: float | None = None
    """Taker volumes (``taker_volume`` only), in the venue's unit."""
    sell_volume: float | None = None


class Basis(_Event, frozen=True, gc=False, kw_only=True, tag=StressKind.BASIS.value):
    """A futures price against its index."""

    contract: str
    """``perpetual``, or the venue's name of the dated contract (``current_quarter``...)."""
    futures_price: float
    index_price: float
    basis: float
    """``futures_price - index_price``."""
    basis_rate: float
    """``basis / index_price``."""
    annualized_rate: float | None
    """:attr:`basis_rate` over a year: the venue's figure where it gives one, else worked out
    from the expiry (:func:`annualized_basis`); ``None`` for a perpetual."""
    expiry_ms: int | None = None


StressEvent = AdlRisk | InsuranceFund | Positioning | Basis

HandoffEvent = Event | AdlRisk | InsuranceFund | Positioning | Basis
"""What a venue's hand-off stream carries to the detector: the stored events, and the stress
events its stress poller (or websocket) publishes: observed ADL is a forced unwind the
detector scores, the other figures it reports beside the score; a restart rebuilds them from
the same stream."""

STRESS_KIND_OF: Final[dict[type[_Event], StressKind]] = {
    AdlRisk: StressKind.ADL_RISK,
    InsuranceFund: StressKind.INSURANCE,
    Positioning: StressKind.POSITIONING,
    Basis: StressKind.BASIS,
}

YEAR_MS: Final = 365 * 24 * 3_600_000

_stress_decoder = msgspec.json.Decoder(StressEvent)


def decode_stress(data: bytes | str) -> StressEvent:
    """Decode one stress event encoded by :data:`encode`."""
    event: StressEvent = _stress_decoder.decode(data)
    return event


def annualized_basis(basis_rate: float, ts_ms: int, expiry_ms: int) -> float | None:
    """``basis_rate`` of a contract expiring at ``expiry_ms``, seen at ``ts_ms``, as a simple
    annual rate (``None`` at or after expiry)."""
    left = expiry_ms - ts_ms
    return basis_rate * YEAR_MS / left if left > 0 else None
