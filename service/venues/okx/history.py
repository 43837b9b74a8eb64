"""OKX history for the warm start: ``/api/v5/rubik/stat/contracts/open-interest-history``
(5-minute points) and ``/api/v5/public/funding-rate-history``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Instrument
from ..history import FUNDING_POINTS, Budget, FundingPoints, History, OiPoints, ms
from ..history import number as _f


def parse_okx_oi(body: Mapping[str, Any]) -> OiPoints:
    """``GET /api/v5/rubik/stat/contracts/open-interest-history`` rows ``[ts, contracts,
    coin, USD]`` newest first, e.g. ``{"code":"0","data":[["1790550000000","2800476.45",
    "28006.5419","2360916466.88"]],"msg":""}``."""
    return [(ms(r[0]), _f(r[2]), _f(r[3])) for r in body.get("data", [])]


def parse_okx_funding(body: Mapping[str, Any], interval_h: float) -> FundingPoints:
    """``GET /api/v5/public/funding-rate-history``, e.g. ``{"code":"0","data":[{"instType":
    "SWAP","instId":"BTC-USDT-SWAP","fundingRate":"0.018","realizedRate":"0.017",
    "fundingTime":"1597026383085"}],"msg":""}``."""
    return [(ms(r["fundingTime"]), _f(r["fundingRate"]) / interval_h)
            for r in body.get("data", [])]  # fmt: skip


async def fetch_history(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> History:
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
