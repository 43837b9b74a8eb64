"""Warm start: fill the baselines from the venues' own history at start-up.

A baseline needs hours of data; the venues keep days of open-interest history (5-minute
points) and every funding settlement. At start-up, per venue with a history reader below
(concurrently, each within ``warmup_timeout_s`` and ``warmup_max_requests``):

1. the instrument metadata (the venue's ``load_markets``: linear or inverse, funding
   interval);
2. the instruments the model has seen on the venue, largest open interest first, up to
   ``warmup_max_symbols`` (instruments seen later, within the time limit, are warmed too);
3. per instrument, the open interest over ``warmup_history_s`` and the last
   :data:`FUNDING_POINTS` funding rates, through ccxt's implicit endpoints (its rate limiter,
   error mapping and configurable base URL: the simulator serves the same paths), handed
   to the model's ``seed``.

A failed request is logged and skipped (the instrument stays on live baselines); nothing
here can stop the detector. Venues: Binance USDⓈ-M (``/futures/data/openInterestHist``,
``/fapi/v1/fundingRate``), Bybit (``/v5/market/open-interest``, ``/v5/market/funding/
history``; open interest of inverse contracts is in USD and skipped, the base amount being
unknown without prices), OKX (``/api/v5/rubik/stat/contracts/open-interest-history``,
``/api/v5/public/funding-rate-history``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import ccxt.async_support as ccxt_async
import structlog

from ..config import DetectorSettings, Settings, VenueSettings
from ..venues import REGISTRY
from ..venues.base import Instrument, Venue
from ..venues.ccxt_markets import ccxt_client, close_quietly
from .base import Seedable

log = structlog.get_logger(__name__)

STEP_MS: Final = 300_000
FUNDING_POINTS: Final = 100
POLL_S: Final = 2.0
FIRST_PICK_S: Final = 3.0
"""Wait this long for open interest to arrive before ranking a venue's instruments."""
ERRORS = (ccxt_async.BaseError, OSError, TimeoutError, ValueError, KeyError, TypeError)

OiPoints = list[tuple[int, float, float]]
FundingPoints = list[tuple[int, float]]


class Exhausted(Exception):
    """The venue's request budget is spent."""


@dataclass(slots=True)
class Budget:
    left: int
    used: int = 0

    def take(self) -> None:
        if self.left <= 0:
            raise Exhausted
        self.left -= 1
        self.used += 1


Fetch = Callable[[Any, Instrument, int, int, Budget], Awaitable[tuple[OiPoints, FundingPoints]]]


def _f(x: Any) -> float:
    return float(x) if x not in (None, "") else 0.0


# -- Binance USDⓈ-M --------------------------------------------------------------------------


def parse_binance_oi(rows: list[Mapping[str, Any]]) -> OiPoints:
    """``GET /futures/data/openInterestHist`` rows (base coin and USD), e.g.
    ``[{"symbol":"BTCUSDT","sumOpenInterest":"34085.00000000",
    "sumOpenInterestValue":"1927265695.27131325","timestamp":1616438700000}]``."""
    return [(int(r["timestamp"]), _f(r["sumOpenInterest"]), _f(r["sumOpenInterestValue"]))
            for r in rows]  # fmt: skip


def parse_binance_funding(rows: list[Mapping[str, Any]], interval_h: float) -> FundingPoints:
    """``GET /fapi/v1/fundingRate`` rows (rate per interval), e.g. ``[{"symbol":"BTCUSDT",
    "fundingTime":1570608000000,"fundingRate":"-0.03750000","markPrice":"34287.5"}]``."""
    return [(int(r["fundingTime"]), _f(r["fundingRate"]) / interval_h) for r in rows]


