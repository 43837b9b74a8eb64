"""What every venue server shares: the market it serves, the websocket and REST servers'
lifecycle, client bookkeeping, and the test hooks and ground truth.

A venue module subclasses :class:`VenueServer` and supplies the protocol: ``_handle`` (one
connection, inside :meth:`_tracked`), ``_loops`` (the pushes started with the server, most
of them run by :meth:`_on_grid` or :meth:`_every`) and, where they differ from the
defaults, ``_check_path`` (which websocket paths exist: by default ``ws_path`` alone) and
``_ws_options`` ("no server pings"). It builds its REST app and sets ``_http`` to serve it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import drift as _drift
from . import listing
from .asgi_server import AsgiServer
from .clock import MarketClock, next_tick
from .market import LiquidationPrint, Market, SymbolSpec
from .scenario import Interval, Scenario, get_scenario


class Client(Protocol):
    """A venue's per-connection state: its connection, and an event set once it is gone."""

    @property
    def conn(self) -> ServerConnection: ...

    @property
    def gone(self) -> asyncio.Event: ...


C = TypeVar("C", bound=Client)
S = TypeVar("S")


class MarketOptions(TypedDict, total=False):
    """The keywords every venue server takes for the market it serves, with their defaults."""

    symbols: Iterable[str] | None
    """The simulated symbols, picked from the venue's specs (``None``, the default: all)."""
    seed: int
    """The market's random seed (0); venues seed their own choices from it too."""
    time_scale: float
    """Market seconds per wall-clock second (1.0)."""
    start_s: float
    """Where in the scenario the market starts (0.0)."""
    clock: MarketClock | None
    """Share one market with other venue servers, started and stopped by its owner (the
    venue serves those of the market's symbols it lists)."""
    listing_size: int | None
    """List this many perpetuals: the simulated ones and clones of the venue's
    :attr:`~VenueServer.TEMPLATE` (:mod:`.listing`; ``None``, the default: no clone). With a
    shared ``clock``, its market holds the clones' specs (:meth:`~VenueServer.listing_specs`)."""


@dataclass(slots=True, eq=False)
class SessionClient(Generic[S]):
    """A connection and its protocol session (a venue that keeps more per connection
    subclasses it with its fields)."""

    conn: ServerConnection
    session: S
    gone: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True)


def text_of(message: str | bytes) -> str:
    """A client's message as text (a venue answers a binary frame as it would the text)."""
    return message if isinstance(message, str) else message.decode()


def canonical_id(i: tuple[str, str]) -> tuple[str, str]:
    """A liquidation identity (:meth:`VenueServer.wire_ids`, or a stored event's ``(symbol,
    event_id)``) with its numbers written one way: a parser may keep a size as the text it
    received ("247") or as the number it decoded ("247.0"); both are the same liquidation."""
    symbol, event_id = i

    def number(part: str) -> str:
        try:
            return repr(float(part))
        except ValueError:
            return part

    return symbol, ":".join(number(part) for part in event_id.split(":"))


