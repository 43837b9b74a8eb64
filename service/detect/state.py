"""Per-instrument state with hysteresis and minimum dwell, and data quality (pure).

Rules of :meth:`StateMachine.step` (``enter`` / ``exit`` are the settings' scores):

* calm -> X (X not calm): as soon as the candidate is X and score >= enter. No dwell here, so
  an alert is never delayed; hysteresis alone keeps calm from flapping.
* X -> calm: only once score < exit, and only after X has lasted ``min_dwell_s``.
* X -> Y (both not calm): candidate Y with score >= enter; at once when Y is more severe
  (building < unwinding < cascade: an escalation is news, like leaving calm), after the
  dwell otherwise (cascade -> unwinding, unwinding -> building).
* Side: a non-calm state keeps its side; an unknown side is filled in silently; a flip
  long <-> short (candidate side, score >= enter, after the dwell) is a change of its own,
  reported as a transition X -> X with the new side.

Anything else keeps the current state: between ``exit`` and ``enter`` nothing moves.

Data quality (:func:`data_quality`): open interest and mark price are required. When either
has not been received for ``stale_after`` (or never), quality is 0 and the caller must hold
the last state instead of scoring stale windows, which would read as a false calm.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Side
from ..scores import State
from .text import span_text

SEVERITY = {State.CALM: 0, State.BUILDING: 1, State.UNWINDING: 2, State.CASCADE: 3}


@dataclass(slots=True)
class StateMachine:
    enter_score: float
    exit_score: float
    min_dwell_ms: int
    since_ms: int
    """When the current state (and side) was entered; the first evaluation time at first."""
    state: State = State.CALM
    side: Side | None = None
    changed: bool = False
    """False until the first change: the initial calm has no dwell to serve."""

    def step(
        self, candidate: State, side: Side | None, score: float, now_ms: int
    ) -> tuple[State, Side | None] | None:
        """Advance with one assessment; return the previous ``(state, side)`` on a change."""
        current = self.state
        if current is State.CALM:
            if candidate is not State.CALM and score >= self.enter_score:
                return self._change(candidate, side, now_ms)
            return None
        dwelt = not self.changed or now_ms - self.since_ms >= self.min_dwell_ms
        if score < self.exit_score:
            return self._change(State.CALM, None, now_ms) if dwelt else None
        if candidate is State.CALM or score < self.enter_score:
            return None
        if candidate is not current:
            escalation = SEVERITY[candidate] > SEVERITY[current]
            return (
                self._change(candidate, side or self.side, now_ms) if dwelt or escalation else None
            )
        if self.side is None:
            self.side = side
        elif side is not None and side is not self.side and dwelt:
            return self._change(current, side, now_ms)
        return None

    def _change(self, state: State, side: Side | None, now_ms: int) -> tuple[State, Side | None]:
        before = (self.state, self.side)
        self.state, self.side = state, side
        self.since_ms = now_ms
        self.changed = True
        return before


@dataclass(frozen=True, slots=True)
class Quality:
    value: float
    """1 when every feed is fresh; 0 when a required feed is stale (``hold``)."""
    hold: bool
    """True: keep the last state, the window cannot be trusted."""
    reasons: tuple[str, ...] = ()


OPTIONAL_PENALTY = 0.25
WARMING_FACTOR = 0.5


def data_quality(
    now_ms: int,
    stale_after_ms: int,
    *,
    oi_ms: int | None,
    mark_ms: int | None,
    funding_ms: int | None,
    venue_liq_ms: int | None,
    oi_samples: int,
) -> Quality:
    """Quality of an instrument's data from the receive time of each feed's newest event.

    Required (stale or missing -> 0, hold): open interest, mark. Optional (-0.25 each, only
    once seen, because instruments without funding and venues without liquidations exist):
    funding, the venue's liquidation stream. Fewer than two OI samples (no change measurable
    yet): x 0.5.
    """
    stale = [
        name
        for name, seen in (("oi", oi_ms), ("mark", mark_ms))
        if seen is None or now_ms - seen > stale_after_ms
    ]
    if stale:
        return Quality(0.0, True, (f"stale feed: {', '.join(stale)}",))
    value = 1.0
    reasons: list[str] = []
    if funding_ms is not None and now_ms - funding_ms > stale_after_ms:
        value -= OPTIONAL_PENALTY
        reasons.append("funding feed stale")
    if venue_liq_ms is not None and now_ms - venue_liq_ms > stale_after_ms:
        value -= OPTIONAL_PENALTY
        quiet = span_text(round((now_ms - venue_liq_ms) / 1000))
        reasons.append(f"no liquidations on the venue for {quiet}")
    if oi_samples < 2:
        value *= WARMING_FACTOR
        reasons.append("warming up: open interest change not measurable yet")
    return Quality(value, False, tuple(reasons))
