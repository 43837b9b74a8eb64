"""OKX: one package, one registration (:data:`SPEC`).

* :mod:`.venue`: its ``Venue`` (connections, keep-alive) and its pure parser;
* :mod:`.frames`: wire frames and their decoding;
* :mod:`.instruments`: the instrument listing;
* :mod:`.history`: the history reader (warm start);
* :mod:`.shape`: the shape of its frames (drift checks);
* :mod:`.player`: the wire player of ``deleverage evaluate``;
* :mod:`.simulator`: the loopback server, its pure wire encoder and REST, and its recorded
  data, a second implementation of the protocol that imports nothing of the parser.
"""

from __future__ import annotations

from ..spec import VenueSpec
from .player import OkxPlayer
from .recorded import RECORDED
from .shape import SHAPE
from .simulator.server import OkxSimulator
from .venue import Okx

SPEC = VenueSpec(
    venue=Okx, shape=SHAPE, simulator=OkxSimulator, player=OkxPlayer, recorded=RECORDED
)

SPECS = (SPEC,)
"""What this package registers (:data:`service.venues.PACKAGES`)."""

__all__ = ["SPEC", "SPECS", "Okx"]
