"""Historical bars from CSV or Parquet files, columns found by name. Pure except for reading.

A bar is one instrument (venue and symbol) over one interval that starts at ``ts_ms``. Its
fields, each optional but the first three:

==================  ==========================================  ==============================
field               default column names (case-insensitive)     unit
==================  ==========================================  ==============================
time                time, timestamp, ts, date, datetime,        ISO 8601 (UTC unless it says),
                    open_time                                   epoch s or ms, or a datetime
venue               venue, exchange                              -
symbol              symbol, coin, asset, instrument, pair        -
open, high, low     open/o, high/h, low/l                        price
price               price, close, c, mark, mark_price            price (the bar's close)
oi_usd              oi_usd, open_interest_usd, oi_value          USD
oi_base             oi_base, open_interest, oi, oi_coin          base coin
funding_rate        funding_rate, funding, fundingrate           rate per funding interval
funding_interval_h  funding_interval_h, interval_h               hours
liq_long_usd        liq_long_usd, long_liquidations_usd,         USD of longs liquidated in
                    long_liq_usd, long_usd                       the bar
liq_short_usd       (the same with short)                        USD
==================  ==========================================  ==============================

Other names are mapped with ``FIELD=COLUMN``. Several files are merged on (time, venue,
symbol): candles from one, funding from another. A file without a venue or symbol column
takes ``venue``/``symbol`` given by the caller.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "time": ("time", "timestamp", "ts", "date", "datetime", "open_time"),
    "venue": ("venue", "exchange"),
    "symbol": ("symbol", "coin", "asset", "instrument", "pair"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "price": ("price", "close", "c", "mark", "mark_price"),
    "oi_usd": ("oi_usd", "open_interest_usd", "oi_value"),
    "oi_base": ("oi_base", "open_interest", "oi", "oi_coin"),
    "funding_rate": ("funding_rate", "funding", "fundingrate"),
    "funding_interval_h": ("funding_interval_h", "interval_h"),
    "liq_long_usd": ("liq_long_usd", "long_liquidations_usd", "long_liq_usd", "long_usd"),
    "liq_short_usd": ("liq_short_usd", "short_liquidations_usd", "short_liq_usd", "short_usd"),
}
NUMERIC: Final = tuple(f for f in ALIASES if f not in ("time", "venue", "symbol"))
BAR_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Bar:
    ts_ms: int
    venue: str
    symbol: str
    open: float | None = None
    high: float | None = None
    low: float | None = None
    price: float | None = None
    oi_usd: float | None = None
    oi_base: float | None = None
    funding_rate: float | None = None
    funding_interval_h: float | None = None
    liq_long_usd: float | None = None
    liq_short_usd: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["time=timestamp", ...]`` as ``{"time": "timestamp"}``; ``ValueError`` names a bad
    item or an unknown field."""
    out: dict[str, str] = {}
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not column or field not in ALIASES:
            raise ValueError(f"--col {item!r}: expected FIELD=COLUMN with FIELD in {list(ALIASES)}")
        out[field] = column
    return out


