"""``GET /v1/alerts``, ``GET /v1/alerts/{id}`` and ``GET /v1/receivers``: what the alert
service decided and how delivery goes (read from Redis; see :mod:`service.alerts`)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, Path, Query
from redis.exceptions import ResponseError

from ....alerts.deliver import outbox_depth
from ....alerts.model import Alert
from ....store import keys
from ....store.poison import Reason, decode_or_record, record, times_problem
from ..deps import LimitDep, RedisDep
from ..items import alert_item
from ..models import AlertItem, AlertList, ReceiverList
from ..params import Since, rfc3339_or_none
from ..problems import responses

router = APIRouter(tags=["alerts"])

StatusQuery = Annotated[
    Literal["open", "resolved"] | None, Query(description="Only alerts with this status.")
]
PAGE = 500
_ALERT: Final = msgspec.json.Decoder(Alert)


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
        try:
            ids: Any = await client.zrevrangebyscore(
                keys.ALERTS_INDEX, "+inf", lowest, start=offset, num=PAGE
            )
        except ResponseError as exc:
            _wrong_type(exc, "alert_index", keys.ALERTS_INDEX)
            break
        if not ids:
            break
        offset += len(ids)
        texts = (_text(i, "alert_index", keys.ALERTS_INDEX) for i in ids)
        names = [keys.alert(i) for i in texts if i is not None]
        raws: Any = await client.mget(names) if names else []
        for name, raw in zip(names, raws, strict=True):
            if raw is None:
                continue  # expired (or not a string: MGET cannot tell)
            alert = _alert(raw, name)
            if alert is not None and (status is None or alert.status == status):
                items.append(alert_item(alert))
    return {"items": items[:limit]}


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertItem,
    summary="One alert, with its history",
    responses=responses(404, 422, 503),
)
async def get_alert(
    client: RedisDep,
    alert_id: Annotated[
        str,
        Path(pattern=r"^[0-9a-f]{16}-[0-9]{1,15}$", examples=["9f3c0a1b2c3d4e5f-1795491796123"]),
    ],
) -> dict[str, Any]:
    name = keys.alert(alert_id)
    try:
        raw: Any = await client.get(name)
    except ResponseError as exc:
        _wrong_type(exc, "alert", name)
        raw = None
    alert = None if raw is None else _alert(raw, name)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return alert_item(alert)


@router.get(
    "/receivers",
    response_model=ReceiverList,
    summary="Webhook receivers and their delivery state",
    description="Status (`disabled` after an HTTP 410, with the reason), counters and outbox "
    "depth. URLs are reduced to their host; secrets never leave the service.",
    responses=responses(503),
)
async def list_receivers(client: RedisDep) -> dict[str, Any]:
    try:
        members: Any = await client.smembers(keys.RECEIVERS)
    except ResponseError as exc:
        _wrong_type(exc, "receiver", keys.RECEIVERS)
        members = set()
    names = sorted(n for m in members if (n := _text(m, "receiver", keys.RECEIVERS)))
    items = [await _receiver(client, name) for name in names]
    return {"items": [item for item in items if item is not None]}


async def _receiver(client: aioredis.Redis, name: str) -> dict[str, Any] | None:
    """The receiver's state, or ``None`` (counted) when what Redis holds is not usable."""
    key = keys.receiver(name)
    try:
        raw: Any = await client.hgetall(key)
    except ResponseError as exc:
        _wrong_type(exc, "receiver", key)
        return None
    try:
        state = {k.decode(): v.decode() for k, v in raw.items()}
        last = state.get("last_delivered_ms")
        item = {
            "name": name,
            "kind": state.get("kind", "generic"),
            "host": state.get("host", ""),
            "status": state.get("status", "active"),
            "disabled_reason": state.get("disabled_reason") or None,
            "delivered_total": int(state.get("delivered_total", 0)),
            "failures_total": int(state.get("failures_total", 0)),
            "dropped_total": int(state.get("dropped_total", 0)),
            "outbox_depth": await outbox_depth(client, name),
            "last_delivered_at": None if not last else int(last),
        }
    except ValueError as exc:  # UnicodeDecodeError included
        record("receiver", Reason.INVALID, key, exc)
        return None
    problem = times_problem([("last_delivered_ms", item["last_delivered_at"])])
    if item["kind"] not in RECEIVER_KINDS or item["status"] not in ("active", "disabled"):
        problem = f"kind {item['kind']!r}, status {item['status']!r}"
    if problem is not None:
        record("receiver", Reason.INVALID, key, problem)
        return None
    item["last_delivered_at"] = rfc3339_or_none(item["last_delivered_at"])
    return item


RECEIVER_KINDS: Final = ("generic", "slack", "discord")
ALERT_SCOPES: Final = ("instrument", "asset", "market")


def _alert(raw: bytes, key: str) -> Alert | None:
    """A stored alert, or ``None`` (counted) when it cannot be served."""
    alert = decode_or_record(_ALERT, raw, "alert", key)
    if alert is None:
        return None
    problem = times_problem(
        [("opened_ms", alert.opened_ms), ("updated_ms", alert.updated_ms),
         ("resolved_ms", alert.resolved_ms), *(("ts_ms", c.ts_ms) for c in alert.changes)]
    )  # fmt: skip
    if alert.scope not in ALERT_SCOPES:
        problem = f"scope {alert.scope!r}"
    if problem is not None:
        record("alert", Reason.INVALID, key, problem)
        return None
    return alert


def _text(value: bytes, what: str, key: str) -> str | None:
    try:
        return value.decode()
    except UnicodeDecodeError:
        record(what, Reason.UNDECODABLE, key, value)
        return None


def _wrong_type(exc: ResponseError, what: str, key: str) -> None:
    """Count a ``WRONGTYPE`` refusal of ``key``; raise any other."""
    if not str(exc).startswith("WRONGTYPE"):
        raise exc
    record(what, Reason.WRONG_TYPE, key, exc)
