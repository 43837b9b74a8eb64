"""Binance USDⓈ-M history for the warm start: ``/futures/data/openInterestHist`` (5-minute
points) and ``/fapi/v1/fundingRate``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Instrument
from ..history import FUNDING_POINTS, Budget, FundingPoints, History, OiPoints, ms
from ..history import number as _f


def parse_binance_oi(rows: list[Mapping[str, Any]]) -> OiPoints:
    """``GET /futures/data/openInterestHist`` rows (base coin and USD), e.g.
    ``[{"symbol":"BTCUSDT","sumOpenInterest":"34085.00000000",
    "sumOpenInterestValue":"1927265695.27131325","timestamp":1616438700000}]``."""
    return [(ms(r["timestamp"]), _f(r["sumOpenInterest"]), _f(r["sumOpenInterestValue"]))
            for r in rows]  # fmt: skip


def parse_binance_funding(rows: list[Mapping[str, Any]], interval_h: float) -> FundingPoints:
    """``GET /fapi/v1/fundingRate`` rows (rate per interval), e.g. ``[{"symbol":"BTCUSDT",
    "fundingTime":1570608000000,"fundingRate":"-0.03750000","markPrice":"34287.5"}]``."""
    return [(ms(r["fundingTime"]), _f(r["fundingRate"]) / interval_h) for r in rows]


async def fetch_history(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> History:
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
