"""``GET /v1/pressure`` and ``GET /v1/pressure/{venue}/{symbol}``: the detector's scores."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from ....scores import State
from ....store import reader
from ..deps import LimitDep, RedisDep, ViewDep
from ..items import pressure_item
from ..models import PressureItem, PressureList
from ..params import MAX_NAME_CHARS, AssetQuery, MinScoreQuery, StateQuery, VenueQuery
from ..problems import responses
from ..snapshot import View

router = APIRouter(tags=["pressure"])


@router.get(
    "/pressure",
    response_model=PressureList,
    summary="Pressure scores, highest first",
    responses=responses(422, 503),
)
async def list_pressure(
    view: ViewDep,
    limit: LimitDep,
    venue: VenueQuery = None,
    asset: AssetQuery = None,
    state: StateQuery = None,
    min_score: MinScoreQuery = None,
) -> Any:
    if venue is None and asset is None and state is None and min_score is None:
        page = partial(_page, view, limit, None, None, None, None)
        return view.json(("pressure", limit), PressureList, page)  # the hot query, kept
    return _page(view, limit, venue, asset, state, min_score)


def _page(
    view: View,
    limit: int,
    venue: str | None,
    asset: str | None,
    state: State | None,
    min_score: float | None,
) -> dict[str, Any]:
    wanted_asset = asset.upper() if asset is not None else None
    items: list[dict[str, Any]] = []
    for p in view.ranked():  # highest first: an unfiltered page reads `limit` scores
        if (
            (venue is None or p.venue == venue)
            and (wanted_asset is None or p.asset.upper() == wanted_asset)
            and (state is None or p.state == state)
            and (min_score is None or p.score >= min_score)
        ):
            items.append(view.memo(("pressure_item", p.venue, p.symbol), partial(pressure_item, p)))
            if len(items) == limit:
                break
    return {"items": items}


@router.get(
    "/pressure/{venue}/{symbol}",
    response_model=PressureItem,
    summary="The pressure score of one instrument",
    responses=responses(404, 422, 503),
)
async def get_pressure(
    client: RedisDep,
    venue: Annotated[str, Path(max_length=MAX_NAME_CHARS, examples=["binance_usdm"])],
    symbol: Annotated[str, Path(max_length=MAX_NAME_CHARS, examples=["BTCUSDT"])],
) -> dict[str, Any]:
    stored = await reader.pressures(client, [(venue, symbol)])
    score = stored.get((venue, symbol))
    if score is None:
        raise HTTPException(404, f"no pressure score for {venue}/{symbol}")
    return pressure_item(score)
