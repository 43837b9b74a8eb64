"""BitMEX's public REST endpoints that the service calls (``https://www.bitmex.com``).

* ``GET /api/v1/instrument/active``: every instrument open for trading, a JSON array of rows:
  the 2021 recording (futures, perpetuals, quanto and inverse) with the hand-written linear
  rows (see ``data/bitmex/README.md``), or only the simulated perpetuals.
* ``GET /api/v1/instrument?symbol=<symbol>``: that instrument's row (``[]`` if unknown).

:attr:`BitmexRest.requests` lists every request's path and query, to check what clients call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import wire


class BitmexRest:
    """The REST side of the simulator: the instrument listing."""

    def __init__(self, listing: Sequence[dict[str, Any]]) -> None:
        self.listing = list(listing)
        self.requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/api/v1/instrument/active", self._active),
                Route("/api/v1/instrument", self._instrument),
            ]
        )

    def _reply(self, request: Request, body: Any) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(request.url.path + query)
        return Response(wire.encode(body), 200, media_type="application/json")

    async def _active(self, request: Request) -> Response:
        return self._reply(request, self.listing)

    async def _instrument(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol")
        return self._reply(request, [r for r in self.listing if r["symbol"] == symbol])
