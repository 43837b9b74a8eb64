"""Bybit v5's public REST endpoints that the service calls (``https://api.bybit.com``).

* ``GET /v5/market/time`` → ``{"retCode":0,"retMsg":"OK","result":{"timeSecond":"...",
  "timeNano":"..."},"retExtInfo":{},"time":ms}``
* ``GET /v5/market/instruments-info?category=linear|inverse[&symbol=][&status=][&limit=]
  [&cursor=]``: the fixture list of ``data/bybit/``, ``status=Trading`` by default, at most
  ``limit`` rows (default 500, 1 to 1000) per page; ``nextPageCursor`` is
  ``first%3D<symbol>%26last%3D<symbol>`` while rows remain, else ``""``.

Errors answer HTTP 200 with a non-zero ``retCode``, as the venue does (code ``10001``,
"params error"; the exact texts are ours).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import bybit_wire as wire

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BybitRest:
    """The REST side of the simulator: instrument lists by category."""

    def __init__(
        self, listings: Mapping[str, Mapping[str, Any]], *, clock: Callable[[], int] = _now_ms
    ) -> None:
        self.listings = listings
        self.clock = clock
        self.requests = 0
        self.app = Starlette(
            routes=[
                Route("/v5/market/time", self._time),
                Route("/v5/market/instruments-info", self._instruments),
            ]
        )

    def _reply(self, result: Any, code: int = 0, msg: str = "OK") -> Response:
        self.requests += 1
        body = {
            "retCode": code,
            "retMsg": msg,
            "result": result,
            "retExtInfo": {},
            "time": self.clock(),
        }
        return Response(wire.encode(body), 200, media_type="application/json")

    async def _time(self, request: Request) -> Response:
        now_ns = self.clock() * 1_000_000
        return self._reply({"timeSecond": str(now_ns // 10**9), "timeNano": str(now_ns)})

    async def _instruments(self, request: Request) -> Response:
        q = request.query_params
        category = q.get("category", "")
        if category not in self.listings:
            return self._reply({}, 10001, "params error: category is invalid")
        try:
            limit = int(q.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return self._reply({}, 10001, "params error: limit is invalid")
        if not 1 <= limit <= MAX_LIMIT:
            return self._reply({}, 10001, "params error: limit is invalid")
        status, symbol = q.get("status", "Trading"), q.get("symbol")
        rows = [
            r
            for r in self.listings[category]["result"]["list"]
            if r["status"] == status and symbol in (None, r["symbol"])
        ]
        start = _after(rows, q.get("cursor", ""))
        page = rows[start : start + limit]
        more = page and start + limit < len(rows)
        cursor = f"first%3D{page[0]['symbol']}%26last%3D{page[-1]['symbol']}" if more else ""
        return self._reply({"category": category, "list": page, "nextPageCursor": cursor})


def _after(rows: list[dict[str, Any]], cursor: str) -> int:
    """The index after the row a cursor ends with (``last=<symbol>``), 0 without one."""
    fields = dict(p.partition("=")[::2] for p in unquote(cursor).split("&") if "=" in p)
    last = fields.get("last")
    for i, row in enumerate(rows):
        if row["symbol"] == last:
            return i + 1
    return 0
