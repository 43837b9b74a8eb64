"""OKX's public REST endpoints (``https://www.okx.com``) that the service calls, as a Starlette app.

* ``GET /api/v5/public/instruments?instType=SWAP[&instId=]``: the recorded 2022 listing
  (``{"code":"0","data":[...],"msg":""}``, byte for byte unless filtered). The other
  instrument types answer an empty ``data`` (not recorded); a missing or unknown ``instType``
  answers OKX's parameter errors (``50014``, ``51000``) with HTTP 400.
* ``GET /api/v5/public/time`` → ``{"code":"0","data":[{"ts":"<ms>"}],"msg":""}``.

:attr:`OkxRest.requests` lists every request's path and query, to check what clients call.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import okx_wire as wire


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _body(data: list[Any], code: str = "0", msg: str = "") -> str:
    return wire.encode({"code": code, "data": data, "msg": msg})


class OkxRest:
    """The REST side of the simulator: the instruments listing (``listing`` is its body)."""

    def __init__(self, listing: str) -> None:
        self.listing = listing
        self._rows: list[dict[str, Any]] = json.loads(listing)["data"]
        self.requests: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/api/v5/public/instruments", self._instruments),
                Route("/api/v5/public/time", self._time),
            ]
        )

    def _reply(self, request: Request, text: str, status: int = 200) -> Response:
        query = f"?{request.url.query}" if request.url.query else ""
        self.requests.append(request.url.path + query)
        return Response(text, status, media_type="application/json")

    async def _instruments(self, request: Request) -> Response:
        inst_type = request.query_params.get("instType")
        if not inst_type:
            return self._reply(
                request, _body([], "50014", "Parameter instType can not be empty."), 400
            )
        if inst_type not in wire.INST_TYPES:
            return self._reply(request, _body([], "51000", "Parameter instType error"), 400)
        if inst_type != wire.INST_TYPE:
            return self._reply(request, _body([]))
        inst_id = request.query_params.get("instId")
        if inst_id is None:
            return self._reply(request, self.listing)
        return self._reply(request, _body([r for r in self._rows if r["instId"] == inst_id]))

    async def _time(self, request: Request) -> Response:
        return self._reply(request, _body([{"ts": str(_now_ms())}]))
