"""Binance futures' public REST endpoints as a Starlette app: USDⓈ-M (``fapi.binance.com``,
paths under ``/fapi/v1``) or, with :data:`~.binance_coinm_wire.COINM`, COIN-M
(``dapi.binance.com``, ``/dapi/v1``).

Paths, bodies, error codes and the ``X-MBX-USED-WEIGHT-1M`` header follow the venue:

* ``GET <prefix>/ping`` → ``{}``; ``GET <prefix>/time`` → ``{"serverTime": ms}``
* ``GET <prefix>/exchangeInfo``: the recorded 2021 body with ``serverTime`` updated
* ``GET <prefix>/fundingInfo``: only the symbols whose funding interval is not 8 h
* ``GET /fapi/v1/openInterest?symbol=BTCUSDT`` →
  ``{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}`` (base coin);
  COIN-M: ``{"symbol":"BTCUSD_PERP","pair":"BTCUSD","openInterest":"15279",
  "contractType":"PERPETUAL","time":...}`` (contracts)
* ``GET <prefix>/premiumIndex[?symbol=]``: USDⓈ-M one object, or a list without ``symbol``;
  COIN-M always a list (also ``?pair=``), weight 10

A symbol that is not simulated answers HTTP 400 ``{"code":-1121,"msg":"Invalid symbol."}``.
Weights per call are the venue's; past the per-minute limit the answer is HTTP 429 ``-1003``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import binance_usdm_wire as wire
from .market import Market

_SERVER_TIME = re.compile(r'"serverTime":\d+')
_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
_MISSING_SYMBOL = {
    "code": -1102,
    "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BinanceFuturesRest:
    """The REST side of the simulator, reading the shared :class:`Market`."""

    def __init__(
        self,
        market: Market,
        contracts: Mapping[str, wire.Contract],
        exchange_info: str,
        *,
        product: wire.Product = wire.USDM,
        weight_limit: int = 2400,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.market = market
        self.contracts = contracts
        self.exchange_info = exchange_info
        self.product = product
        self.weights = wire.WeightCounter(weight_limit)
        self.clock = clock
        self.requests = 0
        self.paths: Counter[str] = Counter()
        """Requests per path: what a client (ccxt) actually asked for."""
        prefix = product.rest_prefix
        self.app = Starlette(
            routes=[
                Route(f"{prefix}/ping", self._ping),
                Route(f"{prefix}/time", self._time),
                Route(f"{prefix}/exchangeInfo", self._exchange_info),
                Route(f"{prefix}/fundingInfo", self._funding_info),
                Route(f"{prefix}/openInterest", self._open_interest),
                Route(f"{prefix}/premiumIndex", self._premium_index),
            ]
        )

    def _reply(self, request: Request, weight: int, body: Any, status: int = 200) -> Response:
        self.requests += 1
        self.paths[request.url.path] += 1
        ip = request.client.host if request.client else "unknown"
        now = self.clock()
        used = self.weights.add(ip, weight, now)
        headers: dict[str, str] = {}
        if used > self.weights.limit:
            status, headers["Retry-After"] = 429, str(60 - (now // 1000) % 60)
            body = {
                "code": -1003,
                "msg": f"Too many requests; current limit of IP({ip}) is "
                f"{self.weights.limit} requests per minute. Please use the websocket for "
                "live updates to avoid polling the API.",
            }
        text = body if isinstance(body, str) else wire.encode(body)
        response = Response(text, status, headers, media_type="application/json")
        # Starlette lower-cases header names; keep the venue's spelling (clients must not care).
        response.raw_headers.append((b"X-MBX-USED-WEIGHT-1M", str(used).encode()))
        return response

    async def _ping(self, request: Request) -> Response:
        return self._reply(request, 1, {})

    async def _time(self, request: Request) -> Response:
        return self._reply(request, 1, {"serverTime": self.clock()})

    async def _exchange_info(self, request: Request) -> Response:
        body = _SERVER_TIME.sub(f'"serverTime":{self.clock()}', self.exchange_info, count=1)
        return self._reply(request, 1, body)

    async def _funding_info(self, request: Request) -> Response:
        return self._reply(request, 0, wire.funding_info(self.contracts.values()))

    async def _open_interest(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol")
        if not symbol:
            return self._reply(request, 1, _MISSING_SYMBOL, 400)
        if symbol not in self.contracts:
            return self._reply(request, 1, _INVALID_SYMBOL, 400)
        q = self.market.quote(symbol)
        body = self.product.open_interest(q, self.contracts[symbol], self.clock())
        return self._reply(request, 1, body)

    async def _premium_index(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol")
        pair = request.query_params.get("pair") if self.product.pair_mark else None
        one, every = self.product.premium_index_weight
        now = self.clock()
        row = self.product.premium_index
        if symbol is None:
            rows = [
                row(self.market.quote(s), c, now)
                for s, c in self.contracts.items()
                if pair is None or c.pair == pair
            ]
            return self._reply(request, every, rows)
        if symbol not in self.contracts:
            return self._reply(request, one, _INVALID_SYMBOL, 400)
        body = row(self.market.quote(symbol), self.contracts[symbol], now)
        return self._reply(request, one, [body] if self.product.premium_index_as_list else body)
