"""Dependencies: the Redis client and settings the lifespan put in place, the page size."""

from __future__ import annotations

from typing import Annotated, cast

import redis.asyncio as aioredis
from fastapi import Depends, Request

from ...config import Settings
from .params import LimitQuery
from .problems import invalid_param
from .snapshot import Snapshots, View

# Dependencies are ``async``: FastAPI runs a plain ``def`` one in a worker thread, a thread
# hop per request for what is an attribute read.


async def get_redis(request: Request) -> aioredis.Redis:
    """The client the lifespan created (or was given)."""
    return cast(aioredis.Redis, request.state.redis)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_view(request: Request) -> View:
    """The market as read at most ``api.snapshot_s`` ago (:mod:`.snapshot`)."""
    return await cast(Snapshots, request.state.snapshots).get()


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
ViewDep = Annotated[View, Depends(get_view)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def page_limit(settings: SettingsDep, limit: LimitQuery = None) -> int:
    """``limit``, defaulted and capped by ``settings.api`` (the cap is known only at run time,
    so it is checked here rather than declared on the query parameter)."""
    if limit is None:
        return min(settings.api.default_limit, settings.api.max_limit)
    if limit > settings.api.max_limit:
        raise invalid_param(
            "limit", f"Input should be less than or equal to {settings.api.max_limit}"
        )
    return limit


LimitDep = Annotated[int, Depends(page_limit)]
