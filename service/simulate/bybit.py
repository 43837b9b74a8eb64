"""A local Bybit v5 server on loopback: the real public linear/inverse protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/v5/public``): ``/v5/public/linear`` and
``/v5/public/inverse`` (any other path: HTTP 404). Each answers ``subscribe``,
``unsubscribe`` and ``ping`` as the venue does (see :mod:`.bybit_wire`); topics are
``tickers.{symbol}`` and ``allLiquidation.{symbol}`` of the symbols listed in that category.

* ``tickers``: a ``snapshot`` right after the subscribe ack, then every ``push_interval_s``
  (100 ms, as the venue) a ``delta`` with only the fields that changed. Event times are on
  the push grid; a snapshot carries the time of the state it shows.
* ``allLiquidation``: every liquidation of the market (complete, never throttled), batched
  per symbol every ``liquidation_interval_s`` (500 ms) as an array.
* The server sends no ping frames; clients keep the connection alive with ``op: ping``.

REST: see :mod:`.bybit_rest`. Test hooks: :meth:`drop_connections`, :meth:`stall`,
:attr:`clients`, and the ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every
liquidation) and :attr:`pushed` (those sent to at least one subscriber).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from . import bybit_wire as wire
from .asgi_server import AsgiServer
from .bybit_rest import BybitRest
from .clock import MarketClock, wall_ms
from .market import LiquidationPrint, Market
from .scenario import DEFAULT_SCENARIO, Interval, Scenario, get_scenario

PATH_PREFIX = "/v5/public/"
LIQUIDATION_INTERVAL_S = 0.5
CS_START = 20_856_433_578


@dataclass(slots=True, eq=False)
class _Client:
    conn: ServerConnection
    session: wire.Session
    gone: asyncio.Event = field(default_factory=asyncio.Event)


def _category(path: str) -> str | None:
    category = urlsplit(path).path.removeprefix(PATH_PREFIX)
    return category if category in wire.CATEGORIES else None


class BybitSimulator:
    """Bybit v5 on loopback. ``async with BybitSimulator() as sim: ...``."""

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        symbols: list[str] | tuple[str, ...] = wire.BYBIT_SYMBOLS,
        seed: int = 0,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        push_interval_s: float = 0.1,
        liquidation_interval_s: float = LIQUIDATION_INTERVAL_S,
        list_only_simulated: bool = False,
        clock: MarketClock | None = None,
    ) -> None:
        """``clock``: share one market with other venue servers (then started and stopped by
        its owner); its symbols that Bybit lists are served, the others ignored.
        ``list_only_simulated``: list only the simulated symbols in ``instruments-info``."""
        sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self._own_clock = clock is None
        self.clock = clock or MarketClock(
            Market(sc, symbols=symbols, specs=wire.BYBIT_SPECS, seed=seed, start_s=start_s),
            time_scale=time_scale,
        )
        self.market = self.clock.market
        self.push_interval_s = push_interval_s
        self.liquidation_interval_s = liquidation_interval_s
        listings = {c: wire.load_instruments(c) for c in wire.CATEGORIES}
        perpetuals = wire.contracts(listings)
        self.contracts = {s: perpetuals[s] for s in self.market.symbols if s in perpetuals}
        if list_only_simulated:
            listings = {c: wire.only(body, self.contracts) for c, body in listings.items()}
        self.listed = {c: wire.listed(listings, c) for c in wire.CATEGORIES}
        self.rest = BybitRest(listings)
        self.books = {
            s: wire.TickerBook(c, CS_START + 1_000_000 * i)
            for i, (s, c) in enumerate(self.contracts.items())
        }
        self.pushed: list[LiquidationPrint] = []
        """Liquidations sent to at least one subscriber of their ``allLiquidation`` topic."""
        self.connections_total = 0
        self.ws_base_url = ""
        self.rest_base_url = ""
        self._pending: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        self.clock.add_listener(self._offer)
        self._clients: set[_Client] = set()
        self._stall_until = 0.0
        self._ws: Server | None = None
        self._http = AsgiServer(self.rest.app)
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", ws_port: int = 0, rest_port: int = 0) -> Self:
        """Bind both servers (port 0: any free port) and start the market and the pushes.

        Raises ``OSError`` when a port cannot be bound (nothing is left running then).
        """
        self._ws = await serve(
            self._handle, host, ws_port, process_request=self._check_path, ping_interval=None
        )
        port = self._ws.sockets[0].getsockname()[1]
        try:
            rest_port = await self._http.start(host, rest_port)
        except OSError:
            await self.stop()
            raise
        netloc = f"[{host}]" if ":" in host else host
        self.ws_base_url = f"ws://{netloc}:{port}/v5/public"
        self.rest_base_url = f"http://{netloc}:{rest_port}"
        if self._own_clock:
            self.clock.start()
        self._tick(wall_ms())  # every book has a state before the first subscriber
        self._tasks = [
            asyncio.create_task(self._push_tickers()),
            asyncio.create_task(self._flush_liquidations()),
        ]
        return self

    async def stop(self) -> None:
        """Stop pushing, close every connection (1001 going away) and both servers."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
            self._ws = None
        await self._http.stop()
        if self._own_clock:
            await self.clock.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test hooks and ground truth -------------------------------------------------------

    @property
    def clients(self) -> int:
        """Open websocket connections."""
        return len(self._clients)

    async def drop_connections(self, *, abrupt: bool = True, timeout_s: float = 2.0) -> int:
        """Cut every connection: with no close frame (``abrupt``, like a network cut) or with
        a 1001 close. Returns how many were cut, once gone."""
        victims = list(self._clients)
        for c in victims:
            if abrupt:
                c.conn.transport.abort()
            else:
                await c.conn.close(1001, "going away")
        if victims:
            await asyncio.wait(
                [asyncio.create_task(c.gone.wait()) for c in victims], timeout=timeout_s
            )
        return len(victims)

    def stall(self, seconds: float) -> None:
        """Send no data frame for ``seconds`` (connections stay open and answer pings);
        liquidations meanwhile are held and sent afterwards."""
        self._stall_until = time.monotonic() + seconds

    @property
    def stalled(self) -> bool:
        return time.monotonic() < self._stall_until

    def mark(self, symbol: str) -> float:
        return self.market.mark(symbol)

    def oi_base(self, symbol: str) -> float:
        return self.market.oi_base(symbol)

    @property
    def prints(self) -> list[LiquidationPrint]:
        """Every liquidation the market produced (Bybit pushes them all)."""
        return self.clock.prints

    def ground_truth(self, until_ms: int | None = None) -> list[Interval]:
        """The scenario's labelled intervals in wall-clock ms, from start to ``until_ms``."""
        return self.clock.ground_truth(until_ms)

    # -- websocket -------------------------------------------------------------------------

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if _category(request.path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        category = _category(conn.request.path if conn.request else "/")
        if category is None:  # pragma: no cover - refused by _check_path
            return
        session = wire.Session(category, str(uuid.uuid4()), self.listed[category])
        client = _Client(conn, session)
        self._clients.add(client)
        self.connections_total += 1
        try:
            async for message in conn:
                reply, new = session.handle(message)
                await conn.send(reply)
                self._send_snapshots(client, new)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            client.gone.set()

    def _send_snapshots(self, client: _Client, topics: list[str]) -> None:
        """The current state of each newly subscribed ``tickers`` topic (synchronously, so
        no delta of that topic can overtake its snapshot)."""
        for topic in topics:
            name, _, symbol = topic.partition(".")
            book = self.books.get(symbol)
            if name != "tickers" or book is None:
                continue  # listed but not simulated: nothing to send
            frame = wire.ticker_frame("snapshot", book.fields, book.cs, book.ts, symbol)
            broadcast([client.conn], frame)
            client.session.snapshotted.add(topic)

    def _tick(self, ts: int) -> dict[str, dict[str, str]]:
        """Move every book to the market; the deltas by symbol."""
        out: dict[str, dict[str, str]] = {}
        for symbol, book in self.books.items():
            delta = book.update(self.market.quote(symbol), ts)
            if delta:
                out[symbol] = delta
        return out

    async def _push_tickers(self) -> None:
        interval = self.push_interval_s
        while True:
            now = time.time()
            tick = math.floor(now / interval) + 1
            await asyncio.sleep(tick * interval - now)
            if self.stalled:
                continue
            ts = round(tick * interval * 1000)
            for symbol, delta in self._tick(ts).items():
                topic, book = f"tickers.{symbol}", self.books[symbol]
                to = [c.conn for c in self._clients if topic in c.session.snapshotted]
                if to:
                    broadcast(to, wire.ticker_frame("delta", delta, book.cs, ts, symbol))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        for p in prints:
            if p.symbol in self.contracts:
                self._pending[p.symbol].append(p)

    async def _flush_liquidations(self) -> None:
        interval = self.liquidation_interval_s
        while True:
            now = time.time()
            tick = math.floor(now / interval) + 1
            await asyncio.sleep(tick * interval - now)
            if not self._pending or self.stalled:
                continue
            ts = wall_ms()
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
