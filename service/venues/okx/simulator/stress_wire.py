"""OKX v5 leverage-stress REST data, from the simulated market, in the venue's shapes (the
docs' examples: ``tests/venues/fixtures/stress/okx_*.json``). Pure functions; the routes are
:mod:`.rest`'s.

The values follow the scenario as every simulated venue's do (:mod:`service.simulate.stress`):

* **Insurance fund**, one per swap family (``BTC-USDT``, ``BTC-USD``...), worth
  :data:`FUND_USD` when full and drained by the scenario's
  :func:`~service.simulate.stress.drained_share`: a ``regular_update`` row (the balance in
  USDT for a linear family, in the coin for an inverse one) and the family's ``total`` in USD.
  The ``adl`` rows (ADL start and end) are not simulated.
* **Rubik statistics** per currency: an even account long/short ratio (1.00) and even taker
  volumes (a thousandth of the currency's simulated open interest each way), one row of the
  last closed period.

Limits, as the venue publishes them, per IP and endpoint: 10 requests per 2 s for the
insurance fund, 5 per 2 s for each rubik statistic; past them HTTP 429 with
``{"msg":"Too Many Requests","code":"50011"}``, the body the venue sends (seen in client
libraries' reports: ccxt/ccxt#18901, c9s/bbgo#1534).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ....simulate.market import Market
from ....simulate.stress import drained_share
from .wire import Contract, fmt

FUND_USD: Final = 120_000_000.0
"""A full simulated fund of one family, in USD."""
INSURANCE_LIMIT: Final = 10
LONG_SHORT_LIMIT: Final = 5
TAKER_LIMIT: Final = 5
WINDOW_MS: Final = 2_000
TOO_MANY: Final = '{"msg":"Too Many Requests","code":"50011"}'
PERIODS_MS: Final = {"5m": 300_000, "1H": 3_600_000, "1D": 86_400_000}


def families(contracts: Mapping[str, Contract]) -> dict[str, list[str]]:
    """The simulated swaps (market symbols) of each family."""
    out: dict[str, list[str]] = {}
    for symbol, c in contracts.items():
        out.setdefault(c.family, []).append(symbol)
    return out


def insurance_fund(
    market: Market, family: str, symbols: list[str], linear: bool, now_ms: int
) -> dict[str, Any]:
    """One family's ``data`` row: ``{"details":[{"adlType":"","amt":"","balance":"...",
    "ccy":"USDT","maxBal":"","maxBalTs":"","ts":"...","type":"regular_update"}],
    "instFamily":"BTC-USDT","instType":"SWAP","total":"..."}``, stamped on the minute (the
    ``regular_update`` row is the up-to-the-minute balance)."""
    left = FUND_USD * (1.0 - drained_share(market.scenario, market.now))
    spec = market.spec(symbols[0])
    ccy = "USDT" if linear else spec.base
    held = left if linear else left / market.quote(symbols[0]).mark
    detail = {
        "adlType": "", "amt": "", "balance": fmt(held, 8), "ccy": ccy, "maxBal": "",
        "maxBalTs": "", "ts": str(now_ms - now_ms % 60_000), "type": "regular_update",
    }  # fmt: skip
    return {"details": [detail], "instFamily": family, "instType": "SWAP", "total": fmt(left, 4)}


def _last_period(now_ms: int, period_ms: int) -> int:
    return now_ms - now_ms % period_ms - period_ms


def long_short_ratio(now_ms: int, period_ms: int) -> list[list[str]]:
    """``[[ts, ratio]]`` of the last closed period: even."""
    return [[str(_last_period(now_ms, period_ms)), "1"]]


def taker_volume(
    market: Market, symbols: list[str], now_ms: int, period_ms: int
) -> list[list[str]]:
    """``[[ts, sellVol, buyVol]]`` of the last closed period: even, a thousandth of the
    currency's open interest (base coin) each way."""
    vol = fmt(sum(market.quote(s).oi_base for s in symbols) * 0.001, 4)
    return [[str(_last_period(now_ms, period_ms)), vol, vol]]
