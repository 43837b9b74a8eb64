"""The scenario suite: every kind x every seed, each run on a fresh model, then scored."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..config import DetectorSettings
from ..detect.base import PressureModel
from ..detect.factory import make_replay_model
from ..simulate.library import KINDS, make_scenario
from ..venues import PLAYERS
from .matching import Rules, labels_of, score
from .play import DEFAULT_PACE, Pace, play
from .report import Scored, summarize

DEFAULT_RULES = Rules()
ModelFactory = Callable[[], PressureModel]
Progress = Callable[[Scored], None]


def check_names(kinds: Sequence[str], venues: Sequence[str]) -> None:
    """``KeyError`` naming what is unknown."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise KeyError(f"unknown kinds {unknown}; available: {list(KINDS)}")
    unknown = [v for v in venues if v not in PLAYERS]
    if unknown:
        raise KeyError(f"no wire player for {unknown}; available: {list(PLAYERS)}")


def run_one(
    kind: str,
    seed: int,
    venues: Sequence[str],
    model: PressureModel,
    pace: Pace = DEFAULT_PACE,
    rules: Rules = DEFAULT_RULES,
) -> Scored:
    """Play and score the scenario of ``kind`` for ``seed``."""
    scenario = make_scenario(kind, seed, venues)
    run = play(scenario, seed, venues, model, pace)
    labels = labels_of(scenario, run.origin_ms)
    outcome = score(labels, run.transitions, run.instruments, run.origin_ms, run.end_ms, rules)
    return Scored(
        kind, seed, outcome, scenario.duration_s, run.wall_s, run.events_total, run.parse_errors
    )


def run_suite(
    settings: DetectorSettings,
    kinds: Sequence[str],
    seeds: Sequence[int],
    venues: Sequence[str],
    *,
    pace: Pace = DEFAULT_PACE,
    rules: Rules = DEFAULT_RULES,
    model_factory: ModelFactory | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every kind for every seed (a new model each run); the summary of
    :func:`.report.summarize`, with the wall time of the whole suite."""
    check_names(kinds, venues)
    factory = model_factory or (lambda: make_replay_model(settings))
    started = time.perf_counter()
    scored: list[Scored] = []
    for kind in kinds:
        for seed in seeds:
            result = run_one(kind, seed, venues, factory(), pace, rules)
            scored.append(result)
            if progress is not None:
                progress(result)
    return summarize(scored, time.perf_counter() - started)
