"""Bitget futures (``bitget``): USDT-margined and coin-margined perpetuals.

Wire protocol (https://www.bitget.com/api-doc/uta/websocket/public/, "Tickers Channel" and
"Liquidation Channel"; https://www.bitget.com/api-doc/common/websocket-intro):

* One public endpoint, v3 ("UTA") ``wss://ws.bitget.com/v3/ws/public``. Subscribe with
  ``{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"ticker","symbol":
  "BTCUSDT"},...]}`` (``instType`` in lower case: ``usdt-futures``, ``coin-futures``); each
  arg is acked as ``{"event":"subscribe","arg":{...}}``, a refusal is ``{"event":"error",
  "code":...,"msg":...}`` (counted as ``venue_error``). Limits: 10 messages a second per
  connection (pings included), 240 subscribe requests an hour, at most 1000 channels per
  connection, "strongly" recommended at most 50; 100 connections per IP. We put about 50
  symbols on a connection (``usdt-futures-1``...), hashed by name (see :mod:`.._shards`),
  and send one packed request per 4 KB of args (one per connection in practice). Each
  instType's ``liquidation`` topic has a connection of its own (``usdt-futures-liquidations``,
  ``coin-futures-liquidations``: the quiet lane, :attr:`~..base.Connection.quiet`), so a
  collector behind on the tickers still reads the liquidations as they come.
* Keep-alive: the client sends the *text* ``ping`` and gets the text ``pong``. The docs ask
  for a ping every 30 s and cut a connection without one for 2 min (older text: 30 s), so
  we ping every :data:`PING_INTERVAL_S` = 25 s, on every connection (a quiet one too: it
  may carry no data for minutes, and pushes are no ping). The server also cuts every
  connection after 24 h (the collector rotates before).
* ``ticker`` (per symbol): ``markPrice``, ``indexPrice``, ``fundingRate`` (per the
  contract's own interval), ``nextFundingTime`` (ms; ``"0"``/``""`` on dated futures) and
  ``openInterest``, in **base coin** (BTCUSDT: ``"29539.3825"`` BTC at 76 631 is 2.26 bn
  USD), for coin-margined contracts too (Bitget sizes them in coin). The v3 row has no
  symbol and no time: both come from the envelope (``arg.symbol``, ``ts``). The v2 ticker
  (``wss://ws.bitget.com/v2/ws/public``, ``channel``/``instId``) carries the same values,
  open interest as ``holdingAmount`` (base coin): the parser reads it too, so either
  endpoint can feed it. The funding interval is not in the ticker: it is the contract's
  ``fundInterval`` (hours) from the REST listing. The best bid and ask with their sizes in
  base coin (v3 ``bid1Price``/``bid1Size``/``ask1Price``/``ask1Size``, v2 ``bidPr``/``bidSz``/
  ``askPr``/``askSz``) are the top of book. Mark, funding, open interest and the top of book
  are reported at most once a second per symbol (:data:`STATE_EVERY_MS`), from the merged
  state.
* ``liquidation`` (per **instType**, every symbol, on the instType's ``*-liquidations``
  connection): **a sample**. The docs: "pushed once
  per second ... only the record with the highest liquidation quantity for long and short
  positions respectively per trading pair is included ... at most 2 records [per pair per
  second]". So ``sampled`` is true and counts are a lower bound.
  ``side`` is the **position** side: ``buy`` = a long was liquidated (tardis-node's mapper:
  "Bitget side is position side"; a third-party collector reads it the same way; the docs'
  field table was not retrievable). ``amount`` is the **quote value** (USDT), not a size:
  in the real capture 13.70319 / 0.1649 = 83.1 APE exactly and 143.330431857868 /
  0.500280739469 = 286.5 IP, both on the contracts' size steps; the docs' example (37.72
  at 89 000 on BTCUSDT) is no size on BTC's step either. ``price`` (up to 12 decimals)
  reads as an average fill price. So ``notional_usd`` = ``amount`` and the base quantity
  = ``amount / price``.
  For ``coin-futures`` the same reading is assumed (USD value): no capture confirms it.
  There is no id: ``event_id`` is ``ts:side:amount:price`` as sent, stable across a
  reconnect.
* ``publicTrade`` (v3; v2 ``trade``), per symbol, when the venue's ``volume`` setting is on:
  every trade, ``{i, p, v, S, T, L, isRPI}`` (v2 ``{ts, price, size, side, tradeId}``).
  ``S`` (``side``) is the **taker's** side (``buy``: a buyer lifted the ask; tardis-node's
  v2 and v3 trade mappers read it so), ``v`` the size in base coin (coin-margined contracts
  too), ``T`` the fill time. On subscribe the venue first sends recent trades as a
  ``snapshot``: those are history (after a reconnect, counted already), so only ``update``
  pushes are counted (tardis-node's mappers take ``update`` only, too). The
  prints are summed into traded volume per second (:mod:`.._volume`). With volume on, a
  connection carries two channels per symbol, so :data:`~.instruments.SYMBOLS_PER_CONNECTION`
  halves, keeping Bitget's recommended 50 channels per connection.
* ``books15`` (v2 only: https://www.bitget.com/api-doc/contract/websocket/public/
  Order-Book-Channel, checked 2026-12-06 through the docs' mirrors of that page; the v3
  "UTA" depth topics are ``books1``/``books5``/``books50`` and the incremental ``books``:
  https://www.bitget.com/api-doc/uta/websocket/public/Order-Book-Channel): "15 depth
  levels. Push snapshot each time", every 150 ms by default. Subscribed with the v2 arg
  ``{"instType":"USDT-FUTURES","channel":"books15","instId":"BTCUSDT"}`` on the v2
  endpoint ``wss://ws.bitget.com/v2/ws/public`` (:attr:`Bitget.depth_url`: the v3 URL's
  path swapped), for the instruments whose depth is followed
  (:attr:`~..base.Venue.depth_symbols`: the top 20 by open interest by default), on
  connections of their own (``depth-1``...), so a change of that set reconnects nothing
  else. Each push's one row holds ``bids`` and ``asks`` best first, ``[price, size]`` as
  text (size in base coin, coin-margined contracts too) and its ``ts`` (text), the event's
  time. Every push is whole, so there is no sequence to follow (``seq``, ``pseq`` and
  ``checksum`` are not read) and no resubscription: each push is checked (a level that is
  no positive price with a size counts ``invalid_orderbook_level``, a crossed book
  ``orderbook_crossed``, an unreadable row ``invalid_orderbook``, Bybit's counters) and
  dropped when bad; the next replaces it. A :class:`~...events.BookDepth` is reported at
  most once a second per symbol (:mod:`.._book`). 15 levels on consecutive ticks span a
  few basis points on the large coins, far short of 2 %: the bands they do not reach are
  flagged by the event's ``*_reach_pct``, never reported as complete. ``depth.levels`` may
  also pick ``books5`` (5) or ``books1`` (1); any other value fails at start-up.
* Obsolete frames: the mix v1 stream (``wss://ws.bitget.com/mix/v1/stream``, ``instType``
  ``mc``, ``capitalRate``/``holding``) is counted as ``obsolete_frame``.

Instruments come from ``GET /api/v2/mix/market/contracts?productType=USDT-FUTURES`` and
``COIN-FUTURES`` through ccxt's implicit endpoint (rate limit, error mapping, configurable
base URL), not ccxt's ``load_markets`` (which also loads spot, margin and the demo product
types). See :mod:`.instruments`; the typed frames are in :mod:`.frames`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

import msgspec
import structlog
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._book import BOOK_CROSSED, BOOK_UNREADABLE, INVALID_LEVEL, Book
from .._numbers import integer, number, optional_number
from .._shards import Shards
from .._ticker_state import STATE_EVERY_MS, TickerState, report
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from . import frames
from .instruments import (
    PRODUCT_TYPES,
    SYMBOLS_PER_CONNECTION,
    VENUE,
    inst_type_of,
    liquidation_args,
    parse_contracts,
    subscribe_args,
    subscribe_requests,
)

log = structlog.get_logger(__name__)

PING: Final = "ping"
PONG: Final = "pong"
PING_INTERVAL_S: Final = 25.0
V2_INST_TYPES: Final = frozenset({"USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES"})
PROTOCOL_EVENTS: Final = frozenset({"subscribe", "unsubscribe"})
SIDES: Final = {"buy": Side.LONG, "sell": Side.SHORT}
"""``liquidation.side`` is the liquidated position's side."""
TAKER_BUYS: Final = {"buy": True, "sell": False}
"""A trade's ``S`` (v2 ``side``) is the taker's side."""
BOOK_CHANNELS: Final = {"books1": 1, "books5": 5, "books15": 15}
"""The v2 channels that push a whole book (its best N levels a side) every time."""
DEPTH_CHANNEL_OF: Final = {n: name for name, n in BOOK_CHANNELS.items()}
V2_INST_TYPE: Final = {v3: v2 for v2, v3 in PRODUCT_TYPES.items()}
"""v3 ``instType`` (``usdt-futures``) -> v2's (``USDT-FUTURES``)."""
V3_PATH: Final = "/v3/ws/public"
V2_PATH: Final = "/v2/ws/public"


