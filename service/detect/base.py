"""The seam between the detector's I/O (:mod:`.runner`) and a pressure model.

The runner knows only :class:`PressureModel`: it feeds events in, asks for an evaluation
every round, and writes what comes back. A better model replaces
:class:`~.threshold_model.ThresholdModel` by implementing these three methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ..events import Event
from .model import Pressure, Transition


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What one evaluation round produced."""

    pressures: list[Pressure] = field(default_factory=list)
    """Instruments whose pressure was (re)computed this round; the others did not change."""
    transitions: list[Transition] = field(default_factory=list)


class PressureModel(Protocol):
    def update(self, events: Iterable[Event]) -> None:
        """Take events in (any venues and instruments, roughly time-ordered)."""

    def evaluate(self, now_ms: int) -> Evaluation:
        """Score what is due at ``now_ms``; must be cheap when little changed."""

    def restore(self, pressures: Iterable[Pressure]) -> None:
        """Resume from stored states after a restart (so a running cascade is not re-announced).

        Called once, before the first :meth:`evaluate`; a model may ignore it.
        """
