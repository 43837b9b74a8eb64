"""A local Bitget server on loopback: the real public v3 websocket and v2 REST, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/v3/ws/public``, and ``/v2/ws/public`` for
the order books; other paths: 404):

* ``subscribe``/``unsubscribe`` with many args, one ack per arg, error frames for unknown
  args (see :mod:`.wire`); at most 1000 channels per connection; more than 10
  client messages in a second (pings included) close the connection, as the venue does;
* the text ``ping`` is answered with the text ``pong``; a connection that sent no ping for
  ``ping_timeout_s`` (the venue: 2 min) is closed;
* ``ticker`` (per instType and symbol): a ``snapshot`` at subscription, then an ``update``
  with every field every ``push_interval_s``; times on the push grid;
* ``publicTrade`` (per instType and symbol): every second, the second's liquidation fills
  (all of them) and the market's calm tape (:func:`.wire.trade_rows`); at subscription a
  ``snapshot`` of the symbol's latest trades, as the venue sends (already counted: the
  collector skips it);
* ``liquidation`` (per instType): every ``liquidation_interval_s`` (1 s), per symbol the
  largest long and the largest short liquidation of the second (Bitget's sample; the
  rest of the market's prints are never sent);
* on ``/v2/ws/public`` only, ``books15`` (``books5``, ``books1``) with v2 args (per instType
  and symbol): the whole book, best 15 levels a side, at subscription and then every
  :data:`~.book_wire.BOOK_INTERVAL_S` (the docs' 150 ms), shaped from the market's quote
  (:mod:`.book_wire`: it thins as a phase unwinds).

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (liquidations meanwhile wait and are sampled
afterwards), :attr:`clients`; ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints`
(every liquidation of the market), :attr:`pushed` (those the sample sent to a subscriber),
:meth:`row` (a print's row as sent).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, Unpack

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer, text_of
from . import book_wire, wire
from .rest import BitgetRest

WS_PATH: Final = "/v3/ws/public"
V2_WS_PATH: Final = "/v2/ws/public"
TRADE_INTERVAL_S: Final = 1.0
"""``publicTrade`` pushes: the venue's are real time; one batch a second keeps the simulated
market cheap at thousands of symbols."""


@dataclass(slots=True, eq=False)
class _Client(SessionClient[wire.Session]):
    last_ping: float


class BitgetSimulator(VenueServer[_Client]):
    """Bitget futures on loopback. ``async with BitgetSimulator() as sim: ...``."""

    SPECS = wire.BITGET_SPECS
    TEMPLATE = "DOGEUSDT"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.2,
        liquidation_interval_s: float = 1.0,
        ping_timeout_s: float = 120.0,
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the contract listings hold only the simulated perpetuals."""
        super().__init__(scenario, specs=wire.BITGET_SPECS, ws_path=WS_PATH, **market)
        listings = {pt: wire.load_contracts(pt) for pt in wire.PRODUCT_TYPES}
        listings = {pt: {**b, "data": self._grow(b["data"], "symbol")} for pt, b in
                    listings.items()}  # fmt: skip
        perpetuals = wire.contracts(listings)
        self.contracts = {s: perpetuals[s] for s in self.market.symbols if s in perpetuals}
        if list_only_simulated:
            listings = {pt: wire.only(body, self.contracts) for pt, body in listings.items()}
        self.listed = wire.listed(listings)
        self.rest = BitgetRest(listings)
        self.books = {s: wire.TickerBook(c) for s, c in self.contracts.items()}
        self.push_interval_s = push_interval_s
        self.liquidation_interval_s = liquidation_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.pushed: list[LiquidationPrint] = []
        """Liquidations the sample kept and sent to at least one subscriber of their
        instType (kept with nobody subscribed: not sent, not listed here)."""
        self._pending: list[LiquidationPrint] = []
        self._fills: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        """Liquidations not yet printed on ``publicTrade``."""
        self._latest_trades: dict[str, list[dict[str, str]]] = {}
        """Per symbol, the trades last pushed: the snapshot a new subscriber gets."""
        self._trade_id = 1_432_912_492_051_054_592
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._on_grid(self.push_interval_s, self._push_tickers),
            self._on_grid(self.liquidation_interval_s, self._flush_liquidations),
            self._on_grid(TRADE_INTERVAL_S, self._push_trades),
            self._on_grid(book_wire.BOOK_INTERVAL_S, self._push_books),
            self._close_silent(),
        ]

    def row(self, p: LiquidationPrint) -> dict[str, str]:
        """The ``liquidation`` row that carries ``p`` (when the sample kept it)."""
        return wire.liquidation_row(p, self.contracts[p.symbol])

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: time, side, amount and price, as sent."""
        row = self.row(p)
        return [(p.symbol, f"{row['ts']}:{row['side']}:{row['amount']}:{row['price']}")]

    # -- websocket -------------------------------------------------------------------------

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        """The v3 path, and v2's for the order books."""
        if request.path.split("?")[0] == V2_WS_PATH:
            return None
        return super()._check_path(conn, request)

    async def _handle(self, conn: ServerConnection) -> None:
        v2 = conn.request is not None and conn.request.path.split("?")[0] == V2_WS_PATH
        session = wire.Session(secrets.token_hex(4), self.listed, v2=v2)
        with self._tracked(_Client(conn, session, time.monotonic())) as client:
            async for message in conn:
                now = time.monotonic()
                if session.over_rate(now):
                    await conn.close(*wire.TOO_MANY_MESSAGES)
                    break
                text = text_of(message)
                if text == "ping":
                    client.last_ping = now
                    await conn.send("pong")
                    continue
                replies, added = session.handle(text)
                for reply in replies:
                    await conn.send(reply)
                if not self.stalled:
                    self._snapshot(client, added)

    def _snapshot(self, client: _Client, added: list[wire.Arg]) -> None:
        """A ``ticker`` snapshot of each newly subscribed simulated symbol (synchronously: no
        update of that symbol can overtake it)."""
        now = wall_ms()
        for _inst_type, topic, symbol in added:
            if topic in wire.BOOK_CHANNELS and symbol in self.contracts:
                book = book_wire.books_frame(
                    self.contracts[symbol], topic, self.market.quote(symbol), now
                )
                broadcast([client.conn], book)
                continue
            if topic == "publicTrade" and (rows := self._latest_trades.get(symbol)):
                trades = wire.trade_frame("snapshot", self.contracts[symbol], rows, now)
                broadcast([client.conn], trades)
            if topic != "ticker" or symbol not in self.books:
                continue  # listed but not simulated: acked, never pushed
            c = self.contracts[symbol]
            row = self.books[symbol].row(self.market.quote(symbol), now)
            broadcast([client.conn], wire.ticker_frame("snapshot", c, row, now))

    def _subscribers(self, a: wire.Arg) -> list[ServerConnection]:
        return [c.conn for c in self._clients if a in c.session.args]

    def _push_tickers(self, ts: int) -> None:
        for symbol, c in self.contracts.items():
            if to := self._subscribers((c.inst_type, "ticker", symbol)):
                row = self.books[symbol].row(self.market.quote(symbol), ts)
                broadcast(to, wire.ticker_frame("update", c, row, ts))

    def _push_books(self, ts: int) -> None:
        """Each subscribed book, whole, to its subscribers (a book nobody follows: nothing)."""
        wanted = {a for c in self._clients if c.session.v2 for a in c.session.args}
        for a in wanted:
            _inst_type, channel, symbol = a
            if (c := self.contracts.get(symbol)) is not None:
                frame = book_wire.books_frame(c, channel, self.market.quote(symbol), ts)
                broadcast(self._subscribers(a), frame)

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        mine = [p for p in prints if p.symbol in self.contracts]
        self._pending.extend(mine)
        for p in mine:
            self._fills[p.symbol].append(p)

    def _push_trades(self, ts: int) -> None:
        """The last second's trades of each symbol, to its ``publicTrade`` subscribers."""
        fills, self._fills = self._fills, defaultdict(list)
        if not self._clients:
            return
        for symbol, c in self.contracts.items():
            if to := self._subscribers((c.inst_type, "publicTrade", symbol)):
                mine = sorted(fills.get(symbol, ()), key=lambda p: p.ts_ms)
                rows = wire.trade_rows(self.market.quote(symbol), c, ts, mine, self._trade_id)
                self._trade_id += len(rows)
                if rows:
                    self._latest_trades[symbol] = rows
                    broadcast(to, wire.trade_frame("update", c, rows, ts))

    def _flush_liquidations(self, ts: int) -> None:
        if not self._pending:
            return
        batch, self._pending = wire.sample(self._pending), []
        by_type: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        for p in batch:
            by_type[self.contracts[p.symbol].inst_type].append(p)
        for inst_type, prints in by_type.items():
            if to := self._subscribers((inst_type, "liquidation", "")):
                rows = [self.row(p) for p in prints]
                broadcast(to, wire.liquidation_frame(inst_type, rows, ts))
                self.pushed.extend(prints)

    async def _close_silent(self) -> None:
        """Close the connections that sent no ping for ``ping_timeout_s``."""
        tick = min(1.0, self.ping_timeout_s / 4)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            silent = [c for c in self._clients if now - c.last_ping > self.ping_timeout_s]
            await asyncio.gather(*(c.conn.close(*wire.NO_PING) for c in silent))
