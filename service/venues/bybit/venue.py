"""Bybit v5 (``bybit``): linear (USDT, USDC) and inverse (coin-settled, 1 USD) perpetuals.

Wire protocol (https://bybit-exchange.github.io/docs/v5/ws/connect, ``bybit-exchange/docs``):

* Websocket base ``wss://stream.bybit.com/v5/public``: ``<base>/linear`` and ``<base>/inverse``.
  Subscribe with ``{"req_id":"linear-1:1","op":"subscribe","args":["tickers.BTCUSDT",...]}``;
  the ack is ``{"success":true,"ret_msg":"","conn_id":"...","req_id":"","op":"subscribe"}``, a
  refusal the same with ``"success":false`` (counted as ``subscribe_failed``). There is no
  all-symbol topic: every symbol is named. Limits: the ``args`` of one public connection may
  not exceed 21,000 characters ("no args limit for Futures"). We send 10 topics per request
  (as tardis does) and put about :data:`SYMBOLS_PER_CONNECTION` symbols (one topic each,
  about 2,500 characters; two with ``publicTrade``, about 5,000) on one connection, so a
  connection stays well inside the limit and the linear market (~600 symbols) needs about
  six connections (at most 500 connections per 5 minutes per IP are allowed). Symbols go to
  a connection by a hash of their name, so a new listing moves no other symbol. The
  ``allLiquidation`` topics have connections of their own, the quiet lane
  (:attr:`~..base.Connection.quiet`: ``linear-liquidations-1``..., ``inverse-liquidations-1``),
  about :data:`LIQUIDATION_SYMBOLS_PER_CONNECTION` symbols each (about 15,000 characters),
  sharded apart from the tickers: a collector behind on the tickers' 10 frames a second per
  symbol still reads the liquidations as they come.
* Heartbeat: the client sends ``{"req_id":"ping","op":"ping"}`` every 20 s; the answer is
  ``{"success":true,"ret_msg":"pong","conn_id":"...","req_id":"","op":"ping"}``. A connection
  with neither pings nor data is cut after 10 minutes.
* ``tickers.{symbol}`` (100 ms): a ``snapshot`` first, then ``delta`` frames that carry only
  the fields that changed, so the parser keeps each symbol's state. Funding rate per
  ``fundingIntervalHour`` hours (when absent, the interval from the instrument list),
  ``nextFundingTime`` (ms, as text), ``markPrice``, ``indexPrice`` and the open interest:
  base coin on linear contracts, USD contracts on inverse ones. Open interest comes from
  here, not from REST, valued at the mark price (linear) or 1 USD per contract (inverse).
  **Both sides:** since 2026-06-11 the docs say ``openInterest`` (and
  ``openInterestValue``) is "the sum of both sides" (Bybit's announcement "Update to the
  Open Interest (OI) calculation method": the old figure was double-sided too) and
  ``singleOpenInterest`` (and ``singleOpenInterestValue``) is one side, the figure every
  other venue reports. The parser reads ``singleOpenInterest`` and, when a market sends
  only the both-sides field (older recordings, a market without the new field), half of
  ``openInterest`` (:func:`one_side`). The ``*Value`` fields (the same products in the
  settle coin) are not read.
  The best bid and ask with their sizes (``bid1Price``, ``bid1Size``, ``ask1Price``,
  ``ask1Size``; sizes in the open interest's unit) are the top of book.
  Every frame is merged into the state, but mark, funding, open interest and the top of book
  are reported at most once a second per symbol (:data:`STATE_EVERY_MS`, Binance's cadence):
  ten events a second per symbol would multiply the store's load by ten for no signal.
* ``allLiquidation.{symbol}``: every liquidation (not a sample), batched every 500 ms as an
  array of ``{T, s, S, v, p}``, on the ``*-liquidations-N`` connections (the quiet lane).
  ``S`` is the side of the *position*: ``Buy`` means a long was liquidated (Binance's ``S``
  is the order side: the opposite). ``p`` is the bankruptcy price, ``v`` the executed size
  (base coin on linear, USD contracts on inverse).
* ``orderbook.{depth}.{symbol}`` (https://bybit-exchange.github.io/docs/v5/websocket/public/
  orderbook, checked 2026-12-06: linear and inverse depth 1 every 10 ms, 50 every 20 ms, 200
  every 100 ms, and a deeper one whose depth the docs' versions disagree on, 500 or 1000),
  for the instruments whose depth is followed (:attr:`~..base.Venue.depth_symbols`: the top
  20 by open interest by default), on a connection of their own per category
  (``linear-depth``, ``inverse-depth``), so a change of that set reconnects nothing else.
  A ``snapshot`` first (``b`` bids best first, ``a`` asks best first, ``[price, size]`` as
  text, sizes in the open interest's unit), then a ``delta`` with the levels that changed
  (size ``"0"``: the level is gone). ``u`` is the update id, "a sequence": a delta whose
  ``u`` is not the last one plus one (a gap, or one going backwards) means levels were
  missed: the book is dropped, counted (``orderbook_gap``) and resubscribed
  (:meth:`Bybit.resubscribe`: unsubscribe, then subscribe, which sends a new snapshot);
  deltas while a book has no snapshot ask again, every :data:`~.._book.RESYNC_EVERY_MS`
  (:class:`~.._book.Resyncs`). Each session of a depth connection has books of its own
  (:attr:`~..base.Connection.own_parser`: a rotation's overlap would mix two sessions'
  deltas). A
  snapshot always replaces the book; ``u == 1`` is one sent after a restart of Bybit's
  service. ``seq`` (the cross sequence) and ``cts`` (the matching engine's time) are not
  read; the event's time is ``ts``. Each book reports a :class:`~...events.BookDepth` at
  most once a second (:mod:`.._book`). Depth 200 (the default, ``depth.levels``) reaches
  about 0.1-0.5 % of mid on the large coins, less than 2 %: a band the levels do not reach
  is flagged by the event's ``*_reach_pct``, never reported as complete.
* ``adlAlert.{USDT|USDC|inverse}`` (every second, when the venue's stress polling is on): each
  insurance pool's ADL state per symbol of that settle coin (``{c, s, b, i_pr, pr, adl_tt}``,
  read by :func:`.stress.parse_adl_alert_frame`), subscribed once per category on its first
  tickers connection (the first with symbols). Only the subscribed symbols are kept, and a
  symbol's level is handed on when it changes or :data:`ADL_REPEAT_MS` after it was last
  handed on (a level not repeated within the detector's ``adl_hold_s`` expires): the frame
  lists every symbol every second.
  They leave the parser as stress events (:attr:`~..base.Parser.stress`), for the stress
  writer and, through the hand-off, the detector.
* ``publicTrade.{symbol}`` (real time, when the venue's ``volume`` setting is on): every
  trade, in arrays of ``{T, s, S, v, p, L, i, BT}`` (``type`` always ``snapshot``: each
  frame is new trades, nothing is re-sent on subscribe). ``S`` is the **taker's** side
  (``Buy``: a buyer lifted the ask), ``v`` the size (base coin on linear, USD contracts on
  inverse, as the liquidations), ``p`` the price, ``T`` the fill time, ``i`` the trade id.
  The prints are summed into traded volume per second (:mod:`.._volume`); a liquidation
  fill prints here too and counts (``allLiquidation`` still gives its liquidation event).
  Block trades (``BT`` true) count too: they traded.
* Obsolete frames: the pre-v5 ``realtime`` API (``instrument_info.*``, ``trade.*``,
  acks with a ``request`` object) and the ``liquidation.{symbol}`` topic (an object, at most
  one liquidation per second, removed from the docs on 2025-11-19) are counted as
  ``obsolete_frame`` and dropped.

Instruments come from ``GET /v5/market/instruments-info?category=linear|inverse`` (1000 per
page, cursor pagination), called through ccxt's implicit endpoint (rate limit, error
mapping, configurable base URL) but not through ccxt's ``load_markets``: that one also loads
spot and option markets unless told otherwise, doubles every call to list pre-market
contracts, and takes an inverse contract's size from its ``minOrderQty``, whereas an inverse
contract is worth 1 USD whatever its minimum order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import msgspec
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import AdlLevel, AdlRisk, Event, Side
from .. import _stamp
from .._book import BOOK_CROSSED, BOOK_GAP, BOOK_UNREADABLE, BOOK_UNSYNCED, Book, Resyncs
from .._numbers import integer, number, optional_number
from .._shards import Shards
from .._ticker_state import FUNDING, MARK, OI, TickerState, report
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from ..history import Budget, History
from . import history as _bybit_history

VENUE: Final = "bybit"
CATEGORIES: Final = ("linear", "inverse")
ADL_TOPICS: Final = {"linear": ("adlAlert.USDT", "adlAlert.USDC"), "inverse": ("adlAlert.inverse",)}
"""The ADL alert topics each category's first connection (of those with symbols) subscribes."""
ADL_REPEAT_MS: Final = 60_000
"""An unchanged ADL level is handed on again after this long (the REST data's refresh)."""
ADL_ARGS_CHARS: Final = 100
"""Room kept in every connection's args for the ADL topics."""
SYMBOLS_PER_CONNECTION: Final = 100
"""Symbols on a tickers connection (``tickers``, and ``publicTrade`` with volume): ten frames
a second each, plus the trades."""
LIQUIDATION_SYMBOLS_PER_CONNECTION: Final = 500
"""Symbols on a liquidations connection (one ``allLiquidation`` topic each, about 30
characters: some 15,000 of the 21,000 allowed). Few frames, so one connection per category
in practice; the hashed shards leave room for listings before the limit adds one."""
TOPICS_PER_REQUEST: Final = 10
MAX_ARGS_CHARS: Final = 21_000
PING: Final = '{"req_id":"ping","op":"ping"}'
PING_INTERVAL_S: Final = 20.0
PONG_MARKER: Final = '"ret_msg":"pong"'
"""In Bybit's answer to our ping: ``{"success":true,"ret_msg":"pong","conn_id":…,"op":"ping"}``."""
DEFAULT_FUNDING_INTERVAL_H: Final = 8.0
INVERSE_CONTRACT_USD: Final = 1.0
PAGE_LIMIT: Final = 1000
MAX_PAGES: Final = 20
STATE_EVERY_MS: Final = 1000
"""Mark, funding and open-interest events: at most one per symbol and kind per second."""
PERPETUALS: Final = {"LinearPerpetual": True, "InversePerpetual": False}
OBSOLETE_TOPICS: Final = frozenset(
    {"liquidation", "instrument_info", "trade", "orderBookL2_25", "orderBook_200", "klineV2"}
)
"""Topic names of the pre-v5 ``realtime`` API, and the deprecated v5 ``liquidation``."""

