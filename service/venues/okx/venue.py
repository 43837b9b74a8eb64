"""OKX v5 perpetual swaps (``okx``): linear (USDT/USDC) and inverse (USD) contracts.

Wire protocol (https://www.okx.com/docs-v5/en/, sections "WebSocket", "Public data"):

* One public websocket, ``wss://ws.okx.com:443/ws/v5/public``: port 8443, the one OKX's
  guide listed until at least 2026-08, stopped accepting websocket connections on
  2026-10-31 (Colo hosts on 2026-11-16), and the same host and path on 443 replaces it.
  We found this in third-party sources only (the ``okx-api`` SDK's author, a Go OKX client's
  README: "port 8443 is retired on 31 Oct 2026"; ccxt 4.5.90 connects to
  ``wss://ws.okx.com:443/ws/v5``), not in a page of OKX's own (see ``docs/venues.md``); 443
  works either way. The URL is configurable (``ws_url``). A ``subscribe`` request
  carries many ``args`` (their total length must stay under 64 KB); each arg is acked on its
  own (``{"event":"subscribe","arg":{...},"connId":...}``); a refused request answers
  ``{"event":"error","code":"60018","msg":...}``. At most 480 subscribe/unsubscribe/login
  requests per connection per hour: we send one or two requests per connection.
* Keep-alive: the server closes (4004) a connection with nothing subscribed, or that was
  pushed nothing for 30 s. The client sends the *text* ``ping`` (not JSON) and gets the text
  ``pong``; we ping every :data:`PING_INTERVAL_S`, whatever the traffic (the docs,
  https://www.okx.com/docs-v5/en/#overview-websocket-connect: "send the String 'ping'" when
  no message came for N < 30 s, "expect a 'pong' as a response").
* ``funding-rate`` (per instId, every 30-90 s): ``fundingRate`` for the period settled at
  ``fundingTime``; the interval (8/6/4/2/1 h) is ``nextFundingTime - fundingTime``.
* ``open-interest`` (per instId, every 3 s on change): ``oi`` contracts, ``oiCcy`` coin,
  ``oiUsd`` USD (absent in the 2021 captures: valued here, see
  :meth:`OkxParser._open_interest`).
* ``mark-price`` (per instId, every 200 ms on change, else 10 s): ``markPx``. Reported at
  most once a second per instrument (:data:`STATE_EVERY_MS`), as every other venue's mark:
  a push within a second of the last one reported is skipped (its price still values the
  linear open interest), the next due push carries the latest. A mark that moved once
  within that second and then stood still is reported at the venue's 10 s refresh.
* ``liquidation-orders`` (per **instType**, here ``SWAP``): batches, one ``data[]`` entry
  per instrument with ``details[]``. A *sample* ("doesn't represent the total number of
  liquidations"), "not necessarily in chronological order", ``sz`` in contracts, ``bkPx``
  the bankruptcy price (the docs: the price of the fill with the system's liquidation
  account; our ``price``), ``side`` the *order* side and ``posSide`` the position side
  (``long``/``short`` in hedge mode, ``net`` in net mode, where a ``sell`` closes a long).
  On subscribe the venue sends a burst of recent liquidations, so re-subscribing after a
  reconnect re-sends liquidations already seen: each gets a stable ``event_id``. On a
  connection of its own (``liquidations``, the quiet lane), so a collector behind on the
  marks, tickers and trades still reads it as it comes; it is pinged like the others (in a
  calm market only our pings' pongs keep it from the 30 s idle cut).
* ``tickers`` (per instId; https://www.okx.com/docs-v5/en/#order-book-trading-market-data-
  ws-tickers-channel, checked 2026-12-06 through a stored copy of 2026-07-09): "The fastest
  rate is 1 update/100ms ... The events which can trigger update: trade, the change on best
  ask/bid"; each push the whole ticker, of which we read the top of book: ``bidPx``,
  ``bidSz``, ``askPx``, ``askSz`` (sizes in **contracts** for swaps, valued as open
  interest; a side without orders: ``""``). Reported at most once a second per instrument
  (:data:`STATE_EVERY_MS`). Not ``bbo-tbt``: it pushes the same top every 10 ms, ten
  times the ticker's frames for a figure reported once a second.
* ``trades`` (per instId, when the venue's ``volume`` setting is on;
  https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel, checked
  2026-12-06 through a stored copy of 2026-07-22): one print "per taker order, filled price,
  source", ``count`` the fills it aggregates, ``tradeId`` the last of them; ``side`` the
  **taker's** side; ``sz`` in **contracts** for swaps (linear: ``sz x ctVal`` coin at
  ``px``; inverse: ``sz x ctVal`` USD). Summed into traded volume per second
  (:mod:`.._volume`), each print once per ``tradeId``. Liquidation fills print here too
  and count (``liquidation-orders`` still gives the liquidation events).
* ``books`` (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-
  channel, checked 2026-12-06 through stored copies): 400 levels a side, a ``snapshot``
  (``prevSeqId`` -1) on subscribe, then every 100 ms an ``update`` of the levels that changed
  (size ``"0"``: gone). Levels are ``[price, size, "0", orders]`` as text, best first, size in
  **contracts** (valued as open interest: linear ``size x ctVal x price``, inverse
  ``size x ctVal`` USD, :class:`~..base.Instrument`). Subscribed for the instruments whose
  depth is followed (:attr:`~..base.Venue.depth_symbols`: the top 20 by open interest by
  default) on connections of their own (``depth-1``...), so a change of that set reconnects
  nothing else. The docs' rules: an update's ``prevSeqId`` is the last message's ``seqId``;
  ``seqId`` may restart *lower* after maintenance (``prevSeqId`` still links); with nothing
  to say the venue sends an empty update with ``seqId == prevSeqId``. So a ``prevSeqId`` that
  is not the book's ``seqId`` is a gap: the book is dropped, counted (``orderbook_gap``) and
  resubscribed (:meth:`Okx.resubscribe`: unsubscribe, subscribe, a new snapshot), Bybit's
  handling (:mod:`..bybit.venue`), with books per session (:attr:`~..base.Connection.
  own_parser`). ``checksum`` is the signed CRC32 of the best 25 levels a side, interleaved
  (:mod:`.book`); a mismatch drops the book too (``orderbook_checksum``). OKX deprecated it:
  from 2026-06-23 (production) it is always ``0`` ("OKX Order Book Channels Checksum Field
  Deprecation", 21 May 2026, okx.com/help, read on OKX's mirror domains), so ``0`` is not
  checked and in production the ``seqId`` chain is the only check. The event's time is the
  row's ``ts``; a :class:`~...events.BookDepth` is reported at most once a second per
  instrument (:mod:`.._book`), bands the 400 levels do not reach flagged (``*_reach_pct``).

Instruments come from ``GET /api/v5/public/instruments?instType=SWAP`` through ccxt (its
``fetchMarkets`` types restricted to swaps: one request, no other endpoint; ccxt's currency
list needs an API key and is skipped without one). ``ctVal`` x ``ctMult`` is the contract
size: base coin for ``ctType`` linear (BTC-USDT-SWAP: 0.01 BTC), USD for inverse
(BTC-USD-SWAP: 100 USD, other coins 10 USD); see :mod:`.instruments`. The wire's
typed frames are in :mod:`.frames`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Final

import msgspec
import structlog

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._book import (
    BOOK_CROSSED,
    BOOK_GAP,
    BOOK_UNREADABLE,
    BOOK_UNSYNCED,
    Resyncs,
)
from .._numbers import integer, number, optional_number
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from ..history import Budget, History
from . import frames
from . import history as _okx_history
from .book import OkxBook
from .instruments import (
    DEFAULT_FUNDING_INTERVAL_H,
    INST_TYPE,
    MAX_REQUEST_BYTES,
    VENUE,
    instrument,
    liquidation_requests,
    pack_requests,
    subscribe_requests,
)

__all__ = [
    "DEFAULT_FUNDING_INTERVAL_H",
    "INST_TYPE",
    "MAX_REQUEST_BYTES",
    "PING",
    "PING_INTERVAL_S",
    "VENUE",
    "Okx",
    "OkxParser",
    "instrument",
    "liquidation_requests",
    "position_side",
    "subscribe_requests",
]

log = structlog.get_logger(__name__)

PING: Final = "ping"
PONG: Final = "pong"
PING_INTERVAL_S: Final = 20.0
"""Under the venue's 30 s idle cut, with room for a slow round trip."""
MAX_FUNDING_INTERVAL_MS: Final = 24 * 3_600_000
PROTOCOL_EVENTS: Final = frozenset({"subscribe", "unsubscribe", "channel-conn-count"})
ERROR_EVENTS: Final = frozenset({"error", "channel-conn-count-error"})
BOOKS: Final = "books"
TICKERS: Final = "tickers"
TRADES: Final = "trades"
STATE_EVERY_MS: Final = 1000
"""Top-of-book events: at most one per instrument a second (as Bybit's and Deribit's)."""
_TAKER_BUYS: Final = {"buy": True, "sell": False}
"""A ``trades`` print's ``side`` is the taker's."""
BOOK_LEVELS: Final = 400
"""``books``: 400 levels a side, a snapshot then updates every 100 ms."""
BOOK_CHECKSUM: Final = "orderbook_checksum"
"""A book whose checksum (when the venue sends one: not ``0``) differs from the venue's."""
DEPTH_SYMBOLS_PER_CONNECTION: Final = 20
"""``books`` pushes up to 400 levels a side: 20 books a connection (the default top 20: one)."""


