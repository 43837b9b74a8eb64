"""Venue modules and their registry: adding a venue is one module and one line here."""

from __future__ import annotations

from .base import Instrument, Parser, Venue
from .binance_coinm import BinanceCoinm
from .binance_usdm import BinanceUsdm
from .bybit import Bybit
from .okx import Okx

REGISTRY: dict[str, type[Venue]] = {
    BinanceUsdm.id: BinanceUsdm,
    BinanceCoinm.id: BinanceCoinm,
    Bybit.id: Bybit,
    Okx.id: Okx,
}

__all__ = ["REGISTRY", "Instrument", "Parser", "Venue"]
