"""What Binance's two futures products share on the wire: USDⓈ-M (``fapi``/``fstream``) and
COIN-M (``dapi``/``dstream``).

Both speak the same protocol: the combined-stream envelope ``{"stream": ..., "data": ...}``,
the ``SUBSCRIBE`` request and its ack, the ``markPriceUpdate`` and ``forceOrder`` events, and
the REST bodies of ``premiumIndex`` and ``fundingInfo``. They differ in units only (USDⓈ-M
quantities are base coin; COIN-M quantities are contracts of ``contractSize`` USD), and the
:class:`~.base.Instrument` carries that: the decoding below is the same for both.

Sources: https://developers.binance.com/docs/derivatives/usds-margined-futures and
https://developers.binance.com/docs/derivatives/coin-margined-futures ("Mark Price Stream",
"Mark Price of All Symbols of a Pair", "All Market Liquidation Order Streams").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import msgspec
import structlog

from ...config import VenueSettings
from ...events import Event, OpenInterest, Side
from ...validate import MAX_INTERVAL_H
from .. import _stamp
from .._book import BOOK_UNREADABLE
from .._numbers import Finite
from .._shards import Shards
from ..base import BAD_NUMBER, Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from .book import DepthBooks, depth_update, snapshot_limit

log = structlog.get_logger(__name__)

DEFAULT_FUNDING_INTERVAL_H = 8.0

_NO_DATA = msgspec.Raw(b"")


class _Envelope(msgspec.Struct):
    stream: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: _NO_DATA)
    e: str | None = None  # a raw (non-combined) single event
    id: int | str | None = None
    result: Any = None
    error: Any = None
    generated: bool = False
    """Set by tardis.dev on REST responses it wraps as pseudo-frames; never on the wire."""


class _Mark(msgspec.Struct):
    """``{"e":"markPriceUpdate","E":1597536008000,"s":"BTCUSDT","p":"11857.56000000",
    "i":"11851.86949091","P":"11852.0","r":"0.00015640","T":1597564800000}``

    COIN-M delivery contracts: ``"r":""`` and ``"T":0`` (no funding); an older COIN-M
    recording has neither ``i`` nor ``r`` nor ``T``."""

    E: int
    s: str
    p: Finite
    i: Finite | None = None
    r: str = ""
    T: int = 0


class _Order(msgspec.Struct):
    s: str
    S: str
    # Decimal strings as sent: the identity is built from them as they are (formatting
    # floats back would cost more than parsing them).
    q: str
    p: str
    ap: str
    z: str
    T: int
    X: str = ""
    ps: str = ""  # COIN-M only: the pair, e.g. BTCUSD


class _ForceOrder(msgspec.Struct):
    """USDⓈ-M: ``{"e":"forceOrder","E":1584059031426,"o":{"s":"BTCUSDT","S":"BUY",
    "o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED","l":"0.015",
    "z":"0.014","T":1584059031421}}``; COIN-M adds ``"ps":"BTCUSD"`` and counts contracts."""

    E: int
    o: _Order


class _BookTicker(msgspec.Struct):
    """USDⓈ-M: ``{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,
    "s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000",
    "A":"40.66000000"}``; COIN-M adds ``"ps"`` and counts contracts (decoded non-strict:
    the text straight to floats)."""

    s: str
    b: Finite
    B: Finite
    a: Finite
    A: Finite
    T: int = 0
    E: int = 0


class _AggTrade(msgspec.Struct):
    """``{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100",
    "f":100,"l":105,"T":123456785,"m":true}`` (``m``: the buyer is the maker, so the taker
    sold; ``q`` base coin on USDⓈ-M, contracts on COIN-M)."""

    s: str
    a: int
    p: Finite
    q: Finite
    T: int
    m: bool


class PremiumIndex(msgspec.Struct):
    """A row of ``GET /fapi/v1/premiumIndex`` or ``GET /dapi/v1/premiumIndex``:
    ``{"symbol":"BTCUSDT","markPrice":"11793.63104562","indexPrice":"11781.80495970",
    "estimatedSettlePrice":"11781.16138815","lastFundingRate":"0.00038246",
    "nextFundingTime":1597392000000,"interestRate":"0.00010000","time":1597370495002}``
    (COIN-M adds ``pair``; its delivery rows have ``"lastFundingRate":""`` and
    ``"nextFundingTime":0``)."""

    symbol: str
    markPrice: Finite
    indexPrice: Finite
    time: int
    lastFundingRate: str = ""
    nextFundingTime: int = 0


_envelope = msgspec.json.Decoder(_Envelope)
_marks = msgspec.json.Decoder(list[_Mark], strict=False)
_mark = msgspec.json.Decoder(_Mark, strict=False)
_force = msgspec.json.Decoder(_ForceOrder, strict=False)
_book_ticker = msgspec.json.Decoder(_BookTicker, strict=False)
_agg_trade = msgspec.json.Decoder(_AggTrade, strict=False)
STATE_EVERY_MS = 1000
"""Top-of-book events: at most one per symbol a second (COIN-M's ``!bookTicker`` pushes every
change of every symbol, hundreds a second; USDⓈ-M's is "Update Speed: 5s", checked
2026-12-06 at https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/All-Book-Tickers-Stream, so there a top is up to 5 s old: the
real-time ``<symbol>@bookTicker`` would cost a stream per symbol at every change)."""


def _invalid(stream: str) -> str:
    """The parse-error reason of an unreadable frame of ``stream``: ``invalid_bookTicker``,
    ``invalid_aggTrade``, ``invalid_orderbook`` (:data:`~.._book.BOOK_UNREADABLE`), else
    ``invalid_<the stream name's last part>`` (``invalid_arr``, ``invalid_1s``...)."""
    for kind in ("bookTicker", "aggTrade"):
        if kind in stream:
            return f"invalid_{kind}"
    if "depth" in stream:
        return BOOK_UNREADABLE
    return f"invalid_{stream.rsplit('@', 1)[-1]}"


