"""The real-history suite: labelled episodes and calm stretches of real data, played through
the detector in real time (``deleverage backtest``'s replay) and scored.

The labels, the data sets and the scoring rules are in ``data/real_episodes.yaml`` (written
before any tuning, with each episode's rationale from the public record). Per episode and
asset: flagged or not (the asset enters ``unwinding`` or ``cascade`` with the expected side
within the window), the delay from the window's start, the side and the peak state, at the
asset scope (and, for reference, at the instrument scope). Per data set and split: the share
of calm bars (the issue's definition, :func:`calm_bars`) in which each scope (instrument,
asset, market) was not calm. Pure apart from reading the files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..backtest.bars import Bar, merge, parse_bar, read_file, to_ms
from ..backtest.prepare import apply_prices, resample
from ..backtest.replay import Result, asset_of, replay
from ..config import DetectorSettings
from ..detect.factory import make_replay_model
from ..scores import ANY, Scope, State, Transition

SETS = ("tuning", "judging")
UNWIND = (State.UNWINDING, State.CASCADE)
SEVERITY = {State.CALM: 0, State.BUILDING: 1, State.UNWINDING: 2, State.CASCADE: 3}
HOUR_S = 3600
DAY_MS = 86_400_000


def default_data_dir() -> Path:
    """``$DELEVERAGE_SHARED_DATA``, else ``../shared/data`` next to the working directory."""
    env = os.environ.get("DELEVERAGE_SHARED_DATA")
    return Path(env) if env else Path.cwd().parent / "shared" / "data"


@dataclass(frozen=True, slots=True)
class FileSpec:
    path: str
    venue: str | None = None
    symbol: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    venues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dataset:
    id: str
    bar_s: int
    files: tuple[FileSpec, ...] = ()
    source: str | None = None
    """Another data set this one resamples (``from``)."""
    prices: FileSpec | None = None
    liquidations: str = "complete"
    calm: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    dataset: str
    set: str
    start_ms: int
    end_ms: int
    assets: tuple[str, ...]
    side: str
    state: str | None
    rationale: str
    not_judgeable: dict[str, str] = field(default_factory=dict)
    """Assets the data cannot show this episode for, at this data set's resolution, with
    the written reason (reported as such, not counted flagged or missed)."""


@dataclass(frozen=True, slots=True)
class Labels:
    datasets: dict[str, Dataset]
    episodes: tuple[Episode, ...]
    oi_move_pct: float
    liq_vs_median: float
    exclude_h: float
    grace_s: float


def _ms(value: Any) -> int:
    return to_ms(value)


def load_labels(path: Path | None = None) -> Labels:
    """The labels file (the packaged one by default)."""
    if path is None:
        text = resources.files("service.evaluate").joinpath("data/real_episodes.yaml").read_text()
    else:
        text = path.read_text()
    doc = yaml.safe_load(text)
    datasets = {}
    for d in doc["datasets"]:
        files = tuple(_file(f) for f in d.get("files", ()))
        prices = _file(d["prices"]) if "prices" in d else None
        calm = {k: (_ms(v[0]), _ms(v[1])) for k, v in d.get("calm", {}).items()}
        datasets[d["id"]] = Dataset(d["id"], parse_bar(d["bar"]), files, d.get("from"), prices,
                                    d.get("liquidations", "complete"), calm)  # fmt: skip
    episodes = tuple(_episode(e) for e in doc["episodes"])
    calm = doc["calm"]
    return Labels(datasets, episodes, float(calm["oi_move_pct"]), float(calm["liq_vs_median"]),
                  float(calm["exclude_h"]), float(doc["grace_s"]))  # fmt: skip


def _episode(e: dict[str, Any]) -> Episode:
    start, end = _ms(e["window"][0]), _ms(e["window"][1])
    rationale = " ".join(str(e["rationale"]).split())
    unjudged = {str(a): " ".join(str(r).split()) for a, r in e.get("not_judgeable", {}).items()}
    unknown = set(unjudged) - set(e["assets"])
    if unknown:
        raise ValueError(f"episode {e['id']}: not_judgeable names assets it does not label: "
                         f"{sorted(unknown)}")  # fmt: skip
    return Episode(e["id"], e["dataset"], e["set"], start, end, tuple(e["assets"]), e["side"],
                   e.get("state"), rationale, unjudged)  # fmt: skip


def _file(f: dict[str, Any]) -> FileSpec:
    return FileSpec(f["path"], f.get("venue"), f.get("symbol"), dict(f.get("columns", {})),
                    tuple(f.get("venues", ())))  # fmt: skip


def load_bars(labels: Labels, ds: Dataset, root: Path, cache: dict[str, list[Bar]]) -> list[Bar]:
    """The bars of a data set (``cache`` holds the ones already read, by id)."""
    if ds.id in cache:
        return cache[ds.id]
    if ds.source is not None:
        bars = resample(load_bars(labels, labels.datasets[ds.source], root, cache), ds.bar_s)
    else:
        read: list[Bar] = []
        for f in ds.files:
            read += _read(root, f)
        bars = merge(read)
        if ds.prices is not None:
            bars = apply_prices(bars, merge(_read(root, ds.prices)), ds.prices.venues)
    cache[ds.id] = bars
    return bars


def _read(root: Path, f: FileSpec) -> list[Bar]:
    path = root / f.path
    if not path.is_file():
        raise FileNotFoundError(f"real-history data not found: {path} (give --real-data DIR)")
    venues = set(f.venues)
    keep = (lambda t, v, s: v in venues) if venues else None
    return read_file(path, f.columns, f.venue, f.symbol, keep).bars


# -- scoring ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    scope: str
    key: str
    """The instrument (``venue:symbol``), the asset, or ``*`` for the market."""
    state: State
    side: str | None
    start_ms: int
    end_ms: int


def spans_of(transitions: Iterable[Transition], end_ms: int) -> list[Span]:
    """Non-calm spans per scope and key, from the transitions (every key starts calm)."""
    by_key: dict[tuple[str, str], list[Transition]] = {}
    for tr in transitions:
        by_key.setdefault((str(tr.scope), _key(tr)), []).append(tr)
    out = []
    for (scope, key), trs in by_key.items():
        trs.sort(key=lambda t: t.ts_ms)
        for tr, nxt in zip(trs, [*trs[1:], None], strict=True):
            if tr.to_state is not State.CALM:
                stop = end_ms if nxt is None else nxt.ts_ms
                side = None if tr.side is None else str(tr.side)
                out.append(Span(scope, key, tr.to_state, side, tr.ts_ms, stop))
    return out


def _key(tr: Transition) -> str:
    if tr.scope is Scope.INSTRUMENT:
        return f"{tr.venue}:{tr.symbol}"
    return tr.asset if tr.scope is Scope.ASSET else ANY


def judge(spans: Sequence[Span], lo: int, hi: int, side: str) -> dict[str, Any]:
    """Flagged (an unwinding or cascade span with ``side`` overlapping ``[lo, hi]``), its
    delay from ``lo``, the side of the first unwinding/cascade span and the peak state."""
    inside = [s for s in spans if s.start_ms <= hi and s.end_ms > lo]
    unwinds = sorted((s for s in inside if s.state in UNWIND), key=lambda s: s.start_ms)
    right = [s for s in unwinds if s.side == side]
    peak = max((s.state for s in inside), key=SEVERITY.__getitem__, default=State.CALM)
    first = right[0] if right else None
    return {
        "flagged": first is not None,
        "delay_s": None if first is None else max(0, first.start_ms - lo) / 1000,
        "side": unwinds[0].side if unwinds else None,
        "peak": peak.value,
    }


def calm_bars(
    bars: Sequence[Bar], bar_s: int, oi_move_pct: float, liq_vs_median: float
) -> dict[tuple[str, str], set[int]]:
    """Per instrument, the start times of its calm bars: open interest in base units moved
    less than ``oi_move_pct x sqrt(bar / 1 h)`` % since the previous bar and liquidations
    stayed under ``liq_vs_median`` x the instrument's median bar."""
    limit = oi_move_pct * math.sqrt(bar_s / HOUR_S)
    series: dict[tuple[str, str], list[tuple[int, float | None, float]]] = {}
    for b in bars:
        oi = b.oi_base
        if oi is None and b.oi_usd is not None and b.price:
            oi = b.oi_usd / b.price
        liq = (b.liq_long_usd or 0.0) + (b.liq_short_usd or 0.0)
        series.setdefault(b.key, []).append((b.ts_ms, oi, liq))
    out: dict[tuple[str, str], set[int]] = {}
    for key, rows in series.items():
        median = statistics.median(r[2] for r in rows)
        calm = set()
        for (t0, oi0, _), (t1, oi1, liq) in itertools.pairwise(rows):
            if t1 - t0 != bar_s * 1000 or not oi0 or not oi1:
                continue
            quiet = liq == 0 or liq < liq_vs_median * median
            if abs(100 * math.log(oi1 / oi0)) < limit and quiet:
                calm.add(t1)
        out[key] = calm
    return out