_SIDES: Final = {"Buy": Side.LONG, "Sell": Side.SHORT}  # the position side
_NO_DATA = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    topic: str | None = None
    type: str | None = None
    ts: int | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_DATA)
    success: bool | None = None
    op: str | None = None
    request: dict[str, Any] | None = None  # the pre-v5 ack


class _Ticker(msgspec.Struct):
    """``{"topic":"tickers.BTCUSD","type":"delta","data":{"symbol":"BTCUSD",
    "price24hPcnt":"0.023362","openInterest":"449736674","fundingRate":"0.0001",
    "bid1Price":"28560.00","bid1Size":"340549","ask1Price":"28560.50","ask1Size":"70817"},
    "cs":20856433603,"ts":1680673822776}`` (the fields we read; absent: unchanged)."""

    symbol: str
    markPrice: str | None = None
    indexPrice: str | None = None
    openInterest: str | None = None
    """Both sides (the docs since 2026-06-11): twice what other venues report."""
    singleOpenInterest: str | None = None
    """One side (since 2026-06-11)."""
    fundingRate: str | None = None
    nextFundingTime: str | None = None
    fundingIntervalHour: str | None = None
    bid1Price: str | None = None
    bid1Size: str | None = None
    """Base coin (linear) or USD contracts (inverse), as the open interest."""
    ask1Price: str | None = None
    ask1Size: str | None = None


