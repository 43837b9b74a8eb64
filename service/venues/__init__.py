"""Venue modules and their registry: adding a venue is one module and a line in each of
:data:`REGISTRY` and :data:`SHAPES`."""

from __future__ import annotations

from . import (
    _binance_shape,
    _bitget_shape,
    _bitmex_shape,
    _bybit_shape,
    _deribit_shape,
    _gateio_shape,
    _hyperliquid_shape,
    _okx_shape,
)
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
from .shape import Shape

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

SHAPES: dict[str, Shape] = {
    BinanceUsdm.id: _binance_shape.SHAPE,
    BinanceCoinm.id: _binance_shape.SHAPE,
    Bybit.id: _bybit_shape.SHAPE,
    Okx.id: _okx_shape.SHAPE,
    Deribit.id: _deribit_shape.SHAPE,
    Hyperliquid.id: _hyperliquid_shape.SHAPE,
    Bitmex.id: _bitmex_shape.SHAPE,
    Bitget.id: _bitget_shape.SHAPE,
    Gate.id: _gateio_shape.SHAPE,
}
"""Venue id -> the shape of its frames, for the drift checks (:mod:`.shape`)."""

__all__ = ["REGISTRY", "SHAPES", "Instrument", "Parser", "Shape", "Venue"]
