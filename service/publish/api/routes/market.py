"""Market data (tag ``market-data``): liquidations from the streams, and the latest funding,
open interest, mark price and top of book of each instrument from the latest-state hashes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Final

import redis.asyncio as aioredis
from fastapi import APIRouter

from ....events import (
    DEPTH_BANDS_PCT,
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    Kind,
    MarkPrice,
    OpenInterest,
    annualized,
)
from ....store import pages, reader, tape
from ..deps import LimitDep, RedisDep, ViewDep
from ..items import depth_and_fragility, liquidation_item, newest_depth_1pct
from ..models import FundingList, LiquidationPage, LiquidityList, MarkList, OpenInterestList
from ..params import (
    AssetQuery,
    LiquidationCursorQuery,
    Since,
    SymbolQuery,
    Until,
    VenueQuery,
    rfc3339,
    rfc3339_or_none,
)
from ..problems import invalid_param, responses
from ..snapshot import View

router = APIRouter(tags=["market-data"])


async def _pairs(
    client: aioredis.Redis, venue: str | None, symbol: str | None
) -> list[tuple[str, str]]:
    pairs = await reader.instruments(client, venue)
    return pairs if symbol is None else [p for p in pairs if p[1] == symbol]


@router.get(
    "/liquidations",
    response_model=LiquidationPage,
    summary="Liquidations, newest first, cursor-paginated",
    description="`since` and `until` are inclusive and apply to the time each liquidation was "
    "stored (within milliseconds of its receipt); `ts` in the items is the venue's event time. "
    "Pages never repeat or skip an item, even while new liquidations arrive.",
    responses=responses(422, 503),
)
async def list_liquidations(
    client: RedisDep,
    view: ViewDep,
    limit: LimitDep,
    venue: VenueQuery = None,
    symbol: SymbolQuery = None,
    since: Since = None,
    until: Until = None,
    cursor: LiquidationCursorQuery = None,
) -> Any:
    if since is not None and until is not None and until < since:
        raise invalid_param("until", "until is before since")
    unfiltered = venue is None and symbol is None and since is None and until is None
    if unfiltered and cursor is None and len(view.tape_head) > limit:
        # The tape's head, from memory: the page the index gives (same items, same cursor).
        return view.json(("liquidations", limit), LiquidationPage, partial(_head, view, limit))
    try:
        if symbol is None:  # every instrument (of a venue): its index, O(limit)
            page = await tape.indexed_liquidations(
                client, venue, since_ms=since, until_ms=until, limit=limit, cursor=cursor
            )
        else:  # a symbol (on each venue that lists it): the merge of its few streams
            page = await pages.liquidations(
                client, await _pairs(client, venue, symbol),
                since_ms=since, until_ms=until, limit=limit, cursor=cursor,
            )  # fmt: skip
    except pages.CursorError:
        raise invalid_param("cursor", "not a cursor this API issued") from None
    return {"items": [liquidation_item(e) for e in page.items], "next_cursor": page.next_cursor}


def _head(view: View, limit: int) -> dict[str, Any]:
    last = view.tape_head[limit - 1][0]  # the position the cursor names: <ms>-<seq>~<member>
    sid, _, member = last.partition("~")
    ms, _, seq = sid.partition("-")
    return {
        "items": [liquidation_item(e) for _, e in view.tape_head[:limit]],
        "next_cursor": f"{int(ms)}-{int(seq)}~{member}",
    }


@router.get(
    "/funding",
    response_model=FundingList,
    summary="Latest funding rate of each perpetual",
    description="Sorted by venue, then symbol.",
    responses=responses(422, 503),
)
async def list_funding(
    view: ViewDep, limit: LimitDep, venue: VenueQuery = None, symbol: SymbolQuery = None
) -> Any:
    def page() -> dict[str, Any]:
        events = view.of_kind(Kind.FUNDING)
        return {"items": _page(view, events, _funding_item, limit, venue, symbol)}

    if venue is None and symbol is None:
        return view.json(("funding", limit), FundingList, page)  # the hot query, kept
    return page()


def _page(
    view: View,
    events: Iterable[Event],
    item: Callable[[Any], dict[str, Any]],
    limit: int,
    venue: str | None,
    symbol: str | None,
) -> list[dict[str, Any]]:
    """The items of the first ``limit`` of ``events`` of ``venue`` and ``symbol`` (when
    given), each built once per snapshot."""
    items: list[dict[str, Any]] = []
    for e in events:
        if (venue is None or e.venue == venue) and (symbol is None or e.symbol == symbol):
            items.append(view.memo((item, e.venue, e.symbol), partial(item, e)))
            if len(items) == limit:
                break
    return items


def _funding_item(e: FundingRate) -> dict[str, Any]:
    return {
        "venue": e.venue,
        "symbol": e.symbol,
        "asset": e.base,
        "funding_rate": e.funding_rate,
        "interval_h": e.interval_h,
        "funding_rate_1h": e.funding_rate_1h,
        "funding_rate_annualized": annualized(e.funding_rate_1h),
        "next_funding_at": rfc3339_or_none(e.next_funding_ms),
        "ts": rfc3339(e.ts_ms),
    }


@router.get(
    "/open-interest",
    response_model=OpenInterestList,
    summary="Latest open interest of each instrument, largest first",
    responses=responses(422, 503),
)
async def list_open_interest(
    view: ViewDep, limit: LimitDep, venue: VenueQuery = None, symbol: SymbolQuery = None
) -> dict[str, Any]:
    ranked = view.memo("oi_ranked", partial(_by_oi, view))
    return {"items": _page(view, ranked, _oi_item, limit, venue, symbol)}


def _by_oi(view: View) -> list[OpenInterest]:
    events = [e for e in view.of_kind(Kind.OPEN_INTEREST) if isinstance(e, OpenInterest)]
    return sorted(events, key=lambda e: (-e.oi_usd, e.venue, e.symbol))


def _oi_item(e: OpenInterest) -> dict[str, Any]:
    return {
        "venue": e.venue,
        "symbol": e.symbol,
        "asset": e.base,
        "oi_contracts": e.oi_contracts,
        "oi_base": e.oi_base,
        "oi_usd": e.oi_usd,
        "ts": rfc3339(e.ts_ms),
    }


@router.get(
    "/mark",
    response_model=MarkList,
    summary="Latest mark and index price of each instrument",
    description="Sorted by venue, then symbol. Prices are in the contract's quote currency.",
    responses=responses(422, 503),
)
async def list_marks(
    view: ViewDep, limit: LimitDep, venue: VenueQuery = None, symbol: SymbolQuery = None
) -> dict[str, Any]:
    return {"items": _page(view, view.of_kind(Kind.MARK), _mark_item, limit, venue, symbol)}


def _mark_item(e: MarkPrice) -> dict[str, Any]:
    return {
        "venue": e.venue,
        "symbol": e.symbol,
        "asset": e.base,
        "mark_price": e.mark_price,
        "index_price": e.index_price,
        "ts": rfc3339(e.ts_ms),
    }


@router.get(
    "/liquidity",
    response_model=LiquidityList,
    summary="Latest top of book and depth of each instrument, widest spread first",
    description="Best bid and ask with the size resting at each (in base units and USD) and "
    "the spread in basis points, from each venue's ticker or book-ticker channel (Binance "
    "USDⓈ-M's all-market one pushes every 5 s). `spread_z` and `book_top_z` compare the last "
    "minute with the instrument's own earlier minutes: a widening spread and a thinning top "
    "come before a cascade moves price further per dollar liquidated. `volume_1m_buy_usd` and "
    "`volume_1m_sell_usd`: what takers bought and sold over the last minute (the venues' "
    "trades, liquidation fills included), `volume_z` its change against earlier minutes. "
    "`depth`: the USD within 0.5, 1 and 2 % of mid on each side, for the instruments whose "
    "order book is followed (by default the top 20 by open interest of each venue); a band the "
    "venue's levels do not reach is a lower bound, flagged `bid_exact`/`ask_exact` false. "
    "`depth_1pct_usd` (bids plus asks within 1 %), `depth_1pct_change_pct` and `depth_1pct_z` "
    "(its change over 15 minutes, against the instrument's own) and `fragile` (the detector's "
    "warning: a thin or wide book while open interest moves; never a state). Sorted by spread, "
    "widest first (ties by venue, symbol), then the instruments with a followed book and no "
    "top of book yet, by venue and symbol.",
    responses=responses(422, 503),
)
async def list_liquidity(
    view: ViewDep,
    limit: LimitDep,
    venue: VenueQuery = None,
    asset: AssetQuery = None,
    symbol: SymbolQuery = None,
) -> dict[str, Any]:
    rows = view.memo("liquidity", partial(_liquidity_rows, view))
    wanted = None if asset is None else asset.upper()
    items: list[dict[str, Any]] = []
    for e, item in rows:
        if (
            (venue is None or e.venue == venue)
            and (symbol is None or e.symbol == symbol)
            and (wanted is None or e.base.upper() == wanted)
        ):
            items.append(item)
            if len(items) == limit:
                break
    return {"items": items}


def _liquidity_rows(view: View) -> list[tuple[BookTop | BookDepth, dict[str, Any]]]:
    """Every instrument's top of book and its item, widest spread first, then the instruments
    with a book depth and no top of book (OKX's followed books), by venue and symbol (once
    per view)."""
    tops = [e for e in view.of_kind(Kind.BOOK_TOP) if isinstance(e, BookTop)]
    tops.sort(key=lambda e: (-e.spread_bp, e.venue, e.symbol))
    with_top = {(e.venue, e.symbol) for e in tops}
    depths = [
        e
        for e in view.of_kind(Kind.BOOK_DEPTH)
        if isinstance(e, BookDepth) and (e.venue, e.symbol) not in with_top
    ]
    depths.sort(key=lambda e: (e.venue, e.symbol))
    events: list[BookTop | BookDepth] = [*tops, *depths]
    return [(e, _liquidity_item(view, e)) for e in events]


_NO_TOP: Final = dict.fromkeys(
    ("bid_price", "ask_price", "bid_base", "ask_base", "bid_usd", "ask_usd", "spread_bp")
)


def _liquidity_item(view: View, e: BookTop | BookDepth) -> dict[str, Any]:
    """``e``: the instrument's top of book, or its book depth when it has no top."""
    score = view.pressures.get((e.venue, e.symbol))
    features = {} if score is None else score.features
    depth = view.latest.get((e.venue, e.symbol), {}).get(Kind.BOOK_DEPTH)
    top: dict[str, Any] = _NO_TOP
    if isinstance(e, BookTop):
        top = {
            "bid_price": e.bid_price,
            "ask_price": e.ask_price,
            "bid_base": e.bid_base,
            "ask_base": e.ask_base,
            "bid_usd": e.bid_usd,
            "ask_usd": e.ask_usd,
            "spread_bp": e.spread_bp,
        }
    return {
        "venue": e.venue,
        "symbol": e.symbol,
        "asset": e.base,
        **top,
        "spread_z": features.get("spread_z"),
        "book_top_z": features.get("book_top_z"),
        "volume_1m_buy_usd": features.get("volume_1m_buy_usd"),
        "volume_1m_sell_usd": features.get("volume_1m_sell_usd"),
        "volume_z": features.get("volume_z"),
        "ts": rfc3339(e.ts_ms),
        "depth": _depth_item(depth),
        **depth_and_fragility(features),
        **newest_depth_1pct(depth),
    }


def _depth_item(d: Event | None) -> dict[str, Any] | None:
    """The newest book depth, band by band, each side flagged when it is a lower bound."""
    if not isinstance(d, BookDepth):
        return None
    bids = (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2)
    asks = (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2)
    return {
        "mid": d.mid,
        "bands": [
            {"band_pct": band, "bid_usd": bid, "ask_usd": ask,
             "bid_exact": d.exact("bid", band), "ask_exact": d.exact("ask", band)}
            for band, bid, ask in zip(DEPTH_BANDS_PCT, bids, asks, strict=True)
        ],
        "bid_reach_pct": d.bid_reach_pct,
        "ask_reach_pct": d.ask_reach_pct,
        "ts": rfc3339(d.ts_ms),
    }  # fmt: skip
