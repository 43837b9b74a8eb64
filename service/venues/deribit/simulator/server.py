"""A local Deribit server on loopback: the real JSON-RPC websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/ws/api/v2``; other paths: 404): the
requests of :mod:`.wire` (``public/subscribe``/``unsubscribe``,
``public/set_heartbeat``/``disable_heartbeat``, ``public/test``, ``public/get_time``), each
answered with the request's ``id``. Channels ``ticker.{instrument}.{100ms|agg2}``,
``trades.{instrument}.{100ms|agg2}`` and ``book.{instrument}.{100ms|agg2}`` of the listed
perpetuals.

* ``ticker``: the current state at once on subscription, then every ``push_interval_s``
  (100 ms): mark, index, open interest (USD on inverse, coin on linear contracts),
  ``current_funding`` (the market's rate per 8 h) and ``funding_8h`` (its trailing 8 h
  average).
* ``trades``: every ``flush_interval_s``, per instrument, the liquidations since the last
  push (every one: a complete tape), each a trade flagged ``T``, ``M`` or ``MT`` (see
  :func:`.deribit_wire.flag`), followed by one ordinary trade; and every second the
  market's calm tape (:func:`.wire.tape_rows`: a taker buy and a taker sell). Nothing is
  replayed on subscription. Liquidations with no subscriber are not sent (they stay in
  :attr:`prints`).
* ``book``: per instrument, the whole book (``snapshot``) at once on subscription, then every
  ``book_interval_s`` (100 ms) a ``change`` of the levels that changed, chained by
  ``prev_change_id`` (:mod:`.book_wire`: 200 levels a side, shaped from the market's quote,
  so it thins as a phase unwinds). :meth:`book_gap` skips a ``change_id``: the subscribers'
  next change breaks the chain.
* Heartbeats: after ``public/set_heartbeat`` (interval >= 10 s, divided by
  ``heartbeat_scale`` for fast tests), every interval the server sends a ``heartbeat`` frame
  of type ``heartbeat`` when nothing else went out meanwhile, then a ``test_request``; if
  the previous ``test_request`` got no ``public/test`` since, it closes the connection
  instead (:data:`HEARTBEAT_CLOSE`; the code is not documented, chosen here).

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (answers and heartbeats still flow; liquidations
are held and sent afterwards), :attr:`clients`; ground truth: :meth:`mark`, :meth:`oi_base`,
:attr:`prints` (every liquidation), :attr:`sent` (each liquidation pushed, with its trade
row, once), :attr:`heartbeat_closes`, :attr:`reused_request_ids`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Unpack

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import next_tick, wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer
from . import book_wire, wire
from .rest import DeribitRest

WS_PATH: Final = "/ws/api/v2"
HEARTBEAT_CLOSE: Final = (1000, "test_request not answered")
EIGHT_HOURS_S: Final = 8 * 3600.0
FIRST_TRADE_ID: Final = 66_460_000
TAPE_INTERVAL_S: Final = 1.0
"""The calm tape's pushes: one a contract a second (the venue's ``100ms`` batches would be
ten; a second's worth keeps the simulated market cheap)."""


def _now_us() -> int:
    return time.time_ns() // 1_000


@dataclass(slots=True, eq=False)
class _Client(SessionClient[wire.Session]):
    beats: asyncio.Task[None] | None = None
    quiet: bool = True
    """Nothing was sent since the last heartbeat tick."""
    books: set[str] = field(default_factory=set)
    """The ``book`` channels whose snapshot this connection was sent (changes follow)."""


