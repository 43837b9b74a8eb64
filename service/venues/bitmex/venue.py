"""BitMEX (``bitmex``): inverse (XBTUSD), quanto (ETHUSD) and linear (XBTUSDT) perpetuals.

Wire protocol (https://www.bitmex.com/app/wsAPI; tardis-node and cryptofeed recordings):

* One websocket, ``wss://ws.bitmex.com/realtime``. It greets with ``{"info":"Welcome to the
  BitMEX Realtime API.",…}``; ``{"op":"subscribe","args":["instrument:XBTUSD",…]}`` is acked
  per arg (``{"success":true,"subscribe":"instrument:XBTUSD","request":{…}}``), a refusal is
  ``{"status":400,"error":…,"request":{…}}`` (counted as ``venue_error``).
* Keep-alive: the client sends the *text* ``ping`` and gets the text ``pong``. BitMEX
  advises a ping after 5 s without a message; we ping every :data:`PING_INTERVAL_S`.
* Tables: a ``partial`` (the snapshot of the subscription, with its ``keys``) first, then
  ``insert``, ``update`` (only the changed fields of a row, matched by its keys) and
  ``delete``. The parser keeps each table's rows, so a reconnect's new partial replaces them.
* ``instrument`` (key ``symbol``): ``markPrice``, the index (``indexPrice`` when sent, else
  ``indicativeSettlePrice``: a perpetual "settles" on its index), ``openInterest`` in
  contracts, ``fundingRate`` for the coming funding at ``fundingTimestamp``, per
  ``fundingInterval`` (``2000-01-01T08:00:00.000Z`` = 8 h), and ``timestamp``. A diff without
  ``timestamp`` (``{"symbol":"ETHUSD","openInterest":58922153}``, real) is stamped with our
  receive time.
* ``liquidation`` (key ``orderID``; no timestamp: stamped with our receive time): the orders of
  the liquidation engine while they rest in the book. ``insert`` when the engine takes a
  position over, with ``side`` the *order* side (``Buy`` closes a short: a short was
  liquidated), ``price`` its limit (the bankruptcy price) and ``leavesQty`` the contracts
  left; ``update`` lowers ``leavesQty`` as it fills; ``delete`` when it is filled or
  cancelled (what the book did not take goes to the insurance fund, then to ADL).

* ``quote`` (https://www.bitmex.com/app/wsAPI: "Top level of the book"; checked 2026-12-06):
  a ``partial`` with the last quote, then an ``insert`` row ``{timestamp, symbol, bidSize,
  bidPrice, askPrice, askSize}`` whenever the best levels change; sizes in contracts, a side
  without orders ``null``. It is the top of book (:class:`~...events.BookTop`), reported at
  most once a second per symbol (:data:`STATE_EVERY_MS`, the latest state). The instrument
  table's ``bidPrice``/``askPrice`` carry no sizes, so they are not read.
* ``trade`` (wsAPI: "Live trades"; only when the venue's ``volume`` setting is on): every print,
  ``{timestamp, symbol, side, size, price, trdMatchID, ...}``: ``side`` is the **taker's**
  (tardis-node and cryptofeed read it so), ``size`` contracts, valued as every other table's
  contracts (below); summed into traded volume per second (:mod:`.._volume`), each
  ``trdMatchID`` counted once. The subscription's ``partial`` re-sends the last print before
  it (cryptofeed's recording: a print 8 s older than the subscription): past, not counted.
  BitMEX's own ``homeNotional``/``foreignNotional`` are not read (the test checks ours
  against them).
* ``orderBookL2`` (wsAPI: "Full level 2 order book"), for the instruments whose depth is
  followed (:attr:`~..base.Venue.depth_symbols`: the top 20 by open interest by default), on a
  connection of its own (``depth``), so a change of that set reconnects nothing else; each of
  its sessions keeps books of its own (:attr:`~..base.Connection.own_parser`). **Why this
  table:** the depth bands reach 2 % of mid, and of BitMEX's books only the full one does:
  ``orderBook10`` is 10 levels and ``orderBookL2_25`` 25 (XBTUSD's 0.5-tick levels: 12.5 USD,
  0.02 % of a 60,000 USD mid when they are all filled) and throttled; ``orderBookL2`` is every
  level in real time at the cost of a large partial (XBTUSD's ran to thousands of levels:
  :attr:`Bitmex.max_frame_bytes`) and a row per change. A ``partial`` with every level, then
  ``insert``/``update``/``delete`` rows naming levels by ``id`` (arbitrary since 2023: "use
  price for sorting", https://blog.bitmex.com/api_announcement/removing-id-schema-on-
  orderbook-feeds/; every row carries its ``price`` and, since 2022-02-14, a ``timestamp``,
  https://blog.bitmex.com/api_announcement/changes-to-order-book-level-2-data/; checked
  2026-12-06). The table has no sequence number: the ids are the check (:mod:`.book`). A row
  of an id the book does not hold (an insert missed) or an insert of one it holds (a delete
  missed) is a gap: the book is dropped, counted (``orderbook_gap``) and resubscribed on its
  connection (:meth:`Bitmex.resubscribe`: unsubscribe, then subscribe, which sends a new
  partial); rows of a book without a partial ask again, every :data:`RESYNC_EVERY_MS`. A book
  reports a :class:`~...events.BookDepth` at most once a second, timed by its last row's
  ``timestamp`` (the matching engine's), and keeps at most :data:`FULL_BOOK_LEVELS` levels a
  side (``depth.levels``).

**How a liquidation is counted.** Once, when its order first appears (an ``insert``, or a
``partial`` row of an order this parser has not counted), for its ``leavesQty`` at that
moment, valued at the order price, with ``event_id`` = ``orderID``. BitMEX's liquidation
pages: the engine "takes over the position" (on higher risk tiers, after a Fill-or-Kill
order that failed to bring it under a lower tier, "the entire position") "with a limit order
placed at the bankruptcy price". So the insert *is* the liquidation and its ``leavesQty`` the
position closed; the updates and the delete are that position being worked off (fills, then
the insurance fund or ADL for the rest). Counting them as well would count the position
twice; counting fills instead would miss what the insurance fund and ADL absorbed, and come
late. What this undercounts: the part of an order that filled on entry, before it rested
(the insert shows only the rest), an order filled entirely on entry or a successful
Fill-or-Kill reduction (never shown), and an order that came and went while we were
disconnected. A reconnect's partial re-sends the orders still open: those already counted
are known by their ``orderID`` (skipped by this parser, and by the store should a fresh
parser see them), and one placed during the gap is counted for what is left of it. The
table is neither throttled nor sampled: ``sampled`` is false.

**Retired.** BitMEX announced on 2026-07-23 that the exchange closes on 2026-09-23 at
04:00 UTC (https://www.bitmex.com/blog/bitmex-closure, quoted by ccxt PR 29914 and
gocryptotrader PR 2295; positions reduce-only from 2026-08-26 04:00 UTC, force-closed at the
closure). The venue is disabled in ``config/default.yaml`` (:attr:`Bitmex.retired`); the
module, its simulator and tests stay, as the protocol's record and for older recordings.

Sizing (see :mod:`.instruments`): inverse contracts are 1 USD; quanto contracts are
worth ``multiplier x price`` XBt, valued in USD at the XBTUSD mark price (XBTUSD's instrument
is subscribed first whenever a quanto is; a quanto liquidation, open interest, quote, print or
depth before the first XBT price is dropped and counted as ``without_xbt_price``, and such an
order is counted if a later partial re-sends it; a depth session shares the realtime
connection's XBT price, :class:`XbtPrice`); linear contracts are ``multiplier / 1e6`` base
coin. BitMEX's
own guides value a quanto at the ``.BXBT`` index ("USD Value | XBT Value * .BXBT Spot
Price", https://bitmex.com/app/quantoPerpetualsGuide); the XBTUSD mark differs from it only
by XBTUSD's fair basis.
Instruments come from ``GET /api/v1/instrument/active`` over httpx (the ccxt release we
depend on has no BitMEX client): one request, the open perpetuals kept.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec
import structlog
from msgspec import UNSET

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._book import BOOK_CROSSED, BOOK_GAP, BOOK_UNREADABLE, BOOK_UNSYNCED
from .._ticker_state import TickerState, report
from ..base import Connection, Instrument, ParseError, Parser, Venue
from . import frames
from .book import Gap, L2Book
from .instruments import (
    VENUE,
    XBT_REFERENCE,
    BitmexInstrument,
    instrument,
    pack_requests,
    parse_listing,
    subscribe_requests,
)

__all__ = [
    "PING",
    "PING_INTERVAL_S",
    "PONG",
    "XBT_REFERENCE",
    "Bitmex",
    "BitmexInstrument",
    "BitmexParser",
    "instrument",
    "subscribe_requests",
]

log = structlog.get_logger(__name__)

PING: Final = "ping"
PONG: Final = "pong"
PING_INTERVAL_S: Final = 5.0
INSTRUMENTS_PATH: Final = "/api/v1/instrument/active"
_SIDES: Final = {"Sell": Side.LONG, "Buy": Side.SHORT}
"""The liquidation *order* side: a sell closes a long."""
_TAKER_BUYS: Final = {"Buy": True, "Sell": False}
"""The ``trade`` side: the taker's."""
QUOTE: Final = "quote"
TRADE: Final = "trade"
ORDER_BOOK: Final = "orderBookL2"
TABLES: Final = frozenset({"instrument", "liquidation", QUOTE, TRADE, ORDER_BOOK})
STATE_EVERY_MS: Final = 1000
"""Top of book: at most one event per symbol a second (the ``quote`` table pushes every change
of the best levels), the latest state, as the other venues'."""
FULL_BOOK_LEVELS: Final = 10_000
"""``orderBookL2`` is the whole book (the table has no depth parameter): a book keeps at most
this many levels a side (``depth.levels`` sets another bound), the farthest trimmed when it
reports, so its memory stays bounded whatever the venue's book holds."""
RESYNC_EVERY_MS: Final = 5000
"""A book without a partial asks for one at most this often (as Bybit's and OKX's)."""
DEPTH_CONNECTION: Final = "depth"


