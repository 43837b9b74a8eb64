"""Deribit: one package, one registration (:data:`SPEC`).

* :mod:`.venue`: its ``Venue`` (connections, keep-alive) and its pure parser;
* :mod:`.frames`: wire frames and their decoding;
* :mod:`.shape`: the shape of its frames (drift checks);
* :mod:`.player`: the wire player of ``deleverage evaluate``;
* :mod:`.simulator`: the loopback server, its pure wire encoder and REST, and its recorded
  data, a second implementation of the protocol that imports nothing of the parser.
"""

from __future__ import annotations

from ..spec import VenueSpec
from .player import DeribitPlayer
from .recorded import RECORDED
from .shape import SHAPE
from .simulator.server import DeribitSimulator
from .venue import Deribit

SPEC = VenueSpec(
    venue=Deribit, shape=SHAPE, simulator=DeribitSimulator, player=DeribitPlayer, recorded=RECORDED
)

SPECS = (SPEC,)
"""What this package registers (:data:`service.venues.PACKAGES`)."""

__all__ = ["SPEC", "SPECS", "Deribit"]
