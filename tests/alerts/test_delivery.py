"""Delivery against real parts on loopback: Redis (database 4) and an HTTP receiver that
verifies every signature."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from alerts_support import SECRET, Receiver, until
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry, generate_latest

from service.alerts import AlertService, AlertSettings
from service.alerts.model import Alert, AlertEvent, EventKind, decode_event
from service.alerts.model import encode as encode_alert_event
from service.config import MetricsSettings, Settings
from service.events import Side
from service.publish.api.app import create_app
from service.publish.api.routes import alerts as alert_routes
from service.publish.metrics import MetricsCollector, OutputsSnapshot
from service.scores import ANY, Pressure, Scope, State, Transition, encode
from service.store import keys

pytestmark = pytest.mark.integration


def settings_for(*receivers: tuple[str, str], **rule: object) -> AlertSettings:
    return AlertSettings.model_validate({
        "receivers": [{"name": n, "url": u, "secret": SECRET} for n, u in receivers],
        "rules": [{"name": "unwind", "receivers": [n for n, _ in receivers],
                   "repeat_interval_s": 3600} | rule],
        "retry_initial_s": 0.05, "retry_max_s": 2.0, "tick_s": 0.05,
    })  # fmt: skip


def transition(to: State, score: float, symbol: str = "BTCUSDT") -> dict[str, bytes]:
    t = Transition(
        venue="binance_usdm", symbol=symbol, asset=symbol[:3], from_state=State.CALM,
        to_state=to, side=Side.LONG, score=score, ts_ms=0, reasons=["OI -3%"],
    )  # fmt: skip
    return {"e": encode(t)}


async def settled(client: aioredis.Redis, name: str, delivered: int) -> None:
    """Wait until the service recorded ``delivered`` deliveries (after the receiver's 200)."""
    want = str(delivered).encode()
    await until(lambda: _hget(client, keys.receiver(name), "delivered_total", want))


async def _hget(client: aioredis.Redis, key: str, name: str, want: bytes) -> bool:
    return bool(await client.hget(key, name) == want)


@contextlib.asynccontextmanager
async def running(client: aioredis.Redis, settings: AlertSettings) -> AsyncIterator[AlertService]:
    service = AlertService(client, settings)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(5):
            await service.ready.wait()
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Fixed:
    """A metrics source with no market data, and fixed alerting figures."""

    snapshot: OutputsSnapshot

    def outputs(self) -> OutputsSnapshot:
        return self.snapshot

    def health(self) -> list[Any]:
        return []

    def pressures(self) -> list[Any]:
        return []

    def latest(self) -> dict[Any, Any]:
        return {}

    def liquidation_totals(self) -> dict[Any, Any]:
        return {}

    def sink_stats(self) -> dict[str, float]:
        return {}


async def _at_least(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def test_retries_500_then_429_retry_after_then_delivers_once_signed(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    receiver.answers = [(500, {}), (429, {"Retry-After": "1"})]
    async with running(redis_client, settings_for(("ops", receiver.url))):
        await redis_client.xadd(keys.TRANSITIONS, transition(State.UNWINDING, 60))
        await settled(redis_client, "ops", 1)
    got = receiver.received
    assert [r.status for r in got] == [500, 429, 200]
    assert len({r.webhook_id for r in got}) == 1
    assert all(r.signature_ok for r in got)
    assert got[2].timestamp - got[1].timestamp >= 1  # Retry-After honoured
    assert got[0].body["type"] == "alert.opened"
    assert got[0].body["data"]["state"] == "unwinding"
    state = await redis_client.hgetall(keys.receiver("ops"))
    assert state[b"delivered_total"] == b"1"
    assert state[b"failures_total"] == b"2"


async def test_events_of_an_alert_arrive_in_order(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    async with running(redis_client, settings_for(("ops", receiver.url))):
        for to, score in ((State.UNWINDING, 60), (State.CASCADE, 90), (State.CALM, 5)):
            await redis_client.xadd(keys.TRANSITIONS, transition(to, score))
        await receiver.wait_for(3)
    types = [r.body["type"] for r in receiver.delivered()]
    assert types == ["alert.opened", "alert.escalated", "alert.resolved"]
    ids = [r.webhook_id for r in receiver.delivered()]
    assert len(set(ids)) == 3
    # the same notifications, in order, in the stream the live stream (/v1/stream) tails
    events = [decode_event(f[b"e"]) for _, f in await redis_client.xrange(keys.ALERT_EVENTS)]
    assert [e.kind.value for e in events] == ["opened", "escalated", "resolved"]
    assert [f"msg_{e.id}" for e in events] == ids


async def test_410_disables_the_receiver_visibly(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    receiver.default = 410
    async with running(redis_client, settings_for(("gone", receiver.url))):
        await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 90))
        await until(lambda: _hget(redis_client, keys.receiver("gone"), "status", b"disabled"))
        await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 90, "ETHUSDT"))
        await asyncio.sleep(0.3)
    assert len(receiver.received) == 1  # nothing more is sent to a disabled receiver
    app = create_app(Settings(), redis=redis_client)
    app.include_router(alert_routes.router, prefix="/v1")
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            body = (await http.get("/v1/receivers")).json()
    (item,) = body["items"]
    assert item["status"] == "disabled"
    assert "410" in item["disabled_reason"]
    assert item["outbox_depth"] == 2
    assert item["host"] == "127.0.0.1"
    assert "whsec" not in str(body)
    assert "/hook" not in str(body)


async def test_outbox_survives_a_restart_all_delivered_none_twice(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    receiver.default = 503
    settings = settings_for(("ops", receiver.url))
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    async with running(redis_client, settings):
        for s in symbols:
            await redis_client.xadd(keys.TRANSITIONS, transition(State.UNWINDING, 60, s))
        for s in symbols:
            await redis_client.xadd(keys.TRANSITIONS, transition(State.CALM, 5, s))
        await until(lambda: _at_least(receiver, 2))
    assert receiver.delivered() == []
    receiver.default = 200
    async with running(redis_client, settings):
        await settled(redis_client, "ops", 6)
        await asyncio.sleep(0.3)  # nothing more comes
    delivered = receiver.delivered()
    assert len(delivered) == 6
    assert len({r.webhook_id for r in delivered}) == 6
    by_symbol = {s: [r.body["type"] for r in delivered if r.body["data"]["symbol"] == s]
                 for s in symbols}  # fmt: skip
    assert all(t == ["alert.opened", "alert.resolved"] for t in by_symbol.values())


async def test_flapping_score_causes_no_storm(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    async with running(redis_client, settings_for(("ops", receiver.url))):
        for i in range(40):
            flap = (State.UNWINDING, 60) if i % 2 == 0 else (State.CALM, 10)
            await redis_client.xadd(keys.TRANSITIONS, transition(*flap))
        await receiver.wait_for(2)
        await asyncio.sleep(0.5)
    assert [r.body["type"] for r in receiver.received] == ["alert.opened", "alert.resolved"]


async def test_transitions_read_before_a_crash_are_decided_after_it(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    settings = settings_for(("ops", receiver.url))
    await redis_client.xgroup_create(keys.TRANSITIONS, keys.ALERTS_GROUP, id="$", mkstream=True)
    await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 90))
    # A previous run read it, then died before its commit: it is pending, unacknowledged.
    got = await redis_client.xreadgroup(
        keys.ALERTS_GROUP, settings.consumer, {keys.TRANSITIONS: ">"}
    )
    assert len(got[0][1]) == 1
    async with running(redis_client, settings):
        await settled(redis_client, "ops", 1)
    assert [r.body["data"]["state"] for r in receiver.delivered()] == ["cascade"]
    assert await redis_client.xpending(keys.TRANSITIONS, keys.ALERTS_GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": [],
    }  # fmt: skip


async def test_a_receiver_that_does_not_answer_times_out_and_is_retried(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    # The first request hangs well past the timeout; the retry has a whole second to be
    # answered (with 0.2 s the retry too timed out once, in a full run on a loaded machine).
    receiver.hang_s = [3.0]
    base = settings_for(("ops", receiver.url)).model_dump()
    base["receivers"][0].update(url=receiver.url, secret=SECRET, timeout_s=1.0)
    settings = AlertSettings.model_validate(base)
    async with running(redis_client, settings):
        await redis_client.xadd(keys.TRANSITIONS, transition(State.UNWINDING, 60))
        await settled(redis_client, "ops", 1)
    state = await redis_client.hgetall(keys.receiver("ops"))
    assert state[b"failures_total"] == b"1"
    assert len({r.webhook_id for r in receiver.received}) == 1


async def test_a_chat_receiver_gets_waiting_alerts_grouped_in_one_message(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    settings = AlertSettings.model_validate({
        "receivers": [{"name": "desk", "url": receiver.url, "kind": "discord"}],
        "rules": [{"name": "unwind", "receivers": ["desk"]}],
        "retry_initial_s": 0.05, "tick_s": 0.05,
    })  # fmt: skip
    await redis_client.xgroup_create(keys.TRANSITIONS, keys.ALERTS_GROUP, id="$", mkstream=True)
    symbols = [f"S{i}USDT" for i in range(12)]
    for s in symbols:  # decided in one step at start-up: twelve notifications at once
        await redis_client.xadd(keys.TRANSITIONS, transition(State.UNWINDING, 60, s))
    async with running(redis_client, settings) as service:
        await settled(redis_client, "desk", 12)
        (stats,) = service.stats()
    messages = receiver.delivered()
    assert [len(m.body["embeds"]) for m in messages] == [10, 2]
    assert messages[0].body["content"].startswith("10 deleverage alerts: ")
    titles = [e["title"] for m in messages for e in m.body["embeds"]]
    assert [t.split(" on binance_usdm ")[1].split(",")[0] for t in titles] == symbols
    assert messages[1].timestamp - messages[0].timestamp >= 0  # paced, never concurrent
    assert (stats.delivered, stats.failures, stats.dropped) == (12, 0, 0)
    assert stats.latency.count == 12


async def test_delivery_figures_reach_the_metrics_exposition(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    receiver.answers = [(500, {})]
    async with running(redis_client, settings_for(("ops", receiver.url))) as service:
        await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 90))
        await settled(redis_client, "ops", 1)
        await service.deliveries[0].refresh_depth()
        snapshot = OutputsSnapshot(
            receivers=service.stats(),
            alert_events=dict(service.events_by_kind),
            open_alerts=service.open_alerts(),
            mqtt=None,
        )
    source = Fixed(snapshot)
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(), outputs=source))
    text = generate_latest(registry).decode()
    assert 'deleverage_alert_deliveries_total{receiver="ops"} 1.0' in text
    assert 'deleverage_alert_delivery_failures_total{receiver="ops"} 1.0' in text
    assert 'deleverage_alert_outbox_depth{receiver="ops"} 0.0' in text
    assert 'deleverage_alert_receiver_enabled{receiver="ops"} 1.0' in text
    assert 'deleverage_alert_notifications_total{kind="opened"} 1.0' in text
    assert "deleverage_alerts_open 1.0" in text
    assert 'deleverage_alert_delivery_latency_seconds_count{receiver="ops"} 1.0' in text
    assert 'deleverage_alert_delivery_latency_seconds_bucket{le="+Inf",receiver="ops"} 1.0' in text
    assert "mqtt" not in text  # MQTT off: no MQTT series


def outbox_event(ts_ms: int, symbol: str = "BTCUSDT") -> bytes:
    """One notification as the alert service writes it to an outbox."""
    alert = Alert(
        id=f"a-{symbol}", fingerprint="f", rule="unwind", scope="instrument",
        key=f"binance_usdm|{symbol}", venue="binance_usdm", symbol=symbol, asset=symbol[:3],
        state=State.UNWINDING, peak_state=State.UNWINDING, side=Side.LONG, score=60.0,
        reasons=["OI -3%"], opened_ms=ts_ms, updated_ms=ts_ms, receivers=["ops"],
    )  # fmt: skip
    return encode_alert_event(AlertEvent(id=f"{alert.id}.1", kind=EventKind.OPENED,
                                         ts_ms=ts_ms, alert=alert))  # fmt: skip


async def test_poisoned_outbox_entries_are_dropped_counted_and_never_fatal(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    """Entries an older version (or a damaged store) left: each is dropped with its reason,
    the good one is delivered, and a restart finds nothing left to choke on."""
    now_ms = int(time.time() * 1000)
    for raw in (
        b"not json",
        b'{"id": 1, "kind": "opened"}',  # JSON, not an event
        outbox_event(10**20, "ETHUSDT"),  # decodes; its time cannot be written (OSError)
        outbox_event(now_ms),
    ):
        await redis_client.xadd(keys.outbox("ops"), {"e": raw})
    settings = settings_for(("ops", receiver.url))
    for _ in range(2):  # and after a restart
        service = AlertService(redis_client, settings)
        task = asyncio.create_task(service.run())
        try:
            await settled(redis_client, "ops", 1)
            await until(lambda: _hget(redis_client, keys.receiver("ops"), "dropped_total", b"3"))
            await asyncio.sleep(0.2)
            assert not task.done()  # nothing was fatal
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert [r.body["data"]["symbol"] for r in receiver.delivered()] == ["BTCUSDT"]
    state = await redis_client.hgetall(keys.receiver("ops"))
    assert state[b"dropped_unreadable_total"] == b"2"
    assert state[b"dropped_unsendable_total"] == b"1"
    (group,) = await redis_client.xinfo_groups(keys.outbox("ops"))
    assert group["pending"] == 0


async def test_drops_are_counted_by_reason_in_the_receiver_stats(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    await redis_client.xadd(keys.outbox("ops"), {"e": b"\xff"})
    await redis_client.xadd(keys.outbox("ops"), {"e": outbox_event(1)})  # older than max_age
    async with running(redis_client, settings_for(("ops", receiver.url))) as service:
        await until(lambda: _hget(redis_client, keys.receiver("ops"), "dropped_total", b"2"))
        (stats,) = service.stats()
    assert stats.dropped == 2
    assert stats.dropped_by_reason == {"unreadable": 1, "expired": 1}
    assert receiver.received == []


async def test_an_asset_rule_pages_on_the_detectors_stored_asset_score(
    redis_client: aioredis.Redis, receiver: Receiver
) -> None:
    """The asset score the detector stores (every venue weighted by open interest) opens
    the alert; an instrument's transition alone does not."""
    settings = settings_for(("ops", receiver.url), scope="asset")
    now_ms = int(time.time() * 1000)
    asset = Pressure(
        venue=ANY, symbol=ANY, asset="BTC", score=64.0, state=State.UNWINDING, side=Side.LONG,
        updated_ms=now_ms, since_ms=now_ms, forced_share=None, data_quality=1.0, features={},
        reasons=["2 of 3 under pressure (70% of open interest)"], scope=Scope.ASSET,
    )  # fmt: skip
    async with running(redis_client, settings) as service:
        await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 95))
        await until(lambda: _consumed(redis_client))
        await asyncio.sleep(0.3)  # and six ticks more: the instrument's cascade opened nothing
        assert service.open_alerts() == 0
        await redis_client.hset(keys.ASSET_PRESSURE, "BTC", encode(asset))
        await receiver.wait_for(1)
    (got,) = receiver.delivered()
    assert got.body["type"] == "alert.opened"
    data = got.body["data"]
    assert (data["scope"], data["key"], data["asset"], data["venue"]) == (
        "asset",
        "BTC",
        "BTC",
        None,
    )
    assert data["reasons"] == ["2 of 3 under pressure (70% of open interest)"]


async def _consumed(client: aioredis.Redis) -> bool:
    """The alert service has read and acknowledged every transition."""
    pending: Any = await client.xpending(keys.TRANSITIONS, keys.ALERTS_GROUP)
    groups: Any = await client.xinfo_groups(keys.TRANSITIONS)
    return bool(pending["pending"] == 0 and groups and groups[0]["entries-read"] == 1)
