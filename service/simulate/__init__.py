"""Local exchange servers that speak the venues' real protocols over a simulated market.

The layout mirrors the venues from the other side of the wire: a venue-independent scenario
(:mod:`.scenario`, data) drives a deterministic market (:mod:`.market`, pure), a clock runs it
in scaled real time (:mod:`.clock`), and each venue's package serves it
(``service/venues/<name>/simulator/``: the server, its pure protocol in ``wire.py`` and REST in
``rest.py``) on the lifecycle and test hooks all venues share (:mod:`.server`). The runner
(:mod:`.runner`) starts the simulators it is given: ``service.venues.SIMULATORS``.
"""

from __future__ import annotations

from .clock import MarketClock
from .market import DEFAULT_SPECS, DEFAULT_SYMBOLS, LiquidationPrint, Market, Quote, SymbolSpec
from .runner import run_forever
from .scenario import (
    DEFAULT_SCENARIO,
    SCENARIOS,
    Drift,
    Interval,
    Label,
    Phase,
    Regime,
    Scenario,
    get_scenario,
    ground_truth,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "DEFAULT_SPECS",
    "DEFAULT_SYMBOLS",
    "SCENARIOS",
    "Drift",
    "Interval",
    "Label",
    "LiquidationPrint",
    "Market",
    "MarketClock",
    "Phase",
    "Quote",
    "Regime",
    "Scenario",
    "SymbolSpec",
    "get_scenario",
    "ground_truth",
    "run_forever",
]
