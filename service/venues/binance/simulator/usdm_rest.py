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
* ``GET <prefix>/depth?symbol=&limit=`` → ``{"lastUpdateId":1027024,"E":...,"T":...,
  "bids":[["4.00000000","431.00000000"]],"asks":[...]}`` (COIN-M adds ``symbol`` and
  ``pair``): the book the diff streams move (:mod:`.book_wire`), weight 2 to 20 by ``limit``
* ``GET <prefix>/premiumIndex[?symbol=]``: USDⓈ-M one object, or a list without ``symbol``;
  COIN-M always a list (also ``?pair=``), weight 10
* USDⓈ-M only, the history the detector's warm start reads (a calm past ending at the current
  market, :mod:`service.simulate.history`):
  ``GET /futures/data/openInterestHist?symbol=&period=5m[&limit=][&startTime=][&endTime=]``
  → ``[{"symbol":"BTCUSDT","sumOpenInterest":"80000.00000000","sumOpenInterestValue":
  "4800000000.00000000","timestamp":1760000000000}]`` oldest first, ``limit`` 30 by default,
  at most 500, the latest when no time is given (the venue keeps 30 days);
  ``GET /fapi/v1/fundingRate[?symbol=][&startTime=][&endTime=][&limit=]`` →
  ``[{"symbol":"BTCUSDT","fundingTime":1760000000000,"fundingRate":"0.00010000",
  "markPrice":"60000.00000000"}]`` oldest first, ``limit`` 100 by default, at most 1000

* USDⓈ-M only, the leverage-stress endpoints (calm values, :mod:`.stress_wire`):
  ``GET /fapi/v1/symbolAdlRisk[?symbol=]``, ``GET /fapi/v1/insuranceBalance[?symbol=]``
  (weight 1 each), and ``GET /futures/data/{globalLongShortAccountRatio,
  topLongShortAccountRatio, topLongShortPositionRatio, takerlongshortRatio}?symbol=&period=``
  and ``GET /futures/data/basis?pair=&contractType=PERPETUAL&period=`` (weight 0; together
  at most 1000 requests per 5 minutes per IP, HTTP 429 past it), the latest row only
  (``limit`` is accepted and not honoured)

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

from ....simulate import history
from ....simulate.market import Market
from . import book_wire, stress_wire
from . import usdm_wire as wire

_SERVER_TIME = re.compile(r'"serverTime":\d+')
_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
_MISSING_SYMBOL = {
    "code": -1102,
    "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
}


