"""The alert service as a real process, killed with SIGKILL while its receiver fails, then
started again: every notification decided before the kill is delivered after it, none twice
(by ``webhook-id``), each alert's notifications in order."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml
from alerts_support import SECRET, Receiver, until

from service.events import Side
from service.scores import State, Transition, encode
from service.store import keys

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


@asynccontextmanager
async def service(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "run", "--only", "alerts", "--config", str(config),
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def transition(to: State, score: float, symbol: str) -> dict[str, bytes]:
    t = Transition(
        venue="bybit", symbol=symbol, asset=symbol[:3], from_state=State.CALM, to_state=to,
        side=Side.SHORT, score=score, ts_ms=0, reasons=["squeeze"],
    )  # fmt: skip
    return {"e": encode(t)}


async def test_a_killed_alert_service_delivers_everything_once_after_a_restart(
    redis_client: aioredis.Redis, redis_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    config = tmp_path / "alerts.yaml"
    config.write_text(yaml.safe_dump({
        "redis_url": redis_url,
        "log_level": "warning",
        "venues": {"binance_usdm": {"enabled": False}},
        "alerts": {
            "receivers": [{"name": "ops", "url": receiver.url, "secret": SECRET}],
            "rules": [{"name": "squeeze", "receivers": ["ops"]}],
            "tick_s": 0.05, "retry_initial_s": 0.2, "retry_max_s": 0.5, "max_attempts": 50,
        },
    }))  # fmt: skip
    receiver.default = 503
    await redis_client.xgroup_create(keys.TRANSITIONS, keys.ALERTS_GROUP, id="$", mkstream=True)
    async with service(config) as proc:
        for s in SYMBOLS:
            await redis_client.xadd(keys.TRANSITIONS, transition(State.UNWINDING, 60, s))
            await redis_client.xadd(keys.TRANSITIONS, transition(State.CASCADE, 90, s))
        # decided: 8 notifications in the outbox, none delivered yet; then SIGKILL
        await until(lambda: _outbox_len(redis_client, 8), timeout_s=20)
        await until(lambda: _received(receiver, 2), timeout_s=20)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert receiver.delivered() == []
    receiver.default = 200
    async with service(config):
        await until(lambda: _received_ok(receiver, 8), timeout_s=30)
        await asyncio.sleep(1.0)  # nothing more arrives
    delivered = receiver.delivered()
    assert len(delivered) == 8
    assert len({r.webhook_id for r in delivered}) == 8
    assert all(r.signature_ok for r in receiver.received)
    for s in SYMBOLS:
        kinds = [r.body["type"] for r in delivered if r.body["data"]["symbol"] == s]
        assert kinds == ["alert.opened", "alert.escalated"], s


async def _outbox_len(client: aioredis.Redis, n: int) -> bool:
    return bool(await client.xlen(keys.outbox("ops")) >= n)


async def _received(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _received_ok(receiver: Receiver, n: int) -> bool:
    return len(receiver.delivered()) >= n
