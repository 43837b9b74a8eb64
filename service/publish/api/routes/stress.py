"""``GET /v1/stress``: what each venue publishes of leverage stress (insurance funds, ADL
risk, long/short ratios, basis), as last polled (docs/stress.md); and the items the asset
view (``GET /v1/assets/{asset}``) shows of it.

Answered from the API's snapshot (:mod:`..snapshot`: the stress states and the insurance
pools of an hour ago are read with the market, once per ``api.snapshot_s``), not from Redis
per request; the unfiltered answer is rendered once per snapshot."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Any

from fastapi import APIRouter

from ....events import AdlRisk, Basis, InsuranceFund, Positioning, StressEvent
from ..deps import SettingsDep, ViewDep
from ..models import StressList
from ..params import AssetQuery, VenueQuery, rfc3339
from ..problems import responses
from ..snapshot import View

router = APIRouter(tags=["stress"])


@router.get(
    "/stress",
    response_model=StressList,
    summary="Leverage stress per venue: insurance funds, ADL risk, long/short, basis",
    description="Each enabled venue's newest stress states (docs/stress.md): insurance pools "
    "in USD with their change over the last hour, ADL risk on one scale (1 low to 4 active) "
    "with the venue's own value, long/short ratios and basis. `asset` keeps the states of "
    "that base asset (an insurance pool shared by several assets has none).",
    responses=responses(422, 503),
)
async def list_stress(
    view: ViewDep,
    settings: SettingsDep,
    venue: VenueQuery = None,
    asset: AssetQuery = None,
) -> Any:
    venues = sorted(v for v in settings.enabled_venues() if venue is None or v == venue)
    wanted = asset.upper() if asset is not None else None
    if venue is None and wanted is None:
        build = partial(_list, view, venues, lambda ev: True)
        return view.json("stress", StressList, build)
    return _list(view, venues, lambda ev: wanted is None or ev.base.upper() == wanted)


def _list(view: View, venues: list[str], keep: Callable[[StressEvent], bool]) -> dict[str, Any]:
    return {"items": stress_items(view, venues, keep)}


def stress_items(
    view: View, venues: Collection[str], keep: Callable[[StressEvent], bool]
) -> list[dict[str, Any]]:
    """The item of each of ``venues`` (sorted) from the snapshot's states that ``keep``
    accepts; venues left with none are left out."""
    items = []
    for name in sorted(venues):
        states = [ev for _, ev in sorted(view.stress.get(name, {}).items()) if keep(ev)]
        if states:
            items.append(venue_item(name, states, view.stress_before))
    return items


def venue_item(
    venue: str,
    states: list[StressEvent],
    before: Mapping[tuple[str, str, str], InsuranceFund],
) -> dict[str, Any]:
    """One venue's item from its states (in field order) and its pools an hour ago."""
    adl = [e for e in states if isinstance(e, AdlRisk)]
    return {
        "venue": venue,
        "adl_level_max": max((int(e.level) for e in adl), default=None),
        "insurance": [
            _insurance(e, before.get((e.venue, e.pool, e.asset)))
            for e in states
            if isinstance(e, InsuranceFund)
        ],
        "adl": [_adl(e) for e in adl],
        "positioning": [_positioning(e) for e in states if isinstance(e, Positioning)],
        "basis": [_basis(e) for e in states if isinstance(e, Basis)],
    }


def _insurance(e: InsuranceFund, earlier: InsuranceFund | None) -> dict[str, Any]:
    change = pct = None
    if earlier is not None and e.balance_usd is not None and earlier.balance_usd is not None:
        change = e.balance_usd - earlier.balance_usd
        pct = 100.0 * change / earlier.balance_usd if earlier.balance_usd > 0 else None
    return {
        "pool": e.pool, "asset": e.asset, "symbols": list(e.symbols), "balance": e.balance,
        "balance_usd": e.balance_usd, "change_1h_usd": change, "change_1h_pct": pct,
        "venue_change": e.change, "updated_at": rfc3339(e.recv_ms),
    }  # fmt: skip


def _adl(e: AdlRisk) -> dict[str, Any]:
    return {
        "symbol": e.symbol, "asset": e.base, "level": int(e.level),
        "level_name": e.level.name.lower(), "native": e.native, "native_kind": e.native_kind,
        "trigger": e.trigger, "updated_at": rfc3339(e.recv_ms),
    }  # fmt: skip


def _positioning(e: Positioning) -> dict[str, Any]:
    return {
        "symbol": e.symbol, "asset": e.base, "metric": e.metric.value, "period_s": e.period_s,
        "long_short_ratio": e.long_short_ratio, "long_share": e.long_share,
        "updated_at": rfc3339(e.recv_ms),
    }  # fmt: skip


def _basis(e: Basis) -> dict[str, Any]:
    return {
        "symbol": e.symbol, "asset": e.base, "contract": e.contract,
        "futures_price": e.futures_price, "index_price": e.index_price, "basis": e.basis,
        "basis_rate": e.basis_rate, "annualized_rate": e.annualized_rate,
        "updated_at": rfc3339(e.recv_ms),
    }  # fmt: skip
