"""``/v1/alerts`` and ``/v1/alerts/{id}`` on alerts the service stored in Redis (database 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager

from service.alerts import AlertEngine, AlertRule, AlertService, AlertSettings, Observation
from service.config import Settings
from service.events import Side
from service.publish.api.app import create_app
from service.publish.api.routes import alerts as alert_routes
from service.scores import State

pytestmark = pytest.mark.integration
T0 = 1_795_000_000_000


@pytest.fixture
async def http(redis_client: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), redis=redis_client)
    app.include_router(alert_routes.router, prefix="/v1")
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def store_alerts(client: aioredis.Redis) -> None:
    """BTC opens then resolves, ETH opens later: committed as the service commits them."""
    settings = AlertSettings.model_validate(
        {"receivers": [{"name": "ops", "url": "http://127.0.0.1:9/"}],
         "rules": [{"name": "r", "receivers": ["ops"]}]}
    )  # fmt: skip
    service = AlertService(client, settings)
    engine = AlertEngine([AlertRule(name="r", receivers=["ops"])])

    def obs(symbol: str, state: State, score: float) -> Observation:
        return Observation(venue="okx", symbol=symbol, asset=symbol[:3], state=state,
                           side=Side.SHORT, score=score, ts_ms=0)  # fmt: skip

    events = engine.observe(obs("BTC-USDT-SWAP", State.UNWINDING, 60), T0)
    events += engine.observe(obs("BTC-USDT-SWAP", State.CALM, 5), T0 + 1000)
    events += engine.observe(obs("ETH-USDT-SWAP", State.CASCADE, 90), T0 + 2000)
    await service._commit(events, [])


async def test_lists_alerts_newest_first_and_filters_by_status(
    redis_client: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    await store_alerts(redis_client)
    items = (await http.get("/v1/alerts")).json()["items"]
    assert [i["symbol"] for i in items] == ["ETH-USDT-SWAP", "BTC-USDT-SWAP"]
    assert [i["history"][-1]["kind"] for i in items] == ["opened", "resolved"]
    opened = (await http.get("/v1/alerts", params={"status": "open"})).json()["items"]
    assert [i["status"] for i in opened] == ["open"]
    resolved = (await http.get("/v1/alerts", params={"status": "resolved"})).json()["items"]
    assert [i["symbol"] for i in resolved] == ["BTC-USDT-SWAP"]
    since = (await http.get("/v1/alerts", params={"since": T0 + 1500})).json()["items"]
    assert [i["symbol"] for i in since] == ["ETH-USDT-SWAP"]
    assert len((await http.get("/v1/alerts", params={"limit": 1})).json()["items"]) == 1


async def test_gets_one_alert_or_a_404_problem(
    redis_client: aioredis.Redis, http: httpx.AsyncClient
) -> None:
    await store_alerts(redis_client)
    first = (await http.get("/v1/alerts")).json()["items"][0]
    one = await http.get(f"/v1/alerts/{first['id']}")
    assert one.status_code == 200
    assert one.json() == first
    missing = await http.get("/v1/alerts/0123456789abcdef-1")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    bad = await http.get("/v1/alerts/nope")
    assert bad.status_code == 422
