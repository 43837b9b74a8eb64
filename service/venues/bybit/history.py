"""Bybit v5 history for the warm start: ``/v5/market/open-interest`` (5-minute points;
inverse contracts skipped, their USD amounts have no price) and ``/v5/market/funding/history``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Instrument
from ..history import FUNDING_POINTS, Budget, FundingPoints, History, OiPoints, ms
from ..history import number as _f


def parse_bybit_oi(body: Mapping[str, Any]) -> tuple[list[tuple[int, float]], str]:
    """``GET /v5/market/open-interest``: ``(ts, amount)`` newest first and the next cursor,
    e.g. (the docs' own example, https://bybit-exchange.github.io/docs/v5/market/open-interest)
    ``{"retCode":0,"retMsg":"OK","result":{"symbol":"BTCUSD","category":"inverse","list":
    [{"openInterest":"63910691.00000000","singleOpenInterest":"31955346",
    "timestamp":"1780963200000"}],"nextPageCursor":""}}`` (base coin on linear contracts, USD
    on inverse ones). ``openInterest`` is "the sum of both sides" and ``singleOpenInterest``
    "the single side" (the older page already said both sides): the amount is one side,
    ``singleOpenInterest`` when given, else half of ``openInterest``."""
    result = body["result"]
    rows = [(ms(r["timestamp"]), _one_side(r)) for r in result.get("list", [])]
    return rows, result.get("nextPageCursor") or ""


def _one_side(row: Mapping[str, Any]) -> float:
    single = row.get("singleOpenInterest")
    return _f(single) if single not in (None, "") else _f(row["openInterest"]) / 2


def parse_bybit_funding(body: Mapping[str, Any], interval_h: float) -> FundingPoints:
    """``GET /v5/market/funding/history``, e.g. ``{"retCode":0,"result":{"category":
    "linear","list":[{"symbol":"BTCUSDT","fundingRate":"0.0001",
    "fundingRateTimestamp":"1672041600000"}]}}``."""
    rows = body["result"].get("list", [])
    return [(ms(r["fundingRateTimestamp"]), _f(r["fundingRate"]) / interval_h) for r in rows]


async def fetch_history(
    client: Any, inst: Instrument, since: int, until: int, budget: Budget
) -> History:
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
