"""The service end to end on a real Redis Cluster (3 masters, 3 replicas, on local ports):
the simulator plays the long deleveraging of ``test_end_to_end.py``; the collectors, the
detector, the alerts and the API run as in production against the cluster. (Two live runs
differ by the timing of frames and rounds: ``test_cluster_same_outcome.py`` compares the
cluster with the single Redis where nothing depends on the wall clock.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from cluster_support import Cluster

from service.config import load_settings
from service.runtime import Runtime
from service.simulate.scenario import SCENARIOS
from service.store import keys
from service.store.client import connect, flush
from service.venues import REGISTRY
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator

pytestmark = pytest.mark.integration

TIME_SCALE = 5.0
WINDOW_S = 8.0
RULE = {"name": "unwind", "scope": "instrument", "states": ["unwinding", "cascade"],
        "for_s": 0, "resolve_score": 100, "receivers": ["hook"]}  # fmt: skip
"""An alert per hot instrument, resolved as soon as it is calm again."""


class Hook:
    """A webhook receiver on loopback: answers 200, keeps each notification's type."""

    def __init__(self) -> None:
        self.types: list[str] = []
        self.resolved = asyncio.Event()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def __aenter__(self) -> Hook:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while (await reader.readline()).strip():
                length = 0
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.types.append(json.loads(await reader.readexactly(length))["type"])
                if self.types[-1] == "alert.resolved":
                    self.resolved.set()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        writer.close()


@dataclass
class Outcome:
    states: list[tuple[str, str | None]]
    """BTCUSDT's (state, side) as the API answered it, each change once."""
    transitions: list[tuple[str, str, str | None]]
    """BTCUSDT's transitions as ``/v1/transitions`` serves them: (from, to, side), oldest first."""
    alerts: list[tuple[str, str, str, str]]
    """``/v1/alerts``: (rule, key, peak state, status) of each alert."""
    liquidations: int
    ready: int
    delivered: list[str]
    """The notifications' types the webhook receiver got, in order."""


async def _run(redis_url: str, seed: int) -> Outcome:
    base = SCENARIOS["long_unwind"]
    phases = (*base.phases[:-1], replace(base.phases[-1], duration_s=120.0))
    scenario = replace(base, phases=phases, loop=False)
    async with (
        BinanceUsdmSimulator(
            scenario, seed=seed, time_scale=TIME_SCALE, push_interval_s=0.25,
            list_only_simulated=True,
        ) as sim,
        Hook() as hook,
    ):  # fmt: skip
        settings = load_settings(
            set(REGISTRY),
            [],
            redis_url=redis_url,
            api={"port": 0, "snapshot_s": 0},
            venues={
                "binance_usdm": {
                    "ws_url": sim.ws_base_url,
                    "rest_url": sim.rest_base_url,
                    "oi_poll_weight_per_minute": 2400,
                    "symbols": ["BTCUSDT"],
                }
            },
            detector={
                "window_s": WINDOW_S,
                "min_dwell_s": 1.0,
                "enter_persist_s": 1.0,
                "eval_interval_s": 0.25,
                "stale_after_s": 10.0,
                "burn_in_samples": 0,
            },
            collect={"watchdog_s": 5.0},
            alerts={
                "rules": [RULE],
                "tick_s": 0.25,
                "receivers": [{"name": "hook", "url": hook.url}],
            },
        )
        runtime = Runtime(settings)
        task = asyncio.create_task(runtime.run())
        try:
            base_url = await asyncio.wait_for(runtime.serving(), 30)
            async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
                states = await _follow(http)
                # resolved at the alerts' next tick, then sent
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hook.resolved.wait(), 10)
                transitions = (
                    await http.get("/v1/transitions", params={"symbol": "BTCUSDT", "limit": 100})
                ).json()["items"]
                alerts = (await http.get("/v1/alerts", params={"limit": 100})).json()["items"]
                liqs = await _all_liquidations(http)
                ready = (await http.get("/readyz")).status_code
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return Outcome(
        states,
        [(t["from_state"], t["to_state"], t["side"]) for t in reversed(transitions)],
        sorted((a["rule"], a["key"], a["peak_state"], a["status"]) for a in alerts),
        liqs,
        ready,
        list(hook.types),
    )


async def _follow(http: httpx.AsyncClient) -> list[tuple[str, str | None]]:
    seen: list[tuple[str, str | None]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = await http.get("/v1/pressure/binance_usdm/BTCUSDT")
        if r.status_code == 200:
            body = r.json()
            state = (body["state"], body["side"])
            if not seen or seen[-1] != state:
                seen.append(state)
            if len(seen) >= 3 and state[0] == "calm":
                break
        await asyncio.sleep(0.25)
    return seen


async def _all_liquidations(http: httpx.AsyncClient) -> int:
    """Every stored liquidation, through the tape's index (``/v1/liquidations``, no symbol)."""
    count, cursor = 0, None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/liquidations", params=params)).json()
        count += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count
    raise AssertionError("pagination did not end")


def _check(outcome: Outcome) -> None:
    states = [s for s, _ in outcome.states]
    assert states[0] == "calm", outcome
    hot = [(s, side) for s, side in outcome.states if s in ("unwinding", "cascade")]
    assert hot, outcome
    assert all(side == "long" for _, side in hot), outcome
    assert states[-1] == "calm", outcome
    assert outcome.ready == 200


async def test_the_service_runs_end_to_end_on_a_cluster(redis_cluster: Cluster) -> None:
    """What ``test_end_to_end.py`` checks on the single Redis, on the cluster; and the alert
    opened and resolved, both notifications delivered, every liquidation in the tape."""
    redis_cluster.wait_ok()
    client = connect(redis_cluster.url)
    await flush(client)
    try:
        outcome = await _run(redis_cluster.url, seed=11)
        stored = await client.zcard(keys.liquidation_index())
    finally:
        await flush(client)
        await client.aclose()
    _check(outcome)
    hot = [t for t in outcome.transitions if t[0] == "calm"]
    assert hot, outcome.transitions
    assert outcome.transitions[-1][1] == "calm", outcome.transitions
    assert outcome.alerts == [("unwind", "binance_usdm|BTCUSDT", outcome.alerts[0][2], "resolved")]
    assert outcome.alerts[0][2] in ("unwinding", "cascade")
    assert outcome.delivered[0] == "alert.opened"
    assert outcome.delivered[-1] == "alert.resolved"
    assert outcome.liquidations == stored > 0