def _flagged(spans: Sequence[Span], start: int, end: int) -> bool:
    return any(s.start_ms < end and s.end_ms > start for s in spans)


def false_flags(
    labels: Labels,
    ds: Dataset,
    bars: Sequence[Bar],
    result: Result,
    spans: Sequence[Span],
    split: tuple[int, int],
) -> dict[str, dict[str, Any]]:
    """Per scope: calm bars (inside ``split``, after the burn-in, away from the data set's
    episodes) and those in which the scope was not calm (from the bar's close to the next)."""
    span_ms = ds.bar_s * 1000
    calm = calm_bars(bars, ds.bar_s, labels.oi_move_pct, labels.liq_vs_median)
    margin = int(labels.exclude_h * HOUR_S * 1000)
    windows = [(e.start_ms - margin, e.end_ms + margin) for e in labels.episodes
               if e.dataset == ds.id]  # fmt: skip
    warm = {k: (c.warm_until_ms or 0) for k, c in result.coverage.items()}
    present: dict[int, dict[tuple[str, str], bool]] = {}
    for b in bars:
        if split[0] <= b.ts_ms < split[1] and not any(lo <= b.ts_ms <= hi for lo, hi in windows):
            present.setdefault(b.ts_ms, {})[b.key] = b.ts_ms in calm.get(b.key, set())
    by_key: dict[tuple[str, str], list[Span]] = {}
    for s in spans:
        by_key.setdefault((s.scope, s.key), []).append(s)
    counts = {scope.value: [0, 0] for scope in Scope}

    def count(scope: Scope, key: str, ts: int) -> None:
        close = ts + span_ms
        counts[scope.value][0] += 1
        if _flagged(by_key.get((scope.value, key), []), close, close + span_ms):
            counts[scope.value][1] += 1

    for ts, members in sorted(present.items()):
        ready = {k: c for k, c in members.items() if ts + span_ms > warm.get(k, 0)}
        for (venue, symbol), is_calm in ready.items():
            if is_calm:
                count(Scope.INSTRUMENT, f"{venue}:{symbol}", ts)
        assets: dict[str, list[bool]] = {}
        for (_, symbol), is_calm in ready.items():
            assets.setdefault(asset_of(symbol), []).append(is_calm)
        for asset, flags in assets.items():
            if all(flags):
                count(Scope.ASSET, asset, ts)
        if ready and len(ready) == len(members) and all(ready.values()):
            count(Scope.MARKET, ANY, ts)
    return {
        scope: {"calm_bars": n, "flagged": f, "rate": f / n if n else None}
        for scope, (n, f) in counts.items()
    }