@dataclasses.dataclass(slots=True)
class XbtPrice:
    """The XBT/USD price quanto contracts are valued at: XBTUSD's mark, shared by a parser and
    its depth sessions' parsers (a depth connection carries no ``instrument`` table)."""

    usd: float | None = None


class BitmexParser(Parser):
    """Parses the ``instrument``, ``liquidation``, ``quote``, ``trade`` and ``orderBookL2``
    tables, the protocol frames and the text ``pong``; keeps the rows of the instrument and
    liquidation tables and the books (see the module docstring)."""

    def __init__(
        self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None
    ) -> None:
        super().__init__(venue, markets, wanted)
        self.instruments: dict[str, frames.InstrumentState] = {}
        self.orders: dict[str, frames.RestingOrder] = {}
        """The liquidation orders resting in the book, by ``orderID``."""
        self.xbt = XbtPrice()
        self.quotes: dict[str, TickerState] = {}
        """The top of each book (``quote``), and when it was last reported."""
        self._priced: dict[str, tuple[float, Instrument]] = {}
        """Per quanto symbol, the XBT price and the instrument valued at it (see
        :meth:`_valued`)."""
        self.books: dict[str, L2Book] = {}
        """The order books followed (``orderBookL2``), by symbol."""
        self.depth_levels = FULL_BOOK_LEVELS
        """Levels a side a book keeps (:attr:`Bitmex.depth_levels`)."""
        self.resync_asked_ms: dict[str, int] = {}
        """When a fresh partial of each book was last asked for (receive time)."""

    @property
    def xbt_usd(self) -> float | None:
        """The XBTUSD mark: the XBT/USD price quanto contracts are valued at."""
        return self.xbt.usd

    @xbt_usd.setter
    def xbt_usd(self, value: float | None) -> None:
        self.xbt.usd = value

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in (PONG, PONG.encode()):
            return []
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        if env.table is None:
            if env.error is not None or env.success is False:
                self.stats.error(self.venue, "venue_error", frame)
            elif env.info is None and env.success is None:
                self.stats.error(self.venue, "unknown_frame", frame)
            return []  # the welcome, an ack
        table = env.table
        if table not in TABLES:
            self.stats.error(self.venue, "unknown_table", table)
            return []
        unreadable = BOOK_UNREADABLE if table == ORDER_BOOK else f"invalid_{table}"
        if env.action not in ("partial", "insert", "update", "delete") or not len(env.data):
            self.stats.error(self.venue, unreadable, frame)
            return []
        try:
            if table == "instrument":
                rows = frames.instruments.decode(env.data)
                return self._instruments(env.action, rows, recv_ms)
            if table == "liquidation":
                orders = frames.liquidations.decode(env.data)
                return self._liquidations(env.action, orders, env.filter, recv_ms)
            if table == QUOTE:
                return self._quotes(frames.quotes.decode(env.data), recv_ms)
            if table == TRADE:
                return self._trades(env.action, env.data, recv_ms)
            levels = frames.l2_rows.decode(env.data)
            return self._book_rows(env.action, levels, env.filter, recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, unreadable, frame)
            if table == ORDER_BOOK:
                self._forget_books(env.data, recv_ms)
            return []

    def _instrument(self, symbol: str, payload: object = None, n: int = 1) -> Instrument | None:
        """As :meth:`.Parser._instrument`, but XBTUSD without metadata is not counted: its rows
        are still read for the XBT price."""
        if symbol == XBT_REFERENCE and symbol not in self.markets:
            return None
        return super()._instrument(symbol, payload, n)

    # -- instrument ----------------------------------------------------------------------------

    def _instruments(
        self, action: str, rows: list[frames.InstrumentRow], recv_ms: int
    ) -> list[Event]:
        out: list[Event] = []
        for r in rows:
            if action == "delete":
                self.instruments.pop(r.symbol, None)
                continue
            state = self.instruments.get(r.symbol)
            if action != "update" or state is None:
                if action == "update":  # the venue sends the partial first
                    self.stats.error(self.venue, "update_before_partial", r.symbol)
                state = self.instruments[r.symbol] = frames.InstrumentState()
            state.apply(r)
            if r.symbol == XBT_REFERENCE and state.mark is not None and state.mark > 0:
                self.xbt_usd = state.mark
            if state.mark is not None:
                self.last_mark[r.symbol] = state.mark
            inst = self._instrument(r.symbol, r)
            if inst is not None:
                ts = frames.ms(r.timestamp) if r.timestamp is not UNSET else recv_ms
                out += self._instrument_events(inst, r, state, ts, recv_ms)
        return out

    def _instrument_events(
        self,
        inst: Instrument,
        r: frames.InstrumentRow,
        s: frames.InstrumentState,
        ts: int,
        recv_ms: int,
    ) -> list[Event]:
        """An event per kind the row changed and the state can value."""
        out: list[Event] = []
        mark = s.mark
        prices = (r.markPrice, r.indexPrice, r.indicativeSettlePrice)
        if mark is not None and any(v is not UNSET for v in prices):
            out.append(_stamp.mark(self.venue, inst, ts, recv_ms, mark, s.index))
        changed = (r.fundingRate, r.fundingInterval, r.fundingTimestamp)
        if s.funding_rate is not None and any(v is not UNSET for v in changed):
            hours = s.interval_h or inst.funding_interval_h
            out.append(
                _stamp.funding(
                    self.venue, inst, ts, recv_ms, s.funding_rate, hours, s.next_funding_ms
                )
            )
        oi = s.open_interest
        if r.openInterest is not UNSET and oi is not None and mark:
            value = self._value(inst, oi, mark, r)
            if value is not None:
                out.append(_stamp.open_interest_of(self.venue, inst, ts, recv_ms, oi, *value))
        return out

    def _valued(self, inst: Instrument, payload: object) -> Instrument | None:
        """``inst`` valued as a plain contract: itself, or for a quanto a linear contract of
        ``quanto_xbt x`` the XBT price in USD (the same USD and base as
        :meth:`.BitmexInstrument.notional_usd` at that price, for the shared code that
        values through ``Instrument``: top of book, volume, depth); ``None`` (counted)
        before the first XBT price."""
        if not (isinstance(inst, BitmexInstrument) and inst.quanto):
            return inst
        xbt = self.xbt.usd
        if xbt is None:
            self.stats.error(self.venue, "without_xbt_price", payload)
            return None
        cached = self._priced.get(inst.symbol)
        if cached is not None and cached[0] == xbt:
            return cached[1]
        priced = dataclasses.replace(inst, contract_size=inst.quanto_xbt * xbt, quanto_xbt=0.0)
        self._priced[inst.symbol] = (xbt, priced)
        return priced

    def _value(
        self, inst: Instrument, contracts: float, price: float, payload: object
    ) -> tuple[float, float] | None:
        """(base coin, USD) of ``contracts`` at ``price``; ``None`` (counted) for a quanto
        contract before the first XBT price."""
        if isinstance(inst, BitmexInstrument) and inst.quanto:
            if self.xbt_usd is None:
                self.stats.error(self.venue, "without_xbt_price", payload)
                return None
            xbt = self.xbt_usd
            return (
                inst.base_units(contracts, price, xbt),
                inst.notional_usd(contracts, price, xbt),
            )
        return inst.base_units(contracts, price), inst.notional_usd(contracts, price)

    # -- liquidation ---------------------------------------------------------------------------

    def _liquidations(
        self,
        action: str,
        rows: list[frames.LiquidationRow],
        scope: Mapping[str, Any] | None,
        recv_ms: int,
    ) -> list[Event]:
        if action == "partial":  # the open orders now: forget those that ended meanwhile
            symbol = (scope or {}).get("symbol")
            keep = {r.orderID for r in rows}
            for oid in [o for o, v in self.orders.items() if symbol in (None, v.symbol)]:
                if oid not in keep:
                    del self.orders[oid]
        out: list[Event] = []
        for r in rows:
            if action == "delete":
                self.orders.pop(r.orderID, None)
            elif action == "update":
                order = self.orders.get(r.orderID)
                if order is not None and r.leavesQty is not UNSET:
                    self.orders[r.orderID] = frames.RestingOrder(order.symbol, r.leavesQty)
            elif r.orderID not in self.orders:  # insert, or a partial row not seen yet
                out += self._liquidation(r, recv_ms)
        return out

    def _liquidation(self, r: frames.LiquidationRow, recv_ms: int) -> list[Event]:
        if r.side is UNSET or r.price is UNSET or r.leavesQty is UNSET or not r.symbol:
            self.stats.error(self.venue, "invalid_liquidation", r)
            return []
        side = _SIDES.get(r.side)
        if side is None:
            self.stats.error(self.venue, "invalid_side", r)
            return []
        order = frames.RestingOrder(r.symbol, r.leavesQty)
        inst = self._instrument(r.symbol, r)
        if inst is None:  # not ours: remembered, so that a partial re-sending it is quiet
            self.orders[r.orderID] = order
            return []
        value = self._value(inst, r.leavesQty, r.price, r)
        if value is None:  # not remembered: counted if a partial re-sends it once valued
            return []
        self.orders[r.orderID] = order
        base, usd = value
        # The table carries no time: its events take the time they were received.
        # The price is the order's limit: the bankruptcy price.
        return [
            _stamp.liquidation(
                self.venue,
                inst,
                recv_ms,
                recv_ms,
                side,
                price=r.price,
                quantity=r.leavesQty,
                sampled=False,
                event_id=r.orderID,
                quantity_base=base,
                notional_usd=usd,
            )
        ]

    # -- quote, trade --------------------------------------------------------------------------

    def _quotes(self, rows: list[frames.QuoteRow], recv_ms: int) -> list[Event]:
        """Each row is the top of its book now (sizes in contracts): merged, reported at
        most once a second per symbol."""
        out: list[Event] = []
        for r in rows:
            inst = self._instrument(r.symbol, r)
            if inst is None:
                continue
            state = self.quotes.get(r.symbol)
            if state is None:
                state = self.quotes[r.symbol] = TickerState()
            state.apply_book(
                {"bid": r.bidPrice, "bid_qty": r.bidSize, "ask": r.askPrice, "ask_qty": r.askSize}
            )
            valued = self._valued(inst, r)
            if valued is not None:
                ts = frames.ms(r.timestamp)
                out += report(self.venue, valued, state, ts, recv_ms, STATE_EVERY_MS)
        return out

    def _trades(self, action: str, data: msgspec.Raw, recv_ms: int) -> list[Event]:
        """Each print (``insert``) into its instrument's second of traded volume; the
        seconds it closes. The ``partial`` re-sends the last print before the subscription
        (already past: not counted); a frame nobody asked for (volume off) is filtered."""
        volumes = self.volumes
        if volumes is None or action != "insert":
            self.stats.filtered += 1
            return []
        out: list[Event] = []
        for r in frames.trades.decode(data):
            inst = self._instrument(r.symbol, r)
            if inst is None:
                continue
            buy = _TAKER_BUYS.get(r.side)
            if buy is None or not (r.size >= 0 and r.price > 0):  # NaN fails too
                self.stats.error(self.venue, "invalid_trade", r)  # the rest of the batch stays
                continue
            valued = self._valued(inst, r)
            if valued is None:
                continue
            ts = frames.ms(r.timestamp)
            closed = volumes.add(valued, ts, buy, r.size, r.price, recv_ms, r.trdMatchID)
            if closed is not None:
                out.append(closed)
        return out

    # -- orderBookL2 ---------------------------------------------------------------------------

    def _book_rows(
        self,
        action: str,
        rows: list[frames.L2Row],
        scope: Mapping[str, Any] | None,
        recv_ms: int,
    ) -> list[Event]:
        """Apply the rows to their symbols' books (a ``partial`` replaces the book of its
        ``filter`` symbol, even with no rows); each book's depth when one is due."""
        if action == "partial":
            fresh = {r.symbol for r in rows}
            if (symbol := (scope or {}).get("symbol")) is not None:
                fresh.add(str(symbol))
            for s in fresh:
                new = self.books[s] = L2Book()
                new.reported_ms = self.depth_reported_ms.get(s, new.reported_ms)
                self.resync_asked_ms.pop(s, None)
            if not rows:
                return []
        out: list[Event] = []
        for symbol, group in itertools.groupby(rows, key=lambda r: r.symbol):
            levels = list(group)
            inst = self._instrument(symbol)
            if inst is None:
                continue
            book = self.books.get(symbol)
            if book is None:
                self.stats.error(self.venue, BOOK_UNSYNCED, symbol)
                self._ask_partial(symbol, recv_ms)
                continue
            try:
                book.apply_rows(action, levels)
            except Gap as exc:
                self._drop_book(symbol, BOOK_GAP, str(exc), recv_ms)
                continue
            except ParseError as exc:
                self._drop_book(symbol, exc.reason, levels, recv_ms)
                continue
            out += self._depth(symbol, inst, book, levels[-1], recv_ms)
        return out

    def _depth(
        self, symbol: str, inst: Instrument, book: L2Book, last: frames.L2Row, recv_ms: int
    ) -> list[Event]:
        """The book's depth, when one is due at the last row's time (the matching engine's;
        our receive time for a row without one)."""
        ts = recv_ms
        if last.timestamp is not UNSET:
            try:
                ts = frames.text_ms(last.timestamp)
            except ValueError:  # the book stands: its depth waits for a row with a time
                self.stats.error(self.venue, BOOK_UNREADABLE, last)
                return []
        if not book.due(ts, self.depth_reported_ms.get(symbol)):
            return []
        valued = self._valued(inst, last)
        if valued is None:
            return []
        depth = book.depth(self.venue, valued, ts, recv_ms, self.depth_levels)
        if depth is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                self._drop_book(symbol, BOOK_CROSSED, symbol, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.depth_reported_ms[symbol] = ts
        return [depth]

    def _forget_books(self, data: msgspec.Raw, recv_ms: int) -> None:
        """Drop the books an unreadable ``orderBookL2`` frame had rows of (every book when its
        rows name no symbol) and ask for fresh partials: the table has no sequence, so a lost
        ``delete`` would leave its level in the book for good, a lost ``update`` its old size
        (the frame is counted once, by the caller)."""
        try:
            symbols = {r.symbol for r in frames.row_symbols.decode(data)}
        except (msgspec.ValidationError, msgspec.DecodeError):
            symbols = set(self.books)
        for symbol in sorted(symbols & self.books.keys()):
            del self.books[symbol]
            self.resync_asked_ms.pop(symbol, None)
            self._ask_partial(symbol, recv_ms)

    def _drop_book(self, symbol: str, reason: str, detail: object, recv_ms: int) -> None:
        """Forget ``symbol``'s book, count ``reason``, ask for a fresh partial."""
        del self.books[symbol]
        self.stats.error(self.venue, reason, detail)
        self.resync_asked_ms.pop(symbol, None)
        self._ask_partial(symbol, recv_ms)

    def _ask_partial(self, symbol: str, recv_ms: int) -> None:
        """Ask (:attr:`resync`) for a fresh partial of ``symbol``'s book, unless that was
        done within :data:`RESYNC_EVERY_MS`."""
        asked = self.resync_asked_ms.get(symbol)
        if asked is None or recv_ms - asked >= RESYNC_EVERY_MS:
            self.resync_asked_ms[symbol] = recv_ms
            self.resync.add(symbol)


class Bitmex(Venue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = BitmexParser
    default_ws_url: ClassVar[str] = "wss://ws.bitmex.com/realtime"
    default_rest_url: ClassVar[str] = "https://www.bitmex.com"
    liquidations_sampled: ClassVar[bool] = False
    retired: ClassVar[str | None] = (
        "BitMEX closed on 2026-09-23 04:00 UTC (https://www.bitmex.com/blog/bitmex-closure; "
        "reduce-only from 2026-08-26): kept for its simulator, recordings and protocol tests"
    )
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = FULL_BOOK_LEVELS
    max_frame_bytes: ClassVar[int] = 8 * 2**20
    """An ``orderBookL2`` partial is the whole book: XBTUSD's ran to thousands of levels
    (about 150 bytes a row with its times), beyond the default 1 MiB."""

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self._client: httpx.AsyncClient | None = None

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``realtime``: every subscribed symbol's instrument, liquidation, quote and (with
        ``volume``) trade tables on one connection (BitMEX counts connections, 60 an hour,
        not topics: a subscription "is not rate-limited once connected"); ``depth``: the
        ``orderBookL2`` of :attr:`depth_symbols`, on a connection of its own so a change of
        that set reconnects nothing else."""
        out = [
            Connection(
                "realtime",
                self.ws_url,
                subscribe_requests(self.subscribed(markets), markets, trades=self.volume),
                ping=PING,
                ping_interval_s=PING_INTERVAL_S,
                pong=PONG,
            )
        ]
        mine = sorted(s for s in self.depth_symbols if s in markets)
        if self.depth_levels and mine:
            out.append(
                Connection(
                    DEPTH_CONNECTION,
                    self.ws_url,
                    pack_requests("subscribe", [f"{ORDER_BOOK}:{s}" for s in mine]),
                    ping=PING,
                    ping_interval_s=PING_INTERVAL_S,
                    pong=PONG,
                    own_parser=True,  # a session's books: its rows' ids are the session's
                )
            )
        return out

    def new_parser(self, markets: Mapping[str, Instrument], wanted: set[str] | None) -> Parser:
        parser = super().new_parser(markets, wanted)
        if isinstance(parser, BitmexParser) and self.depth_levels:
            parser.depth_levels = self.depth_levels
        return parser

    def session_parser(self, shared: Parser) -> Parser:
        """A depth session's parser: books of its own; the XBT price (the ``instrument``
        table comes on the realtime connection) and the time of each book's last report
        shared (at most one a second whatever the sessions)."""
        parser = super().session_parser(shared)
        if isinstance(parser, BitmexParser) and isinstance(shared, BitmexParser):
            parser.xbt = shared.xbt
        return parser

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Unsubscribe then subscribe the books of ``symbols``: a subscription starts with a
        ``partial``, the whole book."""
        args = [f"{ORDER_BOOK}:{s}" for s in sorted(symbols)]
        return (*pack_requests("unsubscribe", args), *pack_requests("subscribe", args))

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        """The open perpetuals of ``/api/v1/instrument/active`` that can be valued in USD.
        Raises ``ConnectionError`` when the venue cannot be reached and ``ValueError`` on an
        error status or an answer that is not a list of instruments (both retried by the
        collector)."""
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.rest_url)
        try:
            response = await self._client.get(INSTRUMENTS_PATH, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise TimeoutError(f"{self.id} {INSTRUMENTS_PATH}: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ConnectionError(f"{self.id} {INSTRUMENTS_PATH}: {exc!r}") from exc
        if response.status_code != 200:
            raise ValueError(f"{self.id} {INSTRUMENTS_PATH}: HTTP {response.status_code}")
        out, skipped = parse_listing(response.content)
        if skipped:
            log.info("perpetuals not valued in USD left out", venue=self.id, symbols=skipped)
        return out

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
