"""Binance USDⓈ-M leverage-stress REST bodies, from the simulated market, in the venue's
shapes (the docs' examples: ``tests/venues/fixtures/stress``). Pure functions; the routes
are :mod:`.usdm_rest`'s.

What the simulator knows of stress follows the scenario's phases, as every simulated
venue's does (:mod:`service.simulate.stress`): the ADL rating of an affected asset's symbols
is ``medium`` while it unwinds and ``high`` in a cascade (``low`` otherwise:
:func:`adl_rating`), and the insurance fund, one USDT pool of every simulated symbol, drains
while positions are liquidated (0.6 % of its full balance per scenario second of cascade,
0.1 % of unwinding) and refills in calm phases (0.75 % a second), so that a cycle of
``long_unwind`` takes it down by 30 % and back (:func:`insurance_balance`). The long/short
shares and taker volumes stay even; the basis follows the market (its mark against its
index).

Limits, as the venue publishes them: ``symbolAdlRisk`` and ``insuranceBalance`` weigh 1;
the ``futures/data`` endpoints weigh 0 and are limited to 1000 requests per 5 minutes per IP
(:data:`FUTURES_DATA_LIMIT`); past it the answer is HTTP 429, code -1003.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from ....simulate.market import Quote
from ....simulate.scenario import PhaseAt, Scenario
from ....simulate.stress import MAX_DRAIN as MAX_DRAIN  # its floor, for callers
from ....simulate.stress import adl_rating as adl_rating  # the routes read it here
from ....simulate.stress import drained_share
from .usdm_wire import Contract, fmt

FUTURES_DATA_LIMIT: Final = 1000
FUTURES_DATA_WINDOW_MS: Final = 300_000
INSURANCE_BALANCE_USDT: Final = 800_000_000.0
"""The simulated pool's balance (about the docs' example's USDT pool)."""
PERIODS_MS: Final = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                     "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000,
                     "1d": 86_400_000}  # fmt: skip


def insurance_balance(scenario: Scenario, at: PhaseAt) -> float:
    """The fund's USDT balance at ``at`` (:func:`~service.simulate.stress.drained_share`)."""
    return INSURANCE_BALANCE_USDT * (1.0 - drained_share(scenario, at))


def adl_risk(symbol: str, now_ms: int, rating: str = "low") -> dict[str, Any]:
    """``{"symbol":"BTCUSDT","adlRisk":"low","updateTime":...}``: updated every 30 min on
    the venue (here, with the scenario's phase)."""
    return {"symbol": symbol, "adlRisk": rating, "updateTime": now_ms - now_ms % 1_800_000}


def insurance_pool(
    symbols: Iterable[str], now_ms: int, balance: float = INSURANCE_BALANCE_USDT
) -> dict[str, Any]:
    """One pool of ``symbols`` with a USDT balance, stamped on the hour."""
    return {
        "symbols": sorted(symbols),
        "assets": [
            {
                "asset": "USDT",
                "marginBalance": f"{balance:.8f}",
                "updateTime": now_ms - now_ms % 3_600_000,
            }
        ],
    }


def _period_start(now_ms: int, period_ms: int) -> int:
    return now_ms - now_ms % period_ms - period_ms


def long_short(symbol: str, now_ms: int, period_ms: int) -> dict[str, Any]:
    """An even account (or position) split, for the last closed period."""
    return {
        "symbol": symbol,
        "longShortRatio": "1.0000",
        "longAccount": "0.5000",
        "shortAccount": "0.5000",
        "timestamp": str(_period_start(now_ms, period_ms)),
    }


def taker(q: Quote, now_ms: int, period_ms: int) -> dict[str, Any]:
    """Even taker volumes (base coin) for the last closed period: a tenth of a percent of
    open interest each way."""
    vol = fmt(q.oi_base * 0.001, 4)
    return {
        "buySellRatio": "1.0000",
        "buyVol": vol,
        "sellVol": vol,
        "timestamp": str(_period_start(now_ms, period_ms)),
    }


def basis(q: Quote, c: Contract, now_ms: int, period_ms: int) -> dict[str, Any]:
    """The perpetual's mark against its index, for the last closed period."""
    diff = q.mark - q.index
    return {
        "indexPrice": fmt(q.index, 8),
        "contractType": "PERPETUAL",
        "basisRate": fmt(diff / q.index, 4),
        "futuresPrice": fmt(q.mark, c.price_precision),
        "annualizedBasisRate": "",
        "basis": fmt(diff, 8),
        "pair": c.pair or c.symbol,
        "timestamp": _period_start(now_ms, period_ms),
    }