class BinanceParser(Parser):
    """Parses Binance futures frames: ``markPriceUpdate`` (one object, or an array from the
    all-market or per-pair streams), ``forceOrder``, ``bookTicker``, ``aggTrade`` and
    ``depthUpdate`` (with the REST snapshots of :mod:`.book`), combined or raw."""

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        super().__init__(venue, markets, wanted)
        self.top_reported_ms: dict[str, int] = {}
        """When each symbol's top of book was last reported (the venue's time)."""
        self.books = DepthBooks(
            venue,
            lambda reason, detail: self.stats.error(venue, reason, detail),
            lambda symbol: self.resync.add(symbol),  # (the collector replaces the set)
        )
        """The local order books of a depth connection's session (:mod:`.book`)."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame[:1] in (b"[", "["):  # a raw-mode array of markPriceUpdate
            return self._dispatch("markPrice@arr", frame, recv_ms)
        try:
            env = _envelope.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats.error(self.venue, "invalid_json", frame)
            return []
        if env.generated:  # a REST response wrapped by a recorder, not a venue frame
            self.stats.error(self.venue, "rest_pseudo_frame", frame)
            return []
        if env.stream is not None and len(env.data):
            return self._dispatch(env.stream, env.data, recv_ms)
        if env.e is not None:
            return self._dispatch(env.e, frame, recv_ms)
        if env.error is not None:
            self.stats.error(self.venue, "venue_error", frame)
        elif env.id is None:
            self.stats.error(self.venue, "unknown_frame", frame)
        return []  # a SUBSCRIBE ack: {"result":null,"id":1}

    def _dispatch(self, stream: str, data: msgspec.Raw | str | bytes, recv_ms: int) -> list[Event]:
        try:
            if "markPrice" in stream:
                raw = bytes(data) if isinstance(data, msgspec.Raw) else data
                if raw[:1] in (b"[", "["):
                    return self._marks(_marks.decode(raw), recv_ms)
                return self._marks([_mark.decode(raw)], recv_ms)
            if "forceOrder" in stream:
                return self._liquidation(_force.decode(data), recv_ms)
            if "bookTicker" in stream:
                return self._book_top(_book_ticker.decode(data), recv_ms)
            if "aggTrade" in stream:
                return self._trade(_agg_trade.decode(data), recv_ms)
            if "depth" in stream:
                update = depth_update.decode(data)
                inst = self._instrument(update.s)
                return [] if inst is None else self.books.update(inst, update, recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, _invalid(stream), data)
            return []
        self.stats.error(self.venue, "unknown_stream", stream)
        return []

    def _marks(self, updates: Iterable[_Mark], recv_ms: int) -> list[Event]:
        out: list[Event] = []
        markets, wanted = self.markets, self.wanted
        for u in updates:
            inst = markets.get(u.s)
            if inst is None or (wanted is not None and u.s not in wanted):
                self.stats.filtered += 1
                continue
            try:
                out += mark_and_funding(inst, u.E, recv_ms, u.p, u.i, u.r, u.T)
            except ParseError as exc:  # one bad row: keep the rest of the array
                self.stats.error(self.venue, exc.reason, u)
                continue
            if u.p > 0:  # open interest is valued at it (a bad one is dropped as an event)
                self.last_mark[u.s] = u.p
        return out

    def _book_top(self, t: _BookTicker, recv_ms: int) -> list[Event]:
        """The best bid and ask, at most once a second per symbol (the frame then due
        carries the latest values: each is a whole top of book)."""
        inst = self._instrument(t.s)
        if inst is None:
            return []
        ts = t.T or t.E
        if _stamp.held_back(ts, self.top_reported_ms.get(t.s), STATE_EVERY_MS):
            return []
        self.top_reported_ms[t.s] = ts
        return [_stamp.book_top(self.venue, inst, ts, recv_ms, t.b, t.B, t.a, t.A)]

    def _trade(self, t: _AggTrade, recv_ms: int) -> list[Event]:
        """One aggregate trade into its instrument's second of traded volume, counted once
        per aggregate id ``a``; the second it closes. Off (the ``volume`` setting): filtered."""
        volumes = self.volumes
        if volumes is None:
            self.stats.filtered += 1
            return []
        inst = self._instrument(t.s)
        if inst is None:
            return []
        closed = volumes.add(inst, t.T, not t.m, t.q, t.p, recv_ms, t.a)
        return [] if closed is None else [closed]

    def _book_snapshot(self, symbol: str, payload: object, recv_ms: int) -> list[Event]:
        inst = self._instrument(symbol)
        return [] if inst is None else self.books.snapshot(inst, payload, recv_ms)

    def _liquidation(self, msg: _ForceOrder, recv_ms: int) -> list[Event]:
        o = msg.o
        inst = self.markets.get(o.s)
        if inst is None or (self.wanted is not None and o.s not in self.wanted):
            self.stats.filtered += 1
            return []
        if o.S not in ("SELL", "BUY"):
            self.stats.error(self.venue, "invalid_side", o)
            return []
        # A SELL liquidation order closes a long position.
        side = Side.LONG if o.S == "SELL" else Side.SHORT
        try:  # NaN and infinities pass here, and fail the event's check (Parser.parse)
            z, ap = float(o.z), float(o.ap)
            qty = z if z > 0 else float(o.q)
            price = ap if ap > 0 else float(o.p)
        except ValueError:
            raise ParseError(BAD_NUMBER) from None  # the frame's one order: the frame
        # No id on the wire: trade time, order side, filled size and average price.
        eid = ":".join((str(o.T), o.S, o.z, o.ap))
        return [_stamp.liquidation(
            self.venue, inst, o.T or msg.E, recv_ms, side,
            price=price, quantity=qty, sampled=True, event_id=eid,
        )]  # fmt: skip


def open_interest_event(
    inst: Instrument, contracts: float, ts_ms: int, mark: float, recv_ms: int
) -> OpenInterest:
    """Open interest of ``contracts`` native contracts, valued at ``mark``."""
    return _stamp.open_interest(inst.venue, inst, ts_ms, recv_ms, contracts, mark)


def mark_and_funding(
    inst: Instrument, ts_ms: int, recv_ms: int, mark: float, index: float | None,
    rate: str, next_funding_ms: int,
) -> list[Event]:  # fmt: skip
    """A mark price and, for perpetuals, the funding rate (delivery contracts send
    ``"r":""`` and ``"T":0``): what both the mark-price stream and ``premiumIndex`` carry.
    Raises :class:`ParseError` when the rate is not a number (a NaN or an infinity makes
    a funding event that fails its check)."""
    out: list[Event] = [_stamp.mark(inst.venue, inst, ts_ms, recv_ms, mark, index)]
    if rate and next_funding_ms:
        try:
            value = float(rate)
        except ValueError:
            raise ParseError(BAD_NUMBER) from None
        out.append(
            _stamp.funding(
                inst.venue, inst, ts_ms, recv_ms, value, inst.funding_interval_h, next_funding_ms
            )
        )
    return out


def premium_index_events(px: PremiumIndex, inst: Instrument, recv_ms: int) -> list[Event]:
    """One ``premiumIndex`` row as mark and (perpetuals only) funding events."""
    return mark_and_funding(
        inst, px.time, recv_ms, px.markPrice, px.indexPrice, px.lastFundingRate,
        px.nextFundingTime,
    )  # fmt: skip


def parse_funding_info(payload: list[Mapping[str, Any]]) -> dict[str, float]:
    """``GET /fapi/v1/fundingInfo`` or ``/dapi/v1/fundingInfo``: the symbols whose funding
    interval (or cap) was adjusted; every other symbol funds every 8 h.

    ``[{"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000",
    "adjustedFundingRateFloor":"-0.02500000","fundingIntervalHours":4,"disclaimer":false}]``
    """
    out: dict[str, float] = {}
    for row in payload:
        hours = row.get("fundingIntervalHours")
        if (
            isinstance(row.get("symbol"), str)
            and isinstance(hours, (int, float))
            and 0 < hours <= MAX_INTERVAL_H  # and not a 400-digit int, nor NaN
        ):
            out[row["symbol"]] = float(hours)
    return out


BOOK_TICKERS = "!bookTicker"
"""Every symbol's best bid and ask, on every change: one stream whatever the symbol count."""
DEPTH_SPEED = "500ms"
TRADE_SYMBOLS_PER_CONNECTION = 200
"""``<symbol>@aggTrade`` streams per connection: far inside the venue's 1024 streams a
connection, in one ``SUBSCRIBE`` each (its 10 incoming messages a second)."""


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@aggTrade"


