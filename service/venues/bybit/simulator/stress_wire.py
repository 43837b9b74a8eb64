"""Bybit v5 leverage-stress REST results, from the simulated market, in the venue's shapes
(the docs' examples: ``tests/venues/fixtures/stress/bybit_*.json``). Pure functions; the
routes are :mod:`.rest`'s.

The values follow the scenario as every simulated venue's do (:mod:`service.simulate.stress`):

* **Insurance pools.** One USDT pool shared by the simulated linear perpetuals (its
  ``symbols`` listed, as the newer answers do) and one pool per coin of the inverse ones,
  each worth :data:`POOL_USD` when full, drained by the scenario's
  :func:`~service.simulate.stress.drained_share`. ``value`` is the pool in USD (at par for
  USDT, at the coin's mark otherwise).
* **ADL alerts.** Per symbol, its pool's ``balance`` and ``maxBalance`` (the full pool),
  the docs' trigger ratio (``insurancePnlRatio`` −0.3, ``adlTriggerThreshold`` 10 000 USD
  in the pool's coin, ``adlStopRatio`` −0.25) and a ``pnlRatio`` that comes
  :data:`PROGRESS` of the way to the trigger for the symbol's rating: 5 % when calm (``LOW``
  on the service's scale), 50 % while its asset unwinds (``MEDIUM``), 85 % in its cascade
  (``HIGH``), and
  :data:`ACTIVE_PROGRESS` (past it: ``ACTIVE``) while the scenario auto-deleverages the
  asset. The same rows go out every second on the websocket's ``adlAlert.{coin}`` topics
  (:func:`adl_alert_frames`).
* **Account ratio.** Even (0.5 / 0.5), one row per closed period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ....simulate.market import Market
from ....simulate.stress import adl_active, adl_rating, drained_share
from .wire import Contract, adl_alert_frame, fmt

POOL_USD: Final = 90_000_000.0
"""A full simulated pool, in USD."""
TRIGGER_RATIO: Final = -0.3
TRIGGER_THRESHOLD_USD: Final = 10_000.0
"""The docs' ``adlTriggerThreshold`` (10 000 in a USDT pool), in USD: a coin pool's is the
same value in its coin (in coins, a BTC pool's balance is always below 10 000, so the drawdown
trigger would never apply)."""
STOP_RATIO: Final = "-0.25"
PROGRESS: Final = {"low": 0.05, "medium": 0.5, "high": 0.85}
"""How far a symbol's PnL drawdown has come to :data:`TRIGGER_RATIO`, per ADL rating."""
ACTIVE_PROGRESS: Final = 1.2
"""... and while the scenario auto-deleverages its asset (past the trigger)."""
PERIODS_MS: Final = {"5min": 300_000, "15min": 900_000, "30min": 1_800_000, "1h": 3_600_000,
                     "4h": 14_400_000, "1d": 86_400_000}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Pool:
    """One insurance pool: its coin and the simulated symbols it covers."""

    coin: str
    symbols: tuple[str, ...]


def pools(market: Market, contracts: Mapping[str, Contract]) -> dict[str, Pool]:
    """The pools of ``contracts`` by coin: USDT for the linear ones, the base coin for each
    inverse one."""
    by_coin: dict[str, list[str]] = {}
    for symbol, c in contracts.items():
        coin = "USDT" if c.linear else market.spec(symbol).base
        by_coin.setdefault(coin, []).append(symbol)
    return {coin: Pool(coin, tuple(sorted(s))) for coin, s in sorted(by_coin.items())}


def _coin_price(market: Market, pool: Pool) -> float:
    """USD per coin of ``pool``: 1 for USDT, else the mark of its first symbol."""
    return 1.0 if pool.coin == "USDT" else market.quote(pool.symbols[0]).mark


def _full_balance(market: Market, pool: Pool) -> float:
    """The full pool in its coin, at the coin's simulated start price (a fixed amount)."""
    if pool.coin == "USDT":
        return POOL_USD
    return POOL_USD / market.spec(pool.symbols[0]).price


def _threshold(market: Market, pool: Pool) -> float:
    """:data:`TRIGGER_THRESHOLD_USD` in the pool's coin, at the coin's start price."""
    return _full_balance(market, pool) * TRIGGER_THRESHOLD_USD / POOL_USD


