"""Gate's public futures REST endpoints (``https://api.gateio.ws``) that the service calls.

* ``GET /api/v4/futures/{settle}/contracts`` (``usdt``, ``btc``): the lists of
  ``data/gateio`` (a bare JSON array, as the venue answers). Another settlement answers
  HTTP 400 ``{"label":"INVALID_PARAM_VALUE","message":"invalid settle: ..."}`` (Gate's error
  shape, which ccxt maps by ``label``; the message is ours).
* ``GET /api/v4/futures/{settle}/contracts/{contract}``: one row, or 404
  ``{"label":"CONTRACT_NOT_FOUND",...}``.

:attr:`GateRest.requests` lists every request's path and query, to check what clients call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import wire


class GateRest:
    """The REST side of the simulator: contract lists by settlement."""

    def __init__(self, listings: Mapping[str, list[dict[str, Any]]]) -> None:
        self.listings = listings
        self.requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/api/v4/futures/{settle}/contracts", self._contracts),
                Route("/api/v4/futures/{settle}/contracts/{contract}", self._contract),
            ]
        )

    def _reply(self, request: Request, body: Any, status: int = 200) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(request.url.path + query)
        return Response(wire.encode(body), status, media_type="application/json")

    def _rows(self, request: Request) -> list[dict[str, Any]] | None:
        return self.listings.get(request.path_params["settle"])

    async def _contracts(self, request: Request) -> Response:
        rows = self._rows(request)
        if rows is None:
            settle = request.path_params["settle"]
            error = {"label": "INVALID_PARAM_VALUE", "message": f"invalid settle: {settle}"}
            return self._reply(request, error, 400)
        return self._reply(request, rows)

    async def _contract(self, request: Request) -> Response:
        name = request.path_params["contract"]
        row = next((r for r in self._rows(request) or [] if r["name"] == name), None)
        if row is None:
            error = {"label": "CONTRACT_NOT_FOUND", "message": f"contract {name} not found"}
            return self._reply(request, error, 404)
        return self._reply(request, row)
