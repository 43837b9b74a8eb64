"""``GET /v1/transitions``: the detector's state changes of instruments, assets and the
market, newest first (read from the transitions streams, see :mod:`service.detect.runner`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ....scores import Scope, Transition
from ....store import keys, pages
from ..deps import LimitDep, RedisDep
from ..items import transition_item
from ..models import TransitionPage
from ..params import (
    AssetQuery,
    Since,
    SymbolQuery,
    TransitionCursorQuery,
    Until,
    VenueQuery,
)
from ..problems import invalid_param, responses

router = APIRouter(tags=["pressure"])

ScopeQuery = Annotated[
    Scope,
    Query(description="Whose transitions: one instrument's, an asset's across venues, or the "
          "market's."),
]  # fmt: skip


@router.get(
    "/transitions",
    response_model=TransitionPage,
    summary="State transitions, newest first, cursor-paginated",
    description="Every change of state (`calm`, `building`, `unwinding`, `cascade`) or of "
    "side, with its reasons. `since` and `until` are inclusive and apply to the time the "
    "transition was stored (within milliseconds of `ts`). `venue` and `symbol` apply to "
    "instrument transitions only; `asset` to instrument and asset ones. Retention: "
    "`detector.transitions_retention_s`.",
    responses=responses(422, 503),
)
async def list_transitions(
    client: RedisDep,
    limit: LimitDep,
    scope: ScopeQuery = Scope.INSTRUMENT,
    since: Since = None,
    until: Until = None,
    venue: VenueQuery = None,
    symbol: SymbolQuery = None,
    asset: AssetQuery = None,
    cursor: TransitionCursorQuery = None,
) -> dict[str, Any]:
    if since is not None and until is not None and until < since:
        raise invalid_param("until", "until is before since")
    for name, value in (("venue", venue), ("symbol", symbol)):
        if value is not None and scope is not Scope.INSTRUMENT:
            raise invalid_param(name, f"{name} applies to instrument transitions only")
    if asset is not None and scope is Scope.MARKET:
        raise invalid_param("asset", "asset does not apply to market transitions")
    wanted_asset = asset.upper() if asset is not None else None

    def keep(t: Transition) -> bool:
        return (
            (venue is None or t.venue == venue)
            and (symbol is None or t.symbol == symbol)
            and (wanted_asset is None or t.asset.upper() == wanted_asset)
        )

    try:
        rows, next_cursor = await pages.transitions(
            client, keys.transitions(scope.value), since_ms=since, until_ms=until,
            limit=limit, cursor=cursor, keep=keep,
        )  # fmt: skip
    except pages.CursorError:
        raise invalid_param("cursor", "not a cursor this API issued") from None
    items = [transition_item(row.stream_id, row.transition) for row in rows]
    return {"items": items, "next_cursor": next_cursor}
