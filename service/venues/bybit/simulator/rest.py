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

Errors answer HTTP 200 with a non-zero ``retCode``, as the venue does (code ``10001``,
"params error"; the exact texts are ours).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ....simulate import history
from ....simulate.market import Market
from . import wire

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
    ) -> None:
        self.listings = listings
        self.clock = clock
        self.market = market
        self.contracts = dict(contracts or {})
        self.requests = 0
        self.app = Starlette(
            routes=[
                Route("/v5/market/time", self._time),
                Route("/v5/market/instruments-info", self._instruments),
                Route("/v5/market/open-interest", self._open_interest),
                Route("/v5/market/funding/history", self._funding_history),
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
