"""Liveness and readiness (unversioned, tag ``ops``)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ....collect.health import decode_snapshot
from ....store import reader
from ..deps import RedisDep, SettingsDep
from ..freshness import feed_problem
from ..models import Check, Liveness, Readiness
from ..problems import NOT_READY, Problem, problem_response

router = APIRouter(tags=["ops"])


class NotReady(Problem):
    """The 503 body of ``/readyz``: ``checks`` has every check, failing or not."""

    checks: list[Check]


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process serves requests")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Redis answers and every enabled venue's feed is fresh",
    responses={503: {"model": NotReady, "description": "Not ready"}},
)
async def readiness(request: Request, client: RedisDep, settings: SettingsDep) -> Any:
    checks: list[dict[str, Any]] = []
    try:
        await client.ping()
        snapshots = {v: decode_snapshot(raw) for v, raw in (await reader.health(client)).items()}
    except (RedisConnectionError, RedisTimeoutError) as exc:
        checks.append({"name": "redis", "ok": False, "detail": f"unreachable: {exc}"})
        snapshots = None
    else:
        checks.append({"name": "redis", "ok": True, "detail": "PONG"})
    now_ms = time.time_ns() // 1_000_000
    for venue in sorted(settings.enabled_venues()):
        name = f"venue:{venue}"
        if snapshots is None:
            checks.append({"name": name, "ok": False, "detail": "unknown: redis unreachable"})
            continue
        problem = feed_problem(snapshots.get(venue), now_ms, settings.collect.watchdog_s)
        checks.append({"name": name, "ok": problem is None, "detail": problem or "fresh"})
    failing = [c["name"] for c in checks if not c["ok"]]
    if not failing:
        return {"status": "ready", "checks": checks}
    return _not_ready(request, failing, checks)


def _not_ready(request: Request, failing: list[str], checks: list[dict[str, Any]]) -> JSONResponse:
    return problem_response(
        request,
        503,
        type_=NOT_READY,
        title="Not ready",
        detail=f"failing checks: {', '.join(failing)}",
        checks=checks,
    )
