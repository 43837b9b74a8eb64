"""The body of ``deleverage backtest``: read, prepare, play, print (and write) the intervals."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..config import Settings
from ..detect.factory import make_replay_model
from .bars import Bar, FileRead, infer_bar_s, merge, parse_bar, parse_mapping, read_file, to_ms
from .prepare import Selection, apply_prices, check_open_interest, resample
from .replay import Result, replay

FIELDS = ("scope", "venue", "symbol", "asset", "state", "side", "start", "end", "hours",
          "peak_score", "reasons")  # fmt: skip


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Loaded:
    """Bars ready to play and what the user should be told about reading them."""

    bars: list[Bar]
    notes: list[str] = field(default_factory=list)


def load(
    paths: Sequence[Path],
    columns: Sequence[str] = (),
    venue: str | Sequence[str] | None = None,
    symbol: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prices: Sequence[Path] = (),
    price_venues: Sequence[str] = (),
    bar: str | None = None,
) -> list[Bar]:
    """Every file's bars, merged and filtered (see :func:`load_all`)."""
    return load_all(paths, columns, venue, symbol, since, until, only, exclude, prices,
                    price_venues, bar).bars  # fmt: skip


def load_all(
    paths: Sequence[Path],
    columns: Sequence[str] = (),
    venue: str | Sequence[str] | None = None,
    symbol: str | Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    prices: Sequence[Path] = (),
    price_venues: Sequence[str] = (),
    bar: str | None = None,
) -> Loaded:
    """Every file's bars, merged (``since``/``until`` inclusive; ``only``/``exclude`` lists of
    ``VENUE:SYMBOL``, ``VENUE:*``, ``SYMBOL`` or asset), priced from ``prices`` where they
    have no price of their own, resampled to ``bar`` when it is coarser than the files';
    ``ValueError`` for what cannot be played. ``venue``/``symbol`` (for files without such a
    column): one for every file, or a list of one per file, in order."""
    mapping = parse_mapping(columns)
    lo = to_ms(since) if since else None
    hi = to_ms(until) if until else None
    selected = Selection(tuple(only), tuple(exclude))

    def in_time(ts: int) -> bool:
        return (lo is None or ts >= lo) and (hi is None or ts <= hi)

    venues, symbols = _per_file(venue, paths, "venue"), _per_file(symbol, paths, "symbol")
    reads = [read_file(p, mapping, v, sym, lambda t, v, s: in_time(t) and selected(v, s))
             for p, v, sym in zip(paths, venues, symbols, strict=True)]  # fmt: skip
    notes = [_unmapped(r) for r in reads if r.unmapped]
    used = {c for r in reads for c in r.columns.values()}
    missing = [f"{f}={c}" for f, c in mapping.items() if c not in used]
    if missing:
        raise ValueError(f"--col {', '.join(missing)}: no such column in any file")
    bars = merge(b for r in reads for b in r.bars)
    if prices:
        price_bars = [
            b
            for p in prices
            for b in read_file(p, mapping, venues[0], symbols[0], lambda t, v, s: in_time(t)).bars
        ]
        bars = apply_prices(bars, merge(price_bars), price_venues)
    if bar is not None and bars:
        size = parse_bar(bar)
        if size > infer_bar_s(bars):
            bars = resample(bars, size)
    notes += check_open_interest(bars)
    return Loaded(bars, notes)


def _per_file(
    given: str | Sequence[str] | None, paths: Sequence[Path], name: str
) -> list[str | None]:
    if given is None or isinstance(given, str):
        return [given] * len(paths)
    if len(given) == 1:
        return [given[0]] * len(paths)
    if len(given) != len(paths):
        raise ValueError(f"--{name} given {len(given)} times for {len(paths)} files: give it "
                         "once (every file) or once per file, in order")  # fmt: skip
    return list(given)


def _unmapped(r: FileRead) -> str:
    return f"{r.path.name}: columns not used: {', '.join(r.unmapped)}"


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
    """Instruments the detector could not score for part of the time, and why; how long each
    was warming up."""
    out = []
    for (venue, symbol), cov in sorted(result.coverage.items()):
        if cov.held:
            share = cov.held / cov.evaluations
            why = ", ".join(sorted(cov.hold_reasons)) or "required feed missing"
            out.append(f"{venue}:{symbol}: not scored {share:.0%} of the time ({why})")
        if cov.warm_until_ms is not None:
            out.append(f"{venue}:{symbol}: warming up until {iso(cov.warm_until_ms)} "
                       "(baselines filling: no state before)")  # fmt: skip
    return out


def run_backtest(
    settings: Settings,
    paths: Sequence[Path],
    *,
    columns: Sequence[str],
    venue: Sequence[str] | str | None,
    symbol: Sequence[str] | str | None,
    bar: str | None,
    since: str | None,
    until: str | None,
    only: Sequence[str],
    exclude: Sequence[str] = (),
    prices: Sequence[Path] = (),
    price_venues: Sequence[str] = (),
    sampled: Sequence[str] = (),
    out: Path | None,
    as_json: bool,
) -> Result:
    """Raises ``ValueError`` with a message for the user."""
    loaded = load_all(paths, columns, venue, symbol, since, until, only, exclude, prices,
                      price_venues, bar)  # fmt: skip
    bars = loaded.bars
    if not bars:
        raise ValueError("no bars left to play (check --since/--until/--only/--exclude)")
    bar_s = infer_bar_s(bars)
    instruments = len({b.key for b in bars})
    click.echo(
        f"{len(bars)} bars of {_span(bar_s)}, {instruments} instruments, "
        f"{iso(bars[0].ts_ms)} to {iso(bars[-1].ts_ms)} (played in real time)",
        err=True,
    )
    for note in loaded.notes:
        click.echo(note, err=True)
    d = settings.detector
    settle_s = d.enter_persist_s + d.eval_interval_s
    result = replay(bars, make_replay_model(d), bar_s, settle_s=settle_s, sampled=set(sampled))
    table = rows(result)
    if out is not None:
        with out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(table)
    if as_json:
        doc = {"intervals": table, "notes": loaded.notes, "coverage": coverage_lines(result)}
        click.echo(json.dumps(doc, indent=2))
        return result
    for line in coverage_lines(result):
        click.echo(line, err=True)
    click.echo(
        f"{'scope':<11}{'instrument/asset':<24}{'state':<10}{'side':<6}"
        f"{'start':<22}{'end':<22}{'hours':>7}{'peak':>6}  reason"
    )
    for r in table:
        click.echo(
            f"{r['scope']:<11}{_name(r):<24}{r['state']:<10}{r['side']:<6}{r['start']:<22}"
            f"{r['end'] or '(open)':<22}{r['hours']:>7}{r['peak_score']:>6}  {_reason(r)}"
        )
    click.echo(f"{len(table)} intervals", err=True)
    return result


def _name(r: dict[str, Any]) -> str:
    if r["scope"] == "instrument":
        return f"{r['venue']}:{r['symbol']}"
    return "all assets" if r["scope"] == "market" else str(r["asset"])


def _reason(r: dict[str, Any]) -> str:
    """The strongest reason; for an asset or the market, the member behind it."""
    reasons = str(r["reasons"]).split("; ")
    return reasons[1] if r["scope"] != "instrument" and len(reasons) > 1 else reasons[0]


def _span(bar_s: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if bar_s >= size and bar_s % size == 0:
            return f"{bar_s // size} {unit}"
    return f"{bar_s} s"
