"""The venues, one package each (``service/venues/<name>/``), and their registry.

A venue registers once: a :class:`~.spec.VenueSpec` in its package (its ``SPECS``), and
the package's name on one line of :data:`PACKAGES`. The collector's :data:`REGISTRY` and
:data:`SHAPES`, the simulator runner's :data:`SIMULATORS` and ``deleverage evaluate``'s
:data:`PLAYERS` derive from it. What every venue shares sits here: :mod:`.base` (the
``Venue`` interface), :mod:`.shape`, :mod:`.history`, :mod:`.dedup`, :mod:`.player` (the wire
players' base), the ticker-state merger and number helpers, and the ccxt base
(:mod:`.ccxt_polled`, :mod:`.ccxt_markets`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Final, cast

from ..simulate.runner import VenueSimulator
from ..simulate.scenario import Scenario
from .base import Instrument, Parser, Venue
from .player import WirePlayer
from .shape import Shape
from .spec import VenueSpec

PACKAGES: Final = (
    "binance",  # binance_usdm, binance_coinm
    "bybit",
    "okx",
    "deribit",
    "hyperliquid",
    "bitmex",
    "bitget",
    "gateio",
)
"""Every venue package (``service/venues/<name>/``), one line each: the one registry edit a
new venue needs. Append a new one at the end: the order fixes the simulator ports (venue *i*
of :data:`SPECS` listens on ``base_port + 2i`` and ``+ 2i + 1``, as ``docker-compose.yml``
says)."""

SPECS: Final[tuple[VenueSpec, ...]] = tuple(
    spec
    for name in PACKAGES
    for spec in cast(tuple[VenueSpec, ...], import_module(f"{__name__}.{name}").SPECS)
)
"""Every venue's spec, in :data:`PACKAGES` order (a package may register several: Binance's
USDⓈ-M and COIN-M)."""

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
    "PACKAGES",
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
