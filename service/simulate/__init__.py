"""Local exchange servers that speak the venues' real protocols over a simulated market.

The layout mirrors the venues from the other side of the wire: a venue-independent scenario
(:mod:`.scenario`, data) drives a deterministic market (:mod:`.market`, pure), a clock runs it
in scaled real time (:mod:`.clock`), and one module per venue serves it (:mod:`.binance_usdm`,
with its pure protocol in :mod:`.binance_usdm_wire` and REST in :mod:`.binance_usdm_rest`) on
the lifecycle and test hooks all venues share (:mod:`.server`).
"""

from __future__ import annotations

from .binance_coinm import BinanceCoinmSimulator
from .binance_usdm import BinanceUsdmSimulator
from .bitget import BitgetSimulator
from .bitmex import BitmexSimulator
from .bybit import BybitSimulator
from .clock import MarketClock
from .deribit import DeribitSimulator
from .gateio import GateSimulator
from .hyperliquid import HyperliquidSimulator
from .market import DEFAULT_SPECS, DEFAULT_SYMBOLS, LiquidationPrint, Market, Quote, SymbolSpec
from .okx import OkxSimulator
from .runner import run_forever
from .scenario import (
    DEFAULT_SCENARIO,
    SCENARIOS,
    Drift,
    Interval,
    Label,
    Phase,
    Regime,
    Scenario,
    get_scenario,
    ground_truth,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "DEFAULT_SPECS",
    "DEFAULT_SYMBOLS",
    "SCENARIOS",
    "BinanceCoinmSimulator",
    "BinanceUsdmSimulator",
    "BitgetSimulator",
    "BitmexSimulator",
    "BybitSimulator",
    "DeribitSimulator",
    "Drift",
    "GateSimulator",
    "HyperliquidSimulator",
    "Interval",
    "Label",
    "LiquidationPrint",
    "Market",
    "MarketClock",
    "OkxSimulator",
    "Phase",
    "Quote",
    "Regime",
    "Scenario",
    "SymbolSpec",
    "get_scenario",
    "ground_truth",
    "run_forever",
]
