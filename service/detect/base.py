"""The seam between the detector's I/O (:mod:`.runner`) and a pressure model.

The runner knows only :class:`PressureModel`: it feeds events in, asks for an evaluation
every round, and writes what comes back. :func:`~.factory.make_model` builds the default one
(:class:`~.robust_model.RobustModel`); another model implements these three methods.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..events import HandoffEvent
from ..scores import Pressure, Transition
from .aggregate import Member


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation round produced."""

    pressures: list[Pressure] = field(default_factory=list)
    """Instruments whose pressure was (re)computed this round; the others did not change."""
    transitions: list[Transition] = field(default_factory=list)
    """Transitions of instruments."""
    aggregates: list[Pressure] = field(default_factory=list)
    """Asset and market scores (see ``Pressure.scope``) recomputed this round."""
    aggregate_transitions: list[Transition] = field(default_factory=list)
    """Transitions of assets and of the market (see ``Transition.scope``)."""
    deferred: int = 0
    """Instruments due this round that the model left for the next one (a per-round limit:
    ``max_evaluations_per_round``); they keep their last score meanwhile."""


class PressureModel(Protocol):
    def update(self, events: Iterable[HandoffEvent]) -> None:
        """Take events in (any venues and instruments, roughly time-ordered)."""

    def evaluate(self, now_ms: int, held: Mapping[str, str] | None = None) -> Evaluation:
        """Score what is due at ``now_ms``; must be cheap when little changed.

        ``held`` names venues (``"*"``: all) whose data is missing, not calm (the store is
        unreachable, the feed is silent), with the reason: their instruments keep their
        states, at quality 0, and an asset or the market does not move toward calm while a
        member under pressure is held.
        """

    def restore(self, pressures: Iterable[Pressure]) -> None:
        """Resume from stored states after a restart (so a running cascade is not re-announced).

        Called once, before the first :meth:`evaluate`; a model may ignore it.
        """


@runtime_checkable
class Seedable(Protocol):
    """A model that takes history at start-up (the warm start)."""

    def seed(
        self,
        venue: str,
        symbol: str,
        asset: str,
        oi: list[tuple[int, float, float]],
        funding: list[tuple[int, float]],
    ) -> int:
        """Open interest ``(ts_ms, oi_base, oi_usd)`` and funding ``(ts_ms, rate_1h)``
        history of one instrument; return the baseline samples it gave."""

    def instruments(self) -> list[tuple[str, str, str, float]]:
        """``(venue, symbol, asset, oi_usd)`` of the instruments seen, largest first."""


@runtime_checkable
class Sliced(Protocol):
    """A model whose round can be run in slices, so that a round does not hold the caller's
    event loop for its whole length (the runner yields to the loop between two slices)."""

    def evaluate_steps(
        self, now_ms: int, held: Mapping[str, str] | None, slice_s: float
    ) -> Generator[None, None, Evaluation]:
        """:meth:`PressureModel.evaluate` as a generator: it yields after each ``slice_s`` of
        its own work and returns the round's :class:`Evaluation`, the same as
        :meth:`~PressureModel.evaluate` would have returned at ``now_ms``, provided nothing
        else changes the model between two slices. The time it measures against a round
        budget is its own (the slices'), not the time spent between them."""


@runtime_checkable
class Shardable(Protocol):
    """A model that can run as a detector shard: the market is combined by one shard from
    every shard's assets (``docs/scaling.md``)."""

    own_market: bool
    """Whether :meth:`PressureModel.evaluate` combines the market from the model's own
    assets (a detector of everything); a detector shard sets it to ``False``."""

    def update_shard(
        self, events: Iterable[HandoffEvent], owns: Callable[[str], bool]
    ) -> list[HandoffEvent]:
        """Take in the events of the assets it ``owns`` (returned); of the others' the model
        may keep what they tell of their venue."""

    def restore_shard(self, pressures: Iterable[Pressure], owns: Callable[[str], bool]) -> None:
        """:meth:`PressureModel.restore` of the assets it ``owns`` (given the others' stored
        instrument scores too, in their order)."""

    def members(self) -> dict[str, Member]:
        """Each asset of the model as a member of the market."""

    def evaluate_market(self, now_ms: int, members: Iterable[Member]) -> Evaluation:
        """The market combined from ``members`` (every shard's assets)."""
