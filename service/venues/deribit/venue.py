"""Deribit perpetuals (``deribit``): inverse (``BTC-PERPETUAL``, ``ETH-PERPETUAL``: USD
amounts) and linear (``*_USDC-PERPETUAL``: coin amounts).

Wire protocol (https://docs.deribit.com, JSON-RPC 2.0 over ``wss://www.deribit.com/ws/api/v2``):

* Requests ``{"jsonrpc":"2.0","id":…,"method":…,"params":{…}}``; each is answered with the
  same ``id`` and a ``result`` (``public/subscribe``: the channels subscribed) or an
  ``error`` (``{"code":…,"message":…}``, counted as ``venue_error``). Notifications come as
  ``{"jsonrpc":"2.0","method":"subscription","params":{"channel":…,"data":…}}``.
* Channels, per perpetual: ``ticker.{instrument}.100ms`` on the ``public`` connection and
  ``trades.{instrument}.100ms`` on ``trades``, a connection of its own (``raw`` intervals need
  authentication), subscribed in requests of :data:`~.frames.CHANNELS_PER_REQUEST` (one
  request a connection: Deribit lists about 20 perpetuals; subscribes are limited to a burst
  of 10, then ~3.3 a second).
* Keep-alive: ``public/set_heartbeat`` (interval 30 s; at least 10) makes the venue send
  ``{"method":"heartbeat","params":{"type":"heartbeat"|"test_request"}}``; a
  ``test_request`` must be answered with ``public/test`` or the venue closes the
  connection. The collector's keep-alive is a static periodic message, so we send
  ``public/test`` every :data:`PING_INTERVAL_S` (a third of the heartbeat interval): a
  ``public/test`` reaches the venue within 10 s of any ``test_request``, well inside the
  interval, and is the answer it asks for. Request ids "must be unique within the
  connection context" (the JSON-RPC overview): ours are ``heartbeat-1``, ``heartbeat-2``...
  per connection (:func:`~.frames.pings`), after the integer ids of the session's
  requests. Each is echoed in the venue's answer, so the one marker ``heartbeat`` flags both
  the venue's heartbeats and the answers to our pings as keep-alive, not data: a feed that
  only keeps alive has stalled.
* ``ticker`` (every 100 ms while it changes): ``mark_price``, ``index_price``,
  ``open_interest`` (USD on inverse, coin on linear contracts) and funding. Funding accrues
  continuously; ``current_funding`` is the rate accruing now and ``funding_8h`` the rate
  paid over the trailing 8 hours, both quoted per 8 hours. The :class:`FundingRate` is the
  current one (``current_funding``, or ``funding_8h`` when a frame lacks it) with
  ``interval_h`` 8 (the quoting basis: there is no settlement, so ``next_funding_ms`` is
  ``None``) and ``funding_rate_1h`` = rate / 8. The best bid and ask (``best_bid_price``,
  ``best_bid_amount``...; amounts in the open interest's unit; ``null`` or 0 on an empty
  side) are the top of book. Mark, funding, open interest and the top of book are reported
  at most once a second per instrument (:data:`STATE_EVERY_MS`), like Bybit's.
* ``trades`` (batched every 100 ms): every trade; those with a ``liquidation`` flag are
  liquidations, all of them (a complete tape, not a sample). The flag says whose position
  was liquidated (see :func:`~.frames.liquidated_sides`): ``T`` the taker, ``M``
  the maker, ``MT`` both, giving two liquidations of the full amount, one long and one
  short. ``price`` is the fill price; ``amount`` is USD (inverse) or coin (linear).
  ``event_id`` is ``{trade_id}:{side}``: unique per liquidated side, the same on a re-send.
  With the venue's ``volume`` setting on (the default), every trade, liquidations included,
  is also summed into traded volume per second (:mod:`.._volume`): ``direction`` is the
  taker's side (``buy``: a buyer lifted the ask), ``amount`` valued as a liquidation's (USD
  on inverse contracts, whose base is ``amount / price``; coin on linear ones).
  The trades have their connection (``trades``), so that a collector behind on the tickers (a
  cascade at ten times their rate) still reads the liquidations as they come, and its
  ``public/test`` answers are not queued behind ticker frames. It is the liquidations' lane
  (:attr:`~..base.Connection.quiet`): read on while Redis is behind, as every venue's
  (``bench market``: as a busy connection it waited with the tickers, and its liquidations
  were read a minute late), watched by protocol pings rather than the data watchdog. The
  perpetuals' trades are few beside the tickers (one frame per 100 ms and instrument at
  most, about 20 perpetuals).

* ``book.{instrument}.100ms`` (https://docs.deribit.com/subscriptions/orderbook/
  bookinstrument_nameinterval, checked 2026-12-06), for the instruments whose depth is
  followed (:attr:`~..base.Venue.depth_symbols`: the top 20 by open interest by default), on
  connections of their own (``depth-1``...: their own heartbeat and ``public/test``), so a
  change of that set reconnects nothing else. "The first notification will contain the whole
  book", ``type`` ``snapshot``, levels ``["new", price, amount]``; then ``type`` ``change``
  with ``[action, price, amount]``, ``action`` ``new``, ``change`` or ``delete``. "If
  ``prev_change_id`` is equal to the ``change_id`` of the previous message, this means that
  no messages have been missed": one that is not is a gap, and the book is dropped, counted
  (``orderbook_gap``) and resubscribed on its connection (:meth:`Deribit.resubscribe`:
  ``public/unsubscribe`` then ``public/subscribe``, which sends a new snapshot; request ids
  ``resync-1-off``, ``resync-1-on``, ``resync-2-off``..., unique within the connection as the
  JSON-RPC overview asks), books per session (:attr:`~..base.Connection.own_parser`), as
  Bybit's and OKX's.
  ``amount``: the page says "USD units" for perpetuals and futures, written before the
  linear ``*_USDC-PERPETUAL`` contracts; the grouped book's page (``book.{instrument}.{group}.
  {depth}.{interval}``) says "For options and linear futures it is in the underlying base
  currency coin", which is the ticker's and the trades' unit: USD on inverse, coin on linear
  perpetuals, the instrument's native unit. The channel sends the whole book (no depth
  parameter; :data:`BOOK_LEVELS` a side are kept at most). The event's time is the
  notification's ``timestamp``; a :class:`~...events.BookDepth` at most once a second per
  instrument (:mod:`.._book`).

Instruments: ``GET /api/v2/public/get_instruments?currency=any&kind=future&expired=false``
(one request) through ccxt's implicit endpoint (rate limit, error mapping, configurable
base URL), not ccxt's ``load_markets``, which also loads every option and skips rows
without ``counter_currency`` (rows of 2021).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import ClassVar, Final

import msgspec
import structlog
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import Event
from .. import _stamp
from .._book import (
    BOOK_CROSSED,
    BOOK_GAP,
    BOOK_UNREADABLE,
    BOOK_UNSYNCED,
    INVALID_LEVEL,
    Book,
    Levels,
    Resyncs,
)
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from . import frames
from .frames import (
    FUNDING_BASIS_H,
    TICKER,
    TRADES,
    VENUE,
    book_channels,
    depth_requests,
    liquidated_sides,
    pings,
    request,
    session_requests,
)

__all__ = [
    "PING_INTERVAL_S",
    "PONG_MARKER",
    "STATE_EVERY_MS",
    "VENUE",
    "Deribit",
    "DeribitParser",
    "liquidated_sides",
    "pings",
    "session_requests",
]

log = structlog.get_logger(__name__)

PING_INTERVAL_S: Final = 10.0
PONG_MARKER: Final = "heartbeat"
"""In the venue's heartbeats and in its answers to our ``public/test`` (ids
``"heartbeat-<n>"``)."""
STATE_EVERY_MS: Final = 1000
"""Mark, funding and open-interest events: at most one per instrument and kind per second."""
_TAKER_BUYS: Final = {"buy": True, "sell": False}
"""A trade's ``direction`` is the taker's."""
BOOK_LEVELS: Final = 10_000
"""``book.{instrument}.100ms`` sends the whole book: the levels a side a book keeps at most
(the deepest trimmed when it reports; Deribit's ``public/get_order_book`` goes to 10,000)."""
DEPTH_SYMBOLS_PER_CONNECTION: Final = 20
"""Book channels a depth connection carries (Deribit lists about 20 perpetuals: one)."""
_KEEPS: Final = {"new": True, "change": True, "delete": False}
"""A level action: ``new``/``change`` set the level's amount, ``delete`` removes it."""


def book_levels(rows: list[tuple[str, float, float]]) -> Levels:
    """``[action, price, amount]`` rows as ``(price, amount)`` levels, ``delete`` as amount 0
    (:meth:`~.._book.Book.apply` removes it); raises :class:`ParseError`
    (:data:`~.._book.INVALID_LEVEL`) at an action it does not know."""
    for action, price, amount in rows:
        keep = _KEEPS.get(action)
        if keep is None:
            raise ParseError(INVALID_LEVEL)
        yield price, amount if keep else 0.0


class DeribitParser(Parser):
    """Parses ``ticker.*``, ``trades.*`` and ``book.*`` (a local book per instrument: a depth
    session's parser keeps its own, :meth:`Deribit.session_parser`) notifications,
    heartbeats and responses, e.g.
    ``{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.raw",
    "data":[{"trade_seq":40782080,"trade_id":"66460626","timestamp":1584058067675,
    "tick_direction":3,"price":4458.5,"liquidation":"M","instrument_name":"BTC-PERPETUAL",
    "index_price":4793.6,"direction":"buy","amount":2500}]}}``: the maker, who sold to a
    buying taker, had a long of which 2,500 USD was liquidated."""

    def __init__(
        self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None
    ) -> None:
        super().__init__(venue, markets, wanted)
        self.state_every_ms = STATE_EVERY_MS
        self._reported_ms: dict[str, int] = {}
        self.books: dict[str, Book] = {}
        """The order books followed (``book.*``), by instrument."""
        self.resyncs = Resyncs(self)
        """Fresh snapshots asked for (a book dropped, or updates before its snapshot)."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        if env.method == "subscription" and len(env.params):
            return self._notification(env.params, recv_ms, frame)
        if env.method == "heartbeat":
            return []  # answered by our periodic public/test
        if env.id is not None and len(env.error):
            self.stats.error(self.venue, "venue_error", frame)
        elif env.id is None or not len(env.result):
            self.stats.error(self.venue, "unknown_frame", frame)
        return []  # a response to one of our requests

    def _notification(self, raw: msgspec.Raw, recv_ms: int, frame: str | bytes) -> list[Event]:
        try:
            p = frames.params.decode(raw)
        except msgspec.ValidationError:
            self.stats.error(self.venue, "invalid_frame", frame)
            return []
        name = p.channel.split(".", 1)[0]
        if name == frames.BOOK:
            return self._book(p.data, recv_ms, frame)
        if name not in (TICKER, TRADES):
            self.stats.error(self.venue, "unknown_channel", p.channel)
            return []
        try:
            if name == TICKER:
                return self._ticker(frames.ticker.decode(p.data), recv_ms)
            return self._trades(frames.trades.decode(p.data), recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, f"invalid_{name}", frame)
            return []

    def _ticker(self, t: frames.Ticker, recv_ms: int) -> list[Event]:
        inst = self._instrument(t.instrument_name, t)
        if inst is None:
            return []
        symbol, ts = t.instrument_name, t.timestamp
        self.last_mark[symbol] = t.mark_price
        if _stamp.held_back(ts, self._reported_ms.get(symbol), self.state_every_ms):
            return []  # a full snapshot: the next due frame carries the latest values
        self._reported_ms[symbol] = ts
        out: list[Event] = [_stamp.mark(self.venue, inst, ts, recv_ms, t.mark_price, t.index_price)]
        rate = t.current_funding if t.current_funding is not None else t.funding_8h
        if rate is not None:  # continuous: no settlement to wait for
            out.append(_stamp.funding(self.venue, inst, ts, recv_ms, rate, FUNDING_BASIS_H, None))
        if t.open_interest is not None and t.mark_price > 0:
            # USD (inverse) or coin (linear): 1 native unit each
            out.append(
                _stamp.open_interest(self.venue, inst, ts, recv_ms, t.open_interest, t.mark_price)
            )
        bid, ask = t.best_bid_price, t.best_ask_price
        bid_qty, ask_qty = t.best_bid_amount, t.best_ask_amount
        if bid and ask and bid_qty is not None and ask_qty is not None:  # both sides quoted
            out.append(_stamp.book_top(self.venue, inst, ts, recv_ms, bid, bid_qty, ask, ask_qty))
        return out

    def _book(self, raw: msgspec.Raw, recv_ms: int, frame: str | bytes) -> list[Event]:
        """Apply a ``snapshot`` or a ``change`` to the instrument's book, check its
        ``change_id`` chain; its depth when one is due."""
        try:
            d = frames.book.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if d.type not in ("snapshot", "change"):
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        symbol = d.instrument_name
        if (inst := self._instrument(symbol, symbol)) is None:
            return []
        book = self.books.get(symbol)
        if d.type == "snapshot":
            book = self.books[symbol] = Book(d.change_id)
            book.reported_ms = self.depth_reported_ms.get(symbol, book.reported_ms)
        elif book is None:
            self.stats.error(self.venue, BOOK_UNSYNCED, symbol)
            self.resyncs.ask(symbol, recv_ms)
            return []
        elif d.prev_change_id != book.update_id:
            detail = f"{symbol} change_id {book.update_id} -> prev_change_id {d.prev_change_id}"
            return self.resyncs.drop(self.books, symbol, BOOK_GAP, detail, recv_ms)
        book.update_id = d.change_id
        try:
            book.apply(book_levels(d.bids), book_levels(d.asks))
        except ParseError as exc:
            return self.resyncs.drop(self.books, symbol, exc.reason, frame, recv_ms)
        if not book.due(d.timestamp, self.depth_reported_ms.get(symbol)):
            return []
        depth = book.depth(self.venue, inst, d.timestamp, recv_ms, BOOK_LEVELS)
        if depth is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                return self.resyncs.drop(self.books, symbol, BOOK_CROSSED, symbol, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.depth_reported_ms[symbol] = d.timestamp
        return [depth]

    def _trades(self, rows: list[frames.Trade], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        volumes = self.volumes
        for t in rows:
            if t.liquidation is None and volumes is None:
                continue  # an ordinary trade, and no volume to count it in
            inst = self._instrument(t.instrument_name, t)
            if inst is None:
                continue
            if volumes is not None:  # every trade, a liquidation's too: it traded
                buy = _TAKER_BUYS.get(t.direction)
                if buy is None:
                    self.stats.error(self.venue, "invalid_side", t)
                    continue
                closed = volumes.add(inst, t.timestamp, buy, t.amount, t.price, recv_ms, t.trade_id)
                if closed is not None:
                    out.append(closed)
            if t.liquidation is None:
                continue
            sides = liquidated_sides(t.liquidation, t.direction)
            if sides is None:
                self.stats.error(self.venue, "invalid_side", t)
                continue
            for side in sides:  # at the fill price
                eid = f"{t.trade_id}:{side.value}"
                out.append(_stamp.liquidation(
                    self.venue, inst, t.timestamp, recv_ms, side,
                    price=t.price, quantity=t.amount, sampled=False, event_id=eid,
                ))  # fmt: skip
        return out


class Deribit(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = DeribitParser
    default_ws_url: ClassVar[str] = "wss://www.deribit.com/ws/api/v2"
    default_rest_url: ClassVar[str] = "https://www.deribit.com"
    liquidations_sampled: ClassVar[bool] = False
    ccxt_id: ClassVar[str] = "deribit"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://www.deribit.com",)
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = BOOK_LEVELS

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        levels = settings.depth.levels
        if levels is not None and levels != BOOK_LEVELS:
            raise ValueError(
                f"venues.{self.id}.depth.levels: {levels}; Deribit's book channel "
                f"(book.{{instrument}}.100ms) sends the whole book ({BOOK_LEVELS} levels a "
                "side kept)"
            )
        self._resync_ids: Iterator[int] = itertools.count(1)
        """The resynchronisations' numbers: request ids unique within every connection."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``public``: each perpetual's ``ticker``; ``trades``: each perpetual's ``trades``,
        where the liquidations are, on a connection of their own so that a collector behind on
        the tickers (a cascade at ten times their rate) still reads them as they come, and the
        ``public/test`` answering the venue's ``test_request`` is not queued behind ticker
        frames; then the depth connections. Each has its own heartbeat and ``public/test``
        sequence. ``trades`` is the liquidations' lane (:attr:`Connection.quiet`): it reads on
        while Redis is behind, and protocol pings watch it."""
        symbols = self.subscribed(markets)
        return [
            self._connection("public", session_requests(symbols, TICKER)),
            self._connection("trades", session_requests(symbols, TRADES), quiet=True),
            *self._depth_connections(markets),
        ]

    def _connection(
        self, name: str, subscribe: tuple[str, ...], own_parser: bool = False, quiet: bool = False
    ) -> Connection:
        return Connection(
            name,
            self.ws_url,
            subscribe,
            ping=pings(),  # a sequence of its own for each connection
            ping_interval_s=PING_INTERVAL_S,
            pong=PONG_MARKER,
            own_parser=own_parser,
            quiet=quiet,
        )

    def _depth_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``depth-1``...: the ``book`` channels of :attr:`depth_symbols`,
        :data:`DEPTH_SYMBOLS_PER_CONNECTION` a connection, each with its heartbeat. Each
        session keeps books of its own (a rotation's overlap would mix two sessions'
        change ids)."""
        if not self.depth_levels:
            return []
        mine = sorted(s for s in self.depth_symbols if s in markets)
        step = DEPTH_SYMBOLS_PER_CONNECTION
        return [
            self._connection(
                f"depth-{n + 1}", depth_requests(mine[start : start + step]), own_parser=True
            )
            for n, start in enumerate(range(0, len(mine), step))
        ]

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """``public/unsubscribe`` then ``public/subscribe`` of the books of ``symbols``:
        Deribit answers the subscribe with a new snapshot."""
        channels = {"channels": book_channels(symbols)}
        n = next(self._resync_ids)
        return (
            request(f"resync-{n}-off", "public/unsubscribe", channels),
            request(f"resync-{n}-on", "public/subscribe", channels),
        )

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        raw = await client.publicGetGetInstruments(
            {"currency": "any", "kind": "future", "expired": "false"}
        )
        try:
            listed = frames.instruments(raw)
        except ValueError as exc:  # msgspec.ValidationError included
            raise BadResponse(f"{self.id} get_instruments: {exc}") from exc
        return {inst.symbol: inst for inst in listed}
