"""Binance USDⓈ-M and COIN-M futures: one package, two registrations (:data:`USDM`,
:data:`COINM`), as the two products share their frames and most of their protocol.

* :mod:`.common`: what the two share (frames, parser, connections);
* :mod:`.usdm`, :mod:`.coinm`: each product's :class:`~service.venues.base.Venue` and parser;
* :mod:`.history`: the history reader (warm start);
* :mod:`.shape`: the shape of the frames (drift checks);
* :mod:`.player`: the wire players of ``deleverage evaluate``;
* :mod:`.simulator`: the loopback servers, their pure wire encoders and REST, and recorded
  data, a second implementation of the protocol that imports nothing of the parser.
"""

from __future__ import annotations

from ..spec import VenueSpec
from . import recorded
from .coinm import BinanceCoinm
from .player import BinanceCoinmPlayer, BinanceUsdmPlayer
from .shape import SHAPE
from .simulator.coinm import BinanceCoinmSimulator
from .simulator.usdm import BinanceUsdmSimulator
from .usdm import BinanceUsdm

USDM = VenueSpec(
    venue=BinanceUsdm,
    shape=SHAPE,
    simulator=BinanceUsdmSimulator,
    player=BinanceUsdmPlayer,
    recorded=recorded.USDM,
)
COINM = VenueSpec(
    venue=BinanceCoinm,
    shape=SHAPE,
    simulator=BinanceCoinmSimulator,
    player=BinanceCoinmPlayer,
    recorded=recorded.COINM,
)

SPECS = (USDM, COINM)
"""What this package registers (:data:`service.venues.PACKAGES`), in port order."""

__all__ = ["COINM", "SPECS", "USDM", "BinanceCoinm", "BinanceUsdm"]
