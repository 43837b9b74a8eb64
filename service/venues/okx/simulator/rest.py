"""OKX's public REST endpoints (``https://www.okx.com``) that the service calls, as a Starlette app.

* ``GET /api/v5/public/instruments?instType=SWAP[&instId=]``: the recorded 2022 listing
  (``{"code":"0","data":[...],"msg":""}``, byte for byte unless filtered). The other
  instrument types answer an empty ``data`` (not recorded); a missing or unknown ``instType``
  answers OKX's parameter errors (``50014``, ``51000``) with HTTP 400.
* ``GET /api/v5/public/time`` → ``{"code":"0","data":[{"ts":"<ms>"}],"msg":""}``.
* History the detector's warm start reads (a calm past ending at the current market,
  :mod:`service.simulate.history`), newest first as the venue answers, given the ``market`` and its
  ``contracts``: ``GET /api/v5/rubik/stat/contracts/open-interest-history?instId=&period=5m
  [&begin=][&end=][&limit=]`` → ``{"code":"0","data":[["1760000000000","8000000",
  "80000","4800000000"]],"msg":""}`` (time, contracts, coin, USD; ``begin`` and ``end``
  exclusive, ``limit`` at most 100) and ``GET /api/v5/public/funding-rate-history?instId=
  [&before=][&after=][&limit=]`` → ``{"code":"0","data":[{"fundingRate":"0.0001",
  "fundingTime":"1760000000000","instId":"BTC-USDT-SWAP","instType":"SWAP",
  "method":"current_period","realizedRate":"0.0001"}],"msg":""}`` (``after``: older than,
  ``before``: newer than; ``limit`` at most 400). An unknown ``instId`` answers ``51001``.

* The leverage-stress endpoints (values from the scenario: :mod:`.stress_wire`), given the
  ``market``: ``GET /api/v5/public/insurance-fund?instType=SWAP&instFamily=[&limit=]``
  (a family of no simulated swap, or another ``instType``, answers an empty ``data``),
  ``GET /api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=[&period=]`` and
  ``GET /api/v5/rubik/stat/taker-volume?ccy=&instType=[&period=]`` (``period`` ``5m``,
  ``1H`` or ``1D``; the row of the last closed period only; a currency of no simulated
  swap answers ``51000``). Each counts against the venue's limit per IP and endpoint
  (10 per 2 s, 5 per 2 s for each rubik statistic; lower for a test of a client's share):
  past it, HTTP 429 ``{"msg":"Too Many Requests","code":"50011"}``
  (:attr:`OkxRest.refused`).

:attr:`OkxRest.requests` lists every request's path and query, to check what clients call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ....simulate import history
from ....simulate.market import Market
from ....simulate.stress import WindowCounter
from . import stress_wire, wire


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _body(data: list[Any], code: str = "0", msg: str = "") -> str:
    return wire.encode({"code": code, "data": data, "msg": msg})


INSURANCE_PATH: Final = "/api/v5/public/insurance-fund"
LONG_SHORT_PATH: Final = "/api/v5/rubik/stat/contracts/long-short-account-ratio"
TAKER_PATH: Final = "/api/v5/rubik/stat/taker-volume"
PERIODS: Final = {"5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h", "4H": "4h",
                  "6H": "6h", "12H": "12h", "1D": "1d"}  # fmt: skip


class OkxRest:
    """The REST side of the simulator: the instruments listing (``listing`` is its body) and,
    given the ``market`` and its ``contracts`` (by market symbol), history."""

    def __init__(
        self,
        listing: str,
        *,
        market: Market | None = None,
        contracts: Mapping[str, wire.Contract] | None = None,
        clock: Callable[[], int] | None = None,
        insurance_limit: int = stress_wire.INSURANCE_LIMIT,
        long_short_limit: int = stress_wire.LONG_SHORT_LIMIT,
        taker_limit: int = stress_wire.TAKER_LIMIT,
    ) -> None:
        """``*_limit``: requests per IP in any 2 s of each stress endpoint (the venue's, or
        lower for a test of a client's share)."""
        self.listing = listing
        self._rows: list[dict[str, Any]] = json.loads(listing)["data"]
        self.requests: list[str] = []
        self.market = market
        self.by_inst = {c.inst_id: (sym, c) for sym, c in (contracts or {}).items()}
        self.clock = clock or _now_ms
        self.app = Starlette(
            routes=[
                Route("/api/v5/public/instruments", self._instruments),
                Route("/api/v5/public/time", self._time),
                Route("/api/v5/rubik/stat/contracts/open-interest-history", self._oi_history),
                Route("/api/v5/public/funding-rate-history", self._funding_history),
                Route(INSURANCE_PATH, self._insurance_fund),
                Route(LONG_SHORT_PATH, self._long_short),
                Route(TAKER_PATH, self._taker_volume),
            ]
        )
        window = stress_wire.WINDOW_MS
        self.limits = {
            INSURANCE_PATH: WindowCounter(insurance_limit, window),
            LONG_SHORT_PATH: WindowCounter(long_short_limit, window),
            TAKER_PATH: WindowCounter(taker_limit, window),
        }
        self.families = stress_wire.families(contracts or {})
        self.linear = {c.family: c.linear for c in (contracts or {}).values()}
        self.by_ccy: dict[str, list[str]] = {}
        if market is not None:
            for sym in contracts or {}:
                self.by_ccy.setdefault(market.spec(sym).base, []).append(sym)

    @property
    def refused(self) -> int:
        """Stress requests answered 429 (over a limit)."""
        return sum(c.refused for c in self.limits.values())

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

    def _instrument(self, request: Request) -> tuple[str, wire.Contract] | None:
        found = self.by_inst.get(request.query_params.get("instId", ""))
        return found if found is not None and self.market is not None else None

    async def _oi_history(self, request: Request) -> Response:
        q = request.query_params
        found = self._instrument(request)
        if found is None or self.market is None:
            return self._reply(request, _body([], "51001", "Instrument ID does not exist."), 400)
        period = history.PERIODS_MS.get(PERIODS.get(q.get("period", "5m"), ""))
        try:
            limit = int(q.get("limit", 100))
            begin = int(q["begin"]) + 1 if "begin" in q else None
            end = int(q["end"]) - 1 if "end" in q else None
        except ValueError:
            limit = 0
        if period is None or not 1 <= limit <= 100:
            return self._reply(request, _body([], "51000", "Parameter period error"), 400)
        symbol, c = found
        now = self.clock()
        end = now if end is None else end
        lo = begin if begin is not None else end - (limit + 1) * period
        quote = self.market.quote(symbol)
        points = history.oi_history(symbol, quote.oi_base, quote.mark, now, lo, end, period)
        rows = []
        for p in reversed(points[-limit:]):
            n = p.oi_base / c.ct_val if c.linear else p.oi_usd / c.ct_val
            rows.append([str(p.ts_ms), f"{n:.2f}", f"{p.oi_base:.8f}", f"{p.oi_usd:.8f}"])
        return self._reply(request, _body(rows))

    async def _funding_history(self, request: Request) -> Response:
        q = request.query_params
        found = self._instrument(request)
        if found is None:
            return self._reply(request, _body([], "51001", "Instrument ID does not exist."), 400)
        try:
            limit = int(q.get("limit", 100))
            newer = int(q["before"]) + 1 if "before" in q else None
            older = int(q["after"]) - 1 if "after" in q else None
        except ValueError:
            limit = 0
        if not 1 <= limit <= 400:
            return self._reply(request, _body([], "51000", "Parameter limit error"), 400)
        symbol, c = found
        now = self.clock()
        every = int(c.funding_interval_h * 3_600_000)
        end = now if older is None else older
        lo = newer if newer is not None else end - (limit + 1) * every
        found_rates = history.funding_history(symbol, c.funding_interval_h, now, lo, end)
        rows = [
            {"fundingRate": f"{rate:.10f}", "fundingTime": str(ts), "instId": c.inst_id,
             "instType": "SWAP", "method": "current_period", "realizedRate": f"{rate:.10f}"}
            for ts, rate in reversed(found_rates[-limit:])
        ]  # fmt: skip
        return self._reply(request, _body(rows))

    # -- leverage stress ------------------------------------------------------------------

    def _limited(self, request: Request) -> Response | None:
        """The 429 answer when this request is over its endpoint's limit, else ``None``."""
        ip = request.client.host if request.client else "unknown"
        if self.limits[request.url.path].add(ip, self.clock()):
            return None
        return self._reply(request, stress_wire.TOO_MANY, 429)

    async def _insurance_fund(self, request: Request) -> Response:
        if (refused := self._limited(request)) is not None:
            return refused
        q = request.query_params
        inst_type, family = q.get("instType"), q.get("instFamily")
        if not inst_type:
            return self._reply(
                request, _body([], "50014", "Parameter instType can not be empty."), 400
            )
        if inst_type not in wire.INST_TYPES:
            return self._reply(request, _body([], "51000", "Parameter instType error"), 400)
        if inst_type != "MARGIN" and not family:
            return self._reply(
                request, _body([], "50014", "Parameter instFamily can not be empty."), 400
            )
        symbols = self.families.get(family or "")
        if inst_type != wire.INST_TYPE or symbols is None or self.market is None:
            return self._reply(request, _body([]))
        assert family is not None
        row = stress_wire.insurance_fund(
            self.market, family, symbols, self.linear[family], self.clock()
        )
        return self._reply(request, _body([row]))

    def _rubik(self, request: Request) -> tuple[list[str], int] | Response:
        """The simulated swaps of the request's ``ccy`` and its period, or the error answer."""
        q = request.query_params
        ccy = q.get("ccy")
        if not ccy:
            return self._reply(request, _body([], "50014", "Parameter ccy can not be empty."), 400)
        period_ms = stress_wire.PERIODS_MS.get(q.get("period", "5m"))
        if period_ms is None:
            return self._reply(request, _body([], "51000", "Parameter period error"), 400)
        symbols = self.by_ccy.get(ccy)
        if symbols is None:
            return self._reply(request, _body([], "51000", "Parameter ccy error"), 400)
        return symbols, period_ms

    async def _long_short(self, request: Request) -> Response:
        if (refused := self._limited(request)) is not None:
            return refused
        got = self._rubik(request)
        if isinstance(got, Response):
            return got
        return self._reply(request, _body(stress_wire.long_short_ratio(self.clock(), got[1])))

    async def _taker_volume(self, request: Request) -> Response:
        if (refused := self._limited(request)) is not None:
            return refused
        if request.query_params.get("instType") not in ("SPOT", "CONTRACTS"):
            return self._reply(request, _body([], "51000", "Parameter instType error"), 400)
        got = self._rubik(request)
        if isinstance(got, Response) or self.market is None:
            return got if isinstance(got, Response) else self._reply(request, _body([]))
        symbols, period_ms = got
        rows = stress_wire.taker_volume(self.market, symbols, self.clock(), period_ms)
        return self._reply(request, _body(rows))
