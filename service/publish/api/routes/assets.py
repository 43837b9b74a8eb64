"""``GET /v1/assets``, ``GET /v1/assets/{asset}`` and ``GET /v1/assets/{asset}/history``: each
asset across venues and contracts, now and over the last hours. One asset's answer carries
its leverage-stress figures too (``stress``: docs/stress.md), from the same snapshot."""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query

from ....config import Settings
from ....detect.assets import AssetInstrument, AssetView, build_asset_views
from ....events import InstrumentId, InsuranceFund, StressEvent, annualized
from ....scores import Pressure
from ....store import reader, series
from ..deps import LimitDep, RedisDep, SettingsDep, ViewDep
from ..freshness import feed_problem
from ..items import depth_and_fragility
from ..models import AssetDetail, AssetHistory, AssetList
from ..params import MAX_NAME_CHARS, rfc3339, rfc3339_or_none
from ..problems import invalid_param, responses
from ..snapshot import ASSET_WINDOW_S, View
from .stress import stress_items

router = APIRouter(tags=["assets"])

MAX_POINTS = 360
AssetPath = Annotated[str, Path(max_length=MAX_NAME_CHARS, examples=["BTC"])]
HistoryWindow = Annotated[
    int, Query(ge=60, le=86_400, description="Seconds of history (60 to 86400).")
]
Step = Annotated[
    int | None,
    Query(
        ge=5,
        le=3600,
        description=f"Seconds per point (5 to 3600); default: the window over 120. At most "
        f"{MAX_POINTS} points.",
    ),
]
Window = Annotated[
    int,
    Query(ge=60, le=86_400, description="Seconds of liquidations to sum (60 to 86400)."),
]


@router.get(
    "/assets",
    response_model=AssetList,
    summary="Every asset across venues: open interest, funding, liquidations",
    description="Open interest and liquidations summed in USD over every venue and contract, "
    "funding weighted by open interest. Stale venues are named and left out of the sums.",
    responses=responses(422, 503),
)
async def list_assets(
    client: RedisDep,
    view: ViewDep,
    settings: SettingsDep,
    limit: LimitDep,
    window_s: Window = ASSET_WINDOW_S,
) -> dict[str, Any]:
    if window_s == ASSET_WINDOW_S:
        ordered = view.memo("assets_ranked", partial(_ranked, view.assets(settings)))
        return {"items": [_kept_item(view, v) for v in ordered[:limit]]}
    views = await _views(client, view, settings, window_s, asset=None)
    return {"items": [_item(v, view.pressures) for v in _ranked(views)[:limit]]}


def _ranked(views: dict[str, AssetView]) -> list[AssetView]:
    return sorted(views.values(), key=lambda v: (-v.oi_usd, v.asset))


def _kept_item(view: View, v: AssetView) -> dict[str, Any]:
    """The item of an asset view of the snapshot, built once per snapshot."""
    return view.memo(("asset_item", v.asset), partial(_item, v, view.pressures))


@router.get(
    "/assets/{asset}",
    response_model=AssetDetail,
    summary="One asset across venues, with its leverage-stress figures",
    description="The asset's item as in `/v1/assets`, and `stress`: per venue, the ADL risk "
    "of the asset's instruments, the insurance pools that cover them (the asset's own, and "
    "shared pools that list one of its instruments), long/short figures and basis, as in "
    "`/v1/stress`.",
    responses=responses(404, 422, 503),
)
async def get_asset(
    client: RedisDep,
    view: ViewDep,
    settings: SettingsDep,
    asset: AssetPath,
    window_s: Window = ASSET_WINDOW_S,
) -> Any:
    name = asset.upper()
    if window_s == ASSET_WINDOW_S:
        found = view.asset(name, settings)
        if found is None:
            raise HTTPException(404, f"no instrument of asset {asset}")
        return view.json(("asset", name), AssetDetail, partial(_detail, view, settings, found))
    views = await _views(client, view, settings, window_s, asset=name)
    if name not in views:
        raise HTTPException(404, f"no instrument of asset {asset}")
    return _detail(view, settings, views[name])


def _detail(view: View, settings: Settings, v: AssetView) -> dict[str, Any]:
    return {**_item(v, view.pressures), "stress": asset_stress(view, settings, v)}


def asset_stress(view: View, settings: Settings, v: AssetView) -> dict[str, Any]:
    """The snapshot's stress states of the asset of ``v``: those of its base, and the shared
    insurance pools (base ``*``) that list one of its instruments."""
    name = v.asset
    ours = {(i.venue, i.symbol) for i in v.instruments}

    def keep(ev: StressEvent) -> bool:
        if ev.base.upper() == name:
            return True
        return isinstance(ev, InsuranceFund) and any((ev.venue, s) in ours for s in ev.symbols)

    items = stress_items(view, settings.enabled_venues(), keep)
    levels = [i["adl_level_max"] for i in items if i["adl_level_max"] is not None]
    return {"adl_level_max": max(levels, default=None), "venues": items}


