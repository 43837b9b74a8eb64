"""Binance COIN-M futures (``binance_coinm``): inverse perpetuals, quantities in contracts.

Wire protocol (https://developers.binance.com/docs/derivatives/coin-margined-futures):

* Websocket base ``wss://dstream.binance.com`` ("Websocket Market Streams", Connect page:
  ``/ws/<stream>`` or ``/stream?streams=...``). Unlike USDⓈ-M there is no ``/public`` /
  ``/market`` routing for COIN-M (Binance's "Market Data Streams" page names the routed
  paths for USDⓈ-M only). We open ``<base>/stream`` and send ``SUBSCRIBE``; frames then
  arrive in the combined-stream envelope. 24 h connections, a ping every 3 min, 1024
  streams per connection, as on USDⓈ-M.
* Mark price and funding: COIN-M documents no all-market ``!markPrice@arr``; it has
  ``<symbol>@markPrice[@1s]`` and ``<pair>@markPrice[@1s]`` (an array over the pair's
  perpetual *and* delivery contracts). We subscribe ``<symbol>@markPrice@1s`` for each
  wanted perpetual, from the instrument list: exactly what we use, about 40 streams with
  every perpetual. Delivery contracts show ``"r":""`` and ``"T":0`` (no funding).
* ``!forceOrder@arr``: liquidation orders of every symbol, the latest per symbol per
  1000 ms only (``sampled=True``). ``q``/``z`` are contracts; ``ps`` is the pair. On a
  connection of its own (``liquidations``, the quiet lane), as on USDⓈ-M.
* Open interest is REST only: ``GET /dapi/v1/openInterest?symbol=BTCUSD_PERP`` (weight 1),
  in contracts.
* Sizing: one contract is ``contractSize`` USD (100 for BTC, 10 for the others; from
  ``GET /dapi/v1/exchangeInfo``): USD = contracts x contractSize, coin = USD / price.
* Funding intervals that differ from 8 h are listed by ``GET /dapi/v1/fundingInfo``.

Metadata comes through ccxt ``binancecoinm``, whose ``load_markets`` requests
``/dapi/v1/exchangeInfo`` only (without API keys it skips ``fetchCurrencies``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import msgspec

from ...events import Event, OpenInterest
from ..base import Connection, Instrument, now_ms
from .common import (
    BinanceParser,
    BinanceVenue,
    PremiumIndex,
    open_interest_event,
    parse_funding_info,
    premium_index_events,
    subscribe_message,
)

VENUE: Final = "binance_coinm"
LIQUIDATIONS: Final = "!forceOrder@arr"

__all__ = [
    "LIQUIDATIONS",
    "VENUE",
    "BinanceCoinm",
    "BinanceCoinmParser",
    "mark_stream",
    "pair_of",
    "parse_funding_info",
    "parse_open_interest",
    "parse_premium_index",
]


def pair_of(symbol: str) -> str:
    """The pair of a COIN-M symbol: ``BTCUSD_PERP`` and ``BTCUSD_210924`` are ``BTCUSD``."""
    return symbol.partition("_")[0]


def mark_stream(symbol: str) -> str:
    """The 1 s mark-price stream of one symbol (stream names are lower case)."""
    return f"{symbol.lower()}@markPrice@1s"


class BinanceCoinmParser(BinanceParser):
    """Parses combined-stream frames of ``<symbol>@markPrice@1s``, ``<pair>@markPrice@1s``
    and ``!forceOrder@arr``; sizes through the instrument's contract size (inverse)."""


class _OpenInterest(msgspec.Struct):
    """``{"symbol":"BTCUSD_200925","pair":"BTCUSD","openInterest":"15279",
    "contractType":"CURRENT_QUARTER","time":1592265372706}`` (contracts)"""

    symbol: str
    openInterest: float
    time: int
    pair: str = ""
    contractType: str = ""


_oi = msgspec.json.Decoder(_OpenInterest, strict=False)
_premium_rows = msgspec.json.Decoder(list[PremiumIndex] | PremiumIndex, strict=False)


def parse_open_interest(
    payload: bytes | str | Mapping[str, Any], inst: Instrument, mark: float, recv_ms: int
) -> OpenInterest:
    """``GET /dapi/v1/openInterest`` (contracts) as an event valued at ``mark``.

    Raises ``msgspec.ValidationError`` when the body is not an open-interest reply."""
    if isinstance(payload, Mapping):
        oi = msgspec.convert(payload, _OpenInterest, strict=False)
    else:
        oi = _oi.decode(payload)
    return open_interest_event(inst, oi.openInterest, oi.time, mark, recv_ms)


def parse_premium_index(
    payload: bytes | str | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    inst: Instrument,
    recv_ms: int,
) -> list[Event]:
    """``GET /dapi/v1/premiumIndex?symbol=`` as mark and funding events. COIN-M answers a
    list even for one symbol (and for ``?pair=``, the pair's perpetual and delivery rows):
    the row of ``inst`` is taken. Raises ``LookupError`` when it is missing."""
    if isinstance(payload, (bytes, str)):
        decoded = _premium_rows.decode(payload)
    else:
        decoded = msgspec.convert(payload, list[PremiumIndex] | PremiumIndex, strict=False)
    rows = decoded if isinstance(decoded, list) else [decoded]
    for row in rows:
        if row.symbol == inst.symbol:
            return premium_index_events(row, inst, recv_ms)
    raise LookupError(f"no premiumIndex row for {inst.symbol}")


class BinanceCoinm(BinanceVenue):
    id: ClassVar[str] = VENUE
    default_ws_url: ClassVar[str] = "wss://dstream.binance.com"
    default_rest_url: ClassVar[str] = "https://dapi.binance.com"
    ccxt_id: ClassVar[str] = "binancecoinm"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://dapi.binance.com",)
    linear: ClassVar[bool] = False
    parser_class: ClassVar[type[BinanceParser]] = BinanceCoinmParser

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``market`` (each subscribed pair's mark stream) and ``liquidations``
        (``!forceOrder@arr``, the quiet lane: :attr:`Connection.quiet`); then the liquidity
        connections."""
        url = f"{self.ws_url}/stream"
        marks = [mark_stream(s) for s in self.subscribed(markets)]
        return [
            Connection("market", url, (subscribe_message(marks),)),
            Connection("liquidations", url, (subscribe_message([LIQUIDATIONS]),), quiet=True),
            *self.liquidity_connections(markets),
        ]

    async def fetch_open_interest(self, inst: Instrument, mark: float) -> OpenInterest:
        raw = await self._rest("OpenInterest", {"symbol": inst.symbol})
        return parse_open_interest(raw, inst, mark, now_ms())