def position_side(side: str, pos_side: str) -> Side | None:
    """The liquidated position's side: ``posSide`` in hedge mode, else (``net`` mode) the
    order side's opposite: a ``sell`` order closes a long. ``None`` when neither tells."""
    if pos_side in ("long", "short"):
        return Side(pos_side)
    if side == "sell":
        return Side.LONG
    if side == "buy":
        return Side.SHORT
    return None


class OkxParser(Parser):
    """Parses pushes of ``funding-rate``, ``open-interest``, ``mark-price``,
    ``liquidation-orders``, ``tickers`` (top of book), ``trades`` (traded volume) and
    ``books`` (a local book per instId: a depth session's parser keeps its own,
    :meth:`Okx.session_parser`), the subscribe acks and the text ``pong``."""

    def __init__(
        self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None
    ) -> None:
        super().__init__(venue, markets, wanted)
        self.funding_interval_h: dict[str, float] = {}
        """The interval last read from each instrument's funding frames."""
        self.books: dict[str, OkxBook] = {}
        """The order books followed (``books``), by instId."""
        self.resyncs = Resyncs(self)
        """Fresh snapshots asked for (a book dropped, or updates before its snapshot)."""
        self.top_reported_ms: dict[str, int] = {}
        """When each instrument's top of book (``tickers``) was last reported."""
        self.mark_reported_ms: dict[str, int] = {}
        """When each instrument's mark (``mark-price``) was last reported."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in (PONG, PONG.encode()):
            return []
        try:
            env = frames.envelope.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats.error(self.venue, "invalid_json", frame)
            return []
        if env.event is not None:
            if env.event in ERROR_EVENTS:
                self.stats.error(self.venue, "venue_error", frame)
            elif env.event == "notice":  # e.g. 64008: closing soon for a service upgrade
                self.stats.error(self.venue, "venue_notice", frame)
            elif env.event not in PROTOCOL_EVENTS:
                self.stats.error(self.venue, "unknown_event", frame)
            return []
        if env.arg is None or not len(env.data):
            self.stats.error(self.venue, "unknown_frame", frame)
            return []
        if env.arg.channel == BOOKS:
            return self._book(env, env.arg.instId, recv_ms, frame)
        if env.arg.channel == TRADES and self.volumes is None:
            self.stats.filtered += 1  # volume off: nobody asked for it
            return []
        return self._dispatch(env.arg.channel, env.data, recv_ms)

    def _dispatch(self, channel: str, data: msgspec.Raw, recv_ms: int) -> list[Event]:
        try:
            if channel == "mark-price":
                return self._marks(frames.marks.decode(data), recv_ms)
            if channel == "open-interest":
                return self._open_interest(frames.open_interest.decode(data), recv_ms)
            if channel == "funding-rate":
                return self._funding(frames.funding.decode(data), recv_ms)
            if channel == "liquidation-orders":
                return self._liquidations(frames.liquidations.decode(data), recv_ms)
            if channel == TICKERS:
                return self._tickers(frames.tickers.decode(data), recv_ms)
            if channel == TRADES:
                return self._trades(frames.trades.decode(data), recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError, ParseError):
            self.stats.error(self.venue, f"invalid_{channel}", data)
            return []
        self.stats.error(self.venue, "unknown_channel", channel)
        return []

    def _book(
        self, env: frames.Envelope, inst_id: str, recv_ms: int, frame: str | bytes
    ) -> list[Event]:
        """Apply a ``snapshot`` or an ``update`` to the instrument's book, check its
        sequence and checksum; its depth when one is due."""
        try:
            (row,) = frames.books.decode(env.data)
        except ValueError:  # msgspec's errors, not exactly one row
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if env.action not in ("snapshot", "update"):
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if (inst := self._instrument(inst_id)) is None:
            return []
        book = self.books.get(inst_id)
        if env.action == "snapshot":
            book = self.books[inst_id] = OkxBook(row.seqId, checked=row.checksum != 0)
            book.reported_ms = self.depth_reported_ms.get(inst_id, book.reported_ms)
        elif book is None:
            self.stats.error(self.venue, BOOK_UNSYNCED, inst_id)
            self.resyncs.ask(inst_id, recv_ms)
            return []
        elif row.prevSeqId != book.update_id:  # seqId may restart lower: prevSeqId links
            detail = f"{inst_id} seqId {book.update_id} -> prevSeqId {row.prevSeqId}"
            return self.resyncs.drop(self.books, inst_id, BOOK_GAP, detail, recv_ms)
        book.update_id = row.seqId
        try:
            book.apply_rows(row.bids, row.asks)
        except ParseError as exc:
            return self.resyncs.drop(self.books, inst_id, exc.reason, frame, recv_ms)
        if row.checksum and book.checked and book.checksum() != row.checksum:
            detail = f"{inst_id} seqId {row.seqId} checksum {row.checksum}"
            return self.resyncs.drop(self.books, inst_id, BOOK_CHECKSUM, detail, recv_ms)
        if not book.due(row.ts, self.depth_reported_ms.get(inst_id)):
            return []
        depth = book.depth(self.venue, inst, row.ts, recv_ms, BOOK_LEVELS)
        book.prune_texts()
        if depth is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                return self.resyncs.drop(self.books, inst_id, BOOK_CROSSED, inst_id, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.depth_reported_ms[inst_id] = row.ts
        return [depth]

    def _tickers(self, rows: list[frames.TickerRow], recv_ms: int) -> list[Event]:
        """The best bid and ask of each row (the whole ticker, at most every 100 ms), at most
        one a second per instrument (:data:`STATE_EVERY_MS`: a row within a second of the
        last one reported is skipped, the next due one carries the latest). A side without
        orders (``""``, or 0) reports nothing. A row with a field that is no number is
        counted (``invalid_tickers``) and dropped alone: the other rows are reported."""
        out: list[Event] = []
        reported = self.top_reported_ms
        for r in rows:
            if (inst := self._instrument(r.instId, r)) is None:
                continue
            if _stamp.held_back(r.ts, reported.get(r.instId), STATE_EVERY_MS):
                continue
            try:
                bid, ask = optional_number(r.bidPx), optional_number(r.askPx)
                bid_sz, ask_sz = optional_number(r.bidSz), optional_number(r.askSz)
            except ParseError:
                self.stats.error(self.venue, f"invalid_{TICKERS}", r)
                continue
            if not bid or not ask or bid_sz is None or ask_sz is None:
                continue  # one side empty: no spread
            reported[r.instId] = r.ts
            out.append(_stamp.book_top(self.venue, inst, r.ts, recv_ms, bid, bid_sz, ask, ask_sz))
        return out

    def _trades(self, rows: list[frames.TradeRow], recv_ms: int) -> list[Event]:
        """Each print (``sz`` contracts at ``px``, ``side`` the taker's) into its
        instrument's second of traded volume, once per ``tradeId``; the seconds it closes."""
        volumes = self.volumes
        if volumes is None:  # volume off (:meth:`_parse` filters these frames first)
            return []
        out: list[Event] = []
        for r in rows:
            if (inst := self._instrument(r.instId, r)) is None:
                continue
            buy = _TAKER_BUYS.get(r.side)
            if buy is None:  # one bad row: keep the rest of the batch
                self.stats.error(self.venue, "invalid_side", r)
                continue
            closed = volumes.add(inst, r.ts, buy, r.sz, r.px, recv_ms, r.tradeId)
            if closed is not None:
                out.append(closed)
        return out

    def _marks(self, rows: list[frames.Mark], recv_ms: int) -> list[Event]:
        """Each row's mark, at most one a second per instrument (:data:`STATE_EVERY_MS`);
        every row's price values the linear open interest."""
        out: list[Event] = []
        reported = self.mark_reported_ms
        for r in rows:
            if (inst := self._instrument(r.instId, r)) is None:
                continue
            if r.markPx > 0:  # linear open interest is valued at it
                self.last_mark[r.instId] = r.markPx
            if _stamp.held_back(r.ts, reported.get(r.instId), STATE_EVERY_MS):
                continue
            reported[r.instId] = r.ts
            out.append(
                _stamp.mark(self.venue, inst, r.ts, recv_ms, r.markPx, None)
            )  # no index here (index-tickers has it)
        return out

    def _open_interest(self, rows: list[frames.OpenInterestRow], recv_ms: int) -> list[Event]:
        """``oiUsd`` when the venue sends it; before 2023 it did not, and the USD value is
        ours: contracts x size for inverse contracts, ``oiCcy`` x the last mark for linear
        ones (no mark yet: dropped, counted as ``open_interest_without_mark``)."""
        out: list[Event] = []
        for r in rows:
            if (inst := self._instrument(r.instId, r)) is None:
                continue
            if r.oiUsd:
                try:
                    usd = number(r.oiUsd)
                except ParseError:
                    self.stats.error(self.venue, "invalid_open-interest", r)
                    continue
            elif not inst.linear:
                usd = inst.notional_usd(r.oi, 0.0)
            elif (mark := self.last_mark.get(r.instId)) is not None:
                usd = r.oiCcy * mark
            else:
                self.stats.error(self.venue, "open_interest_without_mark", r)
                continue
            out.append(_stamp.open_interest_of(self.venue, inst, r.ts, recv_ms, r.oi, r.oiCcy, usd))
        return out

    def _funding(self, rows: list[frames.FundingRow], recv_ms: int) -> list[Event]:
        """A frame without ``fundingRate`` (2021: only ``nextFundingRate``) is dropped
        (``missing_funding_rate``). Without ``nextFundingTime`` (2021) the interval is the
        one last read for the instrument, else the instrument's default (8 h); without
        ``ts`` (2021) the event time is our receive time."""
        out: list[Event] = []
        for r in rows:
            if (inst := self._instrument(r.instId, r)) is None:
                continue
            if not r.fundingRate:
                self.stats.error(self.venue, "missing_funding_rate", r)
                continue
            try:
                rate = number(r.fundingRate)
                settle_ms = integer(r.fundingTime) if r.fundingTime else None
                next_ms = integer(r.nextFundingTime) if r.nextFundingTime else None
                ts_ms = integer(r.ts) if r.ts else recv_ms
            except ParseError:
                self.stats.error(self.venue, "invalid_funding-rate", r)
                continue
            if settle_ms is not None and next_ms is not None:
                step = next_ms - settle_ms
                if 0 < step <= MAX_FUNDING_INTERVAL_MS:
                    self.funding_interval_h[r.instId] = step / 3_600_000
            hours = self.funding_interval_h.get(r.instId, inst.funding_interval_h)
            out.append(
                _stamp.funding(self.venue, inst, ts_ms, recv_ms, rate, hours, settle_ms)
            )  # fundingTime: the coming settlement
        return out

    def _liquidations(self, entries: list[frames.LiquidationEntry], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        for entry in entries:
            if (inst := self._instrument(entry.instId, entry, len(entry.details))) is None:
                continue
            for d in entry.details:
                side = position_side(d.side, d.posSide)
                if side is None:
                    self.stats.error(self.venue, "invalid_side", d)
                    continue
                # No id on the wire; the burst on subscribe re-sends the same details.
                eid = f"{d.ts}:{d.side}:{d.posSide}:{d.sz}:{d.bkPx}"
                out.append(_stamp.liquidation(
                    self.venue, inst, d.ts, recv_ms, side,
                    price=d.bkPx, quantity=d.sz, sampled=True, event_id=eid,
                ))  # fmt: skip
        return out


class Okx(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = OkxParser
    default_ws_url: ClassVar[str] = "wss://ws.okx.com:443/ws/v5/public"
    """Port 443: 8443 retired on 2026-10-31 (see the module docstring)."""
    default_rest_url: ClassVar[str] = "https://www.okx.com"
    liquidations_sampled: ClassVar[bool] = True
    max_frame_bytes: ClassVar[int] = 4 * 2**20
    """``liquidation-orders`` answers a subscribe with a burst of recent liquidations of
    every swap."""
    ccxt_id: ClassVar[str] = "okx"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://{hostname}",)
    has_history: ClassVar[bool] = True
    ccxt_options: ClassVar[dict[str, Any]] = {"fetchMarkets": {"types": ["swap"]}}  # one call
    default_depth_levels: ClassVar[int] = BOOK_LEVELS
    reads_trades: ClassVar[bool] = True

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        levels = settings.depth.levels
        if levels is not None and levels != BOOK_LEVELS:
            raise ValueError(
                f"venues.{self.id}.depth.levels: {levels}; OKX's incremental book channel "
                f"(books) has {BOOK_LEVELS} levels"
            )

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``public`` (every subscribed swap's marks, open interest, funding, tickers and
        trades: ~300 swaps x 5 channels fit in four requests, far under 480/h) and
        ``liquidations`` (``liquidation-orders``, the quiet lane: :attr:`Connection.quiet`),
        both pinged every :data:`PING_INTERVAL_S` (the venue closes a connection pushed
        nothing for 30 s, a calm market's liquidations connection included); then the
        depth connections. No swap subscribed: no ``public`` (the venue closes a connection
        with nothing subscribed)."""
        public = subscribe_requests(self.subscribed(markets), trades=self.volume)
        return [
            *([self._connection("public", public)] if public else []),
            self._connection("liquidations", liquidation_requests(), quiet=True),
            *self._depth_connections(markets),
        ]

    def _connection(
        self,
        name: str,
        subscribe: tuple[str, ...],
        *,
        quiet: bool = False,
        own_parser: bool = False,
    ) -> Connection:
        return Connection(
            name,
            self.ws_url,
            subscribe,
            ping=PING,
            ping_interval_s=PING_INTERVAL_S,
            pong=PONG,
            quiet=quiet,
            own_parser=own_parser,
        )

    def _depth_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``depth-1``...: the ``books`` channels of :attr:`depth_symbols`, about
        :data:`DEPTH_SYMBOLS_PER_CONNECTION` a connection (20 by default: one). Each session
        keeps books of its own (a rotation's overlap would mix two sessions' seqIds)."""
        if not self.depth_levels:
            return []
        mine = sorted(s for s in self.depth_symbols if s in markets)
        step = DEPTH_SYMBOLS_PER_CONNECTION
        return [
            self._connection(
                f"depth-{n + 1}",
                pack_requests("subscribe", _book_args(mine[start : start + step])),
                own_parser=True,
            )
            for n, start in enumerate(range(0, len(mine), step))
        ]

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Unsubscribe then subscribe the books of ``symbols``: OKX answers the subscribe
        with a new snapshot."""
        args = _book_args(sorted(symbols))
        return (*pack_requests("unsubscribe", args), *pack_requests("subscribe", args))

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        markets = await client.load_markets(reload=True)
        out: dict[str, Instrument] = {}
        skipped: list[str] = []
        for m in markets.values():
            if not m.get("swap") or m.get("active") is False:
                continue
            inst = instrument(m["info"], base=m.get("base"), quote=m.get("quote"))
            if inst is None:
                skipped.append(m["id"])
                continue
            out[inst.symbol] = inst
        if skipped:
            log.warning("swaps without usable contract metadata", venue=self.id, ids=skipped)
        return out

    async def fetch_history(
        self, inst: Instrument, since_ms: int, until_ms: int, budget: Budget
    ) -> History:
        return await _okx_history.fetch_history(self._ccxt(), inst, since_ms, until_ms, budget)


def _book_args(symbols: Iterable[str]) -> list[dict[str, str]]:
    return [{"channel": BOOKS, "instId": s} for s in symbols]
