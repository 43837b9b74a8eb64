"""Webhook delivery: one loop per receiver drains that receiver's outbox stream.

The outbox (``keys.outbox(name)``) is a Redis stream read through the consumer group
``keys.OUTBOX_GROUP``; an entry is acknowledged only once it is settled, so a notification
written before a crash or restart is delivered after it (own pending entries first, then
entries idle in dead consumers, claimed with ``XAUTOCLAIM``, then new ones, in order).

Failure semantics (Standard Webhooks "deliverability"):

* only a 2xx answer delivers; redirects are not followed (a 3xx is a failure);
* anything else, or a transport error or timeout, is retried after an exponential backoff
  with jitter, or after ``Retry-After`` when the receiver sends one (429, 503);
* ``410 Gone`` (and ``404`` from Slack or Discord: a deleted hook) disables the receiver:
  its state in Redis says ``disabled`` and why (visible at ``GET /v1/receivers``), its
  outbox is kept; a changed URL in the configuration enables it again at the next start;
* after ``max_attempts`` tries, or once older than ``max_age_s``, a message is dropped and
  counted: a stale deleveraging alert misleads more than a missing one;
* an outbox entry that cannot be read or turned into a request (written by another version,
  or damaged) is dropped, counted and logged at once, never retried and never fatal: it would
  otherwise stop the receiver at every restart.

Every drop is counted with its reason (:data:`DROP_REASONS`): in memory
(:attr:`Delivery.dropped_by_reason`, ``dropped_total`` on /metrics) and in the receiver's
state hash (``dropped_total`` and ``dropped_<reason>_total``).

Grouping: the notifications waiting for one receiver are sent together, up to the
receiver's ``group_max`` per message (Slack and Discord: 10, one message per second at
most, as their rate limits want; generic receivers: 1, one signed event per request). A
group is acknowledged, retried or dropped as one message.

At-least-once: the ``webhook-id`` header is the alert event's id, the same on every retry
and after a restart, so receivers drop duplicates on it. URLs and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from ..aio import checkpoint
from ..config_alerts import AlertSettings, WebhookReceiver
from ..histogram import Histogram
from ..store import keys
from .model import AlertEvent, decode_event
from .payload import body, sign

log = structlog.get_logger(__name__)

LATENCY_BUCKETS_S: tuple[float, ...] = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Upper bounds of the delivery-latency histogram (decision to delivery, seconds)."""
CLAIM_IDLE_MS = 60_000
"""An entry pending this long in another consumer is taken over (that consumer is gone)."""
READ_BLOCK_MS = 1_000
DISABLED_POLL_S = 5.0

DropReason = Literal["expired", "undeliverable", "trimmed", "unreadable", "unsendable"]
DROP_REASONS: tuple[DropReason, ...] = (
    "expired", "undeliverable", "trimmed", "unreadable", "unsendable",
)  # fmt: skip
"""Why a message was given up: older than ``max_age_s``; ``max_attempts`` tries failed;
trimmed from the outbox while pending; an entry that does not decode; an event that cannot
be encoded into a request body."""
UNSENDABLE = (ValueError, TypeError, OverflowError, OSError, RecursionError)
"""What encoding a decoded event may raise on values no current writer produces (a time
beyond the platform's range...)."""


def url_fingerprint(receiver: WebhookReceiver) -> str:
    """A short hash of the URL: tells a changed URL without storing it."""
    return hashlib.sha256(str(receiver.url).encode()).hexdigest()[:12]


async def ensure_group(client: aioredis.Redis, stream: str, group: str, start: str) -> None:
    try:
        await client.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """One receiver's delivery figures, for /metrics (no URL, no secret)."""

    name: str
    kind: str
    enabled: bool
    delivered: int
    failures: int
    dropped: int
    outbox_depth: int
    latency: Histogram
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)


