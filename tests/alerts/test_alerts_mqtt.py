"""The service's alert path end to end on real parts: a transition in Redis becomes an alert
that a signing webhook receiver gets and that an MQTT subscriber on the real Mosquitto
(127.0.0.1:1883) gets with QoS 1, the same notification in both; /metrics counts it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid

import aiomqtt
import httpx
import pytest
import redis.asyncio as aioredis
from alerts_support import SECRET, Receiver, until

from service.config import Settings
from service.events import Side
from service.runtime import Component, Runtime
from service.scores import State, Transition, encode
from service.store import keys

pytestmark = pytest.mark.integration

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(BROKER, timeout=1):
        return True
    return False


@pytest.mark.skipif(not _broker_up(), reason="no MQTT broker on 127.0.0.1:1883")
async def test_an_alert_reaches_the_webhook_and_mqtt_and_the_metrics(
    redis_client: aioredis.Redis, redis_url: str, receiver: Receiver
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}/deleverage/v1"
    settings = Settings.model_validate({
        "redis_url": redis_url,
        "venues": {},
        "api": {"port": 0},
        "mqtt": {"host": BROKER[0], "port": BROKER[1], "topic_prefix": prefix},
        "alerts": {
            "receivers": [{"name": "ops", "url": receiver.url, "secret": SECRET}],
            "rules": [{"name": "cascade", "states": ["cascade"], "receivers": ["ops"]}],
            "tick_s": 0.05,
        },
    })  # fmt: skip
    runtime = Runtime(settings, components={Component.ALERTS, Component.API})
    async with aiomqtt.Client(*BROKER, identifier=f"sub-{uuid.uuid4().hex[:8]}") as sub:
        await sub.subscribe(f"{prefix}/alerts", qos=1)
        task = asyncio.create_task(runtime.run())
        try:
            api_url = await runtime.serving()
            assert runtime.alerts is not None
            await runtime.alerts.ready.wait()
            t = Transition(
                venue="bybit", symbol="ETHUSDT", asset="ETH", from_state=State.UNWINDING,
                to_state=State.CASCADE, side=Side.LONG, score=88.0, ts_ms=1, reasons=["liq"],
            )  # fmt: skip
            await redis_client.xadd(keys.TRANSITIONS, {"e": encode(t)})
            async with asyncio.timeout(10):
                message = await anext(aiter(sub.messages))
            await receiver.wait_for(1)
            await until(lambda: _delivered_metric(api_url))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    body = json.loads(message.payload)  # type: ignore[arg-type]
    assert message.qos == 1
    assert not message.retain
    (webhook,) = receiver.delivered()
    assert webhook.signature_ok
    assert body == webhook.body  # the same envelope on both paths
    assert body["type"] == "alert.opened"
    assert body["data"]["state"] == "cascade"
    assert body["data"]["symbol"] == "ETHUSDT"


async def _delivered_metric(api_url: str) -> bool:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{api_url}/metrics")).text
    return (
        'deleverage_alert_deliveries_total{receiver="ops"} 1.0' in text
        and "deleverage_mqtt_alerts_published_total 1.0" in text
    )
