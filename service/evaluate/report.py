"""Figures over many scored runs, per scenario kind, per label class and overall. Pure.

Each figure is defined in :mod:`.matching`; here they are summed over runs:

* ``recall``: labels detected / labels; ``instrument_recall``: trials detected / trials;
* ``delay_p50_s``, ``delay_p90_s``: median and 90th percentile (nearest rank) of the delay
  of detected labels;
* ``within_target``: labels detected within their class's target delay
  (:data:`TARGET_DELAY_S`) / labels;
* ``side_accuracy``: detected trials whose side is the label's / detected trials;
* ``precision``: spans beginning inside a label / spans (after the warm-up);
* ``false_per_day``: false transitions out of calm / instrument-days of calm.

A figure with nothing to count (no label, no span) is ``None`` and prints as ``-``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..simulate.scenario import Regime
from .matching import LabelResult, Outcome

TARGET_DELAY_S: Final = {Regime.CASCADE: 30.0, Regime.UNWINDING: 600.0, Regime.BUILDING: 600.0}
"""The issue's targets: cascades within 30 s, gradual unwinds within 10 min (build-ups and
the unwinding after a cascade: the same 10 min, no target set)."""
GROUPS: Final = ("cascade", "cascade by ADL", "unwinding", "unwinding after cascade", "building")
"""Label classes reported apart (``unwinding`` is the gradual kind; ``cascade by ADL``: the
venues auto-deleverage, with no liquidation burst on the tape)."""


@dataclass(frozen=True, slots=True)
class Scored:
    """One run and its score."""

    kind: str
    seed: int
    outcome: Outcome
    sim_s: float
    wall_s: float
    events: int
    parse_errors: int


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def label_figures(results: Iterable[LabelResult]) -> dict[str, Any]:
    """Recall, delays, target share and side accuracy of some labels."""
    results = list(results)
    delays = [d for r in results if (d := r.delay_s) is not None]
    in_target = sum(
        1 for r in results if (d := r.delay_s) is not None and d <= TARGET_DELAY_S[r.label.regime]
    )
    trials = [t for r in results for t in r.trials]
    hits = [t for t in trials if t.detected_ms is not None]
    return {
        "labels": len(results),
        "detected": len(delays),
        "recall": _ratio(len(delays), len(results)),
        "within_target": _ratio(in_target, len(results)),
        "delay_p50_s": statistics.median(delays) if delays else None,
        "delay_p90_s": _p90(delays),
        "instrument_recall": _ratio(len(hits), len(trials)),
        "side_accuracy": _ratio(sum(1 for t in hits if t.side_ok), len(hits)),
    }


def figures(runs: Sequence[Scored]) -> dict[str, Any]:
    """Every figure over ``runs``."""
    spans = sum(r.outcome.spans_total for r in runs)
    true = sum(r.outcome.spans_true for r in runs)
    false = sum(r.outcome.false_transitions for r in runs)
    days = sum(r.outcome.calm_instrument_days for r in runs)
    return {
        "runs": len(runs),
        "sim_hours": sum(r.sim_s for r in runs) / 3600,
        **label_figures(lr for r in runs for lr in r.outcome.labels),
        "spans": spans,
        "precision": _ratio(true, spans),
        "false_transitions": false,
        "calm_instrument_days": days,
        "false_per_day": false / days if days else None,
        "parse_errors": sum(r.parse_errors for r in runs),
    }


def summarize(runs: Sequence[Scored], wall_s: float | None = None) -> dict[str, Any]:
    """The JSON document: per kind, per label class, overall."""
    kinds: dict[str, list[Scored]] = {}
    for r in runs:
        kinds.setdefault(r.kind, []).append(r)
    by_class = {
        group: label_figures(lr for r in runs for lr in r.outcome.labels if lr.label.group == group)
        for group in GROUPS
    }
    return {
        "kinds": {k: figures(rs) for k, rs in kinds.items()},
        "classes": by_class,
        "overall": figures(runs),
        "targets_s": {g: TARGET_DELAY_S[Regime(g.split()[0])] for g in GROUPS},
        "wall_s": wall_s if wall_s is not None else sum(r.wall_s for r in runs),
    }


def _fmt(value: Any, pct: bool = False, digits: int = 0) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{100 * value:.0f}%"
    return f"{value:.{digits}f}"


_HEAD = (
    f"{'kind':<30}{'runs':>5}{'labels':>7}{'recall':>7}{'p50 s':>7}{'p90 s':>7}"
    f"{'in tgt':>7}{'side':>6}{'prec':>6}{'false/day':>10}{'calm d':>8}"
)


def _row(name: str, f: dict[str, Any]) -> str:
    return (
        f"{name:<30}{f.get('runs', ''):>5}{f['labels']:>7}{_fmt(f['recall'], True):>7}"
        f"{_fmt(f['delay_p50_s']):>7}{_fmt(f['delay_p90_s']):>7}"
        f"{_fmt(f['within_target'], True):>7}{_fmt(f['side_accuracy'], True):>6}"
        f"{_fmt(f.get('precision'), True):>6}{_fmt(f.get('false_per_day'), digits=2):>10}"
        f"{_fmt(f.get('calm_instrument_days'), digits=1):>8}"
    )


def table(summary: dict[str, Any]) -> str:
    """The summary as a text table: kinds, then label classes, then overall."""
    lines = [_HEAD, "-" * len(_HEAD)]
    lines += [_row(k, f) for k, f in summary["kinds"].items()]
    lines.append("-" * len(_HEAD))
    for cls, f in summary["classes"].items():
        if f["labels"]:
            target = summary["targets_s"][cls]
            lines.append(_row(f"{cls} <={target:.0f}s", f))
    lines.append(_row("overall", summary["overall"]))
    return "\n".join(lines)
