"""``GET /v1/alerts``, ``GET /v1/alerts/{id}`` and ``GET /v1/receivers``: what the alert
service decided and how delivery goes (read from Redis; see :mod:`service.alerts`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query

from ....alerts.deliver import outbox_depth
from ....alerts.model import Alert, decode_alert
from ....store import keys
from ..deps import LimitDep, RedisDep
from ..models import AlertItem, AlertList, ReceiverList
from ..params import Since, rfc3339, rfc3339_or_none
from ..problems import responses

router = APIRouter(tags=["alerts"])

StatusQuery = Annotated[
    Literal["open", "resolved"] | None, Query(description="Only alerts with this status.")
]
PAGE = 500


@router.get(
    "/alerts",
    response_model=AlertList,
    summary="Alerts, newest opened first",
    responses=responses(422, 503),
)
async def list_alerts(
    client: RedisDep, limit: LimitDep, status: StatusQuery = None, since: Since = None
) -> dict[str, Any]:
    lowest = "-inf" if since is None else str(since)
    items: list[dict[str, Any]] = []
    offset = 0
    while len(items) < limit:
        ids: Any = await client.zrevrangebyscore(
            keys.ALERTS_INDEX, "+inf", lowest, start=offset, num=PAGE
        )
        if not ids:
            break
        offset += len(ids)
        raws: Any = await client.mget([keys.alert(i.decode()) for i in ids])
        for raw in raws:
            if raw is None:
                continue  # expired
            alert = decode_alert(raw)
            if status is None or alert.status == status:
                items.append(_item(alert))
    return {"items": items[:limit]}


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertItem,
    summary="One alert, with its history",
    responses=responses(404, 422, 503),
)
async def get_alert(
    client: RedisDep,
    alert_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}-[0-9]{1,15}$")],
) -> dict[str, Any]:
    raw: Any = await client.get(keys.alert(alert_id))
    if raw is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return _item(decode_alert(raw))


@router.get(
    "/receivers",
    response_model=ReceiverList,
    summary="Webhook receivers and their delivery state",
    description="Status (`disabled` after an HTTP 410, with the reason), counters and outbox "
    "depth. URLs are reduced to their host; secrets never leave the service.",
    responses=responses(503),
)
async def list_receivers(client: RedisDep) -> dict[str, Any]:
    members: Any = await client.smembers(keys.RECEIVERS)
    names = sorted(n.decode() for n in members)
    return {"items": [await _receiver(client, name) for name in names]}


async def _receiver(client: aioredis.Redis, name: str) -> dict[str, Any]:
    raw: Any = await client.hgetall(keys.receiver(name))
    state = {k.decode(): v.decode() for k, v in raw.items()}
    last = state.get("last_delivered_ms")
    return {
        "name": name,
        "kind": state.get("kind", "generic"),
        "host": state.get("host", ""),
        "status": state.get("status", "active"),
        "disabled_reason": state.get("disabled_reason") or None,
        "delivered_total": int(state.get("delivered_total", 0)),
        "failures_total": int(state.get("failures_total", 0)),
        "dropped_total": int(state.get("dropped_total", 0)),
        "outbox_depth": await outbox_depth(client, name),
        "last_delivered_at": rfc3339_or_none(int(last) if last else None),
    }


def _item(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "fingerprint": a.fingerprint, "rule": a.rule, "scope": a.scope,
        "key": a.key, "venue": a.venue, "symbol": a.symbol, "asset": a.asset,
        "status": a.status, "state": a.state, "peak_state": a.peak_state, "side": a.side,
        "score": a.score, "reasons": a.reasons, "opened_at": rfc3339(a.opened_ms),
        "updated_at": rfc3339(a.updated_ms), "resolved_at": rfc3339_or_none(a.resolved_ms),
        "receivers": a.receivers,
        "history": [
            {"kind": c.kind.value, "at": rfc3339(c.ts_ms), "state": c.state, "score": c.score}
            for c in a.changes
        ],
    }  # fmt: skip
