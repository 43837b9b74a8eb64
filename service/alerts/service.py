"""The alert service: transitions and scores in, alerts and outbox entries out, delivered.

One loop reads ``keys.TRANSITIONS`` through its own consumer group (``keys.ALERTS_GROUP``)
and, every ``tick_s``, the stored pressure scores (for the hysteresis on the score and for
instruments whose state did not change since a restart) and the detector's asset and market
scores (what asset and market rules read: within ``tick_s`` of the detector's round); it
runs the :class:`AlertEngine` and commits each step in one ``MULTI``: the alerts
(``keys.alert``, the index and the open set), each notification in ``keys.ALERT_EVENTS``
(what the live stream tails), one outbox entry per receiver, and the ``XACK`` of the
transitions consumed. A crash before the commit leaves the transitions pending: they are
read again at the next start (own pending entries first), after the open alerts are
restored. So an alert is decided once, and what was decided is delivered (see
:mod:`.deliver`), also across restarts.

The ``MULTI`` spans several keys: single Redis (or one slot), not a cluster.

After each commit, every notification is also handed to ``on_event`` (the runtime forwards
them to MQTT). That hand-off is in memory: a crash between the commit and the broker's
PUBACK loses the MQTT copy, never the webhook one.

Failure semantics: Redis errors are retried in place (backoff up to :data:`RETRY_MAX_S`). A
stored transition, score or alert that cannot be used is skipped and counted
(:mod:`service.store.poison`). ``run()`` may be started again after it raised (the
supervisor does): it restores the open alerts and reads its own pending transitions again,
as at a process start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ..aio import checkpoint
from ..config_alerts import AlertSettings
from ..scores import decode_transition
from ..store import keys, poison, reader
from .deliver import Delivery, ReceiverStats, ensure_group
from .engine import AlertEngine
from .model import Alert, AlertEvent, Observation, encode

log = structlog.get_logger(__name__)

OUTBOX_MAXLEN = 10_000
EVENTS_MAXLEN = 10_000
"""Notifications kept in ``keys.ALERT_EVENTS`` (the live stream's source)."""
OUTBOX_POLL_S = 5.0
T = TypeVar("T")
_ALERT = msgspec.json.Decoder(Alert)
STALE_PRESSURE_S = 600
HISTORY_S = 30 * 86400
"""How long a resolved alert stays readable."""
RETRY_MAX_S = 1.0


class AlertService:
    """Decides alerts and delivers them (see module doc). ``await run()``; cancel to stop."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: AlertSettings,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[AlertEvent], None] | None = None,
    ) -> None:
        self._client = client
        self._on_event = on_event
        self._settings = settings
        self._own_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._clock = clock
        self.engine = AlertEngine(settings.rules)
        self.deliveries = [
            Delivery(client, self._http, r, settings, clock=clock) for r in settings.receivers
        ]
        self._pending_ids: list[str] = []
        self._read_own = True
        self._failure_streak = 0
        self.events_total = 0
        self.events_by_kind: Counter[str] = Counter()
        """Notifications decided, by kind (opened, escalated, repeated, resolved)."""
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Decide and deliver until cancelled (see module doc for a restart)."""
        self.engine = AlertEngine(self._settings.rules)  # restored from Redis by _start
        self._read_own = True
        try:
            async with asyncio.TaskGroup() as tg:
                for d in self.deliveries:
                    tg.create_task(d.run(), name=f"alerts:deliver:{d.receiver.name}")
                tg.create_task(self._decide(), name="alerts:decide")
                tg.create_task(self._watch_outboxes(), name="alerts:outboxes")
        except BaseException as exc:
            # Cancelled (stopped): close our HTTP client. Failed: keep it for the restart.
            if self._own_http and not isinstance(exc, Exception):
                await self._http.aclose()
            raise

    def stats(self) -> list[ReceiverStats]:
        """Per receiver: deliveries, failures, drops, outbox depth, latency (for /metrics)."""
        return [d.stats() for d in self.deliveries]

    def open_alerts(self) -> int:
        return len(self.engine.open_alerts())

    async def _watch_outboxes(self) -> None:
        """Keep each receiver's outbox depth fresh for /metrics (one XINFO per receiver)."""
        while True:
            checkpoint()
            for d in self.deliveries:
                # the delivery loop logs Redis trouble; the depth stays as it was
                with contextlib.suppress(RedisError):
                    await d.refresh_depth()
            await asyncio.sleep(OUTBOX_POLL_S)

    async def _decide(self) -> None:
        await self._retrying(self._start)
        self.ready.set()
        next_tick = self._clock()
        while True:
            checkpoint()
            block_ms = max(1, int((next_tick - self._clock()) * 1000))
            events, ids = await self._retrying(functools.partial(self._read, block_ms))
            if self._clock() >= next_tick:
                events += await self._retrying(self._poll)
                events += self.engine.tick(self._now_ms())
                next_tick = self._clock() + self._settings.tick_s
            if events or ids:
                await self._retrying(functools.partial(self._commit, events, ids))

    async def _start(self) -> None:
        await ensure_group(self._client, keys.TRANSITIONS, keys.ALERTS_GROUP, "$")
        open_ids: Any = await self._client.smembers(keys.ALERTS_OPEN)
        names = [keys.alert(i.decode("utf-8", "replace")) for i in open_ids]
        raws: Any = await self._client.mget(names or [""])
        alerts = []
        for name, raw in zip(names, raws, strict=False):
            if raw:
                alert = poison.decode_or_record(_ALERT, raw, "alert", name)
                if alert is not None:
                    alerts.append(alert)
        self.engine.restore(alerts)
        log.info("alerts: started", open=len(alerts), rules=len(self._settings.rules),
                 receivers=[r.name for r in self._settings.receivers])  # fmt: skip

    async def _read(self, block_ms: int) -> tuple[list[AlertEvent], list[str]]:
        """One XREADGROUP of transitions: own pending entries first, then new ones."""
        group, me = keys.ALERTS_GROUP, self._settings.consumer
        start = "0" if self._read_own else ">"
        got: Any = await self._client.xreadgroup(
            group, me, {keys.TRANSITIONS: start}, count=100,
            block=None if self._read_own else block_ms,
        )  # fmt: skip
        entries = got[0][1] if got else []
        if self._read_own and not entries:
            self._read_own = False
        events: list[AlertEvent] = []
        ids: list[str] = []
        now = self._now_ms()
        for entry_id, fields in entries:
            ids.append(entry_id.decode())
            try:
                transition = decode_transition((fields or {})[b"e"])
            except (KeyError, msgspec.DecodeError) as exc:
                poison.record("transition", poison.Reason.UNDECODABLE, keys.TRANSITIONS, exc)
                continue
            events += self.engine.observe(Observation.of(transition), now)
        return events, ids

    async def _poll(self) -> list[AlertEvent]:
        """Feed the stored scores (hysteresis and for_s need them between transitions): the
        instruments', and the detector's asset and market scores (what asset and market
        rules read)."""
        stored = await reader.pressures(self._client, await reader.instruments(self._client))
        scopes = await reader.scope_pressures(self._client)
        now = self._now_ms()
        # unusable scores are skipped (and counted) by the reader; a stopped detector's too
        fresh = [
            Observation.of(p)
            for p in [*stored.values(), *scopes]
            if now - p.updated_ms <= STALE_PRESSURE_S * 1000
        ]
        return self.engine.observe_many(fresh, now)

    async def _commit(self, events: list[AlertEvent], ids: list[str]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            for event in events:
                alert = event.alert
                ttl = HISTORY_S if alert.status == "resolved" else None
                pipe.set(keys.alert(alert.id), encode(alert), ex=ttl)
                pipe.zadd(keys.ALERTS_INDEX, {alert.id: alert.opened_ms})
                if alert.status == "open":
                    pipe.sadd(keys.ALERTS_OPEN, alert.id)
                else:
                    pipe.srem(keys.ALERTS_OPEN, alert.id)
                pipe.xadd(
                    keys.ALERT_EVENTS, {"e": encode(event)}, maxlen=EVENTS_MAXLEN, approximate=True
                )
                for name in alert.receivers:
                    pipe.xadd(
                        keys.outbox(name),
                        {"e": encode(event)},
                        maxlen=OUTBOX_MAXLEN,
                        approximate=True,
                    )
            if events:
                cutoff = self._now_ms() - HISTORY_S * 1000
                pipe.zremrangebyscore(keys.ALERTS_INDEX, "-inf", f"({cutoff}")
            if ids:
                pipe.xack(keys.TRANSITIONS, keys.ALERTS_GROUP, *ids)
            await pipe.execute()
        self.events_total += len(events)
        for event in events:
            self.events_by_kind[event.kind.value] += 1
            if self._on_event is not None:
                self._on_event(event)
            log.info("alert", kind=event.kind.value, id=event.alert.id, rule=event.alert.rule,
                     key=event.alert.key, state=event.alert.state.value)  # fmt: skip

    async def _retrying(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step`` until Redis takes it (backoff); decisions already made are kept."""
        delay = 0.1
        while True:
            checkpoint()
            try:
                return await step()
            except RedisError as exc:
                log.warning("alerts: redis failed; retrying", error=str(exc)[:200])
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