def balance(market: Market, pool: Pool) -> float:
    """The pool's balance in its coin now."""
    return _full_balance(market, pool) * (1.0 - drained_share(market.scenario, market.now))


def insurance(market: Market, all_pools: Iterable[Pool], now_ms: int) -> dict[str, Any]:
    """``/v5/market/insurance``'s ``result``: ``{"updatedTime":"...","list":[{"coin":"USDT",
    "symbols":"BTCUSDT,ETHUSDT","balance":"...","value":"..."}]}``, stamped on the minute."""
    rows = []
    for pool in all_pools:
        held = balance(market, pool)
        rows.append(
            {
                "coin": pool.coin,
                "symbols": ",".join(pool.symbols),
                "balance": fmt(held, 8),
                "value": fmt(held * _coin_price(market, pool), 8),
            }
        )
    return {"updatedTime": str(now_ms - now_ms % 60_000), "list": rows}


def adl_alert(
    market: Market, symbols: Iterable[str], by_symbol: Mapping[str, Pool], now_ms: int
) -> dict[str, Any]:
    """``/v5/market/adlAlert``'s ``result``: ``{"updatedTime":"...","list":[{"coin":"USDT",
    "symbol":"BTCUSDT","balance":"...","maxBalance":"...","insurancePnlRatio":"-0.3",
    "pnlRatio":"-0.015","adlTriggerThreshold":"10000","adlStopRatio":"-0.25"}]}``, the data
    refreshed every minute as the venue's."""
    at, rows = market.now, []
    for symbol in symbols:
        pool = by_symbol[symbol]
        base = market.spec(symbol).base
        progress = ACTIVE_PROGRESS if adl_active(at, base) else PROGRESS[adl_rating(at, base)]
        rows.append(
            {
                "coin": pool.coin,
                "symbol": symbol,
                "balance": fmt(balance(market, pool), 8),
                "maxBalance": fmt(_full_balance(market, pool), 8),
                "insurancePnlRatio": f"{TRIGGER_RATIO}",
                "pnlRatio": fmt(TRIGGER_RATIO * progress, 6),
                "adlTriggerThreshold": fmt(_threshold(market, pool), 8),
                "adlStopRatio": STOP_RATIO,
            }
        )
    return {"updatedTime": str(now_ms - now_ms % 60_000), "list": rows}


def adl_alert_frames(
    market: Market, contracts: Mapping[str, Contract], by_symbol: Mapping[str, Pool], ts: int
) -> dict[str, str]:
    """The websocket's ``adlAlert.{coin}`` frames by topic (``adlAlert.USDT``,
    ``adlAlert.inverse``...): :func:`adl_alert`'s rows with the websocket's short names and
    numbers (:func:`.wire.adl_alert_frame`), every inverse pool under ``inverse``."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in adl_alert(market, contracts, by_symbol, ts)["list"]:
        coin = row["coin"] if contracts[row["symbol"]].linear else "inverse"
        balance = float(row["balance"])
        rows.setdefault(coin, []).append(
            {
                "c": row["coin"], "s": row["symbol"], "b": balance,
                "mb": float(row["maxBalance"]), "i_pr": float(row["insurancePnlRatio"]),
                "pr": float(row["pnlRatio"]), "adl_tt": float(row["adlTriggerThreshold"]),
                "adl_sr": float(row["adlStopRatio"]),
            }
        )  # fmt: skip
    return {f"adlAlert.{coin}": adl_alert_frame(coin, r, ts) for coin, r in rows.items()}


def account_ratio(symbol: str, now_ms: int, period_ms: int, limit: int) -> dict[str, Any]:
    """``/v5/market/account-ratio``'s ``result``: ``limit`` closed periods, newest first,
    ``{"list":[{"symbol":"BTCUSDT","buyRatio":"0.5","sellRatio":"0.5",
    "timestamp":"..."}],"nextPageCursor":""}``."""
    last = now_ms - now_ms % period_ms - period_ms
    rows = [
        {"symbol": symbol, "buyRatio": "0.5", "sellRatio": "0.5",
         "timestamp": str(last - i * period_ms)}
        for i in range(limit)
    ]  # fmt: skip
    return {"list": rows, "nextPageCursor": ""}
