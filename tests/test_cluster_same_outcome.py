"""The same market through the store, the detector, the alerts and the API, once on the single
Redis and once on a real Redis Cluster (3 masters, 3 replicas): the same states, transitions,
alerts and answers, to the last digit.

Live runs (``test_cluster_end_to_end.py``) differ from one another by the timing of frames and
rounds; here nothing depends on the wall clock: the simulator's market (the long deleveraging,
seeded) is stepped by hand, each step's events are written by the store's writer, then the
detector reads its hand-off and evaluates one round, and the alert service reads the
transitions and decides, all on one fake clock.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from cluster_support import Cluster
from market_events import market_events

from service.alerts.service import AlertService
from service.config import ApiSettings, DetectorSettings, Settings, StoreSettings, VenueSettings
from service.config_alerts import AlertSettings
from service.detect.runner import Detector
from service.publish.api import create_app
from service.simulate.market import Market
from service.simulate.scenario import SCENARIOS
from service.store import keys
from service.store.client import connect, flush
from service.store.writer import write_batch

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
STEP_S = 0.25
"""Seconds of the fake clock per step: one detector round (``eval_interval_s``)."""
TIME_SCALE = 5.0
"""Scenario seconds per second, as ``test_end_to_end.py`` plays it."""
DETECTOR = DetectorSettings(
    window_s=8.0, min_dwell_s=1.0, enter_persist_s=1.0, eval_interval_s=STEP_S,
    stale_after_s=10.0, burn_in_samples=0,
)  # fmt: skip
RULE = {"name": "unwind", "scope": "instrument", "states": ["unwinding", "cascade"],
        "for_s": 0, "resolve_score": 100, "receivers": ["hook"]}  # fmt: skip


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def _run(client: aioredis.Redis, t0_ms: int) -> dict[str, Any]:
    base = SCENARIOS["long_unwind"]
    scenario = replace(base, phases=(*base.phases[:-1], replace(base.phases[-1], duration_s=60.0)))
    steps = int(scenario.duration_s / TIME_SCALE / STEP_S)
    market = Market(scenario, symbols=SYMBOLS, seed=11)
    clock = Clock(t0_ms / 1000)
    detector = Detector(client, DETECTOR, [VENUE], clock=clock)
    alert_settings = AlertSettings.model_validate(
        {"rules": [RULE], "receivers": [{"name": "hook", "url": "http://127.0.0.1:9/hook"}]}
    )
    rounds: list[tuple[int, str, str, str | None, float]] = []
    async with httpx.AsyncClient() as http:
        alerts = AlertService(client, alert_settings, http=http, clock=clock)
        await alerts._start()
        await detector._start()
        for step in range(steps):
            clock.t += STEP_S
            now_ms = round(clock.t * 1000)
            await write_batch(
                client,
                market_events(VENUE, market, STEP_S * TIME_SCALE, STEP_S, now_ms, step),
                StoreSettings(),
                now_ms,
            )
            while await detector._read(block_ms=1):
                pass
            evaluation = await detector.evaluate_round()
            rounds += [(step, p.symbol, p.state.value, p.side and p.side.value, p.score)
                       for p in evaluation.pressures]  # fmt: skip
            decided, ids = await alerts._read(1)
            decided += await alerts._poll()
            decided += alerts.engine.tick(now_ms)
            await alerts._commit(decided, ids)
    return {"rounds": rounds, **await _stored(client, t0_ms), **await _answers(client, t0_ms)}


STORE_CLOCK = {"id", "next_cursor"}
"""Fields made of stream ids: the store's own clock (when written), not the run's."""


def _relative(value: Any, t0_ms: int) -> Any:
    """``value`` with every millisecond time in it made relative to the run's start (and
    ISO times and stream ids left out): two runs started at different times compare equal."""
    if isinstance(value, dict):
        return {
            k: _relative(v, t0_ms) for k, v in value.items() if not _iso(v) and k not in STORE_CLOCK
        }
    if isinstance(value, list):
        return [_relative(v, t0_ms) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value > t0_ms - 86_400_000:
        return value - t0_ms
    return value


def _iso(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 20 and value[4] == "-" and value[10] == "T"


async def _stored(client: aioredis.Redis, t0_ms: int) -> dict[str, Any]:
    transitions = {
        scope: [json.loads(f[b"e"]) for _, f in await client.xrange(keys.transitions(scope))]
        for scope in ("instrument", "asset", "market")
    }
    ids = [i.decode() for i in await client.zrange(keys.ALERTS_INDEX, 0, -1)]
    alerts = [json.loads(await client.get(keys.alert(i))) for i in ids]
    outbox = [json.loads(f[b"e"]) for _, f in await client.xrange(keys.outbox("hook"))]
    return {
        "transitions": _relative(transitions, t0_ms),
        "alerts": _relative(alerts, t0_ms),
        "outbox": _relative(outbox, t0_ms),
        "indexed": await client.zcard(keys.liquidation_index()),
    }


async def _answers(client: aioredis.Redis, t0_ms: int) -> dict[str, Any]:
    """The API's answers that do not depend on the wall clock's now."""
    settings = Settings(
        venues={VENUE: VenueSettings()}, api=ApiSettings(snapshot_s=0, max_limit=1000)
    )
    app = create_app(settings, redis=client)
    out: dict[str, Any] = {}
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            for path in ("/v1/pressure", "/v1/transitions?limit=1000", "/v1/alerts?limit=1000"):
                r = await http.get(path)
                assert r.status_code == 200, r.text
                out[path] = _relative(r.json(), t0_ms)
            tape: list[Any] = []
            cursor: dict[str, str] = {}
            for _ in range(100):
                r = await http.get("/v1/liquidations", params={"limit": 1000, **cursor})
                assert r.status_code == 200, r.text
                tape += _relative(r.json()["items"], t0_ms)
                if not r.json()["next_cursor"]:
                    break
                cursor = {"cursor": r.json()["next_cursor"]}
    # The tape is in the order the store took the entries (its clock; a cluster's nodes take
    # an instrument's batch each in their turn): the same liquidations, in the order of when.
    out["/v1/liquidations"] = sorted(tape, key=lambda item: json.dumps(item, sort_keys=True))
    return out


async def test_the_same_market_gives_the_same_states_transitions_and_alerts_on_a_cluster(
    redis_client: aioredis.Redis, redis_cluster: Cluster
) -> None:
    t0_ms = time.time_ns() // 1_000_000
    single = await _run(redis_client, t0_ms)
    redis_cluster.wait_ok()
    client = connect(redis_cluster.url)
    await flush(client)
    try:
        on_cluster = await _run(client, t0_ms)
    finally:
        await flush(client)
        await client.aclose()
    states = {state for _, symbol, state, _, _ in single["rounds"] if symbol == "BTCUSDT"}
    assert {"calm", "unwinding"} <= states or {"calm", "cascade"} <= states, states
    assert single["transitions"]["instrument"], "no transition"
    assert single["alerts"], "no alert"
    assert single["indexed"] == len(single["/v1/liquidations"]) > 0
    for part in single:
        assert on_cluster[part] == single[part], part