class VenueServer(Generic[C]):
    """One venue on loopback over a market of its own, or over a shared ``clock``'s (then
    started and stopped by its owner). ``async with Sim() as sim: ...``."""

    _http: AsgiServer
    """The venue's REST app, served beside the websocket (set by the subclass)."""

    FAST: ClassVar[Mapping[str, Any]] = {"push_interval_s": 0.1}
    """Constructor options that make the venue push at test speed: every periodic push at
    least ten times a second (the conformance suite, ``tests/collect/test_conformance_live.py``).
    A venue with other periodic pushes (open interest, funding) adds their options."""

    RESENDS_ON_SUBSCRIBE: ClassVar[bool] = False
    """True: a new subscription re-sends the venue's recent liquidations (OKX's burst,
    Hyperliquid's snapshot, BitMEX's partial of resting orders), so what the venue sent while
    a client was away reaches it once it is back. Such a venue keeps :attr:`resent`."""

    SPECS: ClassVar[tuple[SymbolSpec, ...]] = ()
    """The perpetuals the venue simulates by default (its market's specs)."""

    TEMPLATE: ClassVar[str | None] = None
    """The recorded perpetual (one of :attr:`SPECS`) whose listing row and spec the clones of
    a ``listing_size`` listing copy (:mod:`.listing`)."""

    resent: list[LiquidationPrint]
    """Of a venue that :attr:`RESENDS_ON_SUBSCRIBE`: the liquidations it sent again to a new
    subscription, as often as it did."""

    pushed: list[LiquidationPrint]
    """The liquidations the venue put on the wire live, in order, each once (re-sends on a
    later subscription, such as OKX's burst or BitMEX's partials, are not counted again). Set
    by the subclass."""

    def __init__(
        self,
        scenario: Scenario | str,
        *,
        specs: Sequence[SymbolSpec],
        ws_path: str,
        symbols: Iterable[str] | None = None,
        seed: int = 0,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        clock: MarketClock | None = None,
        listing_size: int | None = None,
    ) -> None:
        """Without a ``clock``, a market of ``symbols`` (picked from ``specs``; default: all
        of them, and the clones of a ``listing_size`` listing) playing ``scenario`` (see
        :class:`MarketOptions`). ``ws_path``: the path :attr:`ws_base_url` ends with."""
        sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
        specs, self.synthetic = listing.grow_specs(specs, self.TEMPLATE, listing_size)
        """The clones' symbols (with their base) the venue lists beside its recorded rows."""
        self.seed = seed
        self._own_clock = clock is None
        if clock is None:
            market = Market(sc, symbols=symbols, specs=specs, seed=seed, start_s=start_s)
            clock = MarketClock(market, time_scale=time_scale)
        self.clock = clock
        self.market = self.clock.market
        self.connections_total = 0
        self.ws_base_url = ""
        self.rest_base_url = ""
        self._ws_path = ws_path
        self._clients: set[C] = set()
        self._stall_until = 0.0
        self.drift: _drift.ProtocolDrift | None = None
        """Set: the venue departs from its protocol so (see :mod:`.drift`); applied to the
        connections opened afterwards."""
        self._ws: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def listing_specs(cls, listing_size: int | None) -> tuple[SymbolSpec, ...]:
        """The specs of a market that simulates every perpetual of a ``listing_size``
        listing: :attr:`SPECS` and the clones of :attr:`TEMPLATE` (for a shared clock)."""
        return listing.grow_specs(cls.SPECS, cls.TEMPLATE, listing_size)[0]

    def _template_spec(self) -> SymbolSpec:
        """The spec the clones copy (when :attr:`synthetic` is not empty)."""
        return next(s for s in self.SPECS if s.symbol == self.TEMPLATE)

    def _grow(self, rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
        """A listing's rows plus the clones of the template's row (:func:`.listing.grow_rows`)."""
        if not self.synthetic:
            return [dict(r) for r in rows]
        return listing.grow_rows(rows, key, self._template_spec(), self.synthetic)

    # -- what a venue supplies -------------------------------------------------------------

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse (HTTP 404) a websocket path the venue does not serve: by default any path
        but ``ws_path`` (the query aside)."""
        if request.path.split("?")[0] != self._ws_path:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        """Serve one websocket connection until it closes."""
        raise NotImplementedError

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        """The push loops to run while the server is up (called once the market runs)."""
        raise NotImplementedError

    def _ws_options(self) -> dict[str, Any]:
        """Keyword arguments for the websocket server: by default it sends no pings (the
        venue's clients keep the connection alive)."""
        return {"ping_interval": None}

    # -- what a venue uses ------------------------------------------------------------------

    async def _on_grid(self, interval_s: float, push: Callable[[int], None]) -> None:
        """Call ``push(ts_ms)`` at every whole multiple of ``interval_s`` of wall-clock time,
        ``ts_ms`` that multiple (the venue's push grid), except while stalled."""
        while True:
            tick = await next_tick(interval_s)
            if not self.stalled:
                push(round(tick * interval_s * 1000))

    async def _every(self, interval_s: float, push: Callable[[], None]) -> None:
        """Call ``push()`` every ``interval_s`` (off the grid), except while stalled."""
        while True:
            await asyncio.sleep(interval_s)
            if not self.stalled:
                push()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", ws_port: int = 0, rest_port: int = 0) -> Self:
        """Bind both servers (port 0: any free port) and start the market and the pushes.

        Raises ``OSError`` when a port cannot be bound (nothing is left running then).
        """
        self._ws = await serve(
            self._serve, host, ws_port, process_request=self._check_path, **self._ws_options()
        )
        port = self._ws.sockets[0].getsockname()[1]
        try:
            rest_port = await self._http.start(host, rest_port)
        except OSError:
            await self.stop()
            raise
        netloc = f"[{host}]" if ":" in host else host
        self.ws_base_url = f"ws://{netloc}:{port}{self._ws_path}"
        self.rest_base_url = f"http://{netloc}:{rest_port}"
        if self._own_clock:
            self.clock.start()
        self._tasks = [asyncio.create_task(c) for c in self._loops()]
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

    async def _serve(self, conn: ServerConnection) -> None:
        """One connection: the venue's protocol, drifted when :attr:`drift` says so."""
        if self.drift is not None:
            _drift.apply(conn.protocol, self.drift)
        await self._handle(conn)

    @contextmanager
    def _tracked(self, client: C) -> Iterator[C]:
        """Count ``client`` among the open connections while the body runs; a closed
        connection ends the body quietly, and ``client.gone`` is set on the way out."""
        self._clients.add(client)
        self.connections_total += 1
        try:
            yield client
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            client.gone.set()

    # -- test hooks and ground truth -------------------------------------------------------

    @property
    def clients(self) -> int:
        """Open websocket connections."""
        return len(self._clients)

    async def drop_connections(self, *, abrupt: bool = True, timeout_s: float = 2.0) -> int:
        """Cut every connection: with no close frame (``abrupt``, like a network cut or a
        venue's connection time limit) or with a 1001 close. Returns how many were cut, once
        gone."""
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

    async def inject(self, frame: str | bytes) -> int:
        """Send ``frame`` as it is, between the venue's own pushes, to every open connection
        (hostile-input tests: a poison frame from a venue). Returns how many received it."""
        sent = 0
        for c in list(self._clients):
            try:
                await c.conn.send(frame)
            except ConnectionClosed:
                continue
            sent += 1
        return sent

    def stall(self, seconds: float) -> None:
        """Send no data frame for ``seconds`` (connections stay open and keep answering)."""
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
        """Every liquidation the market produced, pushed or not."""
        return self.clock.prints

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """The identities the venue's protocol gives the positions ``p`` closed, as its frames
        carried them: ``(instrument, id)`` with the venue's own id where it has one, else the
        fields that identify the liquidation as sent, joined by ``:``. This is the
        convention of :attr:`service.events.Liquidation.event_id`, worked out here from the
        simulator's own encoder: the conformance suite checks that the collector stores
        exactly these, once each."""
        raise NotImplementedError

    def sent_ids(self, since: int = 0, upto: int | None = None) -> Counter[tuple[str, str]]:
        """:meth:`wire_ids` of :attr:`pushed` ``[since:upto]``, each as often as it was sent
        live (two prints the wire cannot tell apart count twice)."""
        return Counter(i for p in self.pushed[since:upto] for i in self.wire_ids(p))

    def ground_truth(self, until_ms: int | None = None) -> list[Interval]:
        """The scenario's labelled intervals in wall-clock ms, from start to ``until_ms``."""
        return self.clock.ground_truth(until_ms)
