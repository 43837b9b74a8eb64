"""The example venue on loopback: ``/ws`` (subscribe, then pushes) and ``GET /instruments``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, broadcast

from service.simulate.asgi_server import AsgiServer
from service.simulate.clock import next_tick, wall_ms
from service.simulate.market import LiquidationPrint
from service.simulate.scenario import DEFAULT_SCENARIO, Scenario
from service.simulate.server import MarketOptions, VenueServer

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
        push_interval_s: float = 1.0,
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        super().__init__(scenario, specs=wire.EXAMPLE_SPECS, ws_path="/ws", **market)
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
