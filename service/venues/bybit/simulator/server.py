"""A local Bybit v5 server on loopback: the real public linear/inverse protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/v5/public``): ``/v5/public/linear`` and
``/v5/public/inverse`` (any other path: HTTP 404). Each answers ``subscribe``,
``unsubscribe`` and ``ping`` as the venue does (see :mod:`.wire`); topics are
``tickers.{symbol}``, ``allLiquidation.{symbol}`` and ``publicTrade.{symbol}`` of the symbols
listed in that category.

* ``tickers``: a ``snapshot`` right after the subscribe ack, then every ``push_interval_s``
  (100 ms, as the venue) a ``delta`` with only the fields that changed. Event times are on
  the push grid; a snapshot carries the time of the state it shows.
* ``allLiquidation``: every liquidation of the market (complete, never throttled), batched
  per symbol every ``liquidation_interval_s`` (500 ms) as an array.
* ``publicTrade``: every second, per subscribed symbol, the second's liquidation fills and
  the market's calm tape (:func:`.wire.trade_rows`): one frame a symbol a second, cheap
  beside ten ticker deltas.
* ``orderbook.{depth}.{symbol}`` (depth 1, 50, 200, 500 or 1000): a ``snapshot`` right
  after the subscribe ack, then every ``push_interval_s`` a ``delta`` of the levels that
  changed, ``u`` one more each time; the book is shaped from the market's quote
  (:mod:`.book_wire`), so it thins as a phase unwinds. :meth:`book_gap` skips an update
  (a test's gap).
* ``adlAlert.{USDT|USDC}`` (linear) and ``adlAlert.inverse``: every second, the simulated
  symbols' ADL state, as the REST ``adlAlert`` answers it (:mod:`.stress_wire`).
* The server sends no ping frames; clients keep the connection alive with ``op: ping``.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (liquidations meanwhile are held and sent
afterwards), :attr:`clients`, and the ground truth: :meth:`mark`, :meth:`oi_base`,
:attr:`prints` (every liquidation) and :attr:`pushed` (those sent to at least one subscriber).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any, Unpack
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response
from websockets.protocol import State

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer
from . import book_wire, stress_wire, wire
from .rest import BybitRest

PATH_PREFIX = "/v5/public/"
LIQUIDATION_INTERVAL_S = 0.5
ADL_INTERVAL_S = 1.0
"""``adlAlert.{coin}`` pushes: every second, as the venue's."""
TRADE_INTERVAL_S = 1.0
"""``publicTrade`` pushes: the venue's are real time; one batch a second keeps the simulated
market cheap at thousands of symbols."""
CS_START = 20_856_433_578


_Client = SessionClient[wire.Session]


def _category(path: str) -> str | None:
    category = urlsplit(path).path.removeprefix(PATH_PREFIX)
    return category if category in wire.CATEGORIES else None


