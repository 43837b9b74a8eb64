"""The asset view: one asset (``BTC``) across every venue and contract. Pure.

Open interest and liquidations are summed in USD (each venue's events are already valued
with its own contract metadata, so linear, inverse and quanto contracts add up). Funding is
the per-hour rate weighted by each instrument's open interest. Venues whose feed is stale
are named, and their instruments are left out of the sums rather than counted at an old
value; venues whose liquidation feed is a sample are named too, since their sum is a lower
bound.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec

from ..events import (
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    InstrumentId,
    Kind,
    MarkPrice,
    OpenInterest,
)
from ..store.reader import LiquidationSums
from .liquidity import depth_1pct


class AssetInstrument(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    oi_usd: float | None
    funding_rate_1h: float | None
    mark_price: float | None
    liq_long_usd: float
    liq_short_usd: float
    stale: bool
    updated_ms: int | None
    spread_bp: float | None = None
    """Its newest top of book's spread (``None``: its venue's ticker carries no book)."""
    book_top_usd: float | None = None
    """USD at its best bid plus its best ask."""
    depth_1pct_usd: float | None = None
    """Its newest book depth's USD within 1 % of mid, bids plus asks (``None``: its book is
    not followed)."""
    depth_1pct_exact: bool | None = None
    """Whether that book's levels reach 1 % on both sides (else a lower bound)."""


class AssetView(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    oi_usd: float
    funding_rate_1h: float | None
    """Per-hour funding, weighted by open interest (fresh instruments with both)."""
    liq_long_usd: float
    liq_short_usd: float
    liq_count: int
    window_s: float
    """The span the liquidation sums cover."""
    venues: list[str]
    stale_venues: list[str]
    sampled_venues: list[str]
    """Venues whose liquidation feed is a sample: the sums are a lower bound."""
    instruments: list[AssetInstrument]


def build_asset_views(
    latest: Mapping[InstrumentId, Mapping[Kind, Event]],
    liquidations: Mapping[InstrumentId, LiquidationSums],
    stale_venues: Iterable[str],
    *,
    now_ms: int,
    stale_after_s: float,
    window_s: float,
) -> dict[str, AssetView]:
    """Asset views for every asset in ``latest``, keyed by asset."""
    stale_set = set(stale_venues)
    rows: dict[str, list[AssetInstrument]] = defaultdict(list)
    sampled: dict[str, set[str]] = defaultdict(set)
    for (venue, symbol), events in latest.items():
        newest = max((e.ts_ms for e in events.values()), default=None)
        asset = next((e.base for e in events.values()), None)
        if asset is None:
            continue
        liq = liquidations.get((venue, symbol), LiquidationSums())
        if liq.sampled:
            sampled[asset].add(venue)
        oi, fund, mark = (events.get(k) for k in (Kind.OPEN_INTEREST, Kind.FUNDING, Kind.MARK))
        book = events.get(Kind.BOOK_TOP)
        book = book if isinstance(book, BookTop) else None
        depth = events.get(Kind.BOOK_DEPTH)
        depth_1pct_usd, depth_1pct_exact = (
            depth_1pct(depth) if isinstance(depth, BookDepth) else (None, None)
        )
        too_old = newest is None or now_ms - newest > stale_after_s * 1000
        rows[asset].append(
            AssetInstrument(
                venue=venue,
                symbol=symbol,
                oi_usd=oi.oi_usd if isinstance(oi, OpenInterest) else None,
                funding_rate_1h=fund.funding_rate_1h if isinstance(fund, FundingRate) else None,
                mark_price=mark.mark_price if isinstance(mark, MarkPrice) else None,
                liq_long_usd=liq.long_usd,
                liq_short_usd=liq.short_usd,
                stale=venue in stale_set or too_old,
                updated_ms=newest,
                spread_bp=None if book is None else book.spread_bp,
                book_top_usd=None if book is None else book.bid_usd + book.ask_usd,
                depth_1pct_usd=depth_1pct_usd,
                depth_1pct_exact=depth_1pct_exact,
            )
        )
    counts = {
        a: sum(liquidations.get((r.venue, r.symbol), LiquidationSums()).count for r in rs)
        for a, rs in rows.items()
    }
    return {
        asset: _view(asset, rs, counts[asset], sorted(sampled[asset]), window_s)
        for asset, rs in rows.items()
    }


def _view(
    asset: str, rows: list[AssetInstrument], count: int, sampled: list[str], window_s: float
) -> AssetView:
    fresh = [r for r in rows if not r.stale]
    weighted = [
        (r.funding_rate_1h, r.oi_usd) for r in fresh if r.funding_rate_1h is not None and r.oi_usd
    ]
    total_w = sum(w for _, w in weighted)
    return AssetView(
        asset=asset,
        oi_usd=sum(r.oi_usd or 0.0 for r in fresh),
        funding_rate_1h=sum(f * w for f, w in weighted) / total_w if total_w > 0 else None,
        liq_long_usd=sum(r.liq_long_usd for r in rows),
        liq_short_usd=sum(r.liq_short_usd for r in rows),
        liq_count=count,
        window_s=window_s,
        venues=sorted({r.venue for r in rows}),
        stale_venues=sorted({r.venue for r in rows if r.stale}),
        sampled_venues=sampled,
        instruments=sorted(rows, key=lambda r: (-(r.oi_usd or 0.0), r.venue, r.symbol)),
    )
