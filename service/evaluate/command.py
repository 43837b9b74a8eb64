"""The body of ``deleverage evaluate``: run the suite, print the table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ..config import Settings
from ..simulate.library import DEFAULT_VENUES, KINDS
from .matching import Rules
from .play import Pace
from .report import Scored, table
from .suite import check_names, run_suite


def _progress(s: Scored) -> None:
    o = s.outcome
    detected = sum(1 for lr in o.labels if lr.delay_s is not None)
    click.echo(
        f"{s.kind}#{s.seed}: {s.sim_s / 3600:.1f} h simulated in {s.wall_s:.1f} s, "
        f"labels {detected}/{len(o.labels)}, spans {o.spans_true}/{o.spans_total}, "
        f"false {o.false_transitions}",
        err=True,
    )


def run_evaluate(
    settings: Settings,
    *,
    seeds: Sequence[int],
    kinds: Sequence[str],
    venues: Sequence[str],
    as_json: bool,
    out: Path | None,
    pace: tuple[float, float, bool],
    grace_s: float,
    warmup_s: float,
    quiet: bool,
) -> None:
    """Raises ``KeyError`` naming an unknown kind or venue."""
    kinds = list(kinds) or list(KINDS)
    venues = list(venues) or list(DEFAULT_VENUES)
    check_names(kinds, venues)
    rules = Rules(grace_s=grace_s, warmup_s=warmup_s)
    summary = run_suite(
        settings.detector,
        kinds,
        list(seeds),
        venues,
        pace=Pace(slow_step_s=pace[0], slow_eval_s=pace[1], all_contracts=pace[2]),
        rules=rules,
        progress=None if quiet else _progress,
    )
    summary["command"] = {
        "seeds": [min(seeds), max(seeds)] if seeds else [],
        "kinds": kinds,
        "venues": venues,
        "slow_step_s": pace[0],
        "slow_eval_s": pace[1],
        "all_contracts": pace[2],
        "grace_s": grace_s,
        "warmup_s": warmup_s,
    }
    text = json.dumps(summary, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    if as_json:
        click.echo(text)
    else:
        click.echo(table(summary))
        click.echo(
            f"\n{len(seeds)} seeds x {len(kinds)} kinds on {', '.join(venues)}: "
            f"{summary['overall']['sim_hours']:.0f} h simulated in {summary['wall_s']:.0f} s",
        )
    sys.stdout.flush()