async def _views(
    client: aioredis.Redis, view: View, settings: Settings, window_s: int, asset: str | None
) -> dict[str, AssetView]:
    """Asset views over a window other than the snapshot's: the liquidation sums are read
    from the instruments' streams (those of ``asset`` only, when given)."""
    now = int(time.time() * 1000)
    latest = view.latest
    if asset is not None:
        latest = {p: ev for p, ev in latest.items() if any(e.base == asset for e in ev.values())}
    sums = await reader.liquidation_sums(client, list(latest), now - window_s * 1000)
    watchdog = settings.collect.watchdog_s
    stale = [v for v, s in view.health.items() if feed_problem(s, now, watchdog) is not None]
    return build_asset_views(
        latest,
        sums,
        stale,
        now_ms=now,
        stale_after_s=settings.detector.stale_after_s,
        window_s=window_s,
    )


def _item(v: AssetView, pressures: Mapping[InstrumentId, Pressure]) -> dict[str, Any]:
    """``pressures``: the instruments' scores (their depth change and fragility)."""
    scores = [pressures.get((i.venue, i.symbol)) for i in v.instruments]
    return {
        "asset": v.asset,
        "oi_usd": v.oi_usd,
        "funding_rate_1h": v.funding_rate_1h,
        "funding_rate_annualized": (
            None if v.funding_rate_1h is None else annualized(v.funding_rate_1h)
        ),
        "liq_long_usd": v.liq_long_usd,
        "liq_short_usd": v.liq_short_usd,
        "liq_count": v.liq_count,
        "window_s": v.window_s,
        "venues": v.venues,
        "stale_venues": v.stale_venues,
        "sampled_venues": v.sampled_venues,
        "fragile_instruments": sum(
            1 for p in scores if p is not None and p.features.get("fragile") == 1.0
        ),
        "instruments": [
            {
                "venue": i.venue,
                "symbol": i.symbol,
                "oi_usd": i.oi_usd,
                "funding_rate_1h": i.funding_rate_1h,
                "mark_price": i.mark_price,
                "liq_long_usd": i.liq_long_usd,
                "liq_short_usd": i.liq_short_usd,
                "stale": i.stale,
                "updated_at": rfc3339_or_none(i.updated_ms),
                "spread_bp": i.spread_bp,
                "book_top_usd": i.book_top_usd,
                **_depth_and_fragility(p, i),
            }
            for i, p in zip(v.instruments, scores, strict=True)
        ],
    }


def _depth_and_fragility(score: Pressure | None, i: AssetInstrument) -> dict[str, Any]:
    """The instrument's depth within 1 % from its newest book (scored or not), its change and
    the fragility warning from its score."""
    out = depth_and_fragility({} if score is None else score.features)
    if i.depth_1pct_usd is not None:
        out["depth_1pct_usd"], out["depth_1pct_exact"] = i.depth_1pct_usd, i.depth_1pct_exact
    return out


@router.get(
    "/assets/{asset}/history",
    response_model=AssetHistory,
    summary="One asset across venues over the last hours, for charts",
    description="Per bucket: open interest summed over the asset's instruments and funding "
    "weighted by it (each instrument's newest value before the bucket's end, when younger "
    "than `detector.stale_after_s` or two steps), liquidations by side summed, and the "
    "asset's score sampled every `detector.score_history_s`. The last bucket ends now. An "
    "asset without instruments (unknown, or none stored any more) has empty buckets.",
    responses=responses(422, 503),
)
async def get_asset_history(
    client: RedisDep,
    view: ViewDep,
    settings: SettingsDep,
    asset: AssetPath,
    window_s: HistoryWindow = 14_400,
    step_s: Step = None,
) -> dict[str, Any]:
    step = step_s or max(5, window_s // 120)
    count = -(-window_s // step)
    if count > MAX_POINTS:
        raise invalid_param("step_s", f"{count} points; at most {MAX_POINTS} (a longer step)")
    name = asset.upper()
    latest = view.latest
    pairs = sorted(p for p, ev in latest.items() if any(e.base == name for e in ev.values()))
    now = int(time.time() * 1000)
    ends = series.bucket_ends(now + 1, step * 1000, count)
    max_age_ms = int(max(settings.detector.stale_after_s, 2 * step) * 1000)
    buckets = await series.asset_series(client, name, pairs, ends, step * 1000, max_age_ms)
    return {
        "asset": name,
        "window_s": window_s,
        "step_s": step,
        "instruments": len(pairs),
        "points": [
            {
                "at": rfc3339(b.end_ms),
                "oi_usd": b.oi_usd,
                "funding_rate_1h": b.funding_rate_1h,
                "liq_long_usd": b.liq_long_usd,
                "liq_short_usd": b.liq_short_usd,
                "liq_count": b.liq_count,
                "score": None if b.score is None else b.score.score,
                "state": None if b.score is None else b.score.state,
                "side": None if b.score is None else b.score.side,
            }
            for b in buckets
        ],
    }
