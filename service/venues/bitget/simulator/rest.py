"""Bitget's public REST endpoints (``https://api.bitget.com``) that the service calls.

* ``GET /api/v2/mix/market/contracts?productType=USDT-FUTURES|COIN-FUTURES[&symbol=]``:
  the listing of ``data/bitget`` (``{"code":"00000","msg":"success","requestTime":ms,
  "data":[...]}``). A missing ``productType`` answers ``40019`` ("Parameter productType
  cannot be empty"), an unknown one ``40017`` ("Parameter verification failed"), both with
  HTTP 400 (the codes ccxt maps to ``BadRequest``; the exact texts are ours).
* ``GET /api/v2/public/time`` → ``{"code":"00000","msg":"success","requestTime":ms,
  "data":{"serverTime":"<ms>"}}``.

:attr:`BitgetRest.requests` lists every request's path and query, to check what clients call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import wire


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BitgetRest:
    """The REST side of the simulator: contract listings by product type."""

    def __init__(self, listings: Mapping[str, Mapping[str, Any]]) -> None:
        self.listings = listings
        self.requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/api/v2/mix/market/contracts", self._contracts),
                Route("/api/v2/public/time", self._time),
            ]
        )

    def _reply(self, request: Request, data: Any, code: str = "00000", msg: str = "") -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(request.url.path + query)
        body = {"code": code, "msg": msg or "success", "requestTime": _now_ms(), "data": data}
        return Response(
            wire.encode(body), 200 if code == "00000" else 400, media_type="application/json"
        )

    async def _contracts(self, request: Request) -> Response:
        product_type = request.query_params.get("productType")
        if not product_type:
            return self._reply(request, None, "40019", "Parameter productType cannot be empty")
        body = self.listings.get(product_type.upper())
        if body is None:
            return self._reply(request, None, "40017", "Parameter verification failed")
        symbol = request.query_params.get("symbol")
        rows = [r for r in body["data"] if symbol in (None, r["symbol"])]
        return self._reply(request, rows)

    async def _time(self, request: Request) -> Response:
        return self._reply(request, {"serverTime": str(_now_ms())})
