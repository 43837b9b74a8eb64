"""A local Binance COIN-M server on loopback: the real websocket and REST protocol, fake market.

The same server as :mod:`.usdm` (:class:`~.usdm.BinanceFuturesSimulator`)
speaking COIN-M (:data:`~.binance_coinm_wire.COINM`):

* websocket ``ws_base_url`` = ``ws://<host>:<port>`` (``dstream.binance.com`` has no routed
  paths): ``/stream[?streams=a/b]`` (combined), ``/ws`` and ``/ws/<stream>[/<stream>...]``
  (raw) all deliver;
* streams: ``<symbol>@markPrice[@1s]`` (``btcusd_perp``), ``<pair>@markPrice[@1s]``
  (``btcusd``: an array over the pair's simulated contracts; the real venue adds the pair's
  quarterlies), ``!forceOrder@arr`` and ``<symbol>@forceOrder`` (at most one per symbol per
  1000 ms, the latest, in whole contracts, with the pair ``ps``). There is no
  ``!markPrice@arr`` on COIN-M: subscribing to it is acked and delivers nothing;
* REST under ``/dapi/v1``: ``exchangeInfo`` (the recorded 2021 body), ``fundingInfo``,
  ``openInterest`` (contracts, with ``pair`` and ``contractType``), ``premiumIndex`` (a list).

The market is its own :class:`~.market.Market` of inverse perpetuals driven by the same
scenarios as USDⓈ-M (phases name assets: ``BTC``, ``ETH``), open interest in base coin
internally, served in contracts of ``contractSize`` USD valued at the mark. The starting open
interest equals the USDⓈ-M simulator's, on purpose: the scenarios size liquidations against
it (a cascade's liquidated notional is a set share of the open-interest decline), so the
story keeps its proportions on both venues.
"""

from __future__ import annotations

from typing import ClassVar, Final

from ....simulate.market import SymbolSpec
from . import usdm_wire as wire
from .coinm_wire import COINM
from .usdm import BinanceFuturesSimulator

COINM_SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSD_PERP", "BTC", 60_000.0, 80_000.0, 0.0001),
    SymbolSpec("ETHUSD_PERP", "ETH", 3_000.0, 1_500_000.0, 0.001),
    SymbolSpec("BNBUSD_PERP", "BNB", 550.0, 600_000.0, 0.01),
    SymbolSpec("XRPUSD_PERP", "XRP", 0.6, 600_000_000.0, 1.0),
)
"""Four inverse perpetuals listed in the recorded COIN-M ``exchangeInfo`` (prints are sized in
base coin; the wire rounds them to whole contracts)."""

COINM_SYMBOLS: Final = tuple(s.symbol for s in COINM_SPECS)


class BinanceCoinmSimulator(BinanceFuturesSimulator):
    """Binance COIN-M on loopback. ``async with BinanceCoinmSimulator() as sim: ...``; the
    same constructor, hooks and ground truth as
    :class:`~.binance_usdm.BinanceUsdmSimulator`."""

    product: ClassVar[wire.Product] = COINM
    default_specs: ClassVar[tuple[SymbolSpec, ...]] = COINM_SPECS
    SPECS = COINM_SPECS
    TEMPLATE = "XRPUSD_PERP"
    default_four_hour: ClassVar[tuple[str, ...]] = ()