class _BookData(msgspec.Struct):
    """``{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{
    "s":"BTCUSDT","b":[["30247.20","30.028"],["30245.40","0.224"],["30242.10","1.593"]],
    "a":[["30248.70","0"],["30249.30","0.892"]],"u":177400507,"seq":66544703342},
    "cts":1687940967464}`` (decoded non-strict: the levels' text straight to floats)."""

    s: str
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]
    u: int


class _LiquidationRow(msgspec.Struct):
    """``{"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,
    "data":[{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}``"""

    T: int
    s: str
    S: str
    v: str
    p: str


class _TradeRow(msgspec.Struct):
    """``{"topic":"publicTrade.BTCUSD","type":"snapshot","ts":1680673823566,"data":[{
    "T":1680673823564,"s":"BTCUSD","S":"Buy","v":"5823","p":"28560.50","L":"PlusTick",
    "i":"0cbf2330-952d-5d03-a462-4bf826c867af","BT":false}]}`` (the fields we read)."""

    T: int
    s: str
    S: str
    v: str
    p: str
    i: str | None = None


class _InstrumentRow(msgspec.Struct):
    symbol: str
    contractType: str
    status: str
    baseCoin: str
    quoteCoin: str
    fundingInterval: int = 0
    """Minutes."""


class _InstrumentsResult(msgspec.Struct):
    rows: list[_InstrumentRow] = msgspec.field(name="list")
    nextPageCursor: str = ""


