"""Bitget's v2 public REST market endpoints that ccxt's ``bitget`` calls, as a Starlette app:
the simulator of a venue polled through ccxt (:mod:`service.collect.poller`).

* ``GET /api/v2/mix/market/contracts?productType=`` → the recorded contracts of that product
  type (``USDT-FUTURES``: linear, ``COIN-FUTURES``: inverse, both sized in base coin; other
  product types: empty), in the v2 row shape; no ``productType``: Bitget's 400 ``40019``;
* ``GET /api/v2/mix/market/tickers?productType=`` → one ticker per contract from the market:
  ``markPrice``, ``indexPrice``, ``fundingRate`` (per 8 h), ``holdingAmount`` (base coin),
  ``ts`` (now);
* ``GET /api/v2/mix/market/current-fund-rate?symbol=&productType=`` → ``[{"fundingRate",
  "fundingRateInterval": "8", "nextUpdate"...}]`` (ccxt's ``fetch_funding_rate``);
* ``GET /api/v2/mix/market/open-interest?symbol=&productType=`` →
  ``{"openInterestList":[{"symbol":..,"size":..}],"ts":..}``, ``size`` in base coin; an
  unknown symbol: 400 ``40034``;
* what ccxt's ``load_markets`` also asks (spot symbols, coins, margin currencies): empty.

Bodies are ``{"code":"00000","msg":"success","requestTime":<ms>,"data":...}``. Test hooks:
:attr:`BitgetRest.requests` (monotonic time and path of every request),
:meth:`BitgetRest.fail` (answer the next requests to a path with an HTTP error),
:attr:`BitgetRest.served` (every ticker and open-interest row served, per symbol).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .market import Quote

LINEAR: Final = "USDT-FUTURES"
INVERSE: Final = "COIN-FUTURES"
PRODUCT_TYPES: Final = (LINEAR, INVERSE, "USDC-FUTURES", "SUSDT-FUTURES", "SCOIN-FUTURES",
                        "SUSDC-FUTURES")  # fmt: skip

_COMMON: Final[dict[str, Any]] = {
    "makerFeeRate": "0.0002", "takerFeeRate": "0.0006", "feeRateUpRatio": "0.005",
    "openCostUpRatio": "0.01",
}  # fmt: skip
_COIN_MARGINS: Final = ["BTC", "ETH", "USDC", "XRP", "BGB"]
RECORDED: Final[dict[str, dict[str, Any]]] = {
    # symbol (v1 suffix dropped): the recorded v1 row's other fields
    "BTCUSDT": {"quoteCoin": "USDT", "baseCoin": "BTC", "buyLimitPriceRatio": "0.01",
                "sellLimitPriceRatio": "0.01", "supportMarginCoins": ["USDT"],
                "minTradeNum": "0.001", "priceEndStep": "5", "volumePlace": "3",
                "pricePlace": "1"},
    "ETHUSDT": {"quoteCoin": "USDT", "baseCoin": "ETH", "buyLimitPriceRatio": "0.01",
                "sellLimitPriceRatio": "0.01", "supportMarginCoins": ["USDT"],
                "minTradeNum": "0.01", "priceEndStep": "1", "volumePlace": "2",
                "pricePlace": "2"},
    "SOLUSDT": {"quoteCoin": "USDT", "baseCoin": "SOL", "buyLimitPriceRatio": "0.02",
                "sellLimitPriceRatio": "0.02", "supportMarginCoins": ["USDT"],
                "minTradeNum": "1", "priceEndStep": "1", "volumePlace": "0", "pricePlace": "4"},
    "XRPUSDT": {"quoteCoin": "USDT", "baseCoin": "XRP", "buyLimitPriceRatio": "0.02",
                "sellLimitPriceRatio": "0.02", "supportMarginCoins": ["USDT"],
                "minTradeNum": "1", "priceEndStep": "1", "volumePlace": "0", "pricePlace": "4"},
    "BTCUSD": {"quoteCoin": "USD", "baseCoin": "BTC", "buyLimitPriceRatio": "0.01",
               "sellLimitPriceRatio": "0.01", "supportMarginCoins": _COIN_MARGINS,
               "minTradeNum": "0.001", "priceEndStep": "5", "volumePlace": "3",
               "pricePlace": "1"},
    "ETHUSD": {"quoteCoin": "USD", "baseCoin": "ETH", "buyLimitPriceRatio": "0.01",
               "sellLimitPriceRatio": "0.01",
               "supportMarginCoins": ["ETH", "BTC", "USDC", "XRP", "BGB"],
               "minTradeNum": "0.1", "priceEndStep": "1", "volumePlace": "1", "pricePlace": "2"},
}  # fmt: skip
"""From ``shared/captures/rest/BITGET.0.txt`` (mix v1 ``contracts?productType=umcbl|dmcbl``,
recorded 2022-04-07; ``bmoscon/cryptofeed@ce58c2a0``, ``sample_data/BITGET.0``), fees aside."""


@dataclass(frozen=True, slots=True)
class Contract:
    symbol: str
    product_type: str
    price_place: int
    volume_place: int


def product_type(row: Mapping[str, Any]) -> str:
    return INVERSE if row["quoteCoin"] == "USD" else LINEAR


def v2_row(symbol: str) -> dict[str, Any]:
    """The recorded v1 row of ``symbol`` in the v2 ``contracts`` shape (the fields v1 lacked
    take the values of Bitget's documented example; ``sizeMultiplier`` = ``minTradeNum``)."""
    rec = RECORDED[symbol]
    return {
        "symbol": symbol, **_COMMON, **rec,
        "sizeMultiplier": rec["minTradeNum"], "symbolType": "perpetual", "minTradeUSDT": "5",
        "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1", "deliveryTime": "",
        "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "", "fundInterval": "8",
        "minLever": "1", "maxLever": "125", "posLimit": "0.05", "maintainTime": "",
    }  # fmt: skip


def contract(symbol: str) -> Contract:
    rec = RECORDED[symbol]
    return Contract(symbol, product_type(rec), int(rec["pricePlace"]), int(rec["volumePlace"]))


def ticker(q: Quote, c: Contract, ts_ms: int) -> dict[str, Any]:
    """A v2 mix ticker row (strings, as Bitget sends them)."""
    price = f"{q.mark:.{c.price_place}f}"
    return {
        "symbol": c.symbol, "lastPr": price, "askPr": price, "bidPr": price, "bidSz": "1",
        "askSz": "1", "high24h": price, "low24h": price, "ts": str(ts_ms), "change24h": "0",
        "baseVolume": "0", "quoteVolume": "0", "usdtVolume": "0", "openUtc": price,
        "changeUtc24h": "0", "indexPrice": f"{q.index:.{c.price_place}f}",
        "fundingRate": f"{q.funding_rate_8h:.6f}",
        "holdingAmount": f"{q.oi_base:.{c.volume_place}f}", "deliveryStartTime": None,
        "deliveryTime": None, "deliveryStatus": "", "open24h": price, "markPrice": price,
    }  # fmt: skip


def open_interest(q: Quote, c: Contract, ts_ms: int) -> dict[str, Any]:
    size = f"{q.oi_base:.{c.volume_place}f}"
    return {"openInterestList": [{"symbol": c.symbol, "size": size}], "ts": str(ts_ms)}


def current_fund_rate(q: Quote, c: Contract, ts_ms: int) -> dict[str, str]:
    """A v2 ``current-fund-rate`` row: the rate per 8 h and the next settlement."""
    period_ms = 8 * 3_600_000
    return {
        "symbol": c.symbol, "fundingRate": f"{q.funding_rate_8h:.6f}",
        "fundingRateInterval": "8", "nextUpdate": str((ts_ms // period_ms + 1) * period_ms),
        "minFundingRate": "-0.003", "maxFundingRate": "0.003",
    }  # fmt: skip


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _body(data: Any, code: str = "00000", msg: str = "success") -> str:
    body = {"code": code, "msg": msg, "requestTime": _now_ms(), "data": data}
    return json.dumps(body, separators=(",", ":"))


class BitgetRest:
    """The REST app over ``quote`` (the market's current state of a contract)."""

    def __init__(self, contracts: Mapping[str, Contract], quote: Callable[[str], Quote]) -> None:
        self.contracts = dict(contracts)
        self.quote = quote
        self.requests: list[tuple[float, str]] = []
        self.served: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        """Every row served per (``ticker`` | ``funding`` | ``open_interest``, symbol), oldest
        first."""
        self._failures: list[tuple[str, int]] = []
        empty = ["/api/v2/spot/public/coins", "/api/v2/spot/public/symbols",
                 "/api/v2/margin/currencies"]  # fmt: skip
        self.app = Starlette(
            routes=[
                Route("/api/v2/mix/market/contracts", self._contracts),
                Route("/api/v2/mix/market/tickers", self._tickers),
                Route("/api/v2/mix/market/open-interest", self._open_interest),
                Route("/api/v2/mix/market/current-fund-rate", self._current_fund_rate),
                *(Route(path, self._empty) for path in empty),
            ]
        )

    def fail(self, path_contains: str, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` requests whose path contains ``path_contains`` with
        HTTP ``status``: a Bitget error body (``{"code":"429",...}``) below 500, a plain
        gateway page from 500 on."""
        self._failures.extend([(path_contains, status)] * count)

    def _reply(self, request: Request, make: Callable[[], tuple[str, int]]) -> Response:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        self.requests.append((time.monotonic(), path))
        for i, (needle, status) in enumerate(self._failures):
            if needle in path:
                del self._failures[i]
                if status >= 500:  # a gateway's error page, not a Bitget body
                    return Response(HTTPStatus(status).phrase, status, media_type="text/html")
                text = _body(None, str(status), HTTPStatus(status).phrase)
                return Response(text, status, media_type="application/json")
        text, status = make()
        return Response(text, status, media_type="application/json")

    def _product(self, request: Request) -> str | None:
        return request.query_params.get("productType", "").upper() or None

    async def _empty(self, request: Request) -> Response:
        return self._reply(request, lambda: (_body([]), 200))

    async def _contracts(self, request: Request) -> Response:
        def make() -> tuple[str, int]:
            pt = self._product(request)
            if pt is None:
                return _body(None, "40019", "Parameter productType cannot be empty"), 400
            rows = [v2_row(s) for s, c in self.contracts.items() if c.product_type == pt]
            return _body(rows), 200

        return self._reply(request, make)

    async def _tickers(self, request: Request) -> Response:
        def make() -> tuple[str, int]:
            pt = self._product(request)
            if pt is None:
                return _body(None, "40019", "Parameter productType cannot be empty"), 400
            now, rows = _now_ms(), []
            for s, c in self.contracts.items():
                if c.product_type == pt:
                    row = ticker(self.quote(s), c, now)
                    self.served[("ticker", s)].append(row)
                    rows.append(row)
            return _body(rows), 200

        return self._reply(request, make)

    async def _open_interest(self, request: Request) -> Response:
        def make() -> tuple[str, int]:
            symbol = request.query_params.get("symbol", "")
            c = self.contracts.get(symbol)
            if c is None or self._product(request) != c.product_type:
                return _body(None, "40034", "Parameter does not exist"), 400
            data = open_interest(self.quote(symbol), c, _now_ms())
            self.served[("open_interest", symbol)].append(data)
            return _body(data), 200

        return self._reply(request, make)

    async def _current_fund_rate(self, request: Request) -> Response:
        def make() -> tuple[str, int]:
            symbol = request.query_params.get("symbol", "")
            c = self.contracts.get(symbol)
            if c is None or self._product(request) != c.product_type:
                return _body(None, "40034", "Parameter does not exist"), 400
            row = current_fund_rate(self.quote(symbol), c, _now_ms())
            self.served[("funding", symbol)].append(row)
            return _body([row]), 200

        return self._reply(request, make)