class Delivery:
    """Delivers one receiver's outbox (see module doc). ``await run()``; cancel to stop."""

    def __init__(
        self,
        client: aioredis.Redis,
        http: httpx.AsyncClient,
        receiver: WebhookReceiver,
        settings: AlertSettings,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._http = http
        self.receiver = receiver
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._stream = keys.outbox(receiver.name)
        self._state = keys.receiver(receiver.name)
        self._last_sent = 0.0
        self._read_own = True
        self.delivered_total = 0
        self.failures_total = 0
        """Attempts that did not deliver."""
        self.dropped_total = 0
        self.dropped_by_reason: Counter[str] = Counter()
        """``dropped_total`` by reason (:data:`DROP_REASONS`)."""
        self.latency = Histogram(LATENCY_BUCKETS_S)
        """From the alert's decision to its delivery, per notification."""
        self.enabled = True
        self.outbox_depth = 0
        """Refreshed by :meth:`refresh_depth` (the alert service does, every few seconds)."""

    def stats(self) -> ReceiverStats:
        r = self.receiver
        return ReceiverStats(
            name=r.name, kind=r.kind, enabled=self.enabled, delivered=self.delivered_total,
            failures=self.failures_total, dropped=self.dropped_total,
            outbox_depth=self.outbox_depth, latency=self.latency,
            dropped_by_reason=dict(self.dropped_by_reason),
        )  # fmt: skip

    async def refresh_depth(self) -> None:
        self.outbox_depth = await outbox_depth(self._client, self.receiver.name)

    async def register(self) -> None:
        """Record the receiver in Redis (status, kind, host), re-enabling it on a new URL."""
        fp = url_fingerprint(self.receiver)
        stored: Any = await self._client.hget(self._state, "url_fingerprint")
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(keys.RECEIVERS, self.receiver.name)
            pipe.hset(self._state, mapping={
                "kind": self.receiver.kind, "host": self.receiver.url.host or "",
                "url_fingerprint": fp,
            })  # fmt: skip
            if stored is None or stored.decode() != fp:
                pipe.hset(self._state, mapping={"status": "active", "disabled_reason": ""})
            await pipe.execute()
        await ensure_group(self._client, self._stream, keys.OUTBOX_GROUP, "0")

    async def run(self) -> None:
        await self.register()
        delay = 0.1
        while True:
            checkpoint()
            try:
                if await self._disabled():
                    await self._sleep(DISABLED_POLL_S)
                    continue
                entries = await self._next()
                group_max = self.receiver.group_size()
                for i in range(0, len(entries), group_max):
                    if not await self.deliver_group(entries[i : i + group_max]):
                        break  # disabled: keep the rest for later
                delay = 0.1
            except RedisError as exc:
                log.warning("alerts: outbox read failed; retrying", receiver=self.receiver.name,
                            error=str(exc)[:200])  # fmt: skip
                await self._sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _disabled(self) -> bool:
        status: Any = await self._client.hget(self._state, "status")
        self.enabled = status != b"disabled"
        return not self.enabled

    async def _next(self) -> list[tuple[str, dict[bytes, bytes]]]:
        group, me = keys.OUTBOX_GROUP, self._settings.consumer
        if self._read_own:  # our own pending entries first (delivered before a restart or not)
            got: Any = await self._client.xreadgroup(group, me, {self._stream: "0"}, count=100)
            entries = got[0][1] if got else []
            if entries:
                return _decode_ids(entries)
            self._read_own = False
            claimed: Any = await self._client.xautoclaim(
                self._stream, group, me, CLAIM_IDLE_MS, "0-0", count=100
            )
            if claimed[1]:
                self._read_own = True
                return _decode_ids(claimed[1])
        got = await self._client.xreadgroup(
            group, me, {self._stream: ">"}, count=100, block=READ_BLOCK_MS
        )
        return _decode_ids(got[0][1]) if got else []

    async def deliver(self, entry_id: str, fields: dict[bytes, bytes]) -> bool:
        """Deliver one outbox entry (see :meth:`deliver_group`)."""
        return await self.deliver_group([(entry_id, fields)])

    async def deliver_group(self, entries: list[tuple[str, dict[bytes, bytes]]]) -> bool:
        """Send ``entries`` as one message and try until settled; False if the receiver got
        disabled (the entries stay pending)."""
        name = self.receiver.name
        live, content = await self._sendable(await self._readable(entries))
        if not live:
            return True
        ids = [entry_id for entry_id, _ in live]
        events = [event for _, event in live]
        msg_id = message_id(events)
        newest_ms = max(e.ts_ms for e in events)
        attempt = 0
        while True:
            checkpoint()
            attempt += 1
            if (self._clock() * 1000 - newest_ms) > self._settings.max_age_s * 1000:
                await self._drop(ids, "expired")
                log.error("alerts: message too old; dropped", receiver=name, webhook_id=msg_id)
                return True
            await self._pace()
            status, wait_s = await self._post(msg_id, content)
            if status is not None and 200 <= status < 300:
                for event in events:
                    self.latency.observe(max(0.0, self._clock() - event.ts_ms / 1000))
                await self._settle(ids)
                log.info("alerts: delivered", receiver=name, webhook_id=msg_id,
                         attempt=attempt, alerts=len(events))  # fmt: skip
                return True
            self.failures_total += 1
            await self._client.hincrby(self._state, "failures_total", 1)
            if status == 410 or (status == 404 and self.receiver.kind != "generic"):
                reason = f"HTTP {status} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
                await self._client.hset(
                    self._state, mapping={"status": "disabled", "disabled_reason": reason}
                )
                self.enabled = False
                log.error("alerts: receiver gone; disabled", receiver=name)
                return False
            if attempt >= self._settings.max_attempts:
                await self._drop(ids, "undeliverable")
                log.error("alerts: undeliverable; dropped", receiver=name, webhook_id=msg_id,
                          attempts=attempt, status=status)  # fmt: skip
                return True
            delay = wait_s if wait_s is not None else self._backoff(attempt)
            log.warning("alerts: delivery failed; retrying", receiver=name, webhook_id=msg_id,
                        status=status, attempt=attempt, retry_in_s=round(delay, 3))  # fmt: skip
            await self._sleep(delay)

    async def _readable(
        self, entries: list[tuple[str, dict[bytes, bytes]]]
    ) -> list[tuple[str, AlertEvent]]:
        """The entries that decode; the others are dropped (trimmed or unreadable)."""
        live: list[tuple[str, AlertEvent]] = []
        for entry_id, fields in entries:
            raw = fields.get(b"e")
            if raw is None:  # trimmed while pending: nothing left to send
                await self._drop([entry_id], "trimmed")
                continue
            try:
                live.append((entry_id, decode_event(raw)))
            except msgspec.DecodeError as exc:
                await self._drop([entry_id], "unreadable")
                log.error("alerts: unreadable outbox entry; dropped", receiver=self.receiver.name,
                          entry=entry_id, error=str(exc)[:200])  # fmt: skip
        return live

    async def _sendable(
        self, live: list[tuple[str, AlertEvent]]
    ) -> tuple[list[tuple[str, AlertEvent]], bytes]:
        """The entries of ``live`` that can be sent, and their request body; the others are
        dropped (a group that cannot be encoded is tried entry by entry)."""
        if len(live) > 1:
            with contextlib.suppress(*UNSENDABLE):
                return live, self._body(live)
        kept: list[tuple[str, AlertEvent]] = []
        for entry_id, event in live:
            try:
                self._body([(entry_id, event)])
            except UNSENDABLE as exc:
                await self._drop([entry_id], "unsendable")
                log.error("alerts: outbox entry cannot be sent; dropped",
                          receiver=self.receiver.name, entry=entry_id,
                          error=type(exc).__name__)  # fmt: skip
            else:
                kept.append((entry_id, event))
        if not kept:
            return [], b""
        try:
            return kept, self._body(kept)
        except UNSENDABLE:  # each alone encodes, together they do not (never seen)
            await self._drop([entry_id for entry_id, _ in kept], "unsendable")
            log.error("alerts: group cannot be sent; dropped", receiver=self.receiver.name)
            return [], b""

    def _body(self, live: list[tuple[str, AlertEvent]]) -> bytes:
        public_url = str(self._settings.public_url) if self._settings.public_url else None
        return body(self.receiver, [event for _, event in live], public_url)

    async def _post(self, msg_id: str, content: bytes) -> tuple[int | None, float | None]:
        """One attempt: the status (``None``: no answer) and the receiver's ``Retry-After``."""
        ts = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": "deleverage-webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
        }
        secret = self.receiver.secret
        if secret is not None:
            headers["webhook-signature"] = sign(secret.get_secret_value(), msg_id, ts, content)
        params = {"wait": "true"} if self.receiver.kind == "discord" else None
        self._last_sent = self._clock()
        try:
            response = await self._http.post(
                str(self.receiver.url), content=content, headers=headers, params=params,
                timeout=httpx.Timeout(self.receiver.timeout_s), follow_redirects=False,
            )  # fmt: skip
        except httpx.HTTPError as exc:  # the message may name the URL: log the type only
            log.warning("alerts: no answer", receiver=self.receiver.name, error=type(exc).__name__)
            return None, None
        return response.status_code, self._retry_after(response)

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - self._clock()
            except (TypeError, ValueError):
                return None
        return min(max(seconds, 0.0), self._settings.retry_max_s)

    def _backoff(self, attempt: int) -> float:
        """Exponential with equal jitter: half the step fixed, half random."""
        s = self._settings
        step = min(s.retry_max_s, s.retry_initial_s * 2 ** (attempt - 1))
        return float(step / 2 + self._rng() * step / 2)

    async def _pace(self) -> None:
        gap = self.receiver.interval_s() - (self._clock() - self._last_sent)
        if gap > 0:
            await self._sleep(gap)

    async def _settle(self, entry_ids: list[str]) -> None:
        """Delivered: acknowledged and counted."""
        self.delivered_total += len(entry_ids)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, keys.OUTBOX_GROUP, *entry_ids)
            pipe.hincrby(self._state, "delivered_total", len(entry_ids))
            pipe.hset(self._state, "last_delivered_ms", int(self._clock() * 1000))
            await pipe.execute()

    async def _drop(self, entry_ids: list[str], reason: DropReason) -> None:
        """Given up: acknowledged (never read again) and counted with ``reason``."""
        self.dropped_total += len(entry_ids)
        self.dropped_by_reason[reason] += len(entry_ids)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, keys.OUTBOX_GROUP, *entry_ids)
            pipe.hincrby(self._state, "dropped_total", len(entry_ids))
            pipe.hincrby(self._state, f"dropped_{reason}_total", len(entry_ids))
            await pipe.execute()


async def outbox_depth(client: aioredis.Redis, name: str) -> int:
    """Messages of receiver ``name`` not yet settled (pending plus never read)."""
    try:
        groups: Any = await client.xinfo_groups(keys.outbox(name))
    except ResponseError:  # no outbox yet
        return 0
    for group in groups:
        if group["name"] in (keys.OUTBOX_GROUP, keys.OUTBOX_GROUP.encode()):
            return int(group["pending"]) + int(group.get("lag") or 0)
    return 0


def message_id(events: list[AlertEvent]) -> str:
    """The ``webhook-id`` of a message: the event's own id, or for a group a hash of its
    events' ids (the same group gives the same id on every retry)."""
    if len(events) == 1:
        return f"msg_{events[0].id}"
    digest = hashlib.sha256("\x1f".join(e.id for e in events).encode()).hexdigest()[:24]
    return f"msg_g{len(events)}_{digest}"


def _decode_ids(entries: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    return [
        (entry_id.decode() if isinstance(entry_id, bytes) else entry_id, fields or {})
        for entry_id, fields in entries
    ]
