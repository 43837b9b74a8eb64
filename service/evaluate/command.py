"""The body of ``deleverage evaluate``: run the synthetic suite and the real-history suite,
print their tables or JSON (``{"synthetic": ..., "real": ...}``); or the liquidity lead
comparison (``{"liquidity_lead": ...}``, :mod:`.lead`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import Settings
from ..simulate.library import DEFAULT_VENUES, KINDS, LIQUIDITY_KINDS
from .lead import lead_table, liquidity_lead
from .matching import Rules
from .play import Pace
from .real import SETS, DatasetRun, default_data_dir, load_labels, run_real
from .real_report import real_table
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


def _dataset_progress(run: DatasetRun) -> None:
    click.echo(
        f"real {run.dataset.id}: {len(run.bars)} bars played in {run.wall_s:.1f} s", err=True
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
    suite: str = "all",
    real_data: Path | None = None,
    real_sets: Sequence[str] = SETS,
    real_datasets: Sequence[str] = (),
) -> None:
    """Raises ``KeyError`` naming an unknown kind, venue or data set; ``FileNotFoundError``
    when the real-history data is not where it is looked for (``suite="real"``)."""
    doc: dict[str, Any] = {}
    lines: list[str] = []
    if suite == "liquidity":
        lead_venues = list(venues) or list(DEFAULT_VENUES)
        check_names([], lead_venues)
        lead = liquidity_lead(
            settings.detector,
            list(seeds),
            lead_venues,
            list(kinds) or list(LIQUIDITY_KINDS),
            pace=Pace(slow_step_s=pace[0], slow_eval_s=pace[1], all_contracts=pace[2]),
            rules=Rules(grace_s=grace_s, warmup_s=warmup_s),
        )
        doc["liquidity_lead"] = lead
        lines += [lead_table(lead), f"{lead['wall_s']:.0f} s"]
    if suite in ("all", "synthetic"):
        doc["synthetic"] = _synthetic(settings, seeds, kinds, venues, pace, grace_s, warmup_s,
                                      quiet)  # fmt: skip
        syn = doc["synthetic"]
        lines += [
            table(syn),
            f"\n{len(seeds)} seeds x {len(syn['command']['kinds'])} kinds on "
            f"{', '.join(syn['command']['venues'])}: {syn['overall']['sim_hours']:.0f} h "
            f"simulated in {syn['wall_s']:.0f} s",
        ]
    if suite in ("all", "real"):
        root = real_data or default_data_dir()
        labels = load_labels()
        unknown = [d for d in real_datasets if d not in labels.datasets]
        if unknown:
            raise KeyError(f"unknown data sets {unknown}; available: {list(labels.datasets)}")
        try:
            real = run_real(settings.detector, labels, root, sets=real_sets,
                            datasets=real_datasets,
                            progress=None if quiet else _dataset_progress)  # fmt: skip
        except FileNotFoundError as exc:
            if suite == "real":
                raise
            real = {"skipped": str(exc)}
        real["command"] = {"data": str(root), "sets": list(real_sets),
                           "datasets": list(real_datasets)}  # fmt: skip
        doc["real"] = real
        if "skipped" in real:
            lines.append(f"\nreal-history suite skipped: {real['skipped']}")
        else:
            lines += ["", real_table(real),
                      f"real history ({root}): {real['wall_s']:.0f} s"]  # fmt: skip
    text = json.dumps(doc, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    click.echo(text if as_json else "\n".join(lines))
    sys.stdout.flush()


def _synthetic(
    settings: Settings,
    seeds: Sequence[int],
    kinds: Sequence[str],
    venues: Sequence[str],
    pace: tuple[float, float, bool],
    grace_s: float,
    warmup_s: float,
    quiet: bool,
) -> dict[str, Any]:
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
    return summary
