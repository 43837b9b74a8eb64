"""The body of ``deleverage backtest``: read, play, print (and write) the state intervals."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import Settings
from ..detect.factory import make_model
from .bars import Bar, infer_bar_s, merge, parse_bar, parse_mapping, read_bars, to_ms
from .replay import Result, replay

FIELDS = ("scope", "venue", "symbol", "asset", "state", "side", "start", "end", "hours",
          "peak_score", "reasons")  # fmt: skip


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load(
    paths: Sequence[Path],
    columns: Sequence[str] = (),
    venue: str | None = None,
    symbol: str | None = None,
    since: str | None = None,
    until: str | None = None,
    only: Sequence[str] = (),
) -> list[Bar]:
    """Every file's bars, merged and filtered (``since``/``until`` inclusive, ``only``
    ``VENUE:SYMBOL`` or ``SYMBOL``)."""
    mapping = parse_mapping(columns)
    lo = to_ms(since) if since else None
    hi = to_ms(until) if until else None
    names = set(only)

    def wanted(ts: int, venue: str, symbol: str) -> bool:
        if (lo is not None and ts < lo) or (hi is not None and ts > hi):
            return False
        return not names or symbol in names or f"{venue}:{symbol}" in names

    return merge(b for p in paths for b in read_bars(p, mapping, venue, symbol, wanted))


def rows(result: Result) -> list[dict[str, Any]]:
    """The intervals as flat rows (times ISO 8601 UTC)."""
    out = []
    for i in result.intervals:
        end = i.end_ms if i.end_ms is not None else result.last_ms + result.bar_s * 1000
        out.append({
            "scope": i.scope, "venue": i.venue, "symbol": i.symbol, "asset": i.asset,
            "state": i.state.value, "side": i.side or "", "start": iso(i.start_ms),
            "end": iso(i.end_ms), "hours": round((end - i.start_ms) / 3_600_000, 2),
            "peak_score": round(i.peak_score, 1), "reasons": "; ".join(i.reasons[:3]),
        })  # fmt: skip
    return out


def coverage_lines(result: Result) -> list[str]:
    """Instruments the detector could not score for part of the time, and why."""
    out = []
    for (venue, symbol), cov in sorted(result.coverage.items()):
        if cov.held:
            share = cov.held / cov.evaluations
            why = ", ".join(sorted(cov.hold_reasons)) or "required feed missing"
            out.append(f"{venue}:{symbol}: not scored {share:.0%} of the time ({why})")
    return out


def run_backtest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    columns: Sequence[str],
    venue: str | None,
    symbol: str | None,
    bar: str | None,
    bar_as_s: float,
    since: str | None,
    until: str | None,
    only: Sequence[str],
    out: Path | None,
    as_json: bool,
) -> Result:
    """Raises ``ValueError`` with a message for the user."""
    bars = load(paths, columns, venue, symbol, since, until, only)
    if not bars:
        raise ValueError("no bars left to play (check --since/--until/--only)")
    bar_s = parse_bar(bar) if bar else infer_bar_s(bars)
    instruments = len({b.key for b in bars})
    click.echo(
        f"{len(bars)} bars of {bar_s} s, {instruments} instruments, "
        f"{iso(bars[0].ts_ms)} to {iso(bars[-1].ts_ms)}; one bar played as {bar_as_s:g} s",
        err=True,
    )
    result = replay(bars, make_model(settings.detector), bar_s, bar_as_s)
    table = rows(result)
    if out is not None:
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(table)
    if as_json:
        click.echo(json.dumps({"intervals": table, "not_scored": coverage_lines(result)}, indent=2))
        return result
    for line in coverage_lines(result):
        click.echo(line, err=True)
    click.echo(
        f"{'scope':<11}{'venue':<13}{'symbol':<15}{'asset':<7}{'state':<10}{'side':<6}"
        f"{'start':<22}{'end':<22}{'hours':>7}{'peak':>6}"
    )
    for r in table:
        click.echo(
            f"{r['scope']:<11}{r['venue']:<13}{r['symbol']:<15}{r['asset']:<7}{r['state']:<10}"
            f"{r['side']:<6}"
            f"{r['start']:<22}{r['end'] or '(open)':<22}{r['hours']:>7}{r['peak_score']:>6}"
        )
    click.echo(f"{len(table)} intervals", err=True)
    return result