_ILLEGAL_LIMIT = {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
DEPTH_WEIGHTS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
"""``GET <prefix>/depth``'s valid limits and their request weight (the venue's "Order Book"
page)."""


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
        futures_data_limit: int = stress_wire.FUTURES_DATA_LIMIT,
        clock: Callable[[], int] = _now_ms,
        depth_book: Callable[[str], book_wire.DiffBook] | None = None,
    ) -> None:
        """``weight_limit``, ``futures_data_limit``: the venue's (2400 weight a minute, 1000
        ``futures/data`` requests per 5 minutes), or lower for a test of a client's share."""
        self.market = market
        self.contracts = contracts
        self.depth_book = depth_book
        """A symbol's simulated book, shared with the websocket's diff streams (``None``:
        no ``depth`` endpoint)."""
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
                Route(f"{prefix}/depth", self._depth),
            ]
        )
        self.futures_data_limit = futures_data_limit
        self.futures_data: dict[str, list[int]] = {}
        """Per IP, the times of the stress ``futures/data`` requests in the last 5 minutes."""
        self.rejected = 0
        """Requests answered 429 (either limit)."""
        if product.rest_prefix == "/fapi/v1":
            self.app.add_route("/futures/data/openInterestHist", self._open_interest_hist)
            self.app.add_route(f"{prefix}/fundingRate", self._funding_rate)
            self.app.add_route(f"{prefix}/symbolAdlRisk", self._adl_risk)
            self.app.add_route(f"{prefix}/insuranceBalance", self._insurance_balance)
            for name in _LONG_SHORT:
                self.app.add_route(f"/futures/data/{name}", self._long_short)
            self.app.add_route("/futures/data/takerlongshortRatio", self._taker)
            self.app.add_route("/futures/data/basis", self._basis)

    def _reply(self, request: Request, weight: int, body: Any, status: int = 200) -> Response:
        self.requests += 1
        self.paths[request.url.path] += 1
        ip = request.client.host if request.client else "unknown"
        now = self.clock()
        used = self.weights.add(ip, weight, now)
        headers: dict[str, str] = {}
        if used > self.weights.limit:
            self.rejected += 1
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

    async def _depth(self, request: Request) -> Response:
        """The book of the diff streams, its ``lastUpdateId`` the ``u`` of the last diff
        sent; ``limit`` one of the venue's (default 500), weight as the venue's."""
        symbol = request.query_params.get("symbol")
        raw = request.query_params.get("limit", "500")
        limit = int(raw) if raw.isdigit() else -1
        weight = DEPTH_WEIGHTS.get(limit, 2)
        if not symbol:
            return self._reply(request, weight, _MISSING_SYMBOL, 400)
        if limit not in DEPTH_WEIGHTS:
            return self._reply(request, 2, _ILLEGAL_LIMIT, 400)
        if symbol not in self.contracts or self.depth_book is None:
            return self._reply(request, weight, _INVALID_SYMBOL, 400)
        body = self.depth_book(symbol).snapshot(limit, self.clock())
        return self._reply(request, weight, body)

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

    async def _open_interest_hist(self, request: Request) -> Response:
        q = request.query_params
        symbol, period = q.get("symbol"), q.get("period", "")
        if not symbol:
            return self._reply(request, 1, _MISSING_SYMBOL, 400)
        if symbol not in self.contracts:
            return self._reply(request, 1, _INVALID_SYMBOL, 400)
        step = history.PERIODS_MS.get(period)
        now = self.clock()
        window = _window(q, step or 1, 30, 500, now)
        if step is None or window is None:
            return self._reply(request, 1, _INVALID_PARAMETER, 400)
        start, end, limit = window
        quote = self.market.quote(symbol)
        points = history.oi_history(symbol, quote.oi_base, quote.mark, now, start, end, step)
        points = points[:limit] if "startTime" in q and "endTime" not in q else points[-limit:]
        rows = [
            {
                "symbol": symbol,
                "sumOpenInterest": f"{p.oi_base:.8f}",
                "sumOpenInterestValue": f"{p.oi_usd:.8f}",
                "timestamp": p.ts_ms,
            }
            for p in points
        ]
        return self._reply(request, 0, rows)

    async def _funding_rate(self, request: Request) -> Response:
        q = request.query_params
        symbol = q.get("symbol")
        if symbol is not None and symbol not in self.contracts:
            return self._reply(request, 0, [])
        now = self.clock()
        window = _window(q, 8 * 3_600_000, 100, 1000, now)
        if window is None:
            return self._reply(request, 0, _INVALID_PARAMETER, 400)
        start, end, limit = window
        found: list[tuple[int, str, float, float]] = []
        for sym in [symbol] if symbol else list(self.contracts):
            interval_h = self.contracts[sym].funding_interval_h
            mark = self.market.quote(sym).mark
            found += [(ts, sym, rate, mark) for ts, rate in
                      history.funding_history(sym, interval_h, now, start, end)]  # fmt: skip
        found.sort()
        rows = [{"symbol": sym, "fundingTime": ts, "fundingRate": f"{rate:.8f}",
                 "markPrice": f"{mark:.8f}"} for ts, sym, rate, mark in found]  # fmt: skip
        rows = rows[:limit] if "startTime" in q and "endTime" not in q else rows[-limit:]
        return self._reply(request, 0, rows)

    # -- leverage stress (USDⓈ-M) -------------------------------------------------------

    async def _adl_risk(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol")
        now, at, simulated = self.clock(), self.market.now, set(self.market.symbols)

        def row(s: str) -> dict[str, Any]:
            base = self.market.spec(s).base if s in simulated else ""
            return stress_wire.adl_risk(s, now, stress_wire.adl_rating(at, base))

        if symbol is None:
            return self._reply(request, 1, [row(s) for s in self.contracts])
        if symbol not in self.contracts:
            return self._reply(request, 1, _INVALID_SYMBOL, 400)
        return self._reply(request, 1, row(symbol))

    async def _insurance_balance(self, request: Request) -> Response:
        symbol = request.query_params.get("symbol")
        balance = stress_wire.insurance_balance(self.market.scenario, self.market.now)
        pool = stress_wire.insurance_pool(self.contracts, self.clock(), balance)
        if symbol is None:
            return self._reply(request, 1, [pool])
        if symbol not in self.contracts:
            return self._reply(request, 1, _INVALID_SYMBOL, 400)
        return self._reply(request, 1, pool)

    def _futures_data(self, request: Request, key: str) -> tuple[str, int, int] | Response:
        """``(value of key, period in ms, now)`` of a ``futures/data`` request counted against
        the 5-minute limit, or the error answer."""
        ip = request.client.host if request.client else "unknown"
        now = self.clock()
        times = [
            t for t in self.futures_data.get(ip, []) if now - t < stress_wire.FUTURES_DATA_WINDOW_MS
        ]
        times.append(now)
        self.futures_data[ip] = times
        if len(times) > self.futures_data_limit:
            self.rejected += 1
            body = {"code": -1003, "msg": "Too many requests; IP rate limit 1000 requests/5min."}
            return self._reply(request, 0, body, 429)
        value = request.query_params.get(key)
        period_ms = stress_wire.PERIODS_MS.get(request.query_params.get("period", ""))
        if not value:
            return self._reply(request, 0, _MISSING_SYMBOL, 400)
        if period_ms is None:
            return self._reply(request, 0, _INVALID_PARAMETER, 400)
        return value, period_ms, now

    async def _long_short(self, request: Request) -> Response:
        got = self._futures_data(request, "symbol")
        if isinstance(got, Response):
            return got
        symbol, period_ms, now = got
        if symbol not in self.contracts:
            return self._reply(request, 0, _INVALID_SYMBOL, 400)
        return self._reply(request, 0, [stress_wire.long_short(symbol, now, period_ms)])

    async def _taker(self, request: Request) -> Response:
        got = self._futures_data(request, "symbol")
        if isinstance(got, Response):
            return got
        symbol, period_ms, now = got
        if symbol not in self.contracts:
            return self._reply(request, 0, _INVALID_SYMBOL, 400)
        return self._reply(
            request, 0, [stress_wire.taker(self.market.quote(symbol), now, period_ms)]
        )

    async def _basis(self, request: Request) -> Response:
        got = self._futures_data(request, "pair")
        if isinstance(got, Response):
            return got
        pair, period_ms, now = got
        if request.query_params.get("contractType") != "PERPETUAL" or pair not in self.contracts:
            return self._reply(request, 0, _INVALID_PARAMETER, 400)
        row = stress_wire.basis(self.market.quote(pair), self.contracts[pair], now, period_ms)
        return self._reply(request, 0, [row])


_INVALID_PARAMETER = {"code": -1130, "msg": "Data sent for parameter is not valid."}
_LONG_SHORT = (
    "globalLongShortAccountRatio", "topLongShortAccountRatio", "topLongShortPositionRatio"
)  # fmt: skip


def _window(
    q: Mapping[str, str], step_ms: int, default: int, most: int, now_ms: int
) -> tuple[int, int, int] | None:
    """``(start_ms, end_ms, limit)`` of a history request (``None``: a bad parameter).
    Without an end the span ends now (or ``limit`` steps after the start); without a
    start it reaches ``limit`` steps back from the end."""
    try:
        limit = int(q.get("limit", default))
        end = int(q["endTime"]) if "endTime" in q else None
        start = int(q["startTime"]) if "startTime" in q else None
    except ValueError:
        return None
    if not 1 <= limit <= most:
        return None
    if end is None:
        end = now_ms if start is None else min(now_ms, start + limit * step_ms)
    if start is None:
        start = end - limit * step_ms
    return start, end, limit
