"""Deribit's public REST endpoints that the service calls (``https://www.deribit.com``), as a
Starlette app. JSON-RPC over HTTP GET: ``/api/v2/public/<method>?<params>``.

* ``get_instruments?currency=BTC|ETH|SOL|USDC|any[&kind=][&expired=]``: the recorded
  futures of ``data/deribit/`` (``any``: every currency's). ``kind`` ``future`` or absent
  gives them; another kind (``option``, ``spot``, combos: not recorded) or ``expired=true``
  gives ``[]``. A missing or unknown ``currency`` or ``kind`` answers ``-32602`` "Invalid
  params" with HTTP 400, as the venue does.
* ``get_time`` → ``{"jsonrpc":"2.0","result":<ms>,...}``; ``test`` → ``{"version":...}``.
* Any other method: ``-32601`` "Method not found", HTTP 400.

:attr:`DeribitRest.requests` lists every request's path and query.
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

PREFIX = "/api/v2/public/"
KINDS = ("future", "option", "spot", "future_combo", "option_combo")


def _now_us() -> int:
    return time.time_ns() // 1_000


class DeribitRest:
    """The REST side of the simulator: ``listing`` maps a currency to its recorded body."""

    def __init__(self, listing: Mapping[str, Mapping[str, Any]]) -> None:
        self.listing = listing
        self.requests: list[str] = []
        self.app = Starlette(routes=[Route(PREFIX + "{method}", self._dispatch)])

    def _reply(self, request: Request, text: str, status: int = 200) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(request.url.path + query)
        return Response(text, status, media_type="application/json")

    async def _dispatch(self, request: Request) -> Response:
        method = request.path_params["method"]
        if method == "get_instruments":
            return self._instruments(request)
        if method == "get_time":
            return self._reply(request, wire.response(None, _now_us() // 1000, _now_us()))
        if method == "test":
            return self._reply(request, wire.response(None, {"version": wire.VERSION}, _now_us()))
        return self._reply(request, wire.error(None, -32601, "Method not found", _now_us()), 400)

    def _instruments(self, request: Request) -> Response:
        q = request.query_params
        currency, kind = q.get("currency", ""), q.get("kind", "future")
        if currency != "any" and currency not in self.listing:
            return self._invalid(request, "currency")
        if kind not in KINDS:
            return self._invalid(request, "kind")
        bodies = self.listing.values() if currency == "any" else [self.listing[currency]]
        rows: list[Any] = []
        if kind == "future" and q.get("expired", "false") != "true":
            rows = [r for body in bodies for r in body["result"]]
        return self._reply(request, wire.response(None, rows, _now_us()))

    def _invalid(self, request: Request, param: str) -> Response:
        data = {"reason": "wrong format", "param": param}
        return self._reply(
            request, wire.error(None, -32602, "Invalid params", _now_us(), data), 400
        )
