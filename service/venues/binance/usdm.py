"""Binance USDⓈ-M futures (``binance_usdm``): linear perpetuals, quantities in base coin.

Wire protocol (https://developers.binance.com/docs/derivatives/usds-margined-futures):

* Websocket base ``wss://fstream.binance.com/market``: the routed path for regular market
  data. ``@markPrice`` and ``@forceOrder`` are *not* delivered on an unrouted connection.
  We open ``<base>/stream`` and send ``SUBSCRIBE``; every data frame then arrives in the
  combined-stream envelope ``{"stream": ..., "data": ...}``. The server pings every 3 min
  (the websockets library answers), and closes every connection after 24 h.
* ``!markPrice@arr@1s``: every symbol's mark, index, funding rate and next funding time,
  once a second, as one array.
* ``!forceOrder@arr``: liquidation orders of every symbol; only the latest per symbol per
  1000 ms is pushed, so the tape is a sample (``sampled=True``). It has a connection of its
  own (``liquidations``, the quiet lane), so a collector behind on the marks and books still
  reads it as it comes.
* Open interest is REST only (``GET /fapi/v1/openInterest``, weight 1), in base coin.
* Funding intervals that differ from 8 h are listed by ``GET /fapi/v1/fundingInfo``.

The frames and REST bodies are shared with COIN-M and decoded in :mod:`.common`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from ...events import Event, OpenInterest
from ..base import Connection, Instrument, now_ms
from ..history import Budget, History
from . import history as _binance_history
from .common import (
    DEFAULT_FUNDING_INTERVAL_H,
    BinanceParser,
    BinanceVenue,
    PremiumIndex,
    open_interest_event,
    parse_funding_info,
    premium_index_events,
    subscribe_message,
)

__all__ = [
    "DEFAULT_FUNDING_INTERVAL_H",
    "STREAMS",
    "VENUE",
    "BinanceUsdm",
    "BinanceUsdmParser",
    "parse_funding_info",
    "parse_open_interest",
    "parse_premium_index",
]

VENUE = "binance_usdm"
STREAMS = ("!markPrice@arr@1s", "!forceOrder@arr")
MARKS, LIQUIDATIONS = STREAMS


class BinanceUsdmParser(BinanceParser):
    """Parses combined-stream frames of ``!markPrice@arr@1s`` and ``!forceOrder@arr``."""


class _OpenInterest(msgspec.Struct):
    """``{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}``"""

    openInterest: float
    symbol: str
    time: int


_oi = msgspec.json.Decoder(_OpenInterest, strict=False)


def parse_open_interest(
    payload: bytes | str | Mapping[str, Any], inst: Instrument, mark: float, recv_ms: int
) -> OpenInterest:
    """``GET /fapi/v1/openInterest`` (base coin) as an event valued at ``mark``."""
    if isinstance(payload, Mapping):
        oi = msgspec.convert(payload, _OpenInterest, strict=False)
    else:
        oi = _oi.decode(payload)
    return open_interest_event(inst, oi.openInterest / inst.contract_size, oi.time, mark, recv_ms)


def parse_premium_index(
    payload: bytes | str | Mapping[str, Any], inst: Instrument, recv_ms: int
) -> list[Event]:
    """``GET /fapi/v1/premiumIndex?symbol=`` as mark and funding events (the REST twin of the
    mark-price stream, used to seed state before the websocket delivers)."""
    if isinstance(payload, Mapping):
        px = msgspec.convert(payload, PremiumIndex, strict=False)
    else:
        px = msgspec.json.decode(payload, type=PremiumIndex, strict=False)
    return premium_index_events(px, inst, recv_ms)


class BinanceUsdm(BinanceVenue):
    id: ClassVar[str] = VENUE
    default_ws_url: ClassVar[str] = "wss://fstream.binance.com/market"
    default_rest_url: ClassVar[str] = "https://fapi.binance.com"
    ccxt_id: ClassVar[str] = "binanceusdm"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://fapi.binance.com",)
    has_history: ClassVar[bool] = True
    linear: ClassVar[bool] = True
    parser_class: ClassVar[type[BinanceParser]] = BinanceUsdmParser

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``market`` (``!markPrice@arr@1s``) and ``liquidations`` (``!forceOrder@arr``, the
        quiet lane: :attr:`Connection.quiet`): all-market streams, one each whatever the
        symbol count (filtering is ours); then the liquidity connections."""
        url = f"{self.ws_url}/stream"
        return [
            Connection("market", url, (subscribe_message([MARKS]),)),
            Connection("liquidations", url, (subscribe_message([LIQUIDATIONS]),), quiet=True),
            *self.liquidity_connections(markets),
        ]

    async def fetch_open_interest(self, inst: Instrument, mark: float) -> OpenInterest:
        raw = await self._rest("OpenInterest", {"symbol": inst.symbol})
        return parse_open_interest(raw, inst, mark, now_ms())

    async def fetch_history(
        self, inst: Instrument, since_ms: int, until_ms: int, budget: Budget
    ) -> History:
        return await _binance_history.fetch_history(self._ccxt(), inst, since_ms, until_ms, budget)