async def _binance(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> tuple[OiPoints, FundingPoints]:
    oi: OiPoints = []
    start = since
    while start < until:
        budget.take()
        rows = await client.fapiDataGetOpenInterestHist(
            {
                "symbol": inst.symbol,
                "period": "5m",
                "limit": 500,
                "startTime": start,
                "endTime": until,
            }
        )
        page = parse_binance_oi(rows)
        oi += page
        if len(page) < 500:
            break
        start = page[-1][0] + 1
    budget.take()
    rows = await client.fapiPublicGetFundingRate({"symbol": inst.symbol, "limit": FUNDING_POINTS})
    return oi, parse_binance_funding(rows, inst.funding_interval_h)


# -- Bybit -----------------------------------------------------------------------------------


def parse_bybit_oi(body: Mapping[str, Any]) -> tuple[list[tuple[int, float]], str]:
    """``GET /v5/market/open-interest``: ``(ts, amount)`` newest first and the next cursor,
    e.g. ``{"retCode":0,"result":{"symbol":"BTCUSDT","category":"linear","list":
    [{"openInterest":"461134384.00000000","timestamp":"1669571400000"}],
    "nextPageCursor":""}}`` (base coin on linear contracts, USD on inverse ones)."""
    result = body["result"]
    rows = [(int(r["timestamp"]), _f(r["openInterest"])) for r in result.get("list", [])]
    return rows, result.get("nextPageCursor") or ""


def parse_bybit_funding(body: Mapping[str, Any], interval_h: float) -> FundingPoints:
    """``GET /v5/market/funding/history``, e.g. ``{"retCode":0,"result":{"category":
    "linear","list":[{"symbol":"BTCUSDT","fundingRate":"0.0001",
    "fundingRateTimestamp":"1672041600000"}]}}``."""
    rows = body["result"].get("list", [])
    return [(int(r["fundingRateTimestamp"]), _f(r["fundingRate"]) / interval_h) for r in rows]


async def _bybit(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> tuple[OiPoints, FundingPoints]:
    category = "linear" if inst.linear else "inverse"
    oi: OiPoints = []
    cursor = ""
    while inst.linear:
        budget.take()
        params = {"category": category, "symbol": inst.symbol, "intervalTime": "5min",
                  "startTime": since, "endTime": until, "limit": 200}  # fmt: skip
        if cursor:
            params["cursor"] = cursor
        rows, cursor = parse_bybit_oi(await client.publicGetV5MarketOpenInterest(params))
        oi += [(ts, amount, 0.0) for ts, amount in rows]  # no price: USD unknown
        if not cursor or not rows:
            break
    budget.take()
    body = await client.publicGetV5MarketFundingHistory(
        {"category": category, "symbol": inst.symbol, "limit": FUNDING_POINTS}
    )
    return sorted(oi), sorted(parse_bybit_funding(body, inst.funding_interval_h))


# -- OKX -------------------------------------------------------------------------------------


def parse_okx_oi(body: Mapping[str, Any]) -> OiPoints:
    """``GET /api/v5/rubik/stat/contracts/open-interest-history`` rows ``[ts, contracts,
    coin, USD]`` newest first, e.g. ``{"code":"0","data":[["1790550000000","2800476.45",
    "28006.5419","2360916466.88"]],"msg":""}``."""
    return [(int(r[0]), _f(r[2]), _f(r[3])) for r in body.get("data", [])]


def parse_okx_funding(body: Mapping[str, Any], interval_h: float) -> FundingPoints:
    """``GET /api/v5/public/funding-rate-history``, e.g. ``{"code":"0","data":[{"instType":
    "SWAP","instId":"BTC-USDT-SWAP","fundingRate":"0.018","realizedRate":"0.017",
    "fundingTime":"1597026383085"}],"msg":""}``."""
    return [(int(r["fundingTime"]), _f(r["fundingRate"]) / interval_h)
            for r in body.get("data", [])]  # fmt: skip


async def _okx(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> tuple[OiPoints, FundingPoints]:
    oi: OiPoints = []
    end = until + 1
    while end > since:
        budget.take()
        page = parse_okx_oi(await client.publicGetRubikStatContractsOpenInterestHistory(
            {"instId": inst.symbol, "period": "5m", "end": str(end), "limit": "100"}
        ))  # fmt: skip
        if not page:
            break
        oi += [p for p in page if p[0] >= since]
        end = min(p[0] for p in page)
    budget.take()
    body = await client.publicGetPublicFundingRateHistory(
        {"instId": inst.symbol, "limit": str(FUNDING_POINTS)}
    )
    return sorted(oi), sorted(parse_okx_funding(body, inst.funding_interval_h))


READERS: Final[dict[str, Fetch]] = {"binance_usdm": _binance, "bybit": _bybit, "okx": _okx}
"""Venue id → its history reader. A venue not listed starts on live baselines."""


# -- orchestration ---------------------------------------------------------------------------


@dataclass(slots=True)
class VenueWarmup:
    """What the warm start did on one venue (for logs and tests)."""

    venue: str
    instruments: list[str] = field(default_factory=list)
    samples: int = 0
    requests: int = 0
    failures: int = 0


class Warmup:
    """Seeds a model from the venues' history; :meth:`run` it once, after the rebuild."""

    def __init__(
        self,
        settings: DetectorSettings,
        venues: Mapping[str, VenueSettings],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._venues = {v: vs for v, vs in venues.items() if v in READERS and v in REGISTRY}
        self._clock = clock
        self.results: dict[str, VenueWarmup] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Warmup | None:
        """The warm start of the enabled venues, or ``None`` when switched off."""
        if not settings.detector.warmup:
            return None
        return cls(settings.detector, settings.enabled_venues())

    async def run(self, model: Seedable) -> int:
        """Warm every venue concurrently; the baseline samples added."""
        if not self._venues:
            return 0
        results = await asyncio.gather(
            *(self._venue(v, vs, model) for v, vs in self._venues.items())
        )
        total = sum(r.samples for r in results)
        log.info("warm start done", samples=total,
                 venues={r.venue: len(r.instruments) for r in results})  # fmt: skip
        return total

    async def _venue(self, name: str, vs: VenueSettings, model: Seedable) -> VenueWarmup:
        result = self.results[name] = VenueWarmup(name)
        venue: Venue = REGISTRY[name](vs)
        cls: Any = type(venue)
        client = ccxt_client(cls.ccxt_id, cls.ccxt_hosts, venue.rest_url)
        budget = Budget(self._s.warmup_max_requests)
        try:
            async with asyncio.timeout(self._s.warmup_timeout_s):
                markets = await venue.load_markets(self._s.warmup_timeout_s)
                await self._instruments(name, markets, client, budget, model, result)
        except TimeoutError:  # also the normal end when fewer instruments than the maximum
            log.info("warm start: time is up", venue=name, warmed=len(result.instruments))
        except Exhausted:
            log.warning("warm start: request budget spent", venue=name, requests=budget.used)
        except ERRORS as exc:
            result.failures += 1
            log.warning("warm start: venue metadata failed; skipped", venue=name, error=str(exc))
        finally:
            result.requests = budget.used
            await close_quietly(client)
            await venue.close()
        return result

    async def _instruments(
        self,
        name: str,
        markets: Mapping[str, Instrument],
        client: Any,
        budget: Budget,
        model: Seedable,
        result: VenueWarmup,
    ) -> None:
        reader = READERS[name]
        done: set[str] = set()
        await asyncio.sleep(FIRST_PICK_S)
        while len(done) < self._s.warmup_max_symbols:
            todo = [(sym, asset) for v, sym, asset, _ in model.instruments()
                    if v == name and sym not in done and sym in markets]  # fmt: skip
            if not todo:
                await asyncio.sleep(POLL_S)
                continue
            for symbol, asset in todo[: self._s.warmup_max_symbols - len(done)]:
                done.add(symbol)
                until = int(self._clock() * 1000)
                since = until - int(self._s.warmup_history_s * 1000)
                try:
                    oi, funding = await reader(client, markets[symbol], since, until, budget)
                except ERRORS as exc:
                    result.failures += 1
                    log.warning("warm start: history failed; skipped", venue=name,
                                symbol=symbol, error=str(exc)[:200])  # fmt: skip
                    continue
                result.samples += model.seed(name, symbol, asset, oi, funding)
                result.instruments.append(symbol)
