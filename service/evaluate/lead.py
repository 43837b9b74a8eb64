"""Lead time with and without the liquidity features (issue 16): ``deleverage evaluate
--suite liquidity``.

Each scenario where liquidity moves first (:data:`~service.simulate.library.LIQUIDITY_KINDS`)
is played twice, the venues serving their order book depth where their player can
(:meth:`~service.venues.player.WirePlayer.follow_depth`):

* **without**: the model never sees a top of book, a depth or a volume; the warning is its
  first transition out of calm on an instrument of the label's asset;
* **with**: the model sees them; the warning is the first of that transition and the first
  evaluation that calls such an instrument ``fragile`` (:func:`~service.detect.liquidity.
  fragility`: a warning beside the state, never a state).

Both count from the label's onset, within ``[onset, end + grace]``: the *delay*; the gain is
the delay without minus the delay with. Liquidity makes no state, so the two runs' state
changes must be the same (``states_identical``); a ``fragile`` that turns on outside every
label (after the warm-up) is a false warning.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from ..config import DetectorSettings
from ..detect.base import Evaluation
from ..detect.robust_model import RobustModel
from ..events import BookDepth, BookTop, HandoffEvent, Volume
from ..scores import Scope, State
from ..simulate.library import LIQUIDITY_KINDS, make_scenario
from .matching import Label, Rules, labels_of
from .play import DEFAULT_PACE, Pace, play

_LIQUIDITY: Final[frozenset[type]] = frozenset((BookTop, BookDepth, Volume))
DEFAULT_RULES: Final = Rules()


class _Watched(RobustModel):
    """The replay model, blind to liquidity or not, noting when an instrument turns
    fragile."""

    def __init__(self, settings: DetectorSettings, liquidity: bool) -> None:
        super().__init__(settings.model_copy(update={"round_budget_ms": 0.0}))
        self.liquidity = liquidity
        self.fragile: set[tuple[str, str]] = set()
        self.warnings: list[tuple[int, str, str, str]] = []
        """``(ts_ms, venue, symbol, asset)`` each time an instrument turned fragile."""

    def update(self, events: Iterable[HandoffEvent]) -> None:
        if not self.liquidity:
            events = [e for e in events if type(e) not in _LIQUIDITY]
        super().update(events)

    def evaluate(self, now_ms: int, held: Mapping[str, str] | None = None) -> Evaluation:
        out = super().evaluate(now_ms, held)
        for p in out.pressures:
            key = (p.venue, p.symbol)
            if p.features.get("fragile") == 1.0:
                if key not in self.fragile:
                    self.fragile.add(key)
                    self.warnings.append((now_ms, p.venue, p.symbol, p.asset))
            else:
                self.fragile.discard(key)
        return out


@dataclass(slots=True)
class LeadRun:
    kind: str
    seed: int
    labels: list[dict[str, Any]] = field(default_factory=list)
    false_warnings: int = 0
    states_identical: bool = True
    wall_s: float = 0.0


def _first(times: Iterable[int], label: Label, grace_ms: int) -> int | None:
    inside = [t for t in times if label.start_ms <= t <= label.end_ms + grace_ms]
    return min(inside) if inside else None


def run_lead(
    settings: DetectorSettings,
    kind: str,
    seed: int,
    venues: Sequence[str],
    pace: Pace = DEFAULT_PACE,
    rules: Rules = DEFAULT_RULES,
) -> LeadRun:
    """Play ``kind`` for ``seed`` with and without the liquidity features; each label's
    delay both ways."""
    started = time.perf_counter()
    pace = replace(pace, depth=True)
    scenario = make_scenario(kind, seed, venues)
    models = {w: _Watched(settings, liquidity=w) for w in (False, True)}
    runs = {w: play(scenario, seed, venues, m, pace) for w, m in models.items()}
    origin = runs[True].origin_ms
    labels = labels_of(scenario, origin)
    grace_ms = int(rules.grace_s * 1000)
    out = LeadRun(kind, seed)

    def alarms(w: bool, asset: str) -> list[int]:
        return [
            t.ts_ms
            for t in runs[w].transitions
            if t.scope is Scope.INSTRUMENT and t.asset == asset and t.to_state is not State.CALM
        ]

    def changes(w: bool) -> list[tuple[str, str, State, State, int]]:
        return [(t.venue, t.symbol, t.from_state, t.to_state, t.ts_ms) for t in runs[w].transitions]

    out.states_identical = changes(False) == changes(True)
    for lb in labels:
        without = _first(alarms(False, lb.asset), lb, grace_ms)
        state = _first(alarms(True, lb.asset), lb, grace_ms)
        fragile = _first((w[0] for w in models[True].warnings if w[3] == lb.asset), lb, grace_ms)
        firsts = [t for t in (state, fragile) if t is not None]
        with_ = min(firsts) if firsts else None
        out.labels.append({
            "asset": lb.asset,
            "group": lb.group,
            "without_delay_s": None if without is None else (without - lb.start_ms) / 1000,
            "with_delay_s": None if with_ is None else (with_ - lb.start_ms) / 1000,
            "fragile_delay_s": None if fragile is None else (fragile - lb.start_ms) / 1000,
        })  # fmt: skip
    windows = [(lb.asset, lb.start_ms, lb.end_ms + grace_ms) for lb in labels]
    warmup_ms = origin + int(rules.warmup_s * 1000)
    out.false_warnings = sum(
        1
        for ts, _, _, asset in models[True].warnings
        if ts >= warmup_ms and not any(a == asset and s <= ts <= e for a, s, e in windows)
    )
    out.wall_s = time.perf_counter() - started
    return out


def _stats(delays: list[float | None]) -> dict[str, Any]:
    seen = [d for d in delays if d is not None]
    return {
        "detected": len(seen),
        "mean_delay_s": round(statistics.fmean(seen), 1) if seen else None,
        "median_delay_s": round(statistics.median(seen), 1) if seen else None,
    }


def liquidity_lead(
    settings: DetectorSettings,
    seeds: Sequence[int],
    venues: Sequence[str],
    kinds: Sequence[str] = tuple(LIQUIDITY_KINDS),
    pace: Pace = DEFAULT_PACE,
    rules: Rules = DEFAULT_RULES,
) -> dict[str, Any]:
    """Every liquidity-first kind for every seed: the delays without and with the liquidity
    features, the gain (``without - with``, per label detected both ways), and the checks."""
    unknown = [k for k in kinds if k not in LIQUIDITY_KINDS]
    if unknown:
        raise KeyError(f"unknown liquidity kinds {unknown}; available: {list(LIQUIDITY_KINDS)}")
    started = time.perf_counter()
    runs = [run_lead(settings, k, s, venues, pace, rules) for k in kinds for s in seeds]
    rows = [lb for r in runs for lb in r.labels]
    gains = [
        lb["without_delay_s"] - lb["with_delay_s"]
        for lb in rows
        if lb["without_delay_s"] is not None and lb["with_delay_s"] is not None
    ]
    return {
        "kinds": list(kinds),
        "seeds": [min(seeds), max(seeds)] if seeds else [],
        "venues": list(venues),
        "labels": len(rows),
        "without": _stats([lb["without_delay_s"] for lb in rows]),
        "with": _stats([lb["with_delay_s"] for lb in rows]),
        "gain_s": {
            "mean": round(statistics.fmean(gains), 1) if gains else None,
            "median": round(statistics.median(gains), 1) if gains else None,
            "labels_earlier": sum(1 for g in gains if g > 0),
        },
        "false_warnings": sum(r.false_warnings for r in runs),
        "states_identical": all(r.states_identical for r in runs),
        "runs": [
            {"kind": r.kind, "seed": r.seed, "labels": r.labels, "false_warnings": r.false_warnings}
            for r in runs
        ],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def lead_table(doc: dict[str, Any]) -> str:
    """The comparison as a few lines of text."""
    w, o, g = doc["with"], doc["without"], doc["gain_s"]

    def s(x: float | None) -> str:
        return "-" if x is None else f"{x:.0f} s"

    return "\n".join([
        f"liquidity lead ({', '.join(doc['kinds'])}; {doc['labels']} labels on "
        f"{', '.join(doc['venues'])}):",
        f"  without liquidity: detected {o['detected']}, delay median {s(o['median_delay_s'])}, "
        f"mean {s(o['mean_delay_s'])}",
        f"  with liquidity:    detected {w['detected']}, delay median {s(w['median_delay_s'])}, "
        f"mean {s(w['mean_delay_s'])}",
        f"  gain: median {s(g['median'])}, mean {s(g['mean'])}, earlier on "
        f"{g['labels_earlier']} labels; false fragile warnings {doc['false_warnings']}; "
        f"states identical: {doc['states_identical']}",
    ])  # fmt: skip
