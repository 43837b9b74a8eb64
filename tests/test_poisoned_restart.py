"""A restart with poisoned entries already in Redis: ``deleverage run`` (a real process)
starts, stays up, its detector reads past the poison, the API answers, and every entry it
skipped is counted in ``/metrics``."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from procs_support import free_port, service_env, stop
from prometheus_client.parser import text_string_to_metric_families

from service.config import StoreSettings
from service.events import Kind, Liquidation, MarkPrice, OpenInterest, Side, encode
from service.store import keys
from service.store.writer import write_batch

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
VENUE = "binance_usdm"
UP_FOR_S = 5.0


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name + ("_total" if family.type == "counter" else ""): [
            (s.labels, s.value) for s in family.samples if not s.name.endswith("_created")
        ]
        for family in text_string_to_metric_families(text)
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _valid(now: int) -> list[MarkPrice | OpenInterest]:
    common = {"venue": VENUE, "symbol": "BTCUSDT", "base": "BTC", "ts_ms": now, "recv_ms": now}
    return [
        MarkPrice(**common, mark_price=50_000.0, index_price=50_000.0),
        OpenInterest(**common, oi_contracts=10_000.0, oi_base=10_000.0, oi_usd=5e8),
    ]


async def _poison(client: aioredis.Redis) -> None:
    """What the hostile tester left behind: a liquidation stored with ``price: null`` (from a
    venue's ``NaN``), one with a negative size, bytes that are not JSON, an entry without
    its field, a key of the wrong type, then valid data after them."""
    now = _now_ms()
    await write_batch(client, _valid(now - 2000), StoreSettings(), now - 2000)
    liq = Liquidation(
        venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now, side=Side.LONG,
        price=50_000.0, quantity=1.0, quantity_base=1.0, notional_usd=50_000.0, sampled=False,
        event_id="poison-1",
    )  # fmt: skip
    null_price = encode(liq).replace(b'"price":50000.0', b'"price":null')
    negative = encode(liq).replace(b'"quantity":1.0', b'"quantity":-1.0')
    assert null_price != encode(liq)
    assert negative != encode(liq)
    handoff = keys.handoff(VENUE)
    await client.xadd(handoff, {"b": "x1", "e": b"[" + null_price + b"]"})
    await client.xadd(handoff, {"b": "x2", "e": b"[" + negative + b"]"})
    await client.xadd(handoff, {"b": "x3", "e": b"\xff{not json"})
    await client.xadd(handoff, {"b": "x4", "other": b"1"})
    await client.xadd(keys.events(VENUE, "BTCUSDT", Kind.LIQUIDATION), {"e": null_price})
    await client.set(keys.ASSET_PRESSURE, b"not a hash")  # the detector reads and writes it
    await write_batch(client, _valid(now), StoreSettings(), now)


@pytest.fixture
def service(tmp_path: Path, redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    config = tmp_path / "poisoned.yaml"
    config.write_text(
        f"redis_url: {redis_url}\n"
        f"venues:\n  {VENUE}:\n    ws_url: ws://127.0.0.1:9\n    rest_url: http://127.0.0.1:9\n"
        "detector:\n  warmup: false\n  eval_interval_s: 0.25\n  burn_in_samples: 0\n"
        f"api:\n  host: 127.0.0.1\n  port: {port}\n"
    )
    env = service_env()
    env["DELEVERAGE_CONFIG"] = str(config)
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "run", "--only", "detect", "--only", "api"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop(proc, 10)
        log.close()


async def test_a_restart_with_poisoned_entries_in_redis_stays_up_and_counts_them(
    redis_client: aioredis.Redis, service: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    await _poison(redis_client)
    proc, base_url = service
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as http:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API never answered"
            await asyncio.sleep(0.1)
        up = time.monotonic()
        scored = False
        while time.monotonic() - up < UP_FOR_S:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            r = await http.get("/v1/pressure")
            assert r.status_code == 200, r.text
            scored = scored or any(
                (p["venue"], p["symbol"]) == (VENUE, "BTCUSDT") for p in r.json()["items"]
            )
            await asyncio.sleep(0.25)
        metrics = _samples((await http.get("/metrics")).text)
    assert scored, "the detector never scored the valid data after the poison"
    skipped = {
        labels["reason"]: value
        for labels, value in metrics["deleverage_store_decode_errors_total"]
        if labels["what"] == "handoff"
    }
    assert skipped.get("undecodable", 0) >= 2  # the null price, the bytes that are not JSON
    assert skipped.get("invalid", 0) >= 1  # the negative size
    refused = {
        labels["reason"]: value
        for labels, value in metrics["deleverage_store_decode_errors_total"]
        if labels["what"] == "pressure"
    }
    assert refused.get("wrong_type", 0) >= 2  # read at start, then each write refused
    assert metrics["deleverage_component_up"] == [({"component": "detector"}, 1.0),
                                                  ({"component": "api"}, 1.0)]  # fmt: skip
    assert all(v == 0 for _, v in metrics["deleverage_component_restarts_total"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
