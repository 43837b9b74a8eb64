"""``GET /v1/venues``."""

from __future__ import annotations

import re

import httpx
import redis.asyncio as aioredis
from publish_support import now_ms, snapshot, store_health

from service.publish.api.params import rfc3339

RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_venues_lists_snapshots_and_enabled_venues_that_never_reported(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    now = now_ms()
    await store_health(
        redis,
        snapshot("binance_usdm", updated_ms=now, last_message_ms=now - 50, delay_ms=1_250),
        snapshot("okx", enabled=False, connected=False, updated_ms=now - 3_600_000),
    )
    r = await client.get("/v1/venues")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [v["venue"] for v in items] == ["binance_usdm", "bybit", "okx"]
    binance, bybit, okx = items
    assert binance["connected"] is True
    assert binance["fresh"] is True
    assert binance["problem"] is None
    assert binance["updated_at"] == rfc3339(now)
    assert binance["last_message_at"] == rfc3339(now - 50)
    for name in ("connected_since", "last_event_at", "updated_at"):
        assert RFC3339_MS.fullmatch(binance[name]), name
    assert binance["messages_total"] == 1000
    assert (binance["delay_s"], binance["liquidation_delay_s"]) == (1.25, None)
    assert binance["parse_errors"] == {"bad_json": 3}
    assert binance["ws_url"] == "wss://binance_usdm.test/ws"
    assert bybit == {
        "venue": "bybit", "enabled": True, "connected": False, "fresh": False,
        "problem": "no health snapshot", "mode": "stream", "ws_url": None, "rest_url": None,
        "liquidations": None, "liquidations_sampled": None, "poll_interval_s": None,
        "connected_since": None, "last_message_at": None,
        "last_event_at": None, "delay_s": None, "liquidation_delay_s": None,
        "updated_at": None, "messages_total": 0, "events_total": 0,
        "reconnects_total": 0, "parse_errors_total": 0, "parse_errors": {},
        "oi_polls_total": 0, "oi_poll_failures_total": 0, "instruments": 0,
        "subscribed_symbols": 2, "last_error": None, "rest_failures": {},
        "drift": [], "drift_checked_at": None, "shards": [],
    }  # fmt: skip
    assert (binance["drift"], binance["drift_checked_at"]) == ([], None)
    assert okx["enabled"] is False
    assert okx["fresh"] is False
    assert okx["problem"].startswith("health snapshot is 3600.")


def test_rfc3339_has_milliseconds_and_z() -> None:
    assert rfc3339(1795491796123) == "2026-11-24T03:43:16.123Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