class _InstrumentsPage(msgspec.Struct):
    """``GET /v5/market/instruments-info``: ``{"retCode":0,"retMsg":"OK","result":{
    "category":"linear","list":[{"symbol":"BTCUSDT","contractType":"LinearPerpetual",
    "status":"Trading","baseCoin":"BTC","quoteCoin":"USDT",...,"fundingInterval":480,
    "settleCoin":"USDT",...}],"nextPageCursor":""},"retExtInfo":{},"time":1735809771618}``"""

    retCode: int
    result: _InstrumentsResult


_envelope = msgspec.json.Decoder(_Envelope)
_ticker = msgspec.json.Decoder(_Ticker)
_liquidations = msgspec.json.Decoder(list[_LiquidationRow])
_trades = msgspec.json.Decoder(list[_TradeRow])
_TAKER_BUYS: Final = {"Buy": True, "Sell": False}
_book_data = msgspec.json.Decoder(_BookData, strict=False)
ORDERBOOK: Final = "orderbook"


def one_side(single: float | None, both: float | None) -> float | None:
    """One side of the open interest: ``singleOpenInterest`` when the venue sent it, else
    half of ``openInterest`` (both sides, per the docs since 2026-06-11; the announcement's
    example: 2,000 BTC both-sided is 1,000 BTC single-sided)."""
    if single is not None:
        return single
    return None if both is None else both / 2


@dataclass(slots=True)
class _TickerState(TickerState):
    """A Bybit ticker (the snapshot with every delta applied): the shared merged state,
    with the two open-interest fields Bybit sends and its funding interval."""

    single_oi: float | None = None
    """``singleOpenInterest`` as sent: one side (``None`` until a frame carries it);
    ``open_interest`` is ``openInterest`` as sent: both sides."""

    def merge(self, t: _Ticker) -> None:
        """Merge the fields present in ``t`` (``""`` clears one). Raises :class:`ParseError`,
        the state unchanged, on a field that is not a finite number."""
        present = {
            name: text
            for name, text in (
                ("mark", t.markPrice),
                ("index", t.indexPrice),
                ("open_interest", t.openInterest),
                ("single_oi", t.singleOpenInterest),
                ("funding_rate", t.fundingRate),
                ("interval_h", t.fundingIntervalHour),
                ("bid", t.bid1Price),
                ("bid_qty", t.bid1Size),
                ("ask", t.ask1Price),
                ("ask_qty", t.ask1Size),
            )
            if text is not None
        }
        numbers = {name: optional_number(text) for name, text in present.items()}
        next_ms = integer(t.nextFundingTime) if t.nextFundingTime else None
        self.mark = numbers.get("mark", self.mark)
        self.index = numbers.get("index", self.index)
        self.open_interest = numbers.get("open_interest", self.open_interest)
        self.single_oi = numbers.get("single_oi", self.single_oi)
        self.funding_rate = numbers.get("funding_rate", self.funding_rate)
        self.interval_h = numbers.get("interval_h", self.interval_h)
        if (
            t.bid1Price is not None
            or t.ask1Price is not None
            or t.bid1Size is not None
            or t.ask1Size is not None
        ):
            self.apply_book(numbers)  # it takes the book's four keys, the others stay
        if t.nextFundingTime is not None:
            self.next_funding_ms = next_ms
        if present.keys() & {"mark", "index"}:
            self.changed.add(MARK)
        if present.keys() & {"funding_rate", "interval_h"} or t.nextFundingTime is not None:
            self.changed.add(FUNDING)
        if present.keys() & {"open_interest", "single_oi"}:
            self.changed.add(OI)

    @property
    def one_side(self) -> float | None:
        """The open interest as other venues count it (see :func:`one_side`)."""
        return one_side(self.single_oi, self.open_interest)

    def contracts(self, inst: Instrument) -> float | None:
        oi = self.one_side  # linear: base coin; inverse: 1 USD each
        return None if oi is None else oi / inst.contract_size


