"""Supervision: a component that fails is restarted alone, the others never notice, and
``/readyz`` and ``/metrics`` say what is down; a fatal error still stops the process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from service import runtime as runtime_module
from service.config import load_settings
from service.detect.base import Evaluation, Sliced
from service.errors import ConfigError, Verdict, verdict
from service.events import MarkPrice
from service.runtime import Component, Runtime
from service.store import keys
from service.supervise import Supervisor
from service.venues import REGISTRY

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"


async def _until(check: Callable[[], Any], within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not check():  # noqa: ASYNC110 - plain state, no event to wait on
            await asyncio.sleep(0.01)


def test_the_policy_sorts_failures() -> None:
    assert verdict(ConfigError("bad key")) is Verdict.FATAL
    assert verdict(ConnectionRefusedError()) is Verdict.RETRY
    assert verdict(TimeoutError()) is Verdict.RETRY
    assert verdict(RuntimeError("a bug")) is Verdict.RESTART
    assert verdict(ExceptionGroup("g", [OSError(), ValueError()])) is Verdict.RESTART
    assert verdict(ExceptionGroup("g", [RuntimeError(), ConfigError("x")])) is Verdict.FATAL


async def test_a_failing_component_is_restarted_alone_with_backoff() -> None:
    supervisor = Supervisor(initial_s=0.02, max_s=0.05)
    ticks = 0
    runs = 0

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        if runs <= 3:
            raise RuntimeError(f"bug #{runs}")
        if runs == 4:
            return  # ended by itself: restarted too
        await asyncio.sleep(3600)

    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(supervisor.run("steady", steady)),
            tg.create_task(supervisor.run("flaky", flaky)),
        ]
        await _until(lambda: runs == 5)
        before = ticks
        await asyncio.sleep(0.05)
        for t in tasks:
            t.cancel()
    assert ticks > before  # the other component never noticed
    steady_s, flaky_s = supervisor.components()
    assert (steady_s.name, steady_s.up, steady_s.restarts) == ("steady", True, 0)
    assert (flaky_s.name, flaky_s.up, flaky_s.restarts) == ("flaky", True, 4)
    assert flaky_s.last_error == "ended by itself"


async def test_a_fatal_error_stops_the_process_with_that_error(redis_url: str) -> None:
    settings = load_settings(
        set(REGISTRY), [], redis_url=redis_url, api={"port": 0}, venues={VENUE: {"enabled": False}}
    )
    runtime = Runtime(settings, {Component.COLLECT, Component.API})

    async def misconfigured() -> None:
        raise ConfigError("store.flush_max_events: not what it seemed")

    runtime.sink.run = misconfigured  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="flush_max_events"):
        await asyncio.wait_for(runtime.run(), 10)
    assert runtime.supervisor.status("sink").up is False


async def test_a_component_that_swallowed_the_stop_is_not_started_again() -> None:
    """A cancel lost inside a library (Python 3.11's ``wait_for`` race, see
    ``service.aio.checkpoint``) ends a component as if by itself, its task still being
    cancelled: the supervisor stops then, it does not restart it (a stop would never end)."""
    supervisor = Supervisor(initial_s=0.01, max_s=0.01)
    runs = 0

    async def deaf() -> None:
        nonlocal runs
        runs += 1
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if runs > 1:
                raise
            # the race's outcome (once): the cancel is gone, the task is still cancelling

    task = asyncio.create_task(supervisor.run("deaf", deaf))
    await _until(lambda: runs == 1)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:  # a second cancel reaches a restarted run (which does not swallow it)
        task.cancel()
        await asyncio.wait({task}, timeout=5)
    assert done == {task}, "the supervisor restarted the component instead of stopping"
    assert task.cancelled()
    assert runs == 1
    assert supervisor.status("deaf").restarts == 0


async def test_a_stop_cancels_again_a_component_that_lost_its_cancel(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component that lost the stop's cancel and then waits for work that will never come
    (the stress writer after its pollers stopped) would hold the process's stop for ever:
    the runtime cancels it again after ``STOP_GRACE_S``."""
    monkeypatch.setattr(runtime_module, "STOP_GRACE_S", 0.3)
    settings = load_settings(
        set(REGISTRY), [], redis_url=redis_url, api={"port": 0}, venues={VENUE: {"enabled": False}}
    )
    runtime = Runtime(settings, {Component.COLLECT, Component.API})
    waiting = asyncio.Event()

    async def deaf() -> None:
        try:
            waiting.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the first cancel lost, as in the race
        await asyncio.Event().wait()  # nothing will wake it

    runtime.sink.run = deaf  # type: ignore[method-assign]
    task = asyncio.create_task(runtime.run())
    await asyncio.wait_for(runtime.serving(), 15)
    await asyncio.wait_for(waiting.wait(), 5)
    stopped_at = time.monotonic()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=10)
    assert done == {task}, "the runtime's stop waited for the deaf component"
    assert task.cancelled()
    assert time.monotonic() - stopped_at >= 0.3  # cancelled again after the grace, not before
    assert runtime.supervisor.status("sink").restarts == 0


