"""A local Binance USDⓈ-M server on loopback: the real websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/market``, the routed ``/market`` base):

* ``/market/stream[?streams=a/b]``: combined mode, frames ``{"stream":..., "data":...}``;
* ``/market/ws`` and ``/market/ws/<stream>[/<stream>...]``: raw mode, the data alone;
* ``/stream``, ``/ws``, ``/ws/...`` and ``/public/...``: accepted and answered, but markPrice,
  forceOrder and aggTrade are never delivered there, as on the real venue (silently); they
  deliver bookTicker and depth, which ``/market`` does not.

Streams: ``!markPrice@arr@1s``, ``!markPrice@arr``, ``<symbol>@markPrice@1s``,
``<symbol>@markPrice`` (every ``push_interval_s``, or 3x that without ``@1s``; event times
aligned to the interval like the venue's), ``!forceOrder@arr`` and ``<symbol>@forceOrder``
(at most one per symbol per 1000 ms, the latest), ``<symbol>@aggTrade`` (each second's
liquidation fills and calm tape); and on ``/public`` (and bare paths) only, as the venue
routes them: ``<symbol>@bookTicker`` (a symbol's top when it changed, looked at every
250 ms), ``!bookTicker`` (the same on COIN-M; on USDⓈ-M each symbol's top that changed,
every :attr:`~BinanceFuturesSimulator.all_book_tickers_every_s`, 5 s, the venue's update
speed) and ``<symbol>@depth[@500ms|@100ms]`` (diffs of a book shaped from
the market's quote, whose REST snapshot is ``GET /fapi/v1/depth``: :mod:`.book_wire`;
:meth:`book_gap` skips an update). The server pings every ``ping_interval_s`` (180 s, as
the venue). REST: see :mod:`.usdm_rest`.

Test hooks: :meth:`drop_connections` (the 24 h cut), :meth:`stall` (pings still flow),
:attr:`clients`, and the ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every
liquidation), :attr:`pushed` (those that passed the throttle and went out),
:meth:`ground_truth`. The shared lifecycle and hooks are :class:`~.server.VenueServer`'s.

The server is :class:`BinanceFuturesSimulator`, parameterized by a
:class:`~.binance_usdm_wire.Product`; :class:`BinanceUsdmSimulator` is the USDⓈ-M one, and
:mod:`.coinm` serves COIN-M with the same code.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import MarketClock, next_tick, wall_ms
from ....simulate.market import DEFAULT_SPECS, LiquidationPrint, SymbolSpec
from ....simulate.replay import RecordedFrame, cycle, load_frames
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import VenueServer
from . import book_wire
from . import usdm_wire as wire
from .usdm_rest import BinanceFuturesRest

FLUSH_INTERVAL_S = 0.02
BOOK_TICKER_INTERVAL_S = 0.25
"""How often the simulated tops are looked at (the venue pushes each change at once)."""
TRADE_INTERVAL_S = 1.0
DEPTH_MS = tuple(sorted(set(wire.DEPTH_SPEEDS.values())))


@dataclass(slots=True, eq=False)
class _Client:
    conn: ServerConnection
    routed: bool
    """``/market`` data (markPrice, forceOrder, aggTrade) is delivered on this path
    (USDⓈ-M: only under ``/market``)."""
    session: wire.Session
    public: bool = True
    """``/public`` data (bookTicker, depth) is delivered on this path (USDⓈ-M: under
    ``/public`` and on bare paths, not under ``/market``)."""
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def delivers(self, kind: wire.StreamKind) -> bool:
        return self.public if kind in wire.PUBLIC_KINDS else self.routed


def _route(path: str, market_path: str | None) -> tuple[bool, bool, list[str]] | None:
    """(delivers ``/market`` data, combined, streams in the path) for a websocket path,
    ``None`` if unknown. With a ``market_path`` (USDⓈ-M ``/market``), only paths under it
    deliver ``/market`` data, and only the others ``/public`` data."""
    if market_path is None:
        routed, rest = True, path
    else:
        routed = path.startswith(market_path + "/")
        rest = path.removeprefix(market_path if routed else "/public")
    if rest == "/stream":
        return routed, True, []
    if rest == "/ws" or rest.startswith("/ws/"):
        return routed, False, [s for s in rest[len("/ws/") :].split("/") if s]
    return None


def _replayable(message: Any) -> wire.StreamKind | None:
    data = message.get("data", message) if isinstance(message, dict) else message
    first = data[0] if isinstance(data, list) and data else data
    event = first.get("e") if isinstance(first, dict) else None
    return {"markPriceUpdate": wire.StreamKind.MARK, "forceOrder": wire.StreamKind.FORCE}.get(
        event or ""
    )


def _mark_data(
    marks: dict[str, str], array: str, pairs: dict[str, str], slow: bool, s: wire.Stream
) -> str | None:
    """What a markPrice stream gets this tick: the array, its pair's array, its symbol's
    update, or nothing (3 s streams on the ticks in between)."""
    if not (s.fast or slow):
        return None
    if s.pair is not None:
        return pairs.get(s.pair)
    return array if s.symbol is None else marks.get(s.symbol)


def _symbol_data(symbol: str, data: str, s: wire.Stream) -> str | None:
    """An event of ``symbol`` goes to its own stream and to the all-market one."""
    return data if s.symbol in (None, symbol) else None


def _book_ticker_data(
    symbol: str, data: str, changed: bool, to_all: bool, s: wire.Stream
) -> str | None:
    """A top of ``symbol`` goes to its own stream when it changed, and to the all-market
    one when that one is due (``to_all``)."""
    if s.symbol is None:
        return data if to_all else None
    return data if changed and s.symbol == symbol else None


def _force_data(symbol: str, data: str, s: wire.Stream) -> str | None:
    """A liquidation of ``symbol`` goes to ``!forceOrder@arr`` and ``<symbol>@forceOrder``."""
    return data if s.symbol in (None, symbol) else None


class BinanceFuturesSimulator(VenueServer[_Client]):
    """A Binance futures product on loopback; subclasses name the product, the symbols they
    simulate by default and those on a 4 h funding interval."""

    product: ClassVar[wire.Product]
    default_specs: ClassVar[tuple[SymbolSpec, ...]]
    default_four_hour: ClassVar[tuple[str, ...]] = ()
    all_book_tickers_every_s: ClassVar[float] = 0.0
    """How often ``!bookTicker`` pushes the tops that changed (0: every change, as
    ``<symbol>@bookTicker`` does)."""

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        symbols: Sequence[str] | None = None,
        seed: int = 0,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        push_interval_s: float = 1.0,
        ping_interval_s: float | None = 180.0,
        ping_timeout_s: float | None = 600.0,
        four_hour_symbols: tuple[str, ...] | None = None,
        list_only_simulated: bool = False,
        replay_file: str | Path | None = None,
        replay_only: bool = False,
        weight_limit: int = 2400,
        clock: MarketClock | None = None,
        listing_size: int | None = None,
    ) -> None:
        """``symbols``: simulate these (default: every symbol of :attr:`default_specs`).
        ``clock``: share one market (and its ground truth) with other venue servers; it is
        then started and stopped by its owner, and this server serves ``symbols`` or, by
        default, those of the market's symbols its exchangeInfo lists.
        ``list_only_simulated``: serve an exchangeInfo listing only the simulated symbols
        (the recorded ones list every contract of 2021)."""
        super().__init__(
            scenario,
            specs=self.default_specs,
            ws_path=self.product.market_path or "",
            symbols=symbols,
            seed=seed,
            time_scale=time_scale,
            start_s=start_s,
            clock=clock,
            listing_size=listing_size,
        )
        info_text = wire.load_exchange_info(self.product)
        info = json.loads(info_text)
        if self.synthetic:
            info["symbols"] = self._grow(info["symbols"], "symbol")
            info_text = wire.encode(info)
        if symbols is None:
            listed = {s["symbol"] for s in info["symbols"]}
            symbols = [s for s in self.market.symbols if s in listed]
        self.push_interval_s = push_interval_s
        self.ping_interval_s, self.ping_timeout_s = ping_interval_s, ping_timeout_s
        four_hour = self.default_four_hour if four_hour_symbols is None else four_hour_symbols
        self.contracts = wire.contracts(info, symbols, four_hour)
        if list_only_simulated:
            info["symbols"] = [s for s in info["symbols"] if s["symbol"] in self.contracts]
            info_text = wire.encode(info)
        self.rest = BinanceFuturesRest(
            self.market,
            self.contracts,
            info_text,
            product=self.product,
            weight_limit=weight_limit,
            depth_book=self.depth_book,
        )
        self.replay: list[RecordedFrame] = (
            load_frames(replay_file, lambda m: _replayable(m) is not None) if replay_file else []
        )
        self.replay_only = replay_only
        self.pushed: list[LiquidationPrint] = []
        """Liquidations that passed the venue's throttle and were sent to subscribers."""
        self._throttle = wire.ForceOrderThrottle()
        self.depth_books: dict[str, book_wire.DiffBook] = {}
        """The books asked for at least once (diff stream or REST snapshot), by symbol."""
        self._tops: dict[str, tuple[float, float, str]] = {}
        self._all_tops: dict[str, tuple[float, float, str]] = {}
        """The tops ``!bookTicker`` last pushed."""
        self._all_tops_ms = -(10**15)
        self._top_id = 0
        self._fills: dict[str, list[LiquidationPrint]] = {}
        """Liquidations not yet printed on ``aggTrade``."""
        self._agg_id = 0
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _ws_options(self) -> dict[str, Any]:
        return {"ping_interval": self.ping_interval_s, "ping_timeout": self.ping_timeout_s}

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        loops = [
            self._push_marks(),
            self._flush_force_orders(),
            self._on_grid(BOOK_TICKER_INTERVAL_S, self._push_book_tickers),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
            *(self._on_grid(ms / 1000, partial(self._push_depth, ms)) for ms in DEPTH_MS),
        ]
        if self.replay:
            loops.append(self._replay())
        return loops

    @property
    def prints(self) -> list[LiquidationPrint]:
        """Every liquidation the market produced for the served symbols, throttled or not."""
        if self._own_clock:
            return self.clock.prints
        return [p for p in self.clock.prints if p.symbol in self.contracts]

    # -- websocket -------------------------------------------------------------------------

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        """The market's prints of the served symbols go to the throttle (a shared market
        also holds other venues' symbols), and to the trade tape."""
        contracts = self.contracts
        mine = [p for p in prints if p.symbol in contracts]
        self._throttle.offer(mine)
        for p in mine:
            self._fills.setdefault(p.symbol, []).append(p)

    # -- liquidity streams (book_wire) -----------------------------------------------------

    def depth_book(self, symbol: str) -> book_wire.DiffBook:
        """``symbol``'s book (made, at the market's quote, the first time it is asked for:
        by a subscriber of its diff stream, or a REST snapshot)."""
        book = self.depth_books.get(symbol)
        if book is None:
            book = self.depth_books[symbol] = book_wire.DiffBook(self.contracts[symbol])
            book.update(self.market.quote(symbol))
        return book

    def book_gap(self, symbol: str) -> None:
        """Skip an update of ``symbol``'s book: its subscribers' next diff has a gap."""
        self.depth_book(symbol).skip()

    def _push_book_tickers(self, ts: int) -> None:
        """Each symbol's best bid and ask, when they changed, to its ``<symbol>@bookTicker``
        subscribers (the venue pushes every change), and to the ``!bookTicker`` ones every
        :attr:`all_book_tickers_every_s` (USDⓈ-M: 5 s)."""
        if self.replay_only:
            return
        all_due = ts - self._all_tops_ms >= self.all_book_tickers_every_s * 1000
        if all_due:
            self._all_tops_ms = ts
        for symbol, c in self.contracts.items():
            q = self.market.quote(symbol)
            key = (*book_wire.top(q, c), book_wire.level_size(q, c))
            changed = self._tops.get(symbol) != key
            to_all = all_due and self._all_tops.get(symbol) != key
            if not (changed or to_all):
                continue
            if changed:
                self._tops[symbol] = key
                self._top_id += 1
            if to_all:
                self._all_tops[symbol] = key
            data = wire.encode(book_wire.book_ticker(q, c, self._top_id, ts))
            self._send(
                wire.StreamKind.BOOK_TICKER,
                partial(_book_ticker_data, symbol, data, changed, to_all),
            )

    def _push_trades(self, ts: int) -> None:
        """The last second's aggregate trades of each symbol, to its ``aggTrade``
        subscribers: the liquidations' fills and the calm tape."""
        fills, self._fills = self._fills, {}
        if self.replay_only:
            return
        for symbol, c in self.contracts.items():
            mine = sorted(fills.get(symbol, ()), key=lambda p: p.ts_ms)
            rows = book_wire.agg_trades(self.market.quote(symbol), c, ts, mine, self._agg_id)
            self._agg_id += len(rows)
            for row in rows:
                data = wire.encode(row)
                self._send(wire.StreamKind.AGG_TRADE, partial(_symbol_data, symbol, data))

    def _push_depth(self, speed_ms: int, ts: int) -> None:
        """The diffs of the books followed at ``speed_ms`` (``@500ms``, ``@100ms``, or
        250 ms without a suffix), to their subscribers. One book per symbol, whatever the
        speeds its subscribers chose: each gets every diff of its book (the venue would
        merge a slower stream's; ``pu`` chains the same either way)."""
        if self.replay_only:
            return
        followed = {
            s.symbol
            for c in self._clients
            if c.public
            for s in c.session.wanted()
            if s.kind is wire.StreamKind.DEPTH and s.speed_ms == speed_ms and s.symbol
        }
        for symbol in sorted(followed & self.contracts.keys()):
            book = self.depth_book(symbol)
            changed = book.update(self.market.quote(symbol))
            if changed is not None:
                data = wire.encode(book.diff(*changed, ts))
                self._send(wire.StreamKind.DEPTH, partial(_symbol_data, symbol, data))

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: trade time, order side, filled size and average price."""
        o = self.product.force_order(p, self.contracts[p.symbol], 0)["o"]
        return [(p.symbol, ":".join((str(o["T"]), o["S"], o["z"], o["ap"])))]

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if _route(urlsplit(request.path).path, self.product.market_path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        url = urlsplit(conn.request.path if conn.request else "/")
        route = _route(url.path, self.product.market_path)
        if route is None:  # pragma: no cover - refused by _check_path
            return
        routed, combined, streams = route
        if combined:
            for value in parse_qs(url.query).get("streams", []):
                streams.extend(s for s in value.split("/") if s)
        session = wire.Session(combined, product=self.product)
        session.subscribe(streams)
        public = self.product.market_path is None or not routed
        with self._tracked(_Client(conn, routed, session, public)):
            async for message in conn:
                await conn.send(session.handle(message))

    def _send(self, kind: wire.StreamKind, data_for: Callable[[wire.Stream], str | None]) -> None:
        """Send to each client whose path delivers ``kind``, per subscribed stream of
        ``kind``, ``data_for(stream)`` (encoded data, or ``None`` to skip that stream)."""
        for c in list(self._clients):
            if not c.delivers(kind):
                continue
            for stream in c.session.wanted():
                if stream.kind is kind and (data := data_for(stream)) is not None:
                    broadcast([c.conn], wire.frame(stream.name, data, c.session.combined))

    async def _push_marks(self) -> None:
        interval = self.push_interval_s
        while True:
            tick = await next_tick(interval)
            if self.replay_only or self.stalled:
                continue
            event_ms = round(tick * interval * 1000)
            slow = tick % 3 == 0
            update, contracts = self.product.mark_price_update, self.contracts
            marks = {
                q.symbol: wire.encode(update(q, contracts[q.symbol], event_ms))
                for q in self.market.quotes()
                if q.symbol in contracts
            }
            by_pair: dict[str, list[str]] = {}
            for symbol, text in marks.items():
                by_pair.setdefault(contracts[symbol].pair, []).append(text)
            pairs = {pair: "[" + ",".join(texts) + "]" for pair, texts in by_pair.items()}
            array = "[" + ",".join(marks.values()) + "]"
            self._send(wire.StreamKind.MARK, partial(_mark_data, marks, array, pairs, slow))

    async def _flush_force_orders(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            now = wall_ms()
            due = self._throttle.due(now)
            if not due or self.replay_only or self.stalled:
                continue
            self.pushed.extend(due)
            for p in due:
                data = wire.encode(self.product.force_order(p, self.contracts[p.symbol], now))
                self._send(wire.StreamKind.FORCE, partial(_force_data, p.symbol, data))

    async def _replay(self) -> None:
        """Recorded frames, as they are, one per push interval, to routed subscribers of the
        same kind of stream."""
        for rec in cycle(self.replay):
            await asyncio.sleep(self.push_interval_s)
            kind = _replayable(rec.message)
            if self.stalled or kind is None:
                continue
            for c in list(self._clients):
                if c.routed and any(s.kind is kind for s in c.session.wanted()):
                    broadcast([c.conn], rec.raw)


class BinanceUsdmSimulator(BinanceFuturesSimulator):
    """Binance USDⓈ-M on loopback. ``async with BinanceUsdmSimulator() as sim: ...``."""

    product: ClassVar[wire.Product] = wire.USDM
    default_specs: ClassVar[tuple[SymbolSpec, ...]] = DEFAULT_SPECS
    SPECS = DEFAULT_SPECS
    TEMPLATE = "DOGEUSDT"
    default_four_hour: ClassVar[tuple[str, ...]] = wire.FOUR_HOUR_SYMBOLS
    all_book_tickers_every_s: ClassVar[float] = 5.0
    """USDⓈ-M's ``!bookTicker``: "Update Speed: 5s" (https://developers.binance.com/docs/
    derivatives/usds-margined-futures/websocket-market-streams/All-Book-Tickers-Stream,
    checked 2026-12-06); COIN-M's is real time."""
