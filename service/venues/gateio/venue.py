"""Gate futures (``gateio``): USDT-settled perpetuals and the BTC-settled inverse ``BTC_USD``.

Wire protocol (https://www.gate.com/docs/developers/futures/ws/en/):

* Websocket base ``wss://fx-ws.gateio.ws/v4/ws``: ``<base>/usdt`` and ``<base>/btc``.
  Requests are ``{"time":<s>,"channel":...,"event":"subscribe","payload":[...]}``; the ack is
  ``{"time":...,"channel":...,"event":"subscribe","result":{"status":"success"}}``, a refusal
  carries an ``error`` object (counted as ``subscribe_failed``). About
  :data:`~.instruments.SYMBOLS_PER_CONNECTION` contracts a connection, hashed by name.
* Keep-alive: the server pings at the protocol level (answered by the websockets library);
  we also send ``{"time":...,"channel":"futures.ping"}`` every :data:`PING_INTERVAL_S`
  (the docs' demo: 10 s), answered by ``{"channel":"futures.pong","event":"","result":null}``.
* ``futures.tickers`` (per contract): ``mark_price``, ``index_price``, ``funding_rate`` (per
  the contract's ``funding_interval``; the indicative rate is deprecated and not read) and
  ``total_size``, the open interest in **contracts**: x ``quanto_multiplier`` coin for USDT
  contracts (BTC_USDT 153 482 780 x 0.0001 = 15 348 BTC), 1 USD each for ``BTC_USD``. The
  ``result`` came as a list (2020, 2023), a list of lists (2021) and a bare object (2022):
  all are read. The frame time is ``time_ms``, or ``time`` (s) before 2023. Reports: at most
  once a second per symbol and kind, from the merged state (see :mod:`._ticker_state`);
  the next funding time is the contract's settlement grid (``funding_next_apply`` + whole
  intervals), as the ticker has none.
* ``futures.public_liquidates`` (payload ``["!all"]``: every contract of the settlement),
  on a connection of its own per settlement (``usdt-liquidations``, ``btc-liquidations``:
  the quiet lane), so a collector behind on the tickers, books and trades still reads it as
  it comes; it keeps the ``futures.ping``.
  ``size`` is the liquidation **order**'s signed size in contracts: negative = a sell order
  = a **long** was liquidated (as in ``futures.trades``, "positive size means taker is
  buyer"; the docs' examples are negative, and public collectors read it the same way).
  ``price`` is the liquidation order's price. Two formats, both read:

  - until 2026-08-20: at most one liquidation per contract per second ("每个合约每1秒最多推一条
    强平订单数据"), ``time`` in **seconds** in the docs' samples, while the field table
    named it ``time_ms`` (ms): a **sample** (``sampled`` true);
  - since 2026-08-20 (the changelog of the Chinese docs, "Last Updated: 8/20/2026":
    "调整为聚合推送 ... 不再丢弃周期内的其他强平订单", aggregated, "no longer discarding the
    other liquidation orders within the period"): every liquidation of a contract within an
    aggregation period (1 s by default; sent early at 20) in one array, and the table's
    field is ``time`` (强平时间, "liquidation time", in **ms**): **complete** (``sampled``
    false).

  The format is told per row: ``time`` in ms (above :data:`MS_SINCE`) is the current,
  complete format; a ``time`` in seconds, or a row carrying only the old table's ``time_ms``,
  is the old sampled one (its time read from ``time_ms`` when present). The handshake
  sends ``X-Gate-Size-Decimal: 1``, so sizes (and ``total_size``) are decimal texts,
  fractional contracts included. There is no id: ``event_id`` is
  ``<time ms>:<size>:<price>`` as sent, with the contract as the symbol; identical for a
  re-send after a reconnect. Two liquidations of one contract in the same millisecond at
  the same price and size would count once.

* ``futures.book_ticker`` (per contract, with the tickers; real time, on every change of the
  top; https://www.gate.com/docs/developers/futures/ws/en/ "Best ask/bid subscription",
  checked 2026-12-06): ``{"t":ms,"u":id,"s":contract,"b":bid,"B":size,"a":ask,"A":size}``,
  sizes in **contracts** (JSON numbers; text also read). Merged into the contract's state and
  reported as a :class:`~...events.BookTop` at most once a second (:mod:`._ticker_state`),
  valued as the liquidations are (x ``quanto_multiplier`` coin, or 1 USD on ``BTC_USD``);
  ``futures.tickers`` carries no book.
* ``futures.trades`` (per contract, with the tickers, when the venue's ``volume`` setting is
  on): ``[{"size":-108,"id":27753479,"create_time":s,"create_time_ms":ms,"price":"96.4",
  "contract":...}]``. "Positive size means taker is buyer, negative seller": the sign is the
  taker's side, ``abs(size)`` the contracts; ``id`` the trade id (a repeat within 10-20 s,
  a rotation's overlap, counts once). Rows with ``is_internal`` true (the insurance fund's
  or ADL's takeover of a liquidation, "not a normal matching on the market depth") are no
  taker's trade: not counted. Summed into traded volume per second (:mod:`.._volume`).
* ``futures.obu`` (https://www.gate.com/docs/developers/futures/ws/en/ and the channel's
  announcement https://www.gate.com/announcements/article/44946, checked 2026-12-06):
  ``ob.<contract>.400`` (400 levels a side, every 100 ms; ``.50``: 50 levels every 20 ms) for
  :attr:`~..base.Venue.depth_symbols` (the top 20 by open interest by default), on
  ``usdt-depth`` and ``btc-depth`` (a socket serves one settlement), so a change of the set
  reconnects nothing else. The first push after a subscription is the whole book
  (``full`` true, bids and asks best first, ``u`` its id); then the levels that changed,
  ``[price, size]`` text, size ``"0"`` deletes, with ``U`` (first id) and ``u`` (last id);
  an update without ``b``/``a`` only moves the id. ``U`` not the book's ``u`` plus one is a
  gap: the book is dropped, counted (``orderbook_gap``) and the stream unsubscribed and
  subscribed again on its connection (the docs' remedy; a whole book follows, see
  :meth:`Gate.resubscribe`). Sizes in contracts, valued as above. **Why this channel:** it
  is Gate's deepest book (400 levels, where ``futures.order_book_update`` and the legacy
  ``futures.order_book`` stop at 100) and it sends its own snapshot, where
  ``futures.order_book_update`` needs a REST snapshot (``GET /futures/{settle}/order_book
  ?with_id=true``) aligned with cached updates, one more request per book and per gap. Its
  cost: one book of 400 levels a side per followed contract, ten updates a second each.
  **The limit:** on BTC_USDT (tick 0.1) 400 levels on consecutive ticks would be 0.05 % of
  a 77,000 mid (not measured live; a sparser book reaches further): a band the levels do
  not reach is flagged by the event's ``*_reach_pct``, never reported as complete.

Instruments come from ``GET /api/v4/futures/{usdt,btc}/contracts`` through ccxt's implicit
endpoint (rate limit, error mapping, configurable base URL); see :mod:`.instruments`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import ClassVar, Final

import msgspec
import structlog
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._book import BOOK_CROSSED, BOOK_GAP, BOOK_UNREADABLE, BOOK_UNSYNCED, Book, Resyncs
from .._numbers import number, optional_number
from .._shards import Shards
from .._ticker_state import STATE_EVERY_MS, TickerState, report
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from . import frames
from .instruments import (
    BOOK,
    BOOK_LEVELS,
    BOOK_TICKER,
    LIQUIDATES,
    SETTLES,
    SYMBOLS_PER_CONNECTION,
    TICKERS,
    TRADES,
    VENUE,
    GateContract,
    book_requests,
    by_settle,
    liquidation_requests,
    parse_contracts,
    subscribe_requests,
)

log = structlog.get_logger(__name__)

PING_INTERVAL_S: Final = 10.0
PONG_MARKER: Final = '"futures.pong"'
SIZE_DECIMAL_HEADER: Final = (("X-Gate-Size-Decimal", "1"),)
"""Sizes as decimal strings instead of whole contracts (what tardis sends too)."""
CHANNELS: Final = frozenset({TICKERS, LIQUIDATES, BOOK_TICKER, TRADES, BOOK})
INVALID_TRADES: Final = f"invalid_{TRADES}"
PROTOCOL_EVENTS: Final = frozenset({"subscribe", "unsubscribe"})
MS_SINCE: Final = 10**11
"""A ``time`` above this is in milliseconds (seconds stay under it until the year 5138)."""


class GateParser(Parser):
    """Parses ``futures.tickers``, ``futures.book_ticker``, ``futures.trades``,
    ``futures.public_liquidates`` and ``futures.obu`` of both settlements, the acks and the
    pongs."""

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        super().__init__(venue, markets, wanted)
        self.tickers: dict[str, TickerState] = {}
        self.state_every_ms = STATE_EVERY_MS
        self.books: dict[str, Book] = {}
        """The order books followed (``futures.obu``), by contract."""
        self.resyncs = Resyncs(self)
        """Fresh snapshots asked for (a book dropped, or updates before its snapshot)."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        channel = env.channel
        if channel == "futures.pong":
            return []
        if env.event in PROTOCOL_EVENTS:
            if env.error is not None or self._failed(env.result):
                self.stats.error(self.venue, "subscribe_failed", frame)
            return []
        if channel not in CHANNELS:
            reason = "unknown_channel" if channel else "unknown_frame"
            self.stats.error(self.venue, reason, channel or frame)
            return []
        if env.event != "update" or not len(env.result):
            reason = BOOK_UNREADABLE if channel == BOOK else f"invalid_{channel}"
            self.stats.error(self.venue, reason, frame)
            return []
        if channel == BOOK:
            return self._book(env.result, recv_ms, frame)
        if channel == TRADES:
            return self._trades(env.result, recv_ms, frame)
        try:
            rows = frames.objects(env.result)
            if channel == BOOK_TICKER:
                tops = [frames.book_ticker.decode(r) for r in rows]
                return [e for t in tops for e in self._book_ticker(t, recv_ms)]
            if channel == TICKERS:
                ts = env.time_ms or (env.time or 0) * 1000 or recv_ms
                tickers = [frames.ticker.decode(r) for r in rows]
                return [e for t in tickers for e in self._ticker(t, ts, recv_ms)]
            return self._liquidations([frames.liquidation.decode(r) for r in rows], recv_ms)
        except ValueError:  # msgspec's errors, and ParseError: a field that is no number
            self.stats.error(self.venue, f"invalid_{channel}", frame)
            return []

    @staticmethod
    def _failed(result: msgspec.Raw) -> bool:
        try:
            status = frames.status.decode(result) if len(result) else None
        except ValueError:
            return False
        return status is not None and status.status == "fail"

    def _ticker(self, t: frames.Ticker, ts: int, recv_ms: int) -> list[Event]:
        if (inst := self._instrument(t.contract)) is None:
            return []
        values = {
            "mark": optional_number(t.mark_price),
            "index": optional_number(t.index_price),
            "open_interest": optional_number(t.total_size),
            "funding_rate": optional_number(t.funding_rate),
        }  # all converted before anything is merged: a bad field leaves the state as it was
        state = self.tickers.setdefault(t.contract, TickerState())
        state.apply(**values)
        if values["funding_rate"] is not None and isinstance(inst, GateContract):
            state.next_funding_ms = inst.next_funding_ms(ts)
        if state.mark is not None:
            self.last_mark[t.contract] = state.mark
        return report(self.venue, inst, state, ts, recv_ms, self.state_every_ms)

    def _book_ticker(self, bt: frames.BookTicker, recv_ms: int) -> list[Event]:
        """The best bid and ask into the contract's state; reported (with whatever else of
        the state is due) at most once a second. An empty price (``""`` or ``0``): that side
        is gone, no top is reported until it is quoted again."""
        if (inst := self._instrument(bt.s)) is None:
            return []
        top = {
            "bid": optional_number(bt.b),
            "bid_qty": optional_number(bt.B),
            "ask": optional_number(bt.a),
            "ask_qty": optional_number(bt.A),
        }  # all converted first (a ParseError leaves the state as it was)
        state = self.tickers.setdefault(bt.s, TickerState())
        state.apply_book(top)
        return report(self.venue, inst, state, bt.t, recv_ms, self.state_every_ms)

    def _trades(self, result: msgspec.Raw, recv_ms: int, frame: str | bytes) -> list[Event]:
        """Each print into its contract's second of traded volume (taker side by the sign of
        ``size``, once per trade ``id``); the seconds it closes. The insurance fund's and
        ADL's takeovers (``is_internal``) are no taker's trade on the book: not counted. A
        frame nobody asked for (volume off) is counted as filtered."""
        volumes = self.volumes
        if volumes is None:
            self.stats.filtered += 1
            return []
        try:
            rows = frames.trades.decode(result)
        except ValueError:  # msgspec's errors: no array of trades
            self.stats.error(self.venue, INVALID_TRADES, frame)
            return []
        out: list[Event] = []
        for row in rows:
            if row.is_internal or (inst := self._instrument(row.contract)) is None:
                continue
            try:
                size, price = number(row.size), number(row.price)
            except ParseError:
                size = price = 0.0
            ts = row.create_time_ms or round((row.create_time or 0) * 1000)
            if size == 0 or price <= 0 or ts <= 0:  # one bad row: keep the rest of the batch
                self.stats.error(self.venue, INVALID_TRADES, row)
                continue
            closed = volumes.add(inst, ts, size > 0, abs(size), price, recv_ms, row.id)
            if closed is not None:
                out.append(closed)
        return out

    def _book(self, result: msgspec.Raw, recv_ms: int, frame: str | bytes) -> list[Event]:
        """Apply a whole book (``full``) or the levels that changed to the contract's book;
        its depth when one is due. ``U`` that does not follow the book's ``u``: a gap."""
        try:
            data = frames.book_update.decode(result)
            _, contract, depth = data.s.split(".")
            levels = int(depth)
        except ValueError:  # msgspec's errors, a stream name that is not ob.<contract>.<n>
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if (inst := self._instrument(contract)) is None:
            return []
        book = self.books.get(contract)
        if data.full:  # the first after a subscription, or one the venue sends again
            book = self.books[contract] = Book(data.u)
            book.reported_ms = self.depth_reported_ms.get(contract, book.reported_ms)
        elif book is None:
            self.stats.error(self.venue, BOOK_UNSYNCED, contract)
            self.resyncs.ask(contract, recv_ms)
            return []
        elif book.update_id + 1 != data.U:
            detail = f"{contract} u {book.update_id} -> U {data.U}"
            return self.resyncs.drop(self.books, contract, BOOK_GAP, detail, recv_ms)
        book.update_id = data.u
        try:
            book.apply(data.b, data.a)
        except ParseError as exc:
            return self.resyncs.drop(self.books, contract, exc.reason, frame, recv_ms)
        ts = data.t or recv_ms
        if not book.due(ts, self.depth_reported_ms.get(contract)):
            return []
        depth_event = book.depth(self.venue, inst, ts, recv_ms, levels)
        if depth_event is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                return self.resyncs.drop(self.books, contract, BOOK_CROSSED, contract, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.depth_reported_ms[contract] = ts
        return [depth_event]

    def _liquidations(self, rows: list[frames.Liquidation], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            if (inst := self._instrument(row.contract)) is None:
                continue
            try:
                size, price = number(row.size), number(row.price)
            except ParseError:  # one bad row: keep the rest of the batch
                size = price = 0.0
            if row.time is not None and row.time >= MS_SINCE:  # the 2026-08-20 format
                complete, ts = True, row.time
            else:  # the old sample: time in s, or the old table's time_ms
                complete, ts = False, row.time_ms or (row.time or 0) * 1000
            if size == 0 or price <= 0 or ts <= 0:
                self.stats.error(self.venue, "invalid_liquidation", row)
                continue
            side = Side.LONG if size < 0 else Side.SHORT  # a sell closes a long
            eid = f"{ts}:{row.size}:{row.price}"
            sampled = not complete  # the old one-a-second sample
            out.append(_stamp.liquidation(
                self.venue, inst, ts, recv_ms, side,
                price=price, quantity=abs(size), sampled=sampled, event_id=eid,
            ))  # fmt: skip
        return out


class Gate(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = GateParser
    default_ws_url: ClassVar[str] = "wss://fx-ws.gateio.ws/v4/ws"
    default_rest_url: ClassVar[str] = "https://api.gateio.ws"
    liquidations_sampled: ClassVar[bool] = False
    """Complete since the 2026-08-20 format (frames of the old format are marked sampled)."""
    ccxt_id: ClassVar[str] = "gate"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://api.gateio.ws",)
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = 400

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        levels = settings.depth.levels
        if levels is not None and levels not in BOOK_LEVELS:
            raise ValueError(
                f"venues.{self.id}.depth.levels: {levels}; Gate's futures.obu serves "
                f"{' or '.join(map(str, BOOK_LEVELS))} levels"
            )
        self._shards = Shards(self.id, SYMBOLS_PER_CONNECTION)
        self._time_s = int(time.time())
        """The ``time`` of our requests: fixed, so that the same subscription is the same
        text at every metadata refresh (see :func:`.instruments.subscribe_requests`)."""

    @property
    def book_levels(self) -> int:
        """The ``futures.obu`` depth subscribed (``depth.levels``: 50 or 400, checked at
        start-up; 400 by default); 0: no depth."""
        return self.depth_levels

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``usdt-1``... and ``btc-1``: per settlement, its subscribed contracts in shards;
        the shard count is fixed by the first call (names and assignments survive a metadata
        refresh). Each settlement with subscribed contracts has ``usdt-liquidations`` or
        ``btc-liquidations``: its liquidations (``!all``) alone, the quiet lane
        (:attr:`Connection.quiet`; a socket carries one settlement). Then ``usdt-depth``
        and ``btc-depth`` for the books of :attr:`depth_symbols`."""
        groups_by_settle = by_settle(markets, self.subscribed(markets))
        out: list[Connection] = []
        for settle in SETTLES:
            groups = self._shards(settle, sorted(groups_by_settle.get(settle, [])))
            for index, group in groups.items():
                subscribe = subscribe_requests(group, self._time_s, trades=self.volume)
                out.append(self._connection(f"{settle}-{index + 1}", settle, subscribe))
            if groups:
                liquidations = liquidation_requests(self._time_s)
                out.append(
                    self._connection(f"{settle}-liquidations", settle, liquidations, quiet=True)
                )
        out.extend(self._depth_connections(markets))
        return out

    def _depth_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``usdt-depth`` and ``btc-depth``: the ``futures.obu`` books of
        :attr:`depth_symbols` (20 by default), one connection per settlement that has some
        (a socket carries one settlement), so a change of that set reconnects nothing else.
        Each session has books of its own (their ids are the session's)."""
        levels = self.book_levels
        if not levels:
            return []
        mine = by_settle(markets, [s for s in self.depth_symbols if s in markets])
        return [
            self._connection(
                f"{settle}-depth",
                settle,
                book_requests(mine[settle], levels, self._time_s),
                own_parser=True,
            )
            for settle in SETTLES
            if mine.get(settle)
        ]

    def _connection(
        self,
        name: str,
        settle: str,
        subscribe: tuple[str, ...],
        *,
        own_parser: bool = False,
        quiet: bool = False,
    ) -> Connection:
        """A connection to ``settle``'s socket, with Gate's ``futures.ping`` every
        :data:`PING_INTERVAL_S` (a quiet one too) and the decimal sizes' header."""
        return Connection(
            name,
            f"{self.ws_url}/{settle}",
            subscribe,
            ping=f'{{"time":{self._time_s},"channel":"futures.ping"}}',
            ping_interval_s=PING_INTERVAL_S,
            pong=PONG_MARKER,
            headers=SIZE_DECIMAL_HEADER,
            own_parser=own_parser,
            quiet=quiet,
        )

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Unsubscribe then subscribe the books of ``symbols`` (the docs' remedy for a gap):
        the venue answers the subscription with the whole book. (A second subscription of a
        stream still subscribed is refused: "Alert sub ob.BTC_USDT.50".)"""
        names = sorted(symbols)
        levels = self.book_levels
        return (
            *book_requests(names, levels, self._time_s, "unsubscribe"),
            *book_requests(names, levels, self._time_s),
        )

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        out: dict[str, Instrument] = {}
        for settle in SETTLES:
            raw = await client.publicFuturesGetSettleContracts({"settle": settle})
            try:
                listed = parse_contracts(raw, settle)
            except ValueError as exc:
                raise BadResponse(f"{self.id} {settle} contracts: {exc}") from exc
            out.update((c.symbol, c) for c in listed)
        return out