# -- running ---------------------------------------------------------------------------------


@dataclass(slots=True)
class DatasetRun:
    dataset: Dataset
    bars: list[Bar]
    result: Result
    spans: list[Span]
    wall_s: float


def run_dataset(
    settings: DetectorSettings,
    labels: Labels,
    ds: Dataset,
    root: Path,
    cache: dict[str, list[Bar]],
    span: tuple[int, int] | None = None,
) -> DatasetRun:
    """Play one data set (its bars in ``span`` only, when given) through a fresh model."""
    started = time.perf_counter()
    bars = load_bars(labels, ds, root, cache)
    if span is not None:
        bars = [b for b in bars if span[0] <= b.ts_ms < span[1]]
    sampled = {b.venue for b in bars} if ds.liquidations == "sampled" else set()
    settle = settings.enter_persist_s + settings.eval_interval_s
    result = replay(bars, make_replay_model(settings), ds.bar_s, settle_s=settle, sampled=sampled)
    end = result.last_ms + ds.bar_s * 1000
    return DatasetRun(ds, bars, result, spans_of(result.transitions, end),
                      time.perf_counter() - started)  # fmt: skip


def run_real(
    settings: DetectorSettings,
    labels: Labels,
    root: Path,
    *,
    sets: Sequence[str] = SETS,
    datasets: Sequence[str] = (),
    progress: Callable[[DatasetRun], None] | None = None,
    lead_days: float | None = None,
) -> dict[str, Any]:
    """Every data set with an episode or a calm stretch in ``sets``: the JSON summary.

    ``lead_days``: the quick form (the regression test): each episode alone, on its data
    set's bars from ``lead_days`` before the window (at least 40 bars) to a day after it;
    no calm figures."""
    started = time.perf_counter()
    wanted = [d for d in labels.datasets.values()
              if (not datasets or d.id in datasets) and _used(labels, d, sets)]  # fmt: skip
    cache: dict[str, list[Bar]] = {}
    episodes: list[dict[str, Any]] = []
    calm: list[dict[str, Any]] = []
    runs = []
    if lead_days is not None:
        for e in labels.episodes:
            ds = labels.datasets[e.dataset]
            if e.set not in sets or ds not in wanted:
                continue
            lead = max(int(lead_days * DAY_MS), 40 * ds.bar_s * 1000)
            run = run_dataset(settings, labels, ds, root, cache,
                              (e.start_ms - lead, e.end_ms + DAY_MS))  # fmt: skip
            runs.append(run)
            if progress is not None:
                progress(run)
            episodes += _episodes(labels, run, sets, only=e.id)
        wanted = []
    for ds in wanted:
        run = run_dataset(settings, labels, ds, root, cache)
        runs.append(run)
        if progress is not None:
            progress(run)
        episodes += _episodes(labels, run, sets)
        for split, window in ds.calm.items():
            if split in sets:
                scopes = false_flags(labels, ds, run.bars, run.result, run.spans, window)
                calm.append({"dataset": ds.id, "set": split, "bar_s": ds.bar_s, "scopes": scopes})
    return {
        "episodes": episodes,
        "calm": calm,
        "pooled": _pooled(calm),
        "datasets": {
            r.dataset.id + (f" {_iso(r.bars[0].ts_ms)}" if lead_days is not None else ""): {
                "bars": len(r.bars),
                "wall_s": round(r.wall_s, 1),
                "warming": _warming(r),
            }
            for r in runs
        },
        "wall_s": time.perf_counter() - started,
    }


