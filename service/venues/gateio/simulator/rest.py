"""Gate's public futures REST endpoints (``https://api.gateio.ws``) that the service calls.

* ``GET /api/v4/futures/{settle}/contracts`` (``usdt``, ``btc``): the lists of
  ``data/gateio`` (a bare JSON array, as the venue answers). Another settlement answers
  HTTP 400 ``{"label":"INVALID_PARAM_VALUE","message":"invalid settle: ..."}`` (Gate's error
  shape, which ccxt maps by ``label``; the message is ours).
* ``GET /api/v4/futures/{settle}/contracts/{contract}``: one row, or 404
  ``{"label":"CONTRACT_NOT_FOUND",...}``.

:attr:`GateRest.requests` lists every request's path and query, to check what clients call.

* ``GET /api/v4/futures/{settle}/contract_stats?contract=[&interval=][&limit=]``, given the
  ``market`` and its ``contracts``: per closed period (``interval`` 5m by default, ``limit``
  rows, 30 by default, oldest first), the docs' row: even long/short ratios (1), the
  contract's open interest (contracts and USD) and mark price, no liquidated size (the
  websocket carries the liquidations). ``time`` in seconds, as the docs' example. An unknown
  contract answers 400 ``INVALID_PARAM_VALUE``. Counted per IP against Gate's limit of a
  public endpoint, 200 requests in any 10 s (``stats_limit``; lower for a test of a client's
  share): past it HTTP 429 ``{"label":"TOO_MANY_REQUESTS","message":...}`` (the label is
  Gate's; the message ours), :attr:`GateRest.refused`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ....simulate.market import Market
from ....simulate.stress import WindowCounter
from . import wire

STATS_LIMIT: Final = 200
STATS_WINDOW_MS: Final = 10_000
INTERVALS_S: Final = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400}
MAX_STATS_LIMIT: Final = 100


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GateRest:
    """The REST side of the simulator: contract lists by settlement and, given the
    ``market`` and its ``contracts``, contract statistics."""

    def __init__(
        self,
        listings: Mapping[str, list[dict[str, Any]]],
        *,
        market: Market | None = None,
        contracts: Mapping[str, wire.Contract] | None = None,
        clock: Callable[[], int] = _now_ms,
        stats_limit: int = STATS_LIMIT,
    ) -> None:
        self.listings = listings
        self.market = market
        self.contracts = dict(contracts or {})
        self.clock = clock
        self.stats_limit = WindowCounter(stats_limit, STATS_WINDOW_MS)
        self.requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/api/v4/futures/{settle}/contracts", self._contracts),
                Route("/api/v4/futures/{settle}/contracts/{contract}", self._contract),
                Route("/api/v4/futures/{settle}/contract_stats", self._contract_stats),
            ]
        )

    @property
    def refused(self) -> int:
        """``contract_stats`` requests answered 429."""
        return self.stats_limit.refused

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

    async def _contract_stats(self, request: Request) -> Response:
        ip = request.client.host if request.client else "unknown"
        if not self.stats_limit.add(ip, self.clock()):
            error = {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit Exceeded"}
            return self._reply(request, error, 429)
        q = request.query_params
        name = q.get("contract", "")
        c = self.contracts.get(name)
        period_s = INTERVALS_S.get(q.get("interval", "5m"))
        try:
            limit = int(q.get("limit", 30))
        except ValueError:
            limit = 0
        if c is None or c.settle != request.path_params["settle"] or self.market is None:
            error = {"label": "INVALID_PARAM_VALUE", "message": f"invalid contract: {name}"}
            return self._reply(request, error, 400)
        if period_s is None or not 1 <= limit <= MAX_STATS_LIMIT:
            error = {"label": "INVALID_PARAM_VALUE", "message": "invalid interval or limit"}
            return self._reply(request, error, 400)
        quote = self.market.quote(name)
        now_s = self.clock() // 1000
        last = now_s - now_s % period_s - period_s
        rows = [wire.contract_stats(quote, c, last - i * period_s) for i in reversed(range(limit))]
        return self._reply(request, rows)
