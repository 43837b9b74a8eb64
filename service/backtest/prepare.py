"""Bars made ready to play: instrument selection, a shared price source, resampling, and the
checks that refuse what cannot be scored. Pure.

* :class:`Selection`: ``--only`` and ``--exclude``, each a list of ``VENUE:SYMBOL``,
  ``VENUE:*``, ``SYMBOL`` or an asset (``BTC`` keeps ``binance:BTCUSDT`` and
  ``hyperliquid:BTC``);
* :func:`apply_prices`: one price file serves every instrument of the same asset that has no
  price of its own at that time (open interest in USD on one venue, candles from another);
* :func:`resample`: bars to a coarser size (open first, high max, low min, close, open
  interest and funding last, liquidations summed), so one data set plays at 1 h and 1 d;
* :func:`check_open_interest`: open interest in USD is converted to base units with the
  price; an instrument with USD open interest and no price at all is refused with an error
  naming the missing column (the detector measures open interest in base units, so a
  price move is not read as positions opening or closing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from .bars import Bar
from .replay import asset_of


@dataclass(frozen=True, slots=True)
class Selection:
    """Which instruments to keep: ``only`` (empty: all) minus ``exclude``."""

    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __call__(self, venue: str, symbol: str) -> bool:
        if self.only and not _matches(self.only, venue, symbol):
            return False
        return not _matches(self.exclude, venue, symbol)


def _matches(patterns: Iterable[str], venue: str, symbol: str) -> bool:
    asset = asset_of(symbol)
    for p in patterns:
        v, sep, s = p.partition(":")
        if not sep:
            if p in (symbol, asset):
                return True
        elif v in (venue, "*") and s in (symbol, asset, "*"):
            return True
    return False


def _priced(b: Bar) -> bool:
    return b.price is not None or b.open is not None


def apply_prices(
    bars: Sequence[Bar], prices: Sequence[Bar], venues: Sequence[str] = ()
) -> list[Bar]:
    """``bars`` with the OHLC of ``prices`` (same asset, same bar time) where a bar has no
    price; ``venues`` orders the price file's venues by preference (the first with a bar at
    that time serves; empty: any, in file order). ``ValueError`` when ``prices`` has none."""
    table: dict[tuple[str, int], Bar] = {}
    rank = {v: i for i, v in enumerate(venues)}
    best: dict[tuple[str, int], int] = {}
    for p in prices:
        if not _priced(p) or (rank and p.venue not in rank):
            continue
        key = (asset_of(p.symbol), p.ts_ms)
        r = rank.get(p.venue, 0)
        if key not in table or r < best[key]:
            table[key], best[key] = p, r
    if not table:
        raise ValueError("the price file has no price column (open/close) for any bar")
    out = []
    for b in bars:
        source = None if _priced(b) else table.get((asset_of(b.symbol), b.ts_ms))
        if source is not None:
            b = replace(b, open=source.open, high=source.high, low=source.low, price=source.price)
        out.append(b)
    return out


def resample(bars: Sequence[Bar], bar_s: int) -> list[Bar]:
    """Bars (sorted by time) aggregated into bars of ``bar_s`` (aligned on the epoch, so daily
    bars are UTC days)."""
    size = bar_s * 1000
    groups: dict[tuple[int, str, str], list[Bar]] = {}
    for b in bars:
        groups.setdefault((b.ts_ms // size * size, b.venue, b.symbol), []).append(b)
    out = []
    for (ts, venue, symbol), group in groups.items():
        out.append(
            Bar(
                ts, venue, symbol,
                open=_first(b.open if b.open is not None else b.price for b in group),
                high=_max(b.high if b.high is not None else b.price for b in group),
                low=_min(b.low if b.low is not None else b.price for b in group),
                price=_last(b.price for b in group),
                oi_usd=_last(b.oi_usd for b in group),
                oi_base=_last(b.oi_base for b in group),
                funding_rate=_last(b.funding_rate for b in group),
                funding_interval_h=_last(b.funding_interval_h for b in group),
                liq_long_usd=_sum(b.liq_long_usd for b in group),
                liq_short_usd=_sum(b.liq_short_usd for b in group),
            )
        )  # fmt: skip
    return sorted(out, key=lambda b: (b.ts_ms, b.venue, b.symbol))


def _first(xs: Iterable[float | None]) -> float | None:
    return next((x for x in xs if x is not None), None)


def _last(xs: Iterable[float | None]) -> float | None:
    out = None
    for x in xs:
        if x is not None:
            out = x
    return out


def _max(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return max(vals) if vals else None


def _min(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return min(vals) if vals else None


def _sum(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) if vals else None


def check_open_interest(bars: Sequence[Bar]) -> list[str]:
    """``ValueError`` naming the missing column for instruments whose open interest is only in
    USD and that have no price at all; the instruments without any open interest (warnings
    for the user: the detector cannot score them)."""
    usd_only: set[tuple[str, str]] = set()
    priced: set[tuple[str, str]] = set()
    with_oi: set[tuple[str, str]] = set()
    for b in bars:
        if b.oi_base is not None or b.oi_usd is not None:
            with_oi.add(b.key)
        if b.oi_usd is not None and b.oi_base is None:
            usd_only.add(b.key)
        if b.price is not None:
            priced.add(b.key)
    refused = sorted(usd_only - priced)
    if refused:
        names = ", ".join(f"{v}:{s}" for v, s in refused[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise ValueError(
            f"{names}{more}: open interest is in USD (column oi_usd) but there is no price "
            "column (close/price) to convert it to base units: map one with --col price=COLUMN "
            "or give a price file with --prices FILE"
        )
    everyone = {b.key for b in bars}
    return [f"{v}:{s}: no open interest column: not scored" for v, s in sorted(everyone - with_oi)]
