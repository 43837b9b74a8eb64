"""A tenth venue, written only for the tests: what adding a venue takes. One package with the
same files as the real venues', and one spec, :data:`SPEC`, that the tests register (see
``tests/venues/test_example_venue.py``), nothing else.

Its protocol is made up and small: ``{"op": "subscribe"}`` on ``/ws``, then ``ticker`` pushes
(mark, index, funding per 8 h, open interest in coin) and ``liquidation`` pushes; REST
``GET /instruments`` lists the perpetuals.
"""

from __future__ import annotations

from service.venues.spec import VenueSpec

from .player import ExamplePlayer
from .recorded import RECORDED
from .shape import SHAPE
from .simulator.server import ExampleSimulator
from .venue import Example

SPEC = VenueSpec(
    venue=Example,
    shape=SHAPE,
    simulator=ExampleSimulator,
    player=ExamplePlayer,
    recorded=RECORDED,
)