def _metric(text: str, name: str, component: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("component") == component:
                return float(s.value)
    raise AssertionError(f"{name}{{component={component!r}}} not exported")


def _sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"{name}{labels} not exported")


async def test_a_crashing_collector_and_detector_restart_while_the_rest_goes_on(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    settings = load_settings(
        set(REGISTRY), [], redis_url=redis_url, api={"port": 0},
        venues={VENUE: {"ws_url": "ws://127.0.0.1:9", "rest_url": "http://127.0.0.1:9"}},
        collect={"backoff_initial_s": 0.05, "backoff_max_s": 0.2},
        detector={"warmup": False, "eval_interval_s": 0.05},
    )  # fmt: skip
    runtime = Runtime(
        settings,
        {Component.COLLECT, Component.DETECT, Component.API},
        supervisor=Supervisor(initial_s=1.0, max_s=1.0),
    )
    detector = runtime.detector
    assert detector is not None
    first_collector = runtime.collectors[0]
    health = first_collector.health

    async def broken_metadata(timeout_s: float) -> Any:
        raise RuntimeError("injected: a bug in the venue's metadata reader")

    first_collector.venue.load_markets = broken_metadata  # type: ignore[method-assign]
    model = detector._model
    assert isinstance(model, Sliced)  # the runner runs its rounds in slices: evaluate_steps
    real_steps = model.evaluate_steps
    rounds = {"n": 0}

    def crash_once(now_ms: int, held: Any, slice_s: float) -> Generator[None, None, Evaluation]:
        rounds["n"] += 1
        if rounds["n"] == 20:
            raise RuntimeError("injected: a bug in the model")
        return real_steps(now_ms, held, slice_s)

    model.evaluate_steps = crash_once  # type: ignore[method-assign]
    task = asyncio.create_task(runtime.run())
    answers: list[tuple[int, dict[str, bool]]] = []
    try:
        base_url = await asyncio.wait_for(runtime.serving(), 30)
        async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as http:
            written = 0
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                ready = await http.get("/readyz")
                checks = {c["name"]: c["ok"] for c in ready.json()["checks"]}
                answers.append(((await http.get("/v1/pressure")).status_code, checks))
                now = time.time_ns() // 1_000_000
                runtime.sink.put_nowait([MarkPrice(
                    venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=now, recv_ms=now,
                    mark_price=50_000.0, index_price=None,
                )])  # fmt: skip
                written = runtime.sink.written_events
                restarted = runtime.supervisor.status("detector").restarts
                if (
                    restarted
                    and detector.rounds_total > 40
                    and runtime.collectors[0] is not (first_collector)
                ):
                    break
                await asyncio.sleep(0.05)
            metrics = (await http.get("/metrics")).text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    # each failed component was restarted once, alone
    status = {c.name: c for c in runtime.supervisor.components()}
    assert {n: c.restarts for n, c in status.items()} == {
        "sink": 0, f"collector:{VENUE}": 1, "detector": 1, "api": 0,
        "stress:writer": 0, f"stress:{VENUE}": 0,  # stress polling runs beside, untouched
    }  # fmt: skip
    assert "injected: a bug in the model" in (status["detector"].last_error or "")
    assert _metric(metrics, "deleverage_component_restarts_total", "detector") == 1.0
    assert _metric(metrics, "deleverage_component_up", "detector") == 1.0
    assert _metric(metrics, "deleverage_component_restarts_total", f"collector:{VENUE}") == 1.0
    # the collector was replaced by a new one that kept the venue's counters
    assert runtime.collectors[0] is not first_collector
    assert runtime.collectors[0].health is health
    # the detector scores again with a new model, the API answered throughout, the writer wrote
    assert detector._model is not model
    assert detector.rounds_total > 40
    assert all(code == 200 for code, _ in answers)
    # the detector's rounds, as /metrics says them: counted across the restart (one runner)
    rounds = _sample(metrics, "deleverage_detector_rounds_total")
    assert rounds > 40
    # every round timed (the one that raised is in neither)
    assert _sample(metrics, "deleverage_detector_round_seconds_count") == rounds
    assert _sample(metrics, "deleverage_detector_round_seconds_bucket", le="+Inf") == rounds
    assert _sample(metrics, "deleverage_detector_scored_total") >= 1  # BTCUSDT, at least once
    assert _sample(metrics, "deleverage_detector_deferred_instruments") == 0
    assert 0 < _sample(metrics, "deleverage_detector_scoring_cost_seconds") < 1
    assert written > 0
    assert await redis_client.xlen(keys.handoff(VENUE)) > 0
    # /readyz said which component was down while it waited for its restart
    assert any(not checks["component:detector"] for _, checks in answers)
    assert all(checks["component:api"] and checks["component:sink"] for _, checks in answers)
    assert answers[-1][1]["component:detector"]
