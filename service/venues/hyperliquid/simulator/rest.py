"""Hyperliquid's ``POST /info`` (``https://api.hyperliquid.xyz/info``) for what the service and
ccxt ask, as a Starlette app.

* ``{"type":"meta"}`` → the listing (:func:`.hyperliquid_wire.meta`);
* ``{"type":"metaAndAssetCtxs"}`` → ``[meta, [ctx per universe entry]]``: live contexts of
  the simulated coins, idle ones for the others (what ccxt's swap ``fetchMarkets`` asks);
* any other ``type``, or a body that is not JSON: HTTP 422 with a plain-text reason, as the
  venue answers a body it cannot deserialize (the text is ours). Other methods: 405.

:attr:`HyperliquidRest.requests` lists the ``type`` of every request, to check what
clients call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import wire


class HyperliquidRest:
    """The REST side of the simulator: ``meta`` is the listing's body; ``ctxs`` gives the
    current context of every universe entry, in order."""

    def __init__(self, meta: dict[str, Any], ctxs: Callable[[], list[dict[str, Any]]]) -> None:
        self.meta = meta
        self.ctxs = ctxs
        self.requests: list[str] = []
        self.app = Starlette(routes=[Route("/info", self._info, methods=["POST"])])

    async def _info(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        kind = body.get("type") if isinstance(body, dict) else None
        self.requests.append(str(kind))
        if kind == "meta":
            return self._json(self.meta)
        if kind == "metaAndAssetCtxs":
            return self._json([self.meta, self.ctxs()])
        return Response(
            "Failed to deserialize the JSON body into the target type",
            422,
            media_type="text/plain",
        )

    @staticmethod
    def _json(obj: Any) -> Response:
        return Response(wire.encode(obj), media_type="application/json")
