"""Liveness and readiness (unversioned, tag ``ops``).

``/readyz`` answers within a second whatever Redis does: its reads get
:data:`READY_TIMEOUT_S`, and a Redis that hangs is reported as not answering. With the
process's status (``create_app(status=...)``), it also fails while a component is down or
the event writer is behind (see :class:`service.runtime.ProcessStatus`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from ....store import reader
from ..deps import RedisDep, SettingsDep
from ..freshness import feed_problem
from ..models import Check, Liveness, Readiness
from ..problems import NOT_READY, Problem, problem_response

router = APIRouter(tags=["ops"])

READY_TIMEOUT_S: Final = 0.5
"""How long ``/readyz`` waits for Redis: well under the second a prober allows."""


class ProcessChecks(Protocol):
    """The process's own readiness checks (in memory, no I/O)."""

    def checks(self) -> list[dict[str, Any]]:
        """``{"name", "ok", "detail"}`` per check."""
        ...


class NotReady(Problem):
    """The 503 body of ``/readyz``: ``checks`` has every check, failing or not."""

    checks: list[Check]


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process serves requests")
async def liveness() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: Redis answers, every enabled venue's feed is fresh, every component "
    "of the process runs and its writes keep up",
    responses={503: {"model": NotReady, "description": "Not ready"}},
)
async def readiness(request: Request, client: RedisDep, settings: SettingsDep) -> Any:
    checks: list[dict[str, Any]] = []
    snapshots = None
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await client.ping()
            snapshots = await reader.health_snapshots(client)
    except TimeoutError:
        detail = f"unreachable: no answer within {READY_TIMEOUT_S:g} s"
        checks.append({"name": "redis", "ok": False, "detail": detail})
    except RedisError as exc:
        checks.append({"name": "redis", "ok": False, "detail": f"unreachable: {exc}"})
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
    status: ProcessChecks | None = request.app.state.status
    if status is not None:
        checks += status.checks()
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
