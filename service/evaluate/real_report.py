"""The real-history suite's figures as text tables (pure)."""

from __future__ import annotations

import textwrap
from typing import Any

from .real import SETS

TARGET_RATE = 0.02
"""The issue's target: at most 2 % of calm hours (hourly sets) and calm days (daily bars)."""


def _delay(s: float | None) -> str:
    if s is None:
        return "-"
    h, rest = divmod(int(s), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def _bar(bar_s: int) -> str:
    return {300: "5m bars", 3600: "hours", 86400: "days"}.get(bar_s, f"{bar_s}s bars")


def _rate(f: dict[str, Any]) -> str:
    if not f["calm_bars"]:
        return "-"
    return f"{f['flagged']}/{f['calm_bars']} {100 * f['rate']:.1f}%"


def _wrapped(text: str, width: int) -> list[str]:
    """``text`` indented under its row, never breaking a figure from its unit ("14.4 %")."""
    glued = text.replace(" %", "\u00a0%")
    lines = textwrap.wrap(glued, width=width, initial_indent="  ", subsequent_indent="    ")
    return [line.replace("\u00a0", " ") for line in lines]


def real_table(summary: dict[str, Any]) -> str:
    """Episodes (asset scope, instrument scope for reference), then calm false flags per
    data set and pooled by bar size."""
    head = (f"{'episode':<32}{'set':<9}{'asset':<6}{'flagged':<9}{'delay':>7}  {'side':<6}"
            f"{'peak':<10}{'instrument scope':<22}")  # fmt: skip
    lines = ["real history: labelled episodes (asset scope)", head, "-" * len(head)]
    for e in summary["episodes"]:
        inst = e["instrument"]
        expected = f" (want {e['expected_state']})" if e["expected_state"] else ""
        unjudged = e.get("not_judgeable")
        verdict = "n/j" if unjudged else "yes" if e["flagged"] else "NO"
        lines.append(
            f"{e['episode']:<32}{e['set']:<9}{e['asset']:<6}"
            f"{verdict:<9}{_delay(e['delay_s']):>7}  "
            f"{e['side'] or '-':<6}{e['peak'] + expected:<10} "
            f"{'yes' if inst['flagged'] else 'no'} {_delay(inst['delay_s'])} {inst['peak']}"
        )
        if unjudged:
            lines += _wrapped(f"not judgeable: {unjudged}", len(head))
    for split in SETS:
        rows = [e for e in summary["episodes"] if e["set"] == split]
        judged = [e for e in rows if not e.get("not_judgeable")]
        if rows:
            hit = sum(1 for e in judged if e["flagged"])
            skipped = len(rows) - len(judged)
            lines.append(f"{split}: {hit} of {len(judged)} flagged with the right side"
                         + (f" ({skipped} not judgeable)" if skipped else ""))  # fmt: skip
    head = f"{'calm false flags':<40}{'instrument':>16}{'asset':>16}{'market':>16}"
    lines += ["", head, "-" * len(head)]
    for c in summary["calm"]:
        s = c["scopes"]
        name = f"{c['dataset']} ({c['set']})"
        lines.append(f"{name:<40}{_rate(s['instrument']):>16}{_rate(s['asset']):>16}"
                     f"{_rate(s['market']):>16}")  # fmt: skip
    for p in summary["pooled"]:
        s = p["scopes"]
        name = f"all {_bar(p['bar_s'])} ({p['set']})"
        lines.append(f"{name:<40}{_rate(s['instrument']):>16}{_rate(s['asset']):>16}"
                     f"{_rate(s['market']):>16}")  # fmt: skip
    lines.append(f"(target: at most {TARGET_RATE:.0%} of calm hours and of calm days at every "
                 "scope)")  # fmt: skip
    return "\n".join(lines)
