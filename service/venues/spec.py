"""A venue's one registration: the :class:`VenueSpec` that every other layer derives from.

Each venue package (``service/venues/<name>/``) defines its spec in its ``__init__``; the list
:data:`service.venues.SPECS` holds one line per venue. From it come the collector's
:data:`~service.venues.REGISTRY` and :data:`~service.venues.SHAPES`, the simulator runner's
:data:`~service.venues.SIMULATORS` (the list's order fixes the simulator ports), the wire
players of ``deleverage evaluate`` (:data:`~service.venues.PLAYERS`), and the checks that keep
``docker-compose.yml`` and ``docs/venues.md`` in step (``tests/venues/test_specs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..simulate.clock import MarketClock
from ..simulate.market import SymbolSpec
from ..simulate.runner import VenueSimulator
from ..simulate.scenario import Scenario
from .base import Venue
from .player import WirePlayer
from .recorded import Recorded
from .shape import Shape


class SimulatorClass(Protocol):
    """A venue's loopback server, as the runner builds it (and ``deleverage bench market``,
    over a shared clock with a listing of the venue's real size)."""

    def __call__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        time_scale: float,
        list_only_simulated: bool,
        clock: MarketClock | None = ...,
        listing_size: int | None = ...,
    ) -> VenueSimulator: ...

    def listing_specs(self, listing_size: int | None) -> tuple[SymbolSpec, ...]: ...


@dataclass(frozen=True)
class VenueSpec:
    """One venue: its collector side, its simulator (a second implementation of the protocol,
    sharing no code with the parser) and its wire player."""

    venue: type[Venue]
    """The :class:`~.base.Venue` the collector runs (its ``id`` is the spec's)."""
    shape: Shape
    """The shape of its frames, for the drift checks (:mod:`.shape`)."""
    simulator: SimulatorClass
    """Its loopback server (``deleverage simulate``, the demo, the live tests)."""
    player: type[WirePlayer]
    """Its wire player (``deleverage evaluate``)."""
    recorded: Recorded | None = None
    """Its real recordings (captured frames, recorded listing), on which the conformance
    tests run its parser; ``None`` for a venue with none."""

    @property
    def id(self) -> str:
        return self.venue.id

    @property
    def enabled_by_default(self) -> bool:
        """A retired venue (BitMEX) is kept as the protocol's record but disabled."""
        return self.venue.retired is None

    def simulate(self, scenario: Scenario, seed: int, time_scale: float) -> VenueSimulator:
        """The simulator as the runner starts it: only the simulated symbols are listed, so
        ``symbols: all`` polls nothing that answers 400."""
        return self.simulator(scenario, seed=seed, time_scale=time_scale, list_only_simulated=True)

    def listing_specs(self, listing_size: int | None) -> tuple[SymbolSpec, ...]:
        """The specs of a market that simulates every perpetual of a ``listing_size`` listing
        (:mod:`service.simulate.listing`): what a clock shared with :meth:`simulate_listing`
        must hold."""
        return self.simulator.listing_specs(listing_size)

    def simulate_listing(self, clock: MarketClock, seed: int, listing_size: int) -> VenueSimulator:
        """The simulator over a shared ``clock``, listing ``listing_size`` perpetuals (those of
        the clock's market it lists: :meth:`listing_specs`), each simulated."""
        return self.simulator(
            clock.market.scenario,
            seed=seed,
            time_scale=clock.time_scale,
            list_only_simulated=True,
            clock=clock,
            listing_size=listing_size,
        )