class DeribitSimulator(VenueServer[_Client]):
    """Deribit perpetuals on loopback. ``async with DeribitSimulator() as sim: ...``."""

    SPECS = wire.DERIBIT_SPECS
    TEMPLATE = "ETH_USDC-PERPETUAL"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.1,
        flush_interval_s: float = 0.1,
        heartbeat_scale: float = 1.0,
        list_only_simulated: bool = False,
        book_interval_s: float = 0.1,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the instrument listing holds only the simulated perpetuals (the
        recorded one has 19 perpetuals and 18 dated futures)."""
        super().__init__(scenario, specs=wire.DERIBIT_SPECS, ws_path=WS_PATH, **market)
        listing = {
            cur: {**body, "result": self._grow(body["result"], "instrument_name")}
            for cur, body in wire.load_listing().items()
        }
        self.contracts = wire.contracts(listing, self.market.symbols)
        if not self.contracts:
            raise ValueError(f"none of {self.market.symbols} is a Deribit perpetual")
        if list_only_simulated:
            listing = wire.only(listing, self.contracts)
        self._listed = frozenset(r["instrument_name"] for r in wire.rows(listing))
        self.rest = DeribitRest(listing)
        self.push_interval_s, self.flush_interval_s = push_interval_s, flush_interval_s
        self.heartbeat_scale = heartbeat_scale
        self.book_interval_s = book_interval_s
        self.depth_books: dict[str, book_wire.DepthBook] = {}
        """The books subscribed at least once, by instrument."""
        self.sent: list[tuple[LiquidationPrint, dict[str, Any]]] = []
        """Every liquidation pushed (to at least one subscriber), with its trade row."""
        self.pushed: list[LiquidationPrint] = []
        self._rows: dict[LiquidationPrint, dict[str, Any]] = {}
        self.heartbeat_closes = 0
        self.reused_request_ids = 0
        """Requests whose id the same connection had used before (see
        :attr:`.deribit_wire.Session.reused_ids`)."""
        self._funding_8h = {s: self.market.quote(s).funding_rate_8h for s in self.contracts}
        self._pending: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        self._trade_id = FIRST_TRADE_ID
        self._seq: defaultdict[str, int] = defaultdict(lambda: 40_000_000)
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """The trade's id and each position side it closed (two for an ``MT`` trade)."""
        row = self._rows[p]
        return [
            (row["instrument_name"], f"{row['trade_id']}:{side.value}")
            for side in wire.liquidated_sides(p)
        ]

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._push_tickers(),
            self._every(self.flush_interval_s, self._flush_trades),
            self._on_grid(TAPE_INTERVAL_S, self._push_tape),
            self._on_grid(self.book_interval_s, self._push_books),
        ]

    # -- websocket -------------------------------------------------------------------------

    async def _handle(self, conn: ServerConnection) -> None:
        session = wire.Session(self._listed)
        with self._tracked(_Client(conn, session)) as client:
            try:
                async for message in conn:
                    interval, reused = session.heartbeat_s, session.reused_ids
                    answer, added = session.handle(message, time.monotonic(), _now_us())
                    self.reused_request_ids += session.reused_ids - reused
                    await conn.send(answer)
                    if session.heartbeat_s != interval:
                        self._restart_heartbeats(client)
                    if not self.stalled:
                        self._snapshot(client, added)
            finally:
                if client.beats is not None:
                    client.beats.cancel()

    def _send(self, clients: list[_Client], frame: str) -> None:
        live = [c for c in clients if c.conn.state is State.OPEN]
        broadcast([c.conn for c in live], frame)
        for c in live:
            c.quiet = False

    def _snapshot(self, client: _Client, added: list[str]) -> None:
        """The current ticker of each newly subscribed ticker channel, the whole book of each
        newly subscribed book channel."""
        now = wall_ms()
        for channel in added:
            kind, name, _ = channel.split(".")
            if kind == "ticker" and name in self.contracts:
                self._send([client], wire.notification(channel, self._ticker(name, now)))
            elif kind == book_wire.KIND and name in self.contracts:
                self._send_book_snapshot(client, channel, name, now)

    def _send_book_snapshot(self, client: _Client, channel: str, name: str, ts: int) -> None:
        """The book's state now (its subscribers get the change to it first, so none of them
        sees a break in the chain)."""
        client.books.discard(channel)  # a resubscription: no change before its snapshot
        book = self.depth_books.get(name)
        if book is None:
            book = self.depth_books[name] = book_wire.DepthBook(self.contracts[name])
            book.update(self.market.quote(name))
        else:
            self._advance_book(name, book, ts)
        self._send([client], book.snapshot(channel, ts))
        client.books.add(channel)

    def _advance_book(self, name: str, book: book_wire.DepthBook, ts: int) -> None:
        rows = book.update(self.market.quote(name))
        if rows is None:
            return
        subscribers = {
            channel: [c for c in clients if channel in c.books]
            for channel, clients in self._subscribers(book_wire.KIND, name).items()
        }
        data = book.data("change", ts, *rows)  # its change_id moves on, told or not
        for channel, clients in subscribers.items():
            if clients:
                self._send(clients, wire.notification(channel, data))

    def _push_books(self, ts: int) -> None:
        """The subscribed books' changes (a book nobody follows is not moved)."""
        for name, book in self.depth_books.items():
            if self._subscribers(book_wire.KIND, name):
                self._advance_book(name, book, ts)

    def book_gap(self, name: str) -> None:
        """Skip a ``change_id`` of ``name``'s book: its subscribers' next change names a
        ``prev_change_id`` they never got."""
        self.depth_books[name].change_id += 1

    def _ticker(self, name: str, ts: int) -> dict[str, Any]:
        return wire.ticker_data(
            self.market.quote(name), self.contracts[name], ts, self._funding_8h[name]
        )

    def _subscribers(self, kind: str, name: str) -> dict[str, list[_Client]]:
        """Clients subscribed to ``kind`` of ``name``, by channel (any interval)."""
        out: dict[str, list[_Client]] = {}
        prefix = f"{kind}.{name}."
        for c in self._clients:
            for channel in c.session.channels:
                if channel.startswith(prefix):
                    out.setdefault(channel, []).append(c)
        return out

    async def _push_tickers(self) -> None:
        """Not :meth:`_on_grid`: the trailing 8 h average moves on while stalled."""
        interval = self.push_interval_s
        weight = min(1.0, interval * self.clock.time_scale / EIGHT_HOURS_S)
        while True:
            tick = await next_tick(interval)
            for name in self.contracts:  # the trailing 8 h average moves on
                rate = self.market.quote(name).funding_rate_8h
                self._funding_8h[name] += (rate - self._funding_8h[name]) * weight
            if self.stalled:
                continue
            ts = round(tick * interval * 1000)
            for name in self.contracts:
                for channel, clients in self._subscribers("ticker", name).items():
                    self._send(clients, wire.notification(channel, self._ticker(name, ts)))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        for p in prints:
            if p.symbol in self.contracts:
                self._pending[p.symbol].append(p)

    def _flush_trades(self) -> None:
        pending, self._pending = self._pending, defaultdict(list)
        for name, prints in pending.items():
            self._push_trades(name, sorted(prints, key=lambda p: p.ts_ms))

    def _next_ids(self, name: str) -> tuple[int, int]:
        self._trade_id += 1
        self._seq[name] += 1
        return self._trade_id, self._seq[name]

    def _push_trades(self, name: str, prints: list[LiquidationPrint]) -> None:
        subscribers = self._subscribers("trades", name)
        if not subscribers:
            return  # nobody subscribed: not sent (they stay in the ground truth)
        c, quote = self.contracts[name], self.market.quote(name)
        rows: list[dict[str, Any]] = []
        for p in prints:
            row = wire.trade_row(p, c, *self._next_ids(name), quote.index)
            rows.append(row)
            self.sent.append((p, row))
            self.pushed.append(p)
            self._rows[p] = row
        rows.append(wire.plain_trade_row(quote, c, wall_ms(), *self._next_ids(name)))
        for channel, clients in subscribers.items():
            self._send(clients, wire.notification(channel, rows))

    def _push_tape(self, ts: int) -> None:
        """Each subscribed contract's calm trades of the second (one notification each)."""
        for name, c in self.contracts.items():
            subscribers = self._subscribers("trades", name)
            if not subscribers:
                continue
            ids = [self._next_ids(name), self._next_ids(name)]
            rows = wire.tape_rows(self.market.quote(name), c, ts, ids)
            for channel, clients in subscribers.items():
                self._send(clients, wire.notification(channel, rows))

    # -- heartbeats ------------------------------------------------------------------------

    def _restart_heartbeats(self, client: _Client) -> None:
        if client.beats is not None:
            client.beats.cancel()
            client.beats = None
        if client.session.heartbeat_s is not None:
            client.beats = asyncio.create_task(self._heartbeats(client))

    async def _heartbeats(self, client: _Client) -> None:
        session = client.session
        assert session.heartbeat_s is not None
        interval = session.heartbeat_s / self.heartbeat_scale
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                if session.test_pending:
                    self.heartbeat_closes += 1
                    await client.conn.close(*HEARTBEAT_CLOSE)
                    return
                if client.quiet:
                    await client.conn.send(wire.heartbeat("heartbeat"))
                client.quiet = True
                await client.conn.send(wire.heartbeat("test_request"))
                session.test_pending = True
