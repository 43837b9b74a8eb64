"""Publishes the detector's scores (retained) and alerts (QoS 1) to an MQTT broker.

``await MqttPublisher(settings, source).run()`` connects with aiomqtt 2.x, registers a last
will (``offline``, retained, on ``<prefix>/status``), publishes ``online`` (retained) on the
same topic, then every ``publish_interval_s`` publishes the retained score topics whose body
changed, and at once any alert handed to :meth:`MqttPublisher.publish_alert`. A score topic
that disappears from the source is cleared (an empty retained message).

Failure semantics: :class:`aiomqtt.MqttError` (broker unreachable, refused, connection lost,
PUBACK timeout) never leaves :meth:`run`: it reconnects with exponential backoff and full
jitter, reset by a session that lasted ``stable_session_s``. After a reconnect every score is
published again. Alerts are kept in a bounded queue until the broker acknowledges them (QoS
1: at least once, so a receiver may see one twice after a reconnect); past
``max_pending_alerts`` the oldest are dropped and counted. Cancelling :meth:`run` publishes
``offline`` before disconnecting (the will fires only on an unclean disconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

import aiomqtt
import structlog

from ...backoff import Backoff
from ...config import MqttSettings
from ...scores import Pressure
from . import payloads
from .topics import OFFLINE, ONLINE, Topics

log = structlog.get_logger(__name__)


class ScoreSource(Protocol):
    """What the publisher reads each interval: in-process state, cheap, no I/O."""

    def pressures(self) -> list[Pressure]:
        """The instruments' scores."""
        ...

    def scope_pressures(self) -> list[Pressure]:
        """The detector's asset scores and the market's."""
        ...


class MqttPublisher:
    """One broker connection, kept up for the life of the service."""

    def __init__(self, settings: MqttSettings, source: ScoreSource) -> None:
        if settings.host is None:
            raise ValueError("MqttPublisher needs mqtt.host (MQTT is off without it)")
        self._settings = settings
        self._host = settings.host
        self._source = source
        self.topics = Topics(settings.topic_prefix)
        self._alerts: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._published: dict[str, bytes] = {}
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self._tls = _tls_context(settings)  # here, so that a bad CA file fails at start-up
        self.connected = False
        self.connects_total = 0
        self.connect_failures_total = 0
        self.scores_published_total = 0
        self.alerts_published_total = 0
        self.alerts_dropped_total = 0

    def publish_alert(self, payload: Mapping[str, Any]) -> None:
        """Queue one alert for ``<prefix>/alerts`` (QoS ``alert_qos``, not retained).

        Returns at once; the alert is sent when the broker is reachable. Raises ``TypeError``
        if ``payload`` cannot be encoded as JSON (a bug of the caller, not a broker problem).
        """
        body = payloads.encode(dict(payload))
        self._alerts.append(body)
        excess = len(self._alerts) - self._settings.max_pending_alerts
        for _ in range(max(0, excess)):
            self._alerts.popleft()
            self.alerts_dropped_total += 1
        if excess > 0:
            log.warning("mqtt alerts dropped: broker unreachable", dropped=excess)
        self._wake.set()

    @property
    def pending_alerts(self) -> int:
        return len(self._alerts)

    async def run(self) -> None:
        """Publish until cancelled; reconnect on broker errors (never raises them)."""
        while True:
            started = time.monotonic()
            try:
                async with self._client() as client:
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.connected = False
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # the disconnect of a cancelled session failed: still a cancellation
                    raise asyncio.CancelledError from exc
                if time.monotonic() - started >= self._settings.stable_session_s:
                    self._backoff.reset()
                delay = self._backoff.next_delay()
                self.connect_failures_total += 1
                log.warning(
                    "mqtt connection failed or lost; retrying", error=str(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: ``online``, then publish until the connection fails (MqttError)."""
        s = self._settings
        await self._publish(client, self.topics.status, ONLINE, qos=1, retain=True)
        self.connected = True
        self.connects_total += 1
        # The broker may have lost its retained store: send every topic again (b"": unknown),
        # but remember them, so that those gone while we were away are still cleared.
        self._published = dict.fromkeys(self._published, b"")
        log.info("mqtt connected", host=self._host, port=s.port, prefix=self.topics.prefix)
        # The watcher notices a lost connection while nothing is being published, so that a
        # restarted broker gets the retained scores again at once, not at the next change.
        tasks = {
            asyncio.create_task(_until_disconnected(client), name="mqtt-watch"),
            asyncio.create_task(self._publish_loop(client), name="mqtt-publish"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the MqttError that ended the session
        except asyncio.CancelledError:
            await _cancel(tasks)
            await self._say_offline(client)
            raise
        finally:
            await _cancel(tasks)
            self.connected = False

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        next_scores = time.monotonic()
        while True:
            await self._send_alerts(client)
            if time.monotonic() >= next_scores:
                await self._send_scores(client)
                next_scores = time.monotonic() + self._settings.publish_interval_s
            self._wake.clear()
            if self._alerts:
                continue
            # A timer rather than asyncio.timeout: on 3.11 a timeout that expires as the task
            # is cancelled can swallow the cancellation (and a cancelled task then hangs).
            delay = max(0.0, next_scores - time.monotonic())
            timer = asyncio.get_running_loop().call_later(delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()

    async def _send_alerts(self, client: aiomqtt.Client) -> None:
        s = self._settings
        while self._alerts:
            body = self._alerts[0]  # removed only once acknowledged: at least once
            await self._publish(client, self.topics.alerts, body, qos=s.alert_qos, retain=False)
            self._alerts.popleft()
            self.alerts_published_total += 1

    async def _send_scores(self, client: aiomqtt.Client) -> None:
        s = self._settings
        current = payloads.retained_messages(
            self.topics, self._source.pressures(), self._source.scope_pressures()
        )
        for topic in [t for t in self._published if t not in current]:
            await self._publish(client, topic, b"", qos=s.score_qos, retain=True)
            del self._published[topic]
        for topic, body in current.items():
            if self._published.get(topic) == body:
                continue
            await self._publish(client, topic, body, qos=s.score_qos, retain=True)
            self._published[topic] = body
            self.scores_published_total += 1

    async def _publish(
        self, client: aiomqtt.Client, topic: str, body: bytes, *, qos: int, retain: bool
    ) -> None:
        await client.publish(topic, body, qos=qos, retain=retain, timeout=self._settings.timeout_s)
        # On 3.11 aiomqtt's wait_for for the PUBACK can swallow a cancellation that arrives
        # with the PUBACK, and a second cancel() is then ignored: the task would never stop.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Clean shutdown: publish ``offline`` ourselves (the will is for unclean ones)."""
        with contextlib.suppress(aiomqtt.MqttError):  # the publish's own timeout bounds it
            await client.publish(self.topics.status, OFFLINE, qos=1, retain=True, timeout=2.0)
            log.info("mqtt offline published")

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        return aiomqtt.Client(
            self._host,
            s.port,
            identifier=s.identifier(),
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            keepalive=s.keepalive_s,
            timeout=s.timeout_s,
            tls_context=self._tls,
            clean_session=True,
            # Without it Nagle holds each small publish after the first until an ACK comes.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )


async def _until_disconnected(client: aiomqtt.Client) -> None:
    """Raises :class:`aiomqtt.MqttError` when the connection is lost (we subscribe to nothing:
    the message iterator is aiomqtt's public way to hear of a disconnection)."""
    async for _ in client.messages:
        pass


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    ca = str(settings.tls_ca_file) if settings.tls_ca_file else None
    return ssl.create_default_context(cafile=ca)