def depth_stream(symbol: str) -> str:
    """The diff depth stream of one symbol (:mod:`.book`)."""
    return f"{symbol.lower()}@depth@{DEPTH_SPEED}"


def subscribe_message(streams: Iterable[str], request_id: int = 1) -> str:
    """``{"method":"SUBSCRIBE","params":[...],"id":1}``, answered ``{"result":null,"id":1}``."""
    msg = {"method": "SUBSCRIBE", "params": list(streams), "id": request_id}
    return msgspec.json.encode(msg).decode()


class BinanceVenue(CcxtBackedVenue):
    """A Binance futures product: its ccxt client (REST metadata and open interest), its
    parser, and open interest over REST (neither product streams it)."""

    liquidations_sampled: ClassVar[bool] = True
    """``forceOrder``: "only the latest one liquidation order within 1000ms" per symbol."""
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = 1000
    """The deepest REST snapshot (``limit=1000``, weight 20); ``depth.levels`` picks a
    smaller one (rounded up to a limit the venue accepts)."""
    snapshots_over_rest: ClassVar[bool] = True

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self._trade_shards = Shards(self.id, TRADE_SYMBOLS_PER_CONNECTION)

    @property
    def public_ws_url(self) -> str:
        """Where ``bookTicker`` and ``depth`` are delivered: USDⓈ-M's routed ``/public``
        path beside ``/market``; COIN-M's one base."""
        base = self.ws_url
        if self.linear and base.endswith("/market"):
            return base.removesuffix("/market") + "/public"
        return base

    def liquidity_connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """Beside each product's ``market`` connection: ``book-top`` (``!bookTicker``),
        ``trades-1``... (``<symbol>@aggTrade`` of the subscribed symbols, in shards of
        :data:`TRADE_SYMBOLS_PER_CONNECTION`, when ``volume`` is on) and ``depth`` (the
        diff depth of :attr:`depth_symbols`, a connection of its own so that a new ranking
        reconnects nothing else, each session with books of its own)."""
        top = subscribe_message([BOOK_TICKERS])
        out = [Connection("book-top", f"{self.public_ws_url}/stream", (top,))]
        if self.volume:
            shards = self._trade_shards("trades", self.subscribed(markets))
            for index, group in shards.items():
                streams = [trade_stream(s) for s in group]
                name = f"trades-{index + 1}"
                out.append(Connection(name, f"{self.ws_url}/stream", (subscribe_message(streams),)))
        books = sorted(s for s in self.depth_symbols if s in markets)
        if self.depth_levels and books:
            out.append(
                Connection(
                    "depth",
                    f"{self.public_ws_url}/stream",
                    (subscribe_message([depth_stream(s) for s in books]),),
                    own_parser=True,
                )
            )
        return out

    def new_parser(self, markets: Mapping[str, Instrument], wanted: set[str] | None) -> Parser:
        parser = super().new_parser(markets, wanted)
        if isinstance(parser, BinanceParser) and self.depth_levels:
            parser.books.levels = snapshot_limit(self.depth_levels)
        return parser

    def session_parser(self, shared: Parser) -> Parser:
        """A depth session's parser: books of its own, the time of each symbol's last report
        shared (at most one a second whatever the sessions)."""
        parser = super().session_parser(shared)
        if isinstance(parser, BinanceParser) and isinstance(shared, BinanceParser):
            parser.books.reported_ms = shared.books.reported_ms
        return parser

    async def fetch_book_snapshot(self, symbol: str) -> object:
        """``GET /fapi/v1/depth`` (``/dapi/v1/depth``) of ``symbol``, ``limit`` the book's
        depth (1000 by default: weight 20)."""
        limit = snapshot_limit(self.depth_levels or self.default_depth_levels)
        return await self._rest("Depth", {"symbol": symbol, "limit": limit})

    ccxt_id: ClassVar[str]
    ccxt_hosts: ClassVar[tuple[str, ...]]
    parser_class: ClassVar[type[BinanceParser]] = BinanceParser

    @property
    def oi_over_rest(self) -> bool:
        return True

    linear: ClassVar[bool]
    """USDⓈ-M: linear (quantities in base coin); COIN-M: inverse (USD contracts)."""

    async def _rest(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A public REST call of this product (``/fapi/v1/<path>`` or ``/dapi/v1/<path>``)
        through ccxt: its rate limiting, error mapping and base-URL override."""
        method = f"{'fapi' if self.linear else 'dapi'}PublicGet{path}"
        return await getattr(self._ccxt(), method)(params or {})

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        """The product's active perpetuals, with contract sizes from the exchange info and
        funding intervals from ``fundingInfo`` (which lists only the adjusted symbols)."""
        client = self._ccxt_within(timeout_s)
        markets = await client.load_markets(reload=True)
        intervals = parse_funding_info(await self._rest("FundingInfo"))
        kind = "linear" if self.linear else "inverse"
        out: dict[str, Instrument] = {}
        for m in markets.values():
            if not (m.get("swap") and m.get(kind)) or m.get("active") is False:
                continue
            sym, size = m["id"], m.get("contractSize")
            if not self.linear and not size:  # an inverse contract needs its size to be valued
                log.warning("inverse contract without contractSize", venue=self.id, symbol=sym)
                continue
            out[sym] = Instrument(
                venue=self.id,
                symbol=sym,
                base=m["base"],
                quote=m["quote"],
                linear=self.linear,
                contract_size=float(size or 1.0),
                funding_interval_h=intervals.get(sym, DEFAULT_FUNDING_INTERVAL_H),
            )
        return out
