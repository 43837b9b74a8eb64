"""What every simulated venue's leverage-stress endpoints share: how the scenario moves the
ADL risk and the insurance funds, and a per-IP request counter over a sliding window for the
venues' published limits.

The venues publish the same signs in different shapes (a ``low``/``medium``/``high`` rating
on Binance, a PnL drawdown against a trigger ratio on Bybit, a fund balance per family on
OKX). The simulators derive all of them from two venue-independent figures, so that the
venues agree with each other during a scenario:

* :func:`adl_rating`: ``high`` for the symbols of an asset in a cascade, ``medium`` while it
  unwinds, ``low`` otherwise; :func:`adl_active`: the scenario auto-deleverages the asset
  (a venue with a trigger says it is past it);
* :func:`drained_share`: the share of its full balance an insurance fund has lost since the
  cycle began: 0.6 % per scenario second of cascade, 0.1 % of unwinding, refilled 0.75 % a
  second in calm phases, between 0 and :data:`MAX_DRAIN` (a cycle of ``long_unwind`` takes
  a fund down by 30 % and back).

Pure functions of the scenario's position; the routes are the venues' simulators'.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .scenario import PhaseAt, Regime, Scenario

DRAIN_PER_S: Final = {Regime.CASCADE: 0.006, Regime.UNWINDING: 0.001, Regime.BUILDING: 0.0,
                       Regime.CALM: -0.0075}  # fmt: skip
"""Share of the full balance a fund loses per scenario second of each regime (negative:
refilled)."""
MAX_DRAIN: Final = 0.8
RATINGS: Final = {Regime.CASCADE: "high", Regime.UNWINDING: "medium"}


def adl_rating(at: PhaseAt, base: str) -> str:
    """The ADL rating of a symbol of ``base`` during the phase ``at``: ``high`` in a cascade
    of that asset (and while the venues auto-deleverage it), ``medium`` while it unwinds,
    else ``low``."""
    if adl_active(at, base):
        return "high"
    label = at.phase.label
    affected = base in at.phase.drifts or base in label.assets
    return RATINGS.get(label.regime, "low") if affected else "low"


def adl_active(at: PhaseAt, base: str) -> bool:
    """Whether the venues auto-deleverage ``base`` during ``at`` (the phase's drift says so:
    the evaluation's ``adl_unwind``): a venue with an ADL trigger says it is past it."""
    return at.phase.drift(base).adl


def drained_share(scenario: Scenario, at: PhaseAt) -> float:
    """The share of its full balance a fund has lost at ``at``: drained and refilled phase
    by phase since the cycle began (full at its start), in ``[0, MAX_DRAIN]``."""
    drained = 0.0
    for i, phase in enumerate(scenario.phases[: at.index + 1]):
        seconds = at.offset_s if i == at.index else phase.duration_s
        drained = min(MAX_DRAIN, max(0.0, drained + DRAIN_PER_S[phase.label.regime] * seconds))
    return drained


class WindowCounter:
    """Requests per client over a sliding window of ``window_ms``, against ``limit``: what a
    venue counts for a published "N requests per T seconds per IP"."""

    def __init__(self, limit: int, window_ms: int) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self._times: dict[str, deque[int]] = {}
        self.refused = 0
        """Requests past the limit (each counted in the window too, as a venue counts them)."""

    def add(self, client: str, now_ms: int) -> bool:
        """Count one request of ``client`` at ``now_ms``; ``False`` when it is over the limit
        (the caller answers the venue's rate-limit error)."""
        times = self._times.setdefault(client, deque())
        while times and times[0] <= now_ms - self.window_ms:
            times.popleft()
        times.append(now_ms)
        if len(times) > self.limit:
            self.refused += 1
            return False
        return True