class BitgetParser(Parser):
    """Parses ``ticker`` pushes (v3 and v2), ``liquidation`` pushes, acks and the text
    ``pong``. One parser may serve both instTypes: their symbols do not overlap."""

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        super().__init__(venue, markets, wanted)
        self.tickers: dict[str, TickerState] = {}
        self.state_every_ms = STATE_EVERY_MS

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in (PONG, PONG.encode()):
            return []
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        if env.event is not None:
            if env.event == "error":
                self.stats.error(self.venue, "venue_error", frame)
            elif env.event not in PROTOCOL_EVENTS:
                self.stats.error(self.venue, "unknown_event", frame)
            return []
        if env.arg is None or not len(env.data):
            self.stats.error(self.venue, "unknown_frame", frame)
            return []
        return self._dispatch(env, env.arg, recv_ms, frame)

    def _dispatch(
        self, env: frames.Envelope, arg: frames.Arg, recv_ms: int, frame: str | bytes
    ) -> list[Event]:
        name = arg.topic or arg.channel
        if arg.channel and arg.instType not in V2_INST_TYPES:  # mix v1: "mc", "umcbl"...
            self.stats.error(self.venue, "obsolete_frame", frame)
            return []
        if name in ("publicTrade", "trade"):
            return self._trades(env, arg, recv_ms, frame)
        if arg.channel in BOOK_CHANNELS:
            return self._books(env, arg, recv_ms, frame)
        if name not in ("ticker", "liquidation"):
            self.stats.error(self.venue, "unknown_topic", name)
            return []
        try:
            if name == "liquidation":
                return self._liquidations(frames.liquidations.decode(env.data), recv_ms)
            rows = frames.tickers.decode(env.data)
            return [e for r in rows for e in self._ticker(arg, r, env.ts, recv_ms)]
        except ValueError:  # msgspec's errors, and ParseError: a field that is no number
            self.stats.error(self.venue, f"invalid_{name}", frame)
            return []

    def _ticker(
        self, arg: frames.Arg, row: frames.TickerRow, env_ts: int | None, recv_ms: int
    ) -> list[Event]:
        symbol = arg.symbol or arg.instId or row.instId
        if (inst := self._instrument(symbol)) is None:
            return []
        ts = integer(row.ts) if row.ts else env_ts or recv_ms  # v2 rows carry their own time
        oi = row.openInterest if row.openInterest is not None else row.holdingAmount
        values = {
            "mark": optional_number(row.markPrice),
            "index": optional_number(row.indexPrice),
            "open_interest": optional_number(oi),
            "funding_rate": optional_number(row.fundingRate),
        }  # all converted before anything is merged: a bad field leaves the state as it was
        book = {  # v3 names, else v2's; "" is an empty side
            name: optional_number(text)
            for name, v3, v2 in (
                ("bid", row.bid1Price, row.bidPr),
                ("bid_qty", row.bid1Size, row.bidSz),
                ("ask", row.ask1Price, row.askPr),
                ("ask_qty", row.ask1Size, row.askSz),
            )
            if (text := v3 if v3 is not None else v2) is not None
        }
        next_ms = None if row.nextFundingTime is None else integer(row.nextFundingTime or 0)
        state = self.tickers.setdefault(symbol, TickerState())
        state.apply(**values)
        state.apply_book(book)
        if next_ms is not None:
            state.set_next_funding(next_ms or None)  # "0" on dated futures
        if state.mark is not None:
            self.last_mark[symbol] = state.mark
        return report(self.venue, inst, state, ts, recv_ms, self.state_every_ms)

    def _trades(
        self, env: frames.Envelope, arg: frames.Arg, recv_ms: int, frame: str | bytes
    ) -> list[Event]:
        """Each print of an ``update`` into its instrument's second of traded volume; the
        seconds it closes. A ``snapshot`` (recent trades, re-sent on subscribe) is skipped."""
        volumes = self.volumes
        if volumes is None or env.action == "snapshot":
            return []
        if (inst := self._instrument(arg.symbol or arg.instId)) is None:
            return []
        try:
            rows = frames.trades.decode(env.data)
        except msgspec.ValidationError:
            self.stats.error(self.venue, "invalid_trade", frame)
            return []
        out: list[Event] = []
        for row in rows:
            side = row.S if row.S is not None else row.side
            buy = TAKER_BUYS.get(side or "")
            try:
                qty = number(row.v if row.v is not None else row.size or "")
                price = number(row.p if row.p is not None else row.price or "")
                ts = integer(row.T if row.T is not None else row.ts or "")
            except ParseError:
                buy = None
            if buy is None:  # one bad row: keep the rest of the batch
                self.stats.error(self.venue, "invalid_trade", row)
                continue
            trade_id = row.i if row.i is not None else row.tradeId
            closed = volumes.add(inst, ts, buy, qty, price, recv_ms, trade_id)
            if closed is not None:
                out.append(closed)
        return out

    def _books(
        self, env: frames.Envelope, arg: frames.Arg, recv_ms: int, frame: str | bytes
    ) -> list[Event]:
        """A whole book (v2 ``books15``): checked every push, its depth when one is due. A
        bad level or a crossed book drops the push, counted; the next one replaces it."""
        if (inst := self._instrument(arg.instId)) is None:
            return []
        try:
            (row,) = frames.books.decode(env.data)
            ts = integer(row.ts)
        except ValueError:  # msgspec's errors, ParseError, not exactly one row
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        book = Book(0)
        try:
            book.apply(_levels(row.bids), _levels(row.asks))
        except ParseError as exc:
            self.stats.error(self.venue, exc.reason, frame)
            return []
        if book.bids and book.asks and max(book.bids) >= min(book.asks):
            self.stats.error(self.venue, BOOK_CROSSED, frame)
            return []
        book.reported_ms = self.depth_reported_ms.get(arg.instId, book.reported_ms)
        if not book.due(ts):
            return []
        depth = book.depth(self.venue, inst, ts, recv_ms, BOOK_CHANNELS[arg.channel])
        if depth is None:  # a side empty: no mid until it is quoted again
            return []
        self.depth_reported_ms[arg.instId] = ts
        return [depth]

    def _liquidations(self, rows: list[frames.LiquidationRow], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        for row in rows:
            if (inst := self._instrument(row.symbol)) is None:
                continue
            side = SIDES.get(row.side)
            try:
                price, amount = number(row.price), number(row.amount)
            except ParseError:  # one bad row: keep the rest of the batch
                price = amount = 0.0
            if side is None or price <= 0 or amount <= 0:
                self.stats.error(self.venue, "invalid_liquidation", row)
                continue
            qty = amount / price  # amount is the quote value: the size in base coin
            eid = f"{row.ts}:{row.side}:{row.amount}:{row.price}"
            out.append(_stamp.liquidation(
                self.venue, inst, row.ts, recv_ms, side,
                price=price, quantity=qty, sampled=True, event_id=eid, notional_usd=amount,
            ))  # fmt: skip
        return out


def _levels(rows: list[list[str]]) -> list[tuple[float, float]]:
    """``[price, size]`` rows as numbers; raises :class:`ParseError` (:data:`INVALID_LEVEL`)
    on a row that is not two numbers (:meth:`Book.apply` checks their values)."""
    try:
        return [(number(price), number(size)) for price, size, *_ in rows]
    except ValueError:  # ParseError: no number; else a row of fewer than two
        raise ParseError(INVALID_LEVEL) from None


class Bitget(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = BitgetParser
    default_ws_url: ClassVar[str] = "wss://ws.bitget.com/v3/ws/public"
    default_rest_url: ClassVar[str] = "https://api.bitget.com"
    liquidations_sampled: ClassVar[bool] = True
    ccxt_id: ClassVar[str] = "bitget"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://api.{hostname}",)
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = 15

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        levels = settings.depth.levels
        if levels is not None and levels not in DEPTH_CHANNEL_OF:
            raise ValueError(
                f"venues.{self.id}.depth.levels: {levels}; Bitget's whole-book channels "
                f"have {sorted(DEPTH_CHANNEL_OF)} levels"
            )
        per = SYMBOLS_PER_CONNECTION // 2 if self.volume else SYMBOLS_PER_CONNECTION
        self._shards = Shards(self.id, per)

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """Per instType with subscribed symbols, ``usdt-futures-1``... (``coin-futures-1``...):
        its symbols' tickers in shards of about 50 (25 with volume: two channels each); then
        ``usdt-futures-liquidations`` (``coin-futures-liquidations``), the instType's
        ``liquidation`` topic alone (the quiet lane: :attr:`Connection.quiet`). The shard
        count is fixed by the first call, so names and assignments survive a metadata
        refresh (as for Bybit)."""
        symbols = self.subscribed(markets)
        out: list[Connection] = []
        for inst_type in PRODUCT_TYPES.values():
            mine = [s for s in symbols if inst_type_of(markets[s]) == inst_type]
            for index, group in self._shards(inst_type, sorted(mine)).items():
                args = subscribe_args(inst_type, group, trades=self.volume)
                out.append(self._connection(f"{inst_type}-{index + 1}", args))
            if mine:
                name = f"{inst_type}-liquidations"
                out.append(self._connection(name, liquidation_args(inst_type), quiet=True))
        out.extend(self._depth_connections(markets))
        return out

    def _connection(self, name: str, args: list[dict[str, str]], quiet: bool = False) -> Connection:
        """A v3 connection with the text ping every :data:`PING_INTERVAL_S` (a quiet one
        too: the venue cuts a connection that sends no ping, whatever it pushes)."""
        return Connection(
            name, self.ws_url, subscribe_requests(args),
            ping=PING, ping_interval_s=PING_INTERVAL_S, pong=PONG, quiet=quiet,
        )  # fmt: skip

    @property
    def depth_url(self) -> str:
        """The v2 endpoint of the depth connections: :attr:`ws_url` with its ``/v3/ws/public``
        replaced by ``/v2/ws/public`` (a URL without it is used as it is)."""
        url = self.ws_url
        return url[: -len(V3_PATH)] + V2_PATH if url.endswith(V3_PATH) else url

    def _depth_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``depth-1``...: the v2 ``books15`` channels of :attr:`depth_symbols` (both
        instTypes: one endpoint), about :data:`SYMBOLS_PER_CONNECTION` a connection (20 by
        default: one). Pushes are whole books, with no session state: no own parser."""
        levels = self.depth_levels
        if not levels:
            return []
        channel = DEPTH_CHANNEL_OF[levels]
        mine = sorted(s for s in self.depth_symbols if s in markets)
        out: list[Connection] = []
        for n, start in enumerate(range(0, len(mine), SYMBOLS_PER_CONNECTION)):
            args = [
                {"instType": V2_INST_TYPE[inst_type_of(markets[s])], "channel": channel,
                 "instId": s}
                for s in mine[start : start + SYMBOLS_PER_CONNECTION]
            ]  # fmt: skip
            out.append(
                Connection(
                    f"depth-{n + 1}",
                    self.depth_url,
                    subscribe_requests(args),
                    ping=PING,
                    ping_interval_s=PING_INTERVAL_S,
                    pong=PONG,
                )
            )
        return out

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        out: dict[str, Instrument] = {}
        for product_type in PRODUCT_TYPES:
            raw = await client.publicMixGetV2MixMarketContracts({"productType": product_type})
            try:
                page = parse_contracts(raw, product_type)
            except ValueError as exc:
                raise BadResponse(f"{self.id} contracts {product_type}: {exc}") from exc
            out.update((inst.symbol, inst) for inst in page)
        return out
