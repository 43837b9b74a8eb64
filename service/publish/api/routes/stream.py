"""``GET /v1/stream``: scores, transitions, alerts and liquidations as Server-Sent Events,
pushed as they happen (see :mod:`..stream.hub` for where they come from and how slow clients
are bounded, and ``docs/stream.md``)."""

from __future__ import annotations

from typing import Annotated, Any, Final, cast

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from ....scores import Scope
from ..deps import SettingsDep
from ..models import STREAM_PAYLOADS
from ..params import AssetQuery, VenueQuery
from ..problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from ..problems import RETRY_AFTER_S, TOO_MANY_CLIENTS, invalid_param, problem_response, responses
from ..stream.events import ID_PATTERN, MAX_ID_CHARS, EventType, StreamFilter, parse_event_id
from ..stream.hub import Hub
from ..stream.response import MEDIA_TYPE, EventStreamResponse

router = APIRouter(tags=["stream"])

TYPES: Final = ",".join(t.value for t in EventType)
EXAMPLE: Final = (
    "retry: 2000\n\n"
    "event: score\n"
    'data: {"venue":"*","symbol":"*","asset":"*","score":12.4,"state":"calm","side":null,'
    '"updated_at":"2026-11-24T03:43:15.998Z","since":"2026-11-24T01:02:03.000Z",'
    '"forced_share":null,"data_quality":1.0,"reasons":[],"scope":"market"}\n\n'
    "id: 1795491796123-0@bybit.2\n"
    "event: liquidation\n"
    'data: {"venue":"bybit","symbol":"BTCUSDT","asset":"BTC","side":"long","price":91250.5,'
    '"quantity":1.2,"quantity_base":1.2,"notional_usd":109500.6,"sampled":false,'
    '"ts":"2026-11-24T03:43:16.101Z"}\n\n'
    "event: heartbeat\n"
    'data: {"at":"2026-11-24T03:43:31.000Z"}\n\n'
)


def event_schema() -> dict[str, Any]:
    """One event of the stream (Open API 3.1: the ``schema`` of a ``text/event-stream`` is
    each event's): its type, its id, and its ``data``, JSON of the type's model."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": name},
                    "id": {"type": "string", "pattern": ID_PATTERN},
                    "retry": {"type": "integer"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {"$ref": f"#/components/schemas/{model.__name__}"},
                    },
                },
            }
            for name, model in STREAM_PAYLOADS.items()
        ]
    }


def stream_openapi(schema: dict[str, Any]) -> None:
    """Declare each event's schema as it is: FastAPI merges a ``{"type": "string"}`` into a
    declared schema of a response class that is not JSON. Idempotent."""
    responses_ = schema["paths"]["/v1/stream"]["get"]["responses"]
    responses_["200"]["content"][MEDIA_TYPE]["schema"] = event_schema()
    for status, response in responses_.items():  # problems are JSON, whatever the route sends
        content = response.get("content", {})
        if status[0] in "45" and MEDIA_TYPE in content:
            content[PROBLEM_MEDIA_TYPE] = content.pop(MEDIA_TYPE)


TypesQuery = Annotated[
    str | None,
    Query(
        description=f"Comma-separated event types ({TYPES}); default: all.",
        max_length=64,
        examples=["score,liquidation"],
    ),
]
ScopeQuery = Annotated[
    Scope | None,
    Query(description="Only events of this scope (a liquidation is an instrument's)."),
]
MinNotionalQuery = Annotated[
    float | None,
    Query(ge=0, description="Only liquidations of at least this many USD (others unaffected)."),
]
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        max_length=MAX_ID_CHARS,
        description="Resume after this event (the `id` of the last event received).",
        examples=["1795491796123-0@bybit.2"],
    ),
]


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    status_code=200,
    summary="Live events: scores, transitions, alerts and liquidations (Server-Sent Events)",
    description=(
        "A `text/event-stream` that stays open. Event types: `score` (every score the "
        "detector writes, of each scope: an item of `/v1/pressure` without `features`, with "
        "`scope`), `transition` (an item of `/v1/transitions`), `alert` (a notification: "
        "`kind`, `at` and the `alert` as in `/v1/alerts`), `liquidation` (an item of "
        "`/v1/liquidations`); and the stream's own: `heartbeat` (every "
        "`api.stream_heartbeat_s`), `reset` (the events after `Last-Event-ID` are no longer "
        "kept) and `dropped` (the client fell behind and is disconnected; the reason is in "
        "`data`). Live events carry an `id`; reconnecting with `Last-Event-ID` (browsers do) "
        "resumes exactly after it, on any API process, within `api.stream_replay_s`. A new "
        "client first gets the current score of every scope it asked for, without ids. "
        "`scope`, `asset` and `venue` apply to every event (an asset's and the market's "
        "events have venue `*`, the market's asset `*`); `min_notional_usd` to liquidations."
    ),
    responses={
        200: {
            "description": "Events, as they happen",
            "content": {MEDIA_TYPE: {"schema": event_schema(), "example": EXAMPLE}},
        },
        **responses(422, 503),
    },
)
async def stream(
    request: Request,
    settings: SettingsDep,
    types: TypesQuery = None,
    scope: ScopeQuery = None,
    asset: AssetQuery = None,
    venue: VenueQuery = None,
    min_notional_usd: MinNotionalQuery = None,
    last_event_id: LastEventIdHeader = None,
) -> Any:
    flt = _filter(types, scope, asset, venue, min_notional_usd)
    last = None
    if last_event_id:
        last = parse_event_id(last_event_id)
        if last is None:
            raise invalid_param("Last-Event-ID", "not an event id of this API", "header")
    hub = cast(Hub, request.state.hub)
    api = settings.api
    if hub.closing:
        return problem_response(
            request, 503, title="Service stopping", detail="the service is stopping; retry",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )  # fmt: skip
    if hub.clients >= api.stream_max_clients:
        return _busy(request, api.stream_max_clients)
    opening = await hub.open(flt, last)
    return EventStreamResponse(hub, opening, api.stream_heartbeat_s)


def _filter(
    types: str | None, scope: Scope | None, asset: str | None, venue: str | None,
    min_notional_usd: float | None,
) -> StreamFilter:  # fmt: skip
    wanted = frozenset(EventType)
    if types is not None:
        names = [t.strip() for t in types.split(",") if t.strip()]
        unknown = [n for n in names if n not in set(EventType)]
        if unknown or not names:
            raise invalid_param("types", f"expected some of {TYPES}")
        wanted = frozenset(EventType(n) for n in names)
    if venue is not None and scope not in (None, Scope.INSTRUMENT):
        raise invalid_param("venue", "venue applies to instrument events only")
    if asset is not None and scope is Scope.MARKET:
        raise invalid_param("asset", "asset does not apply to market events")
    return StreamFilter(
        types=wanted,
        scope=None if scope is None else scope.value,
        asset=None if asset is None else asset.upper(),
        venue=venue,
        min_notional_usd=min_notional_usd,
    )


def _busy(request: Request, cap: int) -> JSONResponse:
    return problem_response(
        request,
        503,
        type_=TOO_MANY_CLIENTS,
        title="Too many stream clients",
        detail=f"this process serves at most {cap} stream clients; retry later",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