def _used(labels: Labels, d: Dataset, sets: Sequence[str]) -> bool:
    calm = any(k in sets for k in d.calm)
    return calm or any(e.dataset == d.id and e.set in sets for e in labels.episodes)


def _warming(run: DatasetRun) -> dict[str, str | None]:
    return {f"{v}:{s}": _iso(c.warm_until_ms) for (v, s), c in sorted(run.result.coverage.items())}


def _episodes(
    labels: Labels, run: DatasetRun, sets: Sequence[str], only: str | None = None
) -> list[dict[str, Any]]:
    out = []
    grace = int(labels.grace_s * 1000)
    for e in labels.episodes:
        if e.dataset != run.dataset.id or e.set not in sets or only not in (None, e.id):
            continue
        for asset in e.assets:
            lo, hi = e.start_ms, e.end_ms + grace
            asset_spans = [s for s in run.spans if s.scope == "asset" and s.key == asset]
            members = [s for s in run.spans if s.scope == "instrument"
                       and asset_of(s.key.split(":", 1)[1]) == asset]  # fmt: skip
            row = {"episode": e.id, "set": e.set, "dataset": e.dataset, "asset": asset,
                   "window": [_iso(e.start_ms), _iso(e.end_ms)], "expected_side": e.side,
                   "expected_state": e.state, **judge(asset_spans, lo, hi, e.side)}  # fmt: skip
            if e.state is not None:
                row["flagged"] = row["flagged"] and row["peak"] == e.state
            row["not_judgeable"] = e.not_judgeable.get(asset)
            inst = judge(members, lo, hi, e.side)
            row["instrument"] = {"flagged": inst["flagged"], "delay_s": inst["delay_s"],
                                 "peak": inst["peak"]}  # fmt: skip
            out.append(row)
    return out


def _pooled(calm: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calm rates pooled by bar size and split."""
    groups: dict[tuple[int, str], dict[str, list[int]]] = {}
    for c in calm:
        g = groups.setdefault((c["bar_s"], c["set"]), {})
        for scope, f in c["scopes"].items():
            acc = g.setdefault(scope, [0, 0])
            acc[0] += f["calm_bars"]
            acc[1] += f["flagged"]
    return [
        {"bar_s": bar_s, "set": split,
         "scopes": {k: {"calm_bars": n, "flagged": f, "rate": f / n if n else None}
                    for k, (n, f) in g.items()}}
        for (bar_s, split), g in sorted(groups.items())
    ]  # fmt: skip


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