class BybitParser(Parser):
    """Parses ``tickers.*`` and ``allLiquidation.*`` frames of the linear and inverse streams
    (one parser serves both, and every connection: symbols do not overlap between the two)."""

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        super().__init__(venue, markets, wanted)
        self.tickers: dict[str, _TickerState] = {}
        self.state_every_ms = STATE_EVERY_MS
        """Tickers push every 100 ms; mark, funding and open interest are reported at most
        this often per symbol (Binance's 1 s cadence). Every frame is merged into the state:
        a change is reported late, never lost; a snapshot is reported at once, unless a report
        of the symbol was made less than a second before it (a reconnect's, a rotation's)."""
        self.adl_handed: dict[str, tuple[AdlLevel, int]] = {}
        """Per symbol, the ADL level last handed on and when (receive time)."""
        self.books: dict[str, Book] = {}
        """The order books followed (``orderbook.*``), by symbol."""
        self.resyncs = Resyncs(self)
        """Fresh snapshots asked for (a book dropped, or updates before its snapshot)."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if (env := self._decoded(_envelope, frame)) is None:
            return []
        if env.topic is not None:
            return self._dispatch(env, recv_ms, frame)
        if env.request is not None:  # pre-v5: {"success":true,...,"request":{"op":...}}
            self.stats.error(self.venue, "obsolete_frame", frame)
        elif env.success is None:
            self.stats.error(self.venue, "unknown_frame", frame)
        elif not env.success:
            reason = "subscribe_failed" if env.op == "subscribe" else "venue_error"
            self.stats.error(self.venue, reason, frame)
        return []  # an ack or a pong

    def _dispatch(self, env: _Envelope, recv_ms: int, frame: str | bytes) -> list[Event]:
        topic = env.topic or ""
        name = topic.split(".", 1)[0]
        if name in OBSOLETE_TOPICS:
            self.stats.error(self.venue, "obsolete_frame", frame)
            return []
        if name == ORDERBOOK:
            return self._orderbook(env, topic, recv_ms, frame)
        if name == "adlAlert":
            self._adl_alert(frame, recv_ms)
            return []
        if name == "publicTrade":
            return self._public_trades(env, recv_ms, frame)
        if name not in ("tickers", "allLiquidation"):
            self.stats.error(self.venue, "unknown_topic", topic)
            return []
        if env.ts is None or not len(env.data):
            self.stats.error(self.venue, f"invalid_{name}", frame)
            return []
        try:
            if name == "tickers":
                return self._ticker(env.type, env.ts, _ticker.decode(env.data), recv_ms)
            return self._liquidations(_liquidations.decode(env.data), recv_ms)
        except ValueError:  # msgspec's errors, and ParseError: a field that is no number
            self.stats.error(self.venue, f"invalid_{name}", frame)
            return []

    def _public_trades(self, env: _Envelope, recv_ms: int, frame: str | bytes) -> list[Event]:
        """Each print into its instrument's second of traded volume; the seconds it closes.
        A frame nobody asked for (volume off) is counted as filtered."""
        volumes = self.volumes
        if volumes is None:
            self.stats.filtered += 1
            return []
        try:
            rows = _trades.decode(env.data)
        except (msgspec.ValidationError, msgspec.DecodeError):  # no array of trades
            self.stats.error(self.venue, "invalid_publicTrade", frame)
            return []
        out: list[Event] = []
        for row in rows:
            inst = self._instrument(row.s)
            if inst is None:
                continue
            buy = _TAKER_BUYS.get(row.S)
            try:
                qty, price = number(row.v), number(row.p)
            except ParseError:
                buy = None
            if buy is None:  # one bad row: keep the rest of the batch
                self.stats.error(self.venue, "invalid_publicTrade", row)
                continue
            closed = volumes.add(inst, row.T, buy, qty, price, recv_ms, row.i)
            if closed is not None:
                out.append(closed)
        return out

    def _adl_alert(self, frame: str | bytes, recv_ms: int) -> None:
        """The subscribed symbols' ADL levels that changed, or were last handed on
        :data:`ADL_REPEAT_MS` ago, into :attr:`stress` (an unreadable frame or row is counted
        by the stress parser)."""
        from .stress import parse_adl_alert_frame  # (it imports this module's VENUE)

        wanted, handed = self.wanted, self.adl_handed
        for ev in parse_adl_alert_frame(frame, self.markets, recv_ms, self.stats):
            if type(ev) is not AdlRisk or (wanted is not None and ev.symbol not in wanted):
                continue
            last = handed.get(ev.symbol)
            if last is None or last[0] is not ev.level or recv_ms - last[1] >= ADL_REPEAT_MS:
                handed[ev.symbol] = (ev.level, recv_ms)
                self.stress.append(ev)

    def _ticker(self, kind: str | None, ts: int, t: _Ticker, recv_ms: int) -> list[Event]:
        if kind not in ("snapshot", "delta"):
            raise ValueError(f"ticker type {kind!r}")
        inst = self._instrument(t.symbol)
        if inst is None:
            return []
        state = self.tickers.get(t.symbol)
        if kind == "snapshot" or state is None:
            if kind == "delta":  # the venue always sends the snapshot first
                self.stats.error(self.venue, "delta_before_snapshot", t.symbol)
            fresh = _TickerState()
            if state is not None:
                # A new session's snapshot (a reconnect, a rotation's successor) replaces
                # the state, not the reports' once-a-second pace: one within a second of
                # the last report waits for its second.
                fresh.reported_ms = state.reported_ms
            state = fresh
        state.merge(t)
        self.tickers[t.symbol] = state
        if state.mark is not None:
            self.last_mark[t.symbol] = state.mark
        return report(self.venue, inst, state, ts, recv_ms, self.state_every_ms)

    def _orderbook(
        self, env: _Envelope, topic: str, recv_ms: int, frame: str | bytes
    ) -> list[Event]:
        """Apply a snapshot or delta to the symbol's book; its depth when one is due."""
        try:
            levels = int(topic.split(".")[1])
            data = _book_data.decode(env.data)
        except (IndexError, ValueError):  # msgspec's errors are ValueErrors
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if env.ts is None or env.type not in ("snapshot", "delta"):
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        inst = self._instrument(data.s)
        if inst is None:
            return []
        book = self.books.get(data.s)
        if env.type == "snapshot":  # the first, or a new one (u == 1: Bybit restarted)
            book = self.books[data.s] = Book(data.u)
            book.reported_ms = self.depth_reported_ms.get(data.s, book.reported_ms)
        elif book is None:
            self.stats.error(self.venue, BOOK_UNSYNCED, data.s)
            self.resyncs.ask(data.s, recv_ms)
            return []
        elif data.u != book.update_id + 1:
            detail = f"{data.s} u {book.update_id} -> {data.u}"
            return self.resyncs.drop(self.books, data.s, BOOK_GAP, detail, recv_ms)
        book.update_id = data.u
        try:
            book.apply(data.b, data.a)
        except ParseError as exc:
            return self.resyncs.drop(self.books, data.s, exc.reason, frame, recv_ms)
        if not book.due(env.ts, self.depth_reported_ms.get(data.s)):
            return []
        depth = book.depth(self.venue, inst, env.ts, recv_ms, levels)
        if depth is None:
            if book.bids and book.asks:  # both sides, yet no depth: crossed
                return self.resyncs.drop(self.books, data.s, BOOK_CROSSED, data.s, recv_ms)
            return []  # a side emptied: no mid until it is quoted again
        self.depth_reported_ms[data.s] = env.ts
        return [depth]

    def _liquidations(self, rows: list[_LiquidationRow], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            inst = self._instrument(row.s)
            if inst is None:
                continue
            side = _SIDES.get(row.S)
            if side is None:
                self.stats.error(self.venue, "invalid_side", row)
                continue
            try:
                qty, price = number(row.v), number(row.p)
            except ParseError:  # one bad row: keep the rest of the batch
                self.stats.error(self.venue, "invalid_allLiquidation", row)
                continue
            # No id on the wire: time, position side, size and price, as sent. The price is
            # the bankruptcy price: Bybit gives no fill price.
            eid = f"{row.T}:{row.S}:{row.v}:{row.p}"
            out.append(_stamp.liquidation(
                self.venue, inst, row.T, recv_ms, side,
                price=price, quantity=qty, sampled=False, event_id=eid,
            ))  # fmt: skip
        return out


def parse_instruments(payload: Mapping[str, Any] | bytes | str) -> tuple[list[Instrument], str]:
    """One ``instruments-info`` page: its perpetuals in trading, and the next page's cursor
    (``""`` on the last page). Linear contracts are 1 base unit, inverse ones 1 USD.
    Raises ``ValueError`` on an error answer or an unexpected shape."""
    if isinstance(payload, Mapping):
        page = msgspec.convert(payload, _InstrumentsPage, strict=False)
    else:
        page = msgspec.json.decode(payload, type=_InstrumentsPage, strict=False)
    if page.retCode != 0:
        raise ValueError(f"instruments-info answered retCode {page.retCode}")
    out: list[Instrument] = []
    for row in page.result.rows:
        linear = PERPETUALS.get(row.contractType)
        if linear is None or row.status != "Trading":
            continue
        out.append(
            Instrument(
                venue=VENUE,
                symbol=row.symbol,
                base=row.baseCoin,
                quote=row.quoteCoin,
                linear=linear,
                contract_size=1.0 if linear else INVERSE_CONTRACT_USD,
                funding_interval_h=(
                    row.fundingInterval / 60
                    if row.fundingInterval > 0
                    else DEFAULT_FUNDING_INTERVAL_H
                ),
            )
        )
    return out, page.result.nextPageCursor


def _args_chars(topics: Iterable[str]) -> int:
    return len(json.dumps(list(topics), separators=(",", ":")))


def _topics(symbols: Iterable[str], trades: bool = False) -> list[str]:
    names = ("tickers", "publicTrade")[: 2 if trades else 1]
    return [f"{n}.{s}" for s in sorted(symbols) for n in names]


def _liquidation_topics(symbols: Iterable[str]) -> list[str]:
    return [f"allLiquidation.{s}" for s in sorted(symbols)]


def _fits(symbols: list[str], trades: bool = True) -> bool:
    """A tickers connection's args stay within :data:`MAX_ARGS_CHARS` (ADL topics included)."""
    return _args_chars(_topics(symbols, trades)) + ADL_ARGS_CHARS <= MAX_ARGS_CHARS


def _liquidations_fit(symbols: list[str]) -> bool:
    """A liquidations connection's args stay within :data:`MAX_ARGS_CHARS`."""
    return _args_chars(_liquidation_topics(symbols)) <= MAX_ARGS_CHARS


def _depth_topics(levels: int, symbols: Iterable[str]) -> list[str]:
    return [f"{ORDERBOOK}.{levels}.{s}" for s in sorted(symbols)]


def topic_requests(name: str, op: str, topics: list[str]) -> tuple[str, ...]:
    """``op`` (``subscribe``, ``unsubscribe``) requests for ``topics``, 10 per request."""
    return tuple(
        json.dumps(
            {
                "req_id": f"{name}:{i // TOPICS_PER_REQUEST + 1}",
                "op": op,
                "args": topics[i : i + TOPICS_PER_REQUEST],
            },
            separators=(",", ":"),
        )
        for i in range(0, len(topics), TOPICS_PER_REQUEST)
    )


def subscribe_messages(
    name: str, symbols: Iterable[str], extra: Iterable[str] = (), trades: bool = False
) -> tuple[str, ...]:
    """The subscribe requests of a tickers connection: ``symbols``' tickers (and trades with
    ``trades``) and the ``extra`` topics, 10 topics per request. Their liquidations are on
    the liquidations connections (:func:`liquidation_messages`)."""
    return topic_requests(name, "subscribe", [*_topics(symbols, trades), *extra])


def liquidation_messages(name: str, symbols: Iterable[str]) -> tuple[str, ...]:
    """The subscribe requests of a liquidations connection: ``allLiquidation`` of each of
    ``symbols``, 10 topics per request."""
    return topic_requests(name, "subscribe", _liquidation_topics(symbols))


class Bybit(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = BybitParser
    default_ws_url: ClassVar[str] = "wss://stream.bybit.com/v5/public"
    default_rest_url: ClassVar[str] = "https://api.bybit.com"
    liquidations_sampled: ClassVar[bool] = False
    ccxt_id: ClassVar[str] = "bybit"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://api.{hostname}",)
    has_history: ClassVar[bool] = True
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = 200

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        trades = self.volume
        self._shards = Shards(self.id, SYMBOLS_PER_CONNECTION, lambda g: _fits(g, trades))
        self._liquidation_shards = Shards(
            self.id, LIQUIDATION_SYMBOLS_PER_CONNECTION, _liquidations_fit
        )

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """Per category, ``linear-1``, ``linear-2``... (``inverse-1``...): the subscribed
        symbols' tickers (and trades) in shards of about :data:`SYMBOLS_PER_CONNECTION`, the
        first with the ADL topics; then ``linear-liquidations-1``... (the quiet lane:
        :attr:`Connection.quiet`): their ``allLiquidation`` topics in shards of about
        :data:`LIQUIDATION_SYMBOLS_PER_CONNECTION`. Every connection's args stay within
        :data:`MAX_ARGS_CHARS`, and the number of shards of each kind is fixed by the first
        call (see :mod:`.._shards`)."""
        symbols = self.subscribed(markets)
        out: list[Connection] = []
        for category in CATEGORIES:
            linear = category == "linear"
            url = f"{self.ws_url}/{category}"
            mine = [s for s in symbols if markets[s].linear is linear]
            adl = ADL_TOPICS[category] if self.settings.stress.enabled else ()
            shards = self._shards(category, mine)
            first = min(shards, default=None)  # (a refresh may leave index 0 empty: left out)
            for index, group in shards.items():
                name = f"{category}-{index + 1}"
                extra = adl if index == first else ()
                subscribe = subscribe_messages(name, group, extra, trades=self.volume)
                out.append(self._connection(name, url, subscribe))
            for index, group in self._liquidation_shards(category, mine).items():
                name = f"{category}-liquidations-{index + 1}"
                subscribe = liquidation_messages(name, group)
                out.append(self._connection(name, url, subscribe, quiet=True))
        out.extend(self._depth_connections(markets))
        return out

    @staticmethod
    def _connection(
        name: str, url: str, subscribe: tuple[str, ...], quiet: bool = False
    ) -> Connection:
        """A connection with the JSON ping every :data:`PING_INTERVAL_S` (quiet ones too:
        the venue cuts a connection without pings or data after 10 minutes)."""
        return Connection(
            name, url, subscribe,
            ping=PING, ping_interval_s=PING_INTERVAL_S, pong=PONG_MARKER, quiet=quiet,
        )  # fmt: skip

    def _depth_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``linear-depth`` and ``inverse-depth``: the order books of :attr:`depth_symbols`
        (20 by default: 20 topics, far inside the args limit), one connection per category
        that has some."""
        levels = self.depth_levels
        if not levels:
            return []
        out: list[Connection] = []
        for category in CATEGORIES:
            linear = category == "linear"
            mine = [s for s in self.depth_symbols if s in markets and markets[s].linear is linear]
            if mine:
                name = f"{category}-depth"
                out.append(
                    Connection(
                        name,
                        f"{self.ws_url}/{category}",
                        topic_requests(name, "subscribe", _depth_topics(levels, mine)),
                        ping=PING,
                        ping_interval_s=PING_INTERVAL_S,
                        pong=PONG_MARKER,
                        own_parser=True,  # a session's books: their u is the session's
                    )
                )
        return out

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Unsubscribe then subscribe the books of ``symbols``: Bybit answers the subscribe
        with a new snapshot."""
        topics = _depth_topics(self.depth_levels, symbols)
        return (
            *topic_requests("resync", "unsubscribe", topics),
            *topic_requests("resync", "subscribe", topics),
        )

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        out: dict[str, Instrument] = {}
        for category in CATEGORIES:
            cursor = ""
            for _ in range(MAX_PAGES):
                params = {"category": category, "limit": PAGE_LIMIT}
                if cursor:
                    params["cursor"] = cursor
                raw = await client.publicGetV5MarketInstrumentsInfo(params)
                try:
                    page, cursor = parse_instruments(raw)
                except ValueError as exc:  # msgspec.ValidationError included
                    raise BadResponse(f"{self.id} instruments-info: {exc}") from exc
                out.update((inst.symbol, inst) for inst in page)
                if not cursor:
                    break
        return out

    async def fetch_history(
        self, inst: Instrument, since_ms: int, until_ms: int, budget: Budget
    ) -> History:
        return await _bybit_history.fetch_history(self._ccxt(), inst, since_ms, until_ms, budget)
