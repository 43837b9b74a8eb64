"""One scenario through the wire players and a pressure model, faster than real time.

Simulated time advances in steps: :attr:`Pace.fast_step_s` while a phase is fast (a
cascade, or any phase with more than one liquidation a second), :attr:`Pace.slow_step_s`
otherwise (calm, build-ups, gradual unwinds: the fast path that makes hours of market cheap).
Steps end exactly on phase and outage boundaries. Each step, every venue's market moves, its
frames are encoded and parsed (marks, funding and open interest once per step, Binance's
REST open interest every 10 s, liquidations as they happen), and the events go to the model.
The model is evaluated every :attr:`Pace.eval_interval_s` of simulated time in fast phases,
causally (the seconds inside a step are evaluated before that step's events arrive), and in
slow phases at the end of a step once :attr:`Pace.slow_eval_s` has passed since the last
evaluation (scoring is the dominant cost; nothing moves fast there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..detect.base import PressureModel
from ..events import HandoffEvent
from ..scores import Transition
from ..simulate.library import PRIMARY_ASSETS
from ..simulate.scenario import Phase, Regime, Scenario
from ..venues import PLAYERS
from ..venues.player import WirePlayer
from .history import warm_start
from .matching import InstrumentRef

ORIGIN_MS: Final = 1_759_276_800_000
"""Simulated runs start at 2025-10-01 00:00 UTC (funding times fall on real boundaries)."""
FAST_LIQ_RATE_PER_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Pace:
    """How finely simulated time is stepped and the model evaluated."""

    fast_step_s: float = 1.0
    slow_step_s: float = 10.0
    eval_interval_s: float = 1.0
    """How often the model is evaluated in fast phases."""
    slow_eval_s: float = 30.0
    """How often the model is evaluated in slow phases (at the end of a step, when at least
    this long has passed). ``slow_step_s=1, slow_eval_s=1``: every second throughout."""
    all_contracts: bool = False
    """Every simulated contract of each venue, not only its main one per asset."""
    warm_start: bool = True
    """Seed the model with a day of history first (:mod:`.history`)."""
    depth: bool = False
    """The venues also send their order books' depth where their player can
    (:meth:`~service.venues.player.WirePlayer.follow_depth`; the liquidity lead comparison)."""


DEFAULT_PACE: Final = Pace()


@dataclass(slots=True)
class Run:
    """What one play produced."""

    scenario: Scenario
    venues: tuple[str, ...]
    origin_ms: int
    end_ms: int
    instruments: list[InstrumentRef]
    transitions: list[Transition] = field(default_factory=list)
    events_total: int = 0
    frames_total: int = 0
    parse_errors: int = 0
    evaluations: int = 0
    wall_s: float = 0.0


def is_fast(phase: Phase) -> bool:
    """Phases stepped finely: cascades and heavy liquidation flows."""
    if phase.label.regime is Regime.CASCADE:
        return True
    return any(d.liq_rate_per_s > FAST_LIQ_RATE_PER_S for d in phase.drifts.values())


def assets_of(scenario: Scenario) -> list[str]:
    """The primary assets plus every asset the scenario touches."""
    touched = {a for p in scenario.phases for a in (*p.label.assets, *p.drifts)}
    touched |= {s.asset for s in scenario.shocks}
    return sorted(set(PRIMARY_ASSETS) | touched)


def _boundaries(scenario: Scenario) -> list[float]:
    """Scenario seconds where a step must end: phase edges and outage edges."""
    edges, t = set(), 0.0
    for p in scenario.phases:
        t = round(t + p.duration_s, 9)
        edges.add(t)
    for o in scenario.outages:
        edges.update((o.start_s, o.end_s))
    return sorted(edges)


def play(
    scenario: Scenario,
    seed: int,
    venues: Sequence[str],
    model: PressureModel,
    pace: Pace = DEFAULT_PACE,
    origin_ms: int = ORIGIN_MS,
    on_events: Callable[[list[HandoffEvent]], None] | None = None,
) -> Run:
    """Play ``scenario`` (which must not loop) to its end through ``model``."""
    if scenario.loop:
        raise ValueError("play() needs a scenario that does not loop")
    started = time.perf_counter()
    assets = assets_of(scenario)
    players: list[WirePlayer] = [
        PLAYERS[v](scenario, seed * 1000 + i, assets, pace.all_contracts)
        for i, v in enumerate(venues)
    ]
    if pace.depth:
        for p in players:
            p.follow_depth()
    if pace.warm_start:
        warm_start(model, players, seed, origin_ms)
    instruments = [
        InstrumentRef(p.venue, i.symbol, i.base) for p in players for i in p.instruments.values()
    ]
    end_s = scenario.duration_s
    run = Run(scenario, tuple(venues), origin_ms, origin_ms + round(end_s * 1000), instruments)
    edges = _boundaries(scenario)
    eval_ms, slow_eval_ms = int(pace.eval_interval_s * 1000), int(pace.slow_eval_s * 1000)
    last_eval_ms = origin_ms

    def evaluate(at_ms: int) -> None:
        nonlocal last_eval_ms
        run.transitions.extend(model.evaluate(at_ms).transitions)
        run.evaluations += 1
        last_eval_ms = at_ms

    t = 0.0
    while t < end_s - 1e-9:
        fast = is_fast(scenario.phase_at(t).phase)
        step = pace.fast_step_s if fast else pace.slow_step_s
        edge = next((e for e in edges if e > t + 1e-9), end_s)
        t_next = min(t + step, edge, end_s)
        now_ms = origin_ms + round(t_next * 1000)
        if fast:  # the seconds inside the step, before its data (never back in time)
            last_eval_ms = max(last_eval_ms, origin_ms + round(t * 1000))
            while last_eval_ms + eval_ms < now_ms:
                evaluate(last_eval_ms + eval_ms)
        batch: list[HandoffEvent] = []
        for p in players:
            online = not any(
                o.venue == p.venue and o.start_s <= t_next - 1e-9 < o.end_s
                for o in scenario.outages
            )
            batch.extend(p.step(t_next - t, now_ms, quotes_due=True, online=online))
        if batch:
            model.update(batch)
            run.events_total += len(batch)
            if on_events is not None:
                on_events(batch)
        if now_ms - last_eval_ms >= (eval_ms if fast else slow_eval_ms):
            evaluate(now_ms)
        t = t_next
    run.frames_total = sum(p.frames_total for p in players)
    run.parse_errors = sum(p.parse_errors for p in players)
    run.wall_s = time.perf_counter() - started
    return run
