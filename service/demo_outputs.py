"""The demo's outputs side: a local signed-webhook receiver and an MQTT subscriber, so a run
shows an alert travelling from a detector transition to a receiver and to the broker.

When the configuration has no alert rules, the demo adds one (instrument scope, unwinding or
cascade) sending to a local :class:`~service.alerts.inbox.WebhookInbox` with a fresh secret.
When it names no MQTT broker, a private Mosquitto is started if the binary is installed; a
subscriber then counts what reaches ``<prefix>/#``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import structlog

from .alerts.inbox import WebhookInbox
from .config import Settings
from .publish.mqtt.embedded import embedded_mosquitto, find_mosquitto
from .publish.mqtt.topics import Topics

log = structlog.get_logger(__name__)

DEMO_RECEIVER = "demo-inbox"


@dataclass
class MqttTap:
    """What a subscriber to ``<prefix>/#`` saw."""

    alerts: int = 0
    score_topics: set[str] = field(default_factory=set)
    liquidity_topics: set[str] = field(default_factory=set)
    status: str | None = None
    connected: bool = False


@dataclass
class DemoOutputs:
    overrides: dict[str, Any] = field(default_factory=dict)
    """Settings overrides: the demo's alert rule and receiver, the embedded broker."""
    inbox: WebhookInbox | None = None
    tap: MqttTap | None = None
    mqtt_note: str = ""

    def figures(self, alerts_decided: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {"alerts_decided": alerts_decided}
        if self.inbox is not None:
            out |= {
                "webhook_received": len(self.inbox.received),
                "webhook_signature_refused": self.inbox.refused,
                "webhook_duplicates": self.inbox.duplicates,
                "webhook_rejected": self.inbox.rejected,
                "webhook_types": sorted({str(d.body.get("type")) for d in self.inbox.received}),
            }
        if self.tap is not None:
            out |= {
                "mqtt_alerts_received": self.tap.alerts,
                "mqtt_retained_score_topics": len(self.tap.score_topics),
                "mqtt_retained_liquidity_topics": len(self.tap.liquidity_topics),
                "mqtt_status": self.tap.status,
            }
        else:
            out["mqtt"] = self.mqtt_note
        return out


@contextlib.asynccontextmanager
async def demo_outputs(settings: Settings) -> AsyncIterator[DemoOutputs]:
    """Start the receiver, the broker and the subscriber the settings leave out."""
    out = DemoOutputs()
    async with contextlib.AsyncExitStack() as stack:
        if not settings.alerts.rules:
            secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
            out.inbox = WebhookInbox(secret)
            url = await stack.enter_async_context(out.inbox.serving())
            out.overrides["alerts"] = {
                "receivers": [{"name": DEMO_RECEIVER, "url": url, "secret": secret}],
                "rules": [{
                    "name": "demo-unwind", "scope": "instrument",
                    "states": ["unwinding", "cascade"], "resolve_score": 30,
                    "repeat_interval_s": 600, "receivers": [DEMO_RECEIVER],
                }],
            }  # fmt: skip
        host, port = settings.mqtt.host, settings.mqtt.port
        if host is None:
            exe = find_mosquitto()
            if exe is None:
                out.mqtt_note = "off: no broker configured and no mosquitto binary installed"
            else:
                host, port = "127.0.0.1", await stack.enter_async_context(embedded_mosquitto(exe))
                out.overrides["mqtt"] = {"host": host, "port": port, "publish_interval_s": 2}
        if host is not None:
            out.tap = MqttTap()
            topics = Topics(settings.mqtt.topic_prefix)
            task = asyncio.create_task(_subscribe(host, port, topics, out.tap))
            stack.callback(task.cancel)
        yield out


async def _subscribe(host: str, port: int, topics: Topics, tap: MqttTap) -> None:
    """Count what arrives under the prefix; reconnect quietly (the demo is a bystander)."""
    liquidity = topics.all_liquidity.removesuffix("#")
    while True:
        try:
            ident = f"deleverage-demo-tap-{uuid.uuid4().hex[:8]}"
            async with aiomqtt.Client(host, port, identifier=ident) as client:
                tap.connected = True
                await client.subscribe(f"{topics.prefix}/#", qos=1)
                async for message in client.messages:
                    topic = str(message.topic)
                    if topic == topics.alerts:
                        tap.alerts += 1
                    elif topic == topics.status:
                        tap.status = bytes(message.payload).decode()
                    elif not message.payload:  # an empty retained body clears a vanished one
                        continue
                    elif topic.startswith(liquidity):
                        tap.liquidity_topics.add(topic)
                    else:
                        tap.score_topics.add(topic)
        except aiomqtt.MqttError as exc:
            tap.connected = False
            log.debug("demo mqtt tap reconnecting", error=str(exc))
            await asyncio.sleep(1.0)
