"""Binance COIN-M's wire protocol, server side. Pure: frames in, frames out, no I/O.

COIN-M (``dstream.binance.com``, ``dapi.binance.com``) speaks USDⓈ-M's protocol (the request
protocol, error frames, throttle and weights of :mod:`.usdm_wire`) with these
differences, gathered in :data:`COINM`:

* every websocket path delivers (no ``/market`` routing); no ``!markPrice@arr``, but
  ``<pair>@markPrice[@1s]`` (an array over the pair's contracts);
* quantities are contracts of ``contractSize`` USD (100 for BTC, 10 for the others), whole
  numbers; ``forceOrder`` carries the pair (``ps``);
* REST lives under ``/dapi/v1``; ``openInterest`` is in contracts and names the pair and
  contract type; ``premiumIndex`` answers a list even for one symbol (weight 10).

Real frames and bodies, for reference::

    {"stream":"btcusd_200925@forceOrder","data":{"e":"forceOrder","E":1594622954023,"o":{
     "s":"BTCUSD_200925","ps":"BTCUSD","S":"SELL","o":"LIMIT","f":"IOC","q":"3","p":"9314.5",
     "ap":"9352.7","X":"FILLED","l":"3","z":"3","T":1594622954021}}}
    [{"e":"markPriceUpdate","E":1596095725000,"s":"BTCUSD_PERP","p":"11012.31359011",
      "P":"10962.17178236","i":"10933.62615417","r":"0.00000000","T":1596096000000}]
    {"symbol":"BTCUSD_200925","pair":"BTCUSD","openInterest":"15279",
     "contractType":"CURRENT_QUARTER","time":1592265372706}
"""

from __future__ import annotations

from typing import Any, Final

from ....simulate.market import LiquidationPrint, Quote
from .usdm_wire import Contract, Product, fmt, funding_rate, next_funding_ms
from .usdm_wire import force_order as usdm_force_order


def contracts_of(usd: float, c: Contract) -> int:
    """Whole contracts worth ``usd`` (at least one): how COIN-M sizes an order."""
    return max(1, round(usd / c.contract_size))


def print_contracts(p: LiquidationPrint, c: Contract) -> int:
    """The contracts a liquidation print fills: its USD notional in whole contracts."""
    return contracts_of(p.qty_base * p.price, c)


def mark_price_update(q: Quote, c: Contract, event_ms: int) -> dict[str, Any]:
    perpetual = c.contract_type == "PERPETUAL"
    return {
        "e": "markPriceUpdate",
        "E": event_ms,
        "s": q.symbol,
        "p": fmt(round(q.mark, c.price_precision), 8),
        "P": fmt(q.index, 8),
        "i": fmt(q.index, 8),
        "r": fmt(funding_rate(q, c), 8) if perpetual else "",
        "T": next_funding_ms(event_ms, c.funding_interval_h) if perpetual else 0,
    }


def force_order(p: LiquidationPrint, c: Contract, event_ms: int) -> dict[str, Any]:
    """USDⓈ-M's ``forceOrder`` in contracts, with the pair (``ps``)."""
    return usdm_force_order(p, c, event_ms, str(print_contracts(p, c)), ps=c.pair)


def premium_index(q: Quote, c: Contract, now_ms: int) -> dict[str, Any]:
    perpetual = c.contract_type == "PERPETUAL"
    return {
        "symbol": q.symbol,
        "pair": c.pair,
        "markPrice": fmt(round(q.mark, c.price_precision), 8),
        "indexPrice": fmt(q.index, 8),
        "estimatedSettlePrice": fmt(q.index, 8),
        "lastFundingRate": fmt(funding_rate(q, c), 8) if perpetual else "",
        "interestRate": fmt(0.0001 * c.funding_interval_h / 8.0, 8) if perpetual else "",
        "nextFundingTime": next_funding_ms(now_ms, c.funding_interval_h) if perpetual else 0,
        "time": now_ms,
    }


def open_interest(q: Quote, c: Contract, now_ms: int) -> dict[str, Any]:
    """The market's open interest (base coin) in whole contracts, valued at the mark."""
    return {
        "symbol": q.symbol,
        "pair": c.pair,
        "openInterest": str(round(q.oi_base * q.mark / c.contract_size)),
        "contractType": c.contract_type,
        "time": now_ms,
    }


COINM: Final = Product(
    name="coinm",
    rest_prefix="/dapi/v1",
    exchange_info="data/coinm/exchangeInfo.json",
    market_path=None,
    all_market_mark=False,
    pair_mark=True,
    premium_index_as_list=True,
    premium_index_weight=(10, 10),
    mark_price_update=mark_price_update,
    force_order=force_order,
    premium_index=premium_index,
    open_interest=open_interest,
)
