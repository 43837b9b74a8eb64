"""Poison frames from one venue, sent to a running ``deleverage run`` (a real process): it
keeps running, the other venue keeps storing, the poisoned venue itself carries on, every
``/v1`` endpoint answers 200, and each dropped frame or event is counted in ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis.asyncio as aioredis
from procs_support import free_port
from prometheus_client.parser import text_string_to_metric_families

from service.events import Kind
from service.simulate.scenario import SCENARIOS
from service.store import keys
from service.venues import REGISTRY
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bybit.simulator.server import BybitSimulator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
POISONED, HEALTHY = "binance_usdm", "bybit"
ENDPOINTS = (
    "/v1/pressure", "/v1/liquidations?limit=50", "/v1/assets", "/v1/assets/BTC",
    "/v1/assets/ETH", "/v1/mark", "/v1/funding", "/v1/open-interest", "/v1/venues",
    "/v1/transitions", "/v1/transitions?scope=asset",
)  # fmt: skip


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _force_order(now: int, **order: str) -> str:
    fields = {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.5", "p": "50000",
              "ap": "50000", "X": "FILLED", "l": "0.5", "z": "0.5", "T": now} | order  # fmt: skip
    return json.dumps(
        {"stream": "btcusdt@forceOrder", "data": {"e": "forceOrder", "E": now, "o": fields}}
    )


def _mark_array(now: int, **fields: str) -> str:
    row = {"e": "markPriceUpdate", "E": now, "s": "BTCUSDT", "p": "50000", "i": "50000",
           "P": "50000", "r": "0.0001", "T": now + 3_600_000} | fields  # fmt: skip
    return json.dumps({"stream": "!markPrice@arr@1s", "data": [row]})


def poison_frames(now: int) -> list[str | bytes]:
    """Every kind of hostile frame the issue names, in Binance USDⓈ-M's real shapes."""
    valid = _force_order(now)
    return [
        _mark_array(now, r="x"),  # a funding rate that is not a number
        _force_order(now, p="NaN", ap="NaN"),
        _force_order(now + 1, q="Infinity", z="Infinity", l="Infinity"),
        _force_order(now + 2, q="-5", z="-5", l="-5"),  # a negative size
        _force_order(now + 3, q="1" + "0" * 400, z="1" + "0" * 400),  # a huge number
        _mark_array(now, p="1e400"),
        '{"stream":"btcusdt@forceOrder","data":{"E":' + "1" + "0" * 400 + "}}",
        "[" * 1000 + "]" * 1000,  # deep nesting
        '{"stream":"btcusdt@forceOrder","data":' + '{"a":' * 1000 + "1" + "}" * 1001,
        valid[: len(valid) // 2],  # truncated JSON
        b"\xff\xfe\x00garbage",
        "",
    ]


def _counter(metrics: str, name: str, venue: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(metrics):
        for s in family.samples:
            if s.name == name and s.labels.get("venue") == venue:
                total += s.value
    return total


@pytest.fixture
async def sims() -> AsyncIterator[tuple[BinanceUsdmSimulator, BybitSimulator]]:
    scenario = SCENARIOS["long_unwind"]
    async with (
        BinanceUsdmSimulator(scenario, seed=3, time_scale=5.0, list_only_simulated=True) as b,
        BybitSimulator(scenario, seed=4, time_scale=5.0, list_only_simulated=True) as y,
    ):
        yield b, y


def _config(path: Path, sims: dict[str, BinanceUsdmSimulator | BybitSimulator], port: int) -> Path:
    venues: dict[str, object] = {name: {"enabled": False} for name in REGISTRY}
    for name, sim in sims.items():
        venues[name] = {
            "enabled": True,
            "ws_url": sim.ws_base_url,
            "rest_url": sim.rest_base_url,
            "oi_poll_weight_per_minute": 1200,
        }
    config = {"venues": venues, "api": {"host": "127.0.0.1", "port": port}}
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _start(config: Path, redis_url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
    env["DELEVERAGE_REDIS_URL"] = redis_url
    return subprocess.Popen(
        [sys.executable, "-m", "service", "run", "--config", str(config)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def _stored(client: aioredis.Redis, venue: str) -> int:
    """Entries in every stream of ``venue``'s instruments."""
    total = 0
    for member in await client.smembers(keys.INSTRUMENTS):
        v, symbol = keys.split_instrument(member.decode())
        if v == venue:
            for kind in Kind:
                total += await client.xlen(keys.events(v, symbol, kind))
    return total


async def _until(cond: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.25)
    pytest.fail(f"not within {within} s: {what}")


async def test_poison_frames_on_one_venue_leave_the_service_and_the_others_running(
    sims: tuple[BinanceUsdmSimulator, BybitSimulator],
    redis_url: str,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    binance, bybit = sims
    port = free_port()
    config = _config(tmp_path / "poison.yaml", {POISONED: binance, HEALTHY: bybit}, port)
    log = (tmp_path / "run.log").open("wb")
    proc = _start(config, redis_url, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def both_storing() -> bool:
                return (
                    await _stored(redis_client, POISONED) > 0
                    and await _stored(redis_client, HEALTHY) > 0
                )

            await _until(both_storing, 45, "both venues storing")
            assert binance.clients > 0

            sent = 0
            for _ in range(3):  # the same poison again: logged once, counted every time
                for frame in poison_frames(_now_ms()):
                    sent += await binance.inject(frame)
                await asyncio.sleep(0.2)
            assert sent >= 3 * len(poison_frames(0))

            before = {v: await _stored(redis_client, v) for v in (POISONED, HEALTHY)}
            await asyncio.sleep(4.0)
            assert proc.poll() is None, "the service died on a poison frame"
            after = {v: await _stored(redis_client, v) for v in (POISONED, HEALTHY)}
            assert after[HEALTHY] > before[HEALTHY], "the healthy venue stopped storing"
            assert after[POISONED] > before[POISONED], "the poisoned venue stopped storing"

            for path in ENDPOINTS:
                r = await http.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            r = await http.get("/v1/pressure")
            assert r.json()["items"], "the detector scores nothing"

            metrics = (await http.get("/metrics")).text
            dropped = _counter(metrics, "deleverage_feed_parse_errors_total", POISONED)
            invalid = _counter(metrics, "deleverage_feed_events_invalid_total", POISONED)
            # Frames the parser refused plus events the boundary refused cover every poison.
            assert dropped >= 3 * 8, metrics
            assert invalid + dropped >= sent, (dropped, invalid, sent)
            assert _counter(metrics, "deleverage_feed_parse_errors_total", HEALTHY) == 0

            # Nothing poisoned was stored: every stored liquidation is finite and positive.
            for entry_id, fields in await redis_client.xrange(
                keys.events(POISONED, "BTCUSDT", Kind.LIQUIDATION)
            ):
                body = json.loads(fields[b"e"])
                for field in ("price", "quantity", "notional_usd"):
                    assert isinstance(body[field], float | int), (entry_id, body)
                    assert 0 <= body[field] < 1e18, (entry_id, body)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
    output = (tmp_path / "run.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