def parse_bar(text: str) -> int:
    """``1m``, ``5m``, ``1h``, ``1d``... in seconds."""
    try:
        return int(float(text[:-1]) * BAR_UNITS[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"bar size {text!r}: expected a number and one of s, m, h, d, w") from None


def to_ms(value: Any) -> int:
    """A time as epoch ms: a datetime, ISO 8601 text, or epoch seconds/milliseconds."""
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return round(stamp.timestamp() * 1000)
    if isinstance(value, dt.date):
        return to_ms(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC))
    if isinstance(value, int | float):
        return int(value if value > 1e11 else value * 1000)
    text = str(value).strip()
    try:
        return to_ms(float(text))
    except ValueError:
        return to_ms(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    x = float(value)
    return None if math.isnan(x) else x


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a CSV or Parquet file as dicts (Parquet needs pyarrow)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq  # type: ignore[import-untyped]
        except ImportError:
            raise ValueError(
                f"{path}: reading Parquet needs pyarrow (pip install 'deleverage[parquet]')"
            ) from None
        yield from pq.read_table(path).to_pylist()
        return
    with path.open(newline="") as f:
        yield from csv.DictReader(f)


def _columns(names: Sequence[str], mapping: Mapping[str, str]) -> dict[str, str]:
    """field → column for one file."""
    lower = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    for field, aliases in ALIASES.items():
        if field in mapping:
            if mapping[field] in names:
                out[field] = mapping[field]
            continue
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is not None and found not in out.values():
            out[field] = found
    return out


@dataclass(frozen=True, slots=True)
class FileRead:
    """The bars of one file and how its columns were read."""

    path: Path
    bars: list[Bar]
    columns: dict[str, str]
    """field -> column used."""
    unmapped: list[str]
    """Columns of the file that no field reads (reported to the user)."""


def read_file(
    path: Path,
    mapping: Mapping[str, str] | None = None,
    venue: str | None = None,
    symbol: str | None = None,
    keep: Callable[[int, str, str], bool] | None = None,
) -> FileRead:
    """The bars of one file (those ``keep(ts_ms, venue, symbol)`` accepts) and the columns it
    could not map; ``ValueError`` when time, venue or symbol cannot be found."""
    rows = iter(read_rows(path))
    first = next(rows, None)
    if first is None:
        return FileRead(path, [], {}, [])
    names = list(first)
    cols = _columns(names, mapping or {})
    if "time" not in cols:
        raise ValueError(f"{path}: no time column (map one with --col time=COLUMN)")
    for field, given in (("venue", venue), ("symbol", symbol)):
        if field not in cols and given is None:
            raise ValueError(f"{path}: no {field} column (give --{field} or --col {field}=COLUMN)")
    used = set(cols.values())
    unmapped = [n for n in names if n not in used]
    out: list[Bar] = []
    numeric = [(f, c) for f, c in cols.items() if f in NUMERIC]
    for row in (first, *rows):
        ts = to_ms(row[cols["time"]])
        v = str(row[cols["venue"]]) if "venue" in cols else str(venue)
        s = str(row[cols["symbol"]]) if "symbol" in cols else str(symbol)
        if keep is None or keep(ts, v, s):
            out.append(Bar(ts, v, s, **{f: _number(row.get(c)) for f, c in numeric}))
    return FileRead(path, out, cols, unmapped)


def read_bars(
    path: Path,
    mapping: Mapping[str, str] | None = None,
    venue: str | None = None,
    symbol: str | None = None,
    keep: Callable[[int, str, str], bool] | None = None,
) -> list[Bar]:
    """The bars of one file (see :func:`read_file`)."""
    return read_file(path, mapping, venue, symbol, keep).bars


def merge(bars: Iterable[Bar]) -> list[Bar]:
    """Bars of the same time, venue and symbol merged (later values fill what is missing),
    sorted by time."""
    merged: dict[tuple[int, str, str], Bar] = {}
    for b in bars:
        key = (b.ts_ms, b.venue, b.symbol)
        old = merged.get(key)
        if old is None:
            merged[key] = b
            continue
        filled = {
            f.name: getattr(b, f.name)
            for f in fields(Bar)
            if f.name in NUMERIC and getattr(old, f.name) is None
        }
        merged[key] = replace(old, **filled)
    return sorted(merged.values(), key=lambda b: (b.ts_ms, b.venue, b.symbol))


def infer_bar_s(bars: Sequence[Bar]) -> int:
    """The most common spacing between consecutive priced bars of an instrument (all bars
    when none has a price); ``ValueError`` when no instrument has two."""
    priced = [b for b in bars if b.price is not None] or list(bars)
    last: dict[tuple[str, str], int] = {}
    gaps: Counter[int] = Counter()
    for b in priced:
        prev = last.get(b.key)
        if prev is not None and b.ts_ms > prev:
            gaps[b.ts_ms - prev] += 1
        last[b.key] = b.ts_ms
    if not gaps:
        raise ValueError("cannot infer the bar size: give --bar")
    return gaps.most_common(1)[0][0] // 1000


def funding_intervals(bars: Sequence[Bar]) -> dict[tuple[str, str], float]:
    """Per instrument, the funding interval in hours: the median spacing of its funding rows,
    when they are at least an hour apart (8 h otherwise, and without any)."""
    times: dict[tuple[str, str], list[int]] = {}
    for b in bars:
        if b.funding_rate is not None:
            times.setdefault(b.key, []).append(b.ts_ms)
    out: dict[tuple[str, str], float] = {}
    for key, ts in times.items():
        gaps = sorted(b - a for a, b in itertools.pairwise(ts) if b > a)
        hours = gaps[len(gaps) // 2] / 3_600_000 if gaps else 0.0
        out[key] = round(hours) if hours >= 1 else 8.0
    return out
