"""The example venue on loopback: ``/ws`` (subscribe, then pushes) and ``GET /instruments``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response

from service.simulate.asgi_server import AsgiServer
from service.simulate.clock import MarketClock, next_tick, wall_ms
from service.simulate.market import LiquidationPrint
from service.simulate.scenario import DEFAULT_SCENARIO, Scenario
from service.simulate.server import VenueServer

from . import wire


@dataclass(slots=True, eq=False)
class _Client:
    conn: ServerConnection
    subscribed: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class ExampleSimulator(VenueServer[_Client]):
    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        symbols: Iterable[str] = tuple(s.symbol for s in wire.EXAMPLE_SPECS),
        seed: int = 0,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        push_interval_s: float = 1.0,
        list_only_simulated: bool = False,
        clock: MarketClock | None = None,
    ) -> None:
        super().__init__(
            scenario, clock, symbols=symbols, specs=wire.EXAMPLE_SPECS, seed=seed,
            start_s=start_s, time_scale=time_scale, ws_path="/ws",
        )  # fmt: skip
        self.push_interval_s = push_interval_s
        self.pushed: list[LiquidationPrint] = []
        self._ids = itertools.count(1)
        self._order_ids: dict[LiquidationPrint, int] = {}
        self._pending: list[LiquidationPrint] = []
        self.clock.add_listener(self._offer)
        self.listed = wire.instruments(wire.EXAMPLE_SPECS)
        self._http = AsgiServer(Starlette(routes=[Route("/instruments", self._instruments)]))

    async def _instruments(self, _: HttpRequest) -> JSONResponse:
        return JSONResponse(self.listed)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [self._push()]

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        self._pending.extend(prints)

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        return [(p.symbol, str(self._order_ids[p]))]

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path != "/ws":
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn)
        with self._tracked(client):
            async for message in conn:
                if message == '{"op":"subscribe"}':
                    client.subscribed = True
                    await conn.send(wire.SUBSCRIBED)

    async def _push(self) -> None:
        while True:
            await next_tick(self.push_interval_s)
            to = [c.conn for c in self._clients if c.subscribed]
            prints, self._pending = self._pending, []
            if self.stalled or not to:
                continue
            now = wall_ms()
            broadcast(to, wire.ticker(self.market.quotes(), now))
            if prints:
                self._order_ids.update((p, next(self._ids)) for p in prints)
                rows = [wire.liquidation_row(p, self._order_ids[p]) for p in prints]
                broadcast(to, wire.liquidations(rows, now))
                self.pushed += prints
