"""The venues, one package each (``service/venues/<name>/``), and their registry.

A venue registers once, with a :class:`~.spec.VenueSpec` in its package, and one line in
:data:`SPECS`; the collector's :data:`REGISTRY` and :data:`SHAPES`, the simulator runner's
:data:`SIMULATORS` and ``deleverage evaluate``'s :data:`PLAYERS` derive from it. What every
venue shares sits here: :mod:`.base` (the ``Venue`` interface), :mod:`.shape`,
:mod:`.history`, :mod:`.dedup`, :mod:`.player` (the wire players' base), the ticker-state
merger and number helpers, and the ccxt base (:mod:`.ccxt_polled`, :mod:`.ccxt_markets`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..simulate.runner import VenueSimulator
from ..simulate.scenario import Scenario
from . import binance, bitget, bitmex, bybit, deribit, gateio, hyperliquid, okx
from .base import Instrument, Parser, Venue
from .player import WirePlayer
from .shape import Shape
from .spec import VenueSpec

SPECS: Final[tuple[VenueSpec, ...]] = (
    binance.USDM,
    binance.COINM,
    bybit.SPEC,
    okx.SPEC,
    deribit.SPEC,
    hyperliquid.SPEC,
    bitmex.SPEC,
    bitget.SPEC,
    gateio.SPEC,
)
"""Every venue, one line each. Append a new venue at the end: the order fixes the simulator
ports (venue *i* listens on ``base_port + 2i`` and ``+ 2i + 1``, as ``docker-compose.yml``
says)."""

REGISTRY: dict[str, type[Venue]] = {s.id: s.venue for s in SPECS}
"""Venue id -> its :class:`~.base.Venue`, for the collector."""

SHAPES: dict[str, Shape] = {s.id: s.shape for s in SPECS}
"""Venue id -> the shape of its frames, for the drift checks (:mod:`.shape`)."""

SIMULATORS: dict[str, Callable[[Scenario, int, float], VenueSimulator]] = {
    s.id: s.simulate for s in SPECS
}
"""Venue id -> its simulator's factory ``(scenario, seed, time_scale)``. The order fixes the
ports under ``base_port``."""

PLAYERS: dict[str, type[WirePlayer]] = {s.id: s.player for s in SPECS}
"""Venue id -> its wire player: the venues ``deleverage evaluate --venues`` can play."""

__all__ = [
    "PLAYERS",
    "REGISTRY",
    "SHAPES",
    "SIMULATORS",
    "SPECS",
    "Instrument",
    "Parser",
    "Shape",
    "Venue",
    "VenueSpec",
]
