"""Venue modules and their registry: adding a venue is one module and one line here."""

from __future__ import annotations

from .base import Instrument, Parser, Venue
from .binance_coinm import BinanceCoinm
from .binance_usdm import BinanceUsdm
from .bitget import Bitget
from .bitmex import Bitmex
from .bybit import Bybit
from .deribit import Deribit
from .gateio import Gate
from .hyperliquid import Hyperliquid
from .okx import Okx

REGISTRY: dict[str, type[Venue]] = {
    BinanceUsdm.id: BinanceUsdm,
    BinanceCoinm.id: BinanceCoinm,
    Bybit.id: Bybit,
    Okx.id: Okx,
    Deribit.id: Deribit,
    Hyperliquid.id: Hyperliquid,
    Bitmex.id: Bitmex,
    Bitget.id: Bitget,
    Gate.id: Gate,
}

__all__ = ["REGISTRY", "Instrument", "Parser", "Venue"]