class BybitSimulator(VenueServer[_Client]):
    """Bybit v5 on loopback. ``async with BybitSimulator() as sim: ...``."""

    SPECS = wire.BYBIT_SPECS
    TEMPLATE = "DOGEUSDT"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.1,
        liquidation_interval_s: float = LIQUIDATION_INTERVAL_S,
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: list only the simulated symbols in ``instruments-info``."""
        super().__init__(scenario, specs=wire.BYBIT_SPECS, ws_path="/v5/public", **market)
        self.push_interval_s = push_interval_s
        self.liquidation_interval_s = liquidation_interval_s
        listings = {c: wire.load_instruments(c) for c in wire.CATEGORIES}
        listings = {
            c: {**b, "result": {**b["result"], "list": self._grow(b["result"]["list"], "symbol")}}
            for c, b in listings.items()
        }
        perpetuals = wire.contracts(listings)
        self.contracts = {s: perpetuals[s] for s in self.market.symbols if s in perpetuals}
        if list_only_simulated:
            listings = {c: wire.only(body, self.contracts) for c, body in listings.items()}
        self.listed = {c: wire.listed(listings, c) for c in wire.CATEGORIES}
        self.rest = BybitRest(listings, market=self.market, contracts=self.contracts)
        self.books = {
            s: wire.TickerBook(c, CS_START + 1_000_000 * i)
            for i, (s, c) in enumerate(self.contracts.items())
        }
        self.pushed: list[LiquidationPrint] = []
        """Liquidations sent to at least one subscriber of their ``allLiquidation`` topic."""
        self._pending: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        self._fills: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        """Liquidations not yet printed on ``publicTrade``."""
        self._trade_id = 0
        self.depth_books: dict[tuple[str, int], book_wire.DepthBook] = {}
        """The order books subscribed at least once, by symbol and depth."""
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        self._tick(wall_ms())  # every book has a state before the first subscriber
        return [
            self._on_grid(self.push_interval_s, self._push_books),
            self._on_grid(self.push_interval_s, self._push_tickers),
            self._on_grid(self.liquidation_interval_s, self._flush_liquidations),
            self._on_grid(ADL_INTERVAL_S, self._push_adl),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
        ]

    # -- websocket -------------------------------------------------------------------------

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: time, position side, size and price, as sent."""
        row = wire.liquidation_row(p, self.contracts[p.symbol])
        return [(p.symbol, f"{row['T']}:{row['S']}:{row['v']}:{row['p']}")]

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if _category(request.path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        category = _category(conn.request.path if conn.request else "/")
        if category is None:  # pragma: no cover - refused by _check_path
            return
        session = wire.Session(category, str(uuid.uuid4()), self.listed[category])
        with self._tracked(_Client(conn, session)) as client:
            async for message in conn:
                reply, new = session.handle(message)
                await conn.send(reply)
                self._send_snapshots(client, new)

    def _push_adl(self, ts: int) -> None:
        """Each ``adlAlert.{coin}`` frame to its subscribers (every second, as the venue)."""
        subscribed = [c for c in self._clients if any(t.startswith("adlAlert.")
                                                      for t in c.session.topics)]  # fmt: skip
        if not subscribed:
            return
        pools = self.rest.pool_of
        for topic, frame in stress_wire.adl_alert_frames(self.market, self.contracts, pools,
                                                         ts).items():  # fmt: skip
            to = [c.conn for c in subscribed
                  if c.session.wants(topic) and c.conn.state is State.OPEN]  # fmt: skip
            if to:
                broadcast(to, frame)

    def _send_snapshots(self, client: _Client, topics: list[str]) -> None:
        """The current state of each newly subscribed ``tickers`` topic (synchronously, so
        no delta of that topic can overtake its snapshot)."""
        for topic in topics:
            if (ob := book_wire.parse_topic(topic)) is not None:
                self._send_book_snapshot(client, topic, *ob)
                continue
            name, _, symbol = topic.partition(".")
            book = self.books.get(symbol)
            if name != "tickers" or book is None:
                continue  # listed but not simulated: nothing to send
            frame = wire.ticker_frame("snapshot", book.fields, book.cs, book.ts, symbol)
            broadcast([client.conn], frame)
            client.session.snapshotted.add(topic)

    def _send_book_snapshot(self, client: _Client, topic: str, depth: int, symbol: str) -> None:
        """The book's state now (its subscribers get the delta to it first, so none of
        them sees a gap)."""
        contract = self.contracts.get(symbol)
        if contract is None:
            return  # listed but not simulated
        book = self.depth_books.get((symbol, depth))
        ts = wall_ms()
        if book is None:
            book = self.depth_books[symbol, depth] = book_wire.DepthBook(contract, depth)
            book.update(self.market.quote(symbol))
        else:
            self._advance_book(topic, book, ts)
        broadcast([client.conn], book.snapshot(ts))
        client.session.snapshotted.add(topic)

    def _advance_book(self, topic: str, book: book_wire.DepthBook, ts: int) -> None:
        to = [c.conn for c in self._clients if topic in c.session.snapshotted
              and c.conn.state is State.OPEN]  # fmt: skip
        delta = book.update(self.market.quote(book.contract.symbol))
        if delta is not None and to:
            broadcast(to, book.frame("delta", ts, *delta))

    def _push_books(self, ts: int) -> None:
        """The subscribed books' deltas (a book nobody follows is not moved)."""
        for (symbol, depth), book in self.depth_books.items():
            topic = f"orderbook.{depth}.{symbol}"
            if any(topic in c.session.snapshotted for c in self._clients):
                self._advance_book(topic, book, ts)

    def book_gap(self, symbol: str) -> None:
        """Skip an update of ``symbol``'s books: its subscribers' next delta has a gap."""
        for (s, _), book in self.depth_books.items():
            if s == symbol:
                book.u += 1

    def _tick(self, ts: int) -> dict[str, dict[str, str]]:
        """Move every book to the market; the deltas by symbol."""
        out: dict[str, dict[str, str]] = {}
        for symbol, book in self.books.items():
            delta = book.update(self.market.quote(symbol), ts)
            if delta:
                out[symbol] = delta
        return out

    def _push_tickers(self, ts: int) -> None:
        for symbol, delta in self._tick(ts).items():
            topic, book = f"tickers.{symbol}", self.books[symbol]
            to = [c.conn for c in self._clients if topic in c.session.snapshotted]
            if to:
                broadcast(to, wire.ticker_frame("delta", delta, book.cs, ts, symbol))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        for p in prints:
            if p.symbol in self.contracts:
                self._pending[p.symbol].append(p)
                self._fills[p.symbol].append(p)

    def _push_trades(self, ts: int) -> None:
        """The last second's trades of each symbol, to its ``publicTrade`` subscribers."""
        fills, self._fills = self._fills, defaultdict(list)
        subscribed = [c for c in self._clients if c.conn.state is State.OPEN]
        if not subscribed:
            return
        for symbol, contract in self.contracts.items():
            topic = f"publicTrade.{symbol}"
            to = [c.conn for c in subscribed if c.session.wants(topic)]
            if not to:
                continue
            mine = sorted(fills.get(symbol, ()), key=lambda p: p.ts_ms)
            rows = wire.trade_rows(self.market.quote(symbol), contract, ts, mine, self._trade_id)
            self._trade_id += len(rows)
            if rows:
                broadcast(to, wire.trade_frame(symbol, rows, ts))

    def _flush_liquidations(self, _tick_ms: int) -> None:
        if not self._pending:
            return
        ts = wall_ms()  # the batch's send time, not the grid's
        pending, self._pending = self._pending, defaultdict(list)
        for symbol, prints in pending.items():
            self._push_liquidations(symbol, sorted(prints, key=lambda p: p.ts_ms), ts)

    def _push_liquidations(self, symbol: str, prints: list[LiquidationPrint], ts: int) -> None:
        topic, contract = f"allLiquidation.{symbol}", self.contracts[symbol]
        to = [
            c.conn for c in self._clients if c.session.wants(topic) and c.conn.state is State.OPEN
        ]
        if not to:
            return  # nobody subscribed: these are not sent (they stay in the ground truth)
        rows: list[dict[str, Any]] = [wire.liquidation_row(p, contract) for p in prints]
        broadcast(to, wire.liquidation_frame(symbol, rows, ts))
        self.pushed.extend(prints)
