"""Bybit v5's public REST endpoints that the service calls (``https://api.bybit.com``).

* ``GET /v5/market/time`` → ``{"retCode":0,"retMsg":"OK","result":{"timeSecond":"...",
  "timeNano":"..."},"retExtInfo":{},"time":ms}``
* ``GET /v5/market/instruments-info?category=linear|inverse[&symbol=][&status=][&limit=]
  [&cursor=]``: the fixture list of ``data/bybit/``, ``status=Trading`` by default, at most
  ``limit`` rows (default 500, 1 to 1000) per page; ``nextPageCursor`` is
  ``first%3D<symbol>%26last%3D<symbol>`` while rows remain, else ``""``.

* History the detector's warm start reads (a calm past ending at the current market,
  :mod:`service.simulate.history`), newest first as the venue answers:
  ``GET /v5/market/open-interest?category=&symbol=&intervalTime=5min[&startTime=]
  [&endTime=][&limit=][&cursor=]`` → ``{"symbol":"BTCUSDT","category":"linear","list":
  [{"openInterest":"160000.00000000","singleOpenInterest":"80000.000",
  "timestamp":"1760000000000"}],"nextPageCursor":"..."}`` (``openInterest`` both sides,
  ``singleOpenInterest`` one side, as documented since 2026-06-11;
  base coin on linear contracts, USD contracts on inverse ones; ``limit`` 50 by default,
  1 to 200); ``GET /v5/market/funding/history?category=&symbol=[&startTime=&endTime=]
  [&limit=]`` → ``{"category":"linear","list":[{"symbol":"BTCUSDT","fundingRate":"0.0001",
  "fundingRateTimestamp":"1760000000000"}]}`` (``limit`` 200 by default, 1 to 200).

* The leverage-stress endpoints (values from the scenario: :mod:`.stress_wire`), each
  answered only given the ``market``: ``GET /v5/market/adlAlert[?symbol=]``,
  ``GET /v5/market/insurance[?coin=]`` and ``GET /v5/market/account-ratio?category=&symbol=
  &period=[&limit=]`` (``limit`` 50 by default, 1 to 500; newest first).

Errors answer HTTP 200 with a non-zero ``retCode``, as the venue does (code ``10001``,
"params error"; the exact texts are ours).

**The IP limit.** Every request, whatever its path, counts against one per-IP limit over a
sliding window: 600 requests in any 5 s (``ip_limit``; the venue's, for all traffic to
``api.bybit.com``). Past it the answer is HTTP 403 with the text ``access too frequent``, as
the docs name the error (the edge answers it, not the v5 API: no JSON envelope). The venue
then bans the IP for at least 10 minutes; the simulator refuses only the requests over the
window (:attr:`BybitRest.refused` counts them), so that a test sees each one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ....simulate import history
from ....simulate.market import Market
from ....simulate.stress import WindowCounter
from . import stress_wire, wire

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


IP_LIMIT: Final = 600
IP_WINDOW_MS: Final = 5_000
TOO_FREQUENT: Final = "access too frequent"
MAX_RATIO_LIMIT: Final = 500


class IpLimit:
    """ASGI middleware: every HTTP request counted against ``counter`` per client IP; over
    it, HTTP 403 :data:`TOO_FREQUENT` and the app is not called."""

    def __init__(self, app: ASGIApp, counter: WindowCounter, clock: Callable[[], int]) -> None:
        self.app = app
        self.counter = counter
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            ip = client[0] if client else "unknown"
            if not self.counter.add(ip, self.clock()):
                await PlainTextResponse(TOO_FREQUENT, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


INTERVALS: Final = {"5min": "5m", "15min": "15m", "30min": "30m", "1h": "1h", "4h": "4h",
                    "1d": "1d"}  # fmt: skip
MAX_HISTORY_LIMIT = 200


class BybitRest:
    """The REST side of the simulator: instrument lists by category and, given the
    ``market`` and its ``contracts``, open-interest and funding history."""

    def __init__(
        self,
        listings: Mapping[str, Mapping[str, Any]],
        *,
        clock: Callable[[], int] = _now_ms,
        market: Market | None = None,
        contracts: Mapping[str, wire.Contract] | None = None,
        ip_limit: int = IP_LIMIT,
    ) -> None:
        """``ip_limit``: requests per IP in any 5 s (the venue's 600, or lower for a test of a
        client's share)."""
        self.listings = listings
        self.clock = clock
        self.market = market
        self.contracts = dict(contracts or {})
        self.requests = 0
        self.paths: Counter[str] = Counter()
        """Requests answered per path (those refused by the IP limit are not)."""
        self.ip_limit = WindowCounter(ip_limit, IP_WINDOW_MS)
        self.pools = stress_wire.pools(market, self.contracts) if market is not None else {}
        self.pool_of = {s: p for p in self.pools.values() for s in p.symbols}
        self.app = Starlette(
            routes=[
                Route("/v5/market/time", self._time),
                Route("/v5/market/instruments-info", self._instruments),
                Route("/v5/market/open-interest", self._open_interest),
                Route("/v5/market/funding/history", self._funding_history),
                Route("/v5/market/adlAlert", self._adl_alert),
                Route("/v5/market/insurance", self._insurance),
                Route("/v5/market/account-ratio", self._account_ratio),
            ],
            middleware=[Middleware(IpLimit, counter=self.ip_limit, clock=lambda: self.clock())],
        )

    @property
    def refused(self) -> int:
        """Requests answered 403 (over the IP limit)."""
        return self.ip_limit.refused

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

    def _count(self, request: Request) -> None:
        self.paths[request.url.path] += 1

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

    def _contract(self, q: Mapping[str, str]) -> wire.Contract | None:
        c = self.contracts.get(q.get("symbol", ""))
        if c is None or self.market is None or c.category != q.get("category"):
            return None
        return c

    async def _open_interest(self, request: Request) -> Response:
        q = request.query_params
        c = self._contract(q)
        period = history.PERIODS_MS.get(INTERVALS.get(q.get("intervalTime", ""), ""))
        limits = _limits(q, 50)
        if c is None or period is None or limits is None or self.market is None:
            return self._reply({}, 10001, "params error: symbol, category or intervalTime")
        limit, start, end = limits
        now = self.clock()
        if end is None:
            end = now
        if q.get("cursor"):
            end = min(end, int(q["cursor"]) - 1) if q["cursor"].isdigit() else end
        lo = start if start is not None else end - (limit + 1) * period
        quote = self.market.quote(c.symbol)
        points = history.oi_history(c.symbol, quote.oi_base, quote.mark, now, lo, end, period)
        points.reverse()  # newest first
        page = points[:limit]
        more = len(points) > limit and start is not None
        rows = [_oi_row(p.oi_base if c.linear else p.oi_usd, c, p.ts_ms) for p in page]
        cursor = str(page[-1].ts_ms) if more and page else ""
        result = {
            "symbol": c.symbol,
            "category": c.category,
            "list": rows,
            "nextPageCursor": cursor,
        }
        return self._reply(result)

    async def _funding_history(self, request: Request) -> Response:
        q = request.query_params
        c = self._contract(q)
        limits = _limits(q, MAX_HISTORY_LIMIT)
        if c is None or limits is None:
            return self._reply({}, 10001, "params error: symbol or category")
        limit, start, end = limits
        if start is not None and end is None:
            return self._reply({}, 10001, "params error: endTime is required with startTime")
        now = self.clock()
        end = now if end is None else end
        lo = start if start is not None else end - (limit + 1) * int(c.funding_interval_h * 3.6e6)
        found = history.funding_history(c.symbol, c.funding_interval_h, now, lo, end)
        rows = [{"symbol": c.symbol, "fundingRate": wire.rate(rate),
                 "fundingRateTimestamp": str(ts)} for ts, rate in reversed(found)]  # fmt: skip
        return self._reply({"category": c.category, "list": rows[:limit]})

    # -- leverage stress ------------------------------------------------------------------

    async def _adl_alert(self, request: Request) -> Response:
        self._count(request)
        symbol = request.query_params.get("symbol")
        if self.market is None or (symbol is not None and symbol not in self.contracts):
            return self._reply({}, 10001, "params error: symbol invalid")
        symbols = list(self.contracts) if symbol is None else [symbol]
        result = stress_wire.adl_alert(self.market, symbols, self.pool_of, self.clock())
        return self._reply(result)

    async def _insurance(self, request: Request) -> Response:
        self._count(request)
        coin = request.query_params.get("coin")
        if self.market is None:
            return self._reply({}, 10001, "params error: coin invalid")
        pools = [p for c, p in self.pools.items() if coin in (None, c)]
        return self._reply(stress_wire.insurance(self.market, pools, self.clock()))

    async def _account_ratio(self, request: Request) -> Response:
        self._count(request)
        q = request.query_params
        c = self._contract(q)
        period_ms = stress_wire.PERIODS_MS.get(q.get("period", ""))
        try:
            limit = int(q.get("limit", 50))
        except ValueError:
            limit = 0
        if c is None or period_ms is None or not 1 <= limit <= MAX_RATIO_LIMIT:
            return self._reply({}, 10001, "params error: category, symbol, period or limit")
        return self._reply(stress_wire.account_ratio(c.symbol, self.clock(), period_ms, limit))


def _oi_row(one_side: float, c: wire.Contract, ts_ms: int) -> dict[str, str]:
    """One history point as the docs show it: ``openInterest`` both sides (8 decimals),
    ``singleOpenInterest`` one side (the docs' inverse example rounds it to a whole
    contract: ``"63910691.00000000"`` and ``"31955346"``)."""
    if c.linear:
        single = wire.fmt(one_side, c.qty_decimals)
        return {"openInterest": f"{2 * one_side:.8f}", "singleOpenInterest": single,
                "timestamp": str(ts_ms)}  # fmt: skip
    contracts = round(one_side)
    return {"openInterest": f"{2 * contracts:.8f}", "singleOpenInterest": str(contracts),
            "timestamp": str(ts_ms)}  # fmt: skip


def _limits(q: Mapping[str, str], default: int) -> tuple[int, int | None, int | None] | None:
    """``(limit, startTime, endTime)`` of a history request; ``None`` when one is bad."""
    try:
        limit = int(q.get("limit", default))
        start = int(q["startTime"]) if "startTime" in q else None
        end = int(q["endTime"]) if "endTime" in q else None
    except ValueError:
        return None
    return (limit, start, end) if 1 <= limit <= MAX_HISTORY_LIMIT else None


def _after(rows: list[dict[str, Any]], cursor: str) -> int:
    """The index after the row a cursor ends with (``last=<symbol>``), 0 without one."""
    fields = dict(p.partition("=")[::2] for p in unquote(cursor).split("&") if "=" in p)
    last = fields.get("last")
    for i, row in enumerate(rows):
        if row["symbol"] == last:
            return i + 1
    return 0
