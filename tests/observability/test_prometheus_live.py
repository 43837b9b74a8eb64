"""The dashboards proven against a real Prometheus.

The service runs in-process (collectors, detector, API on a free port) against the Binance
USDⓈ-M, Binance COIN-M and Bybit simulators playing ``long_unwind`` five times faster than
real time; Debian's ``prometheus`` scrapes it with the project's own
``config/prometheus/`` (only the target rewritten). Then every dashboard query, with its
variables substituted by values Prometheus knows, and every recording rule must return data;
the market overview's stress row must show the cascade (ADL levels high, funds drawn down),
and the asset drill-down's liquidity row the book widening and thinning (its top and its
depth within 1 % of mid), with the fragility panels' series.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from obs_support import (
    LABEL_VALUES,
    TEST_REDIS_URL,
    Prometheus,
    Query,
    dashboard_queries,
    load_dashboards,
    need,
    recording_rules,
    run_prometheus,
    substitute,
    variable_queries,
)

from service.alerts.inbox import WebhookInbox
from service.config import ENV_PREFIX, load_settings
from service.runtime import Runtime
from service.simulate.runner import VenueSimulator
from service.simulate.scenario import get_scenario
from service.venues import REGISTRY, SIMULATORS

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

VENUES = ("binance_usdm", "binance_coinm", "bybit")
TIME_SCALE = 5.0
DEADLINE_S = 75.0
"""How long the first test waits for every query to find data (the stack's start included)."""
ASSET = "BTC"
"""The asset ``long_unwind`` deleverages (hardest): the asset drill-down's ``$asset``."""


@dataclass
class Stack:
    service_url: str
    prometheus: Prometheus
    started: float


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    need("prometheus")
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("prometheus-live")
    redis = aioredis.Redis.from_url(TEST_REDIS_URL)
    await redis.flushdb()
    inbox = WebhookInbox()
    async with contextlib.AsyncExitStack() as exits:
        exits.push_async_callback(redis.aclose)
        exits.push_async_callback(redis.flushdb)
        hook_url = await exits.enter_async_context(inbox.serving())
        sims: dict[str, VenueSimulator] = {}
        for i, name in enumerate(VENUES):
            sim = SIMULATORS[name](get_scenario("long_unwind"), 11 + i, TIME_SCALE)
            sims[name] = await sim.start("127.0.0.1", 0, 0)
            exits.push_async_callback(sims[name].stop)
        with pytest.MonkeyPatch.context() as mp:  # settings from this test only
            for env in [e for e in os.environ if e.startswith(ENV_PREFIX)]:
                mp.delenv(env)
            settings = load_settings(
                set(REGISTRY),
                [],
                redis_url=TEST_REDIS_URL,
                api={"port": 0},
                venues={
                    name: {
                        "ws_url": s.ws_base_url,
                        "rest_url": s.rest_base_url,
                        # the venue-wide stress calls every second, as the demo (5 s):
                        # the stress row sees the cascade (ignored by COIN-M: no plan)
                        "stress": {"venue_every_s": 1.0},
                    }
                    for name, s in sims.items()
                },
                detector={
                    "window_s": 8.0,
                    "min_dwell_s": 1.0,
                    "enter_persist_s": 1.0,
                    "eval_interval_s": 0.25,
                    "stale_after_s": 10.0,
                    "burn_in_samples": 0,
                },
                collect={"watchdog_s": 5.0},
                # alert delivery to a local receiver and MQTT, for their panels and series
                alerts={
                    "receivers": [{"name": "inbox", "url": hook_url}],
                    "rules": [
                        {
                            "name": "any",
                            "states": ["building", "unwinding", "cascade"],
                            "receivers": ["inbox"],
                        }
                    ],
                    "tick_s": 0.25,
                },
                mqtt={"host": "127.0.0.1", "topic_prefix": f"test-{os.getpid()}/deleverage/v1"},
                log_level="warning",
            )
        runtime = Runtime(settings)
        task = asyncio.create_task(runtime.run())
        try:
            service_url = await asyncio.wait_for(runtime.serving(), 30)
            target = service_url.removeprefix("http://")
            async with run_prometheus(tmp, target) as prometheus:
                yield Stack(service_url, prometheus, started)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _variables(prometheus: Prometheus, dashboard: dict[str, object]) -> dict[str, str]:
    """Each variable's value as Grafana substitutes it: the single value ``$asset`` = BTC;
    a multi-value variable with every value Prometheus knows selected, as a regex."""
    values: dict[str, str] = {"datasource": "prometheus"}
    for name, query in variable_queries(dashboard).items():
        m = LABEL_VALUES.match(substitute(query, values))
        assert m is not None, f"variable {name}: not label_values(metric, label): {query}"
        found = await prometheus.label_values(m["label"], m["match"])
        assert found, f"variable {name} ({query}) has no values"
        if name == "asset":
            assert ASSET in found, found
            values[name] = ASSET
        else:
            values[name] = "(" + "|".join(found) + ")"
    return values


async def _empty(prometheus: Prometheus, queries: list[Query]) -> list[Query]:
    return [q for q in queries if not await prometheus.query_range(q.expr)]


async def _until_all_have_data(
    stack: Stack, resolve: object, deadline_s: float = DEADLINE_S
) -> tuple[int, list[Query]]:
    """Re-resolve and re-run the queries until none is empty or the deadline passes."""
    assert callable(resolve)
    while True:
        queries: list[Query] = await resolve()
        empty = await _empty(stack.prometheus, queries)
        if not empty or time.monotonic() - stack.started > deadline_s:
            return len(queries), empty
        await asyncio.sleep(2)


async def test_every_dashboard_query_finds_data_in_a_real_prometheus(stack: Stack) -> None:
    dashboards = load_dashboards()

    async def resolve() -> list[Query]:
        out: list[Query] = []
        for dashboard in dashboards.values():
            try:
                values = await _variables(stack.prometheus, dashboard)
            except AssertionError as exc:  # no values yet: a query that finds nothing
                return [Query(f"{dashboard['title']} variables: {exc}", "absent(vector(1))")]
            out += [
                Query(q.where, substitute(q.expr, values), q.instant)
                for q in dashboard_queries(dashboard)
            ]
        return out

    count, empty = await _until_all_have_data(stack, resolve)
    assert count >= 30
    assert not empty, "queries without data:\n" + "\n".join(f"{q.where}: {q.expr}" for q in empty)


STRESS_CASCADE = {
    "Binance rates its symbols high": 'deleverage_stress_adl_level_max{venue="binance_usdm"} == 3',
    "Bybit's drawdown comes high": 'deleverage_stress_adl_level_max{venue="bybit"} == 3',
    "instruments counted high": 'deleverage_stress_adl_instruments{level="high"} > 0',
    "a fund 5 % under its 1 h high": (
        "deleverage_stress_insurance_fund_total_usd"
        " / max_over_time(deleverage_stress_insurance_fund_total_usd[1h]) - 1 < -0.05"
    ),
    "long/short ratios": 'deleverage_stress_long_short_ratio{venue=~"binance_usdm|bybit"}',
}
"""What the market overview's stress row shows of ``long_unwind``'s cascade (its own
queries, narrowed): both venues' ADL level at high, the instruments counted at it, the
funds drawn down."""


async def test_the_stress_row_shows_the_cascade_in_a_real_prometheus(stack: Stack) -> None:
    async def resolve() -> list[Query]:
        return [Query(where, expr) for where, expr in STRESS_CASCADE.items()]

    _, empty = await _until_all_have_data(stack, resolve, DEADLINE_S + 30)
    assert not empty, "not seen:\n" + "\n".join(f"{q.where}: {q.expr}" for q in empty)


BTC_TOP = 'sum by (symbol) (deleverage_book_top_usd{venue="bybit", symbol="BTCUSDT"})'
BTC_DEPTH = (
    'sum by (symbol) (deleverage_book_depth_usd{venue="bybit", symbol="BTCUSDT", band="0.01"})'
)
LIQUIDITY_CASCADE = {
    "Bybit's BTC spread widened 3-fold": (
        'max_over_time(deleverage_book_spread_ratio{venue="bybit", symbol="BTCUSDT"}[10m])'
        ' > 3 * min_over_time(deleverage_book_spread_ratio{venue="bybit", symbol="BTCUSDT"}[10m])'
    ),
    "its top of book thinned by half": (
        f"min_over_time({BTC_TOP}[10m:1s]) < 0.5 * max_over_time({BTC_TOP}[10m:1s])"
    ),
    "its depth within 1 % thinned by a third": (
        f"min_over_time({BTC_DEPTH}[10m:1s]) < 0.67 * max_over_time({BTC_DEPTH}[10m:1s])"
    ),
    "its fragility is exported for it (0: its baselines need 20 minutes of books)": (
        'deleverage_pressure_fragile{venue="bybit", symbol="BTCUSDT"}'
    ),
    "the asset's count of fragile instruments": 'deleverage_asset_fragile_instruments{asset="BTC"}',
}
"""What the asset drill-down's liquidity row shows of ``long_unwind``'s cascade on BTC: the
spread widening, the top of the book and the depth within 1 % of mid thinning, as the
simulated book does; the fragility panels' series (the warning itself needs the detector's
liquidity baselines, 20 minutes of books at least: longer than this run)."""


async def test_the_liquidity_row_shows_the_cascade_in_a_real_prometheus(stack: Stack) -> None:
    async def resolve() -> list[Query]:
        return [Query(where, expr) for where, expr in LIQUIDITY_CASCADE.items()]

    _, empty = await _until_all_have_data(stack, resolve, DEADLINE_S + 30)
    assert not empty, "not seen:\n" + "\n".join(f"{q.where}: {q.expr}" for q in empty)


async def test_every_recording_rule_and_its_expression_find_data(stack: Stack) -> None:
    rules = recording_rules()

    async def resolve() -> list[Query]:
        return [Query(f"record {name}", name) for name, _ in rules] + [
            Query(f"expr of {name}", expr) for name, expr in rules
        ]

    count, empty = await _until_all_have_data(stack, resolve)
    assert count == 2 * len(rules)
    assert not empty, "without data:\n" + "\n".join(f"{q.where}: {q.expr}" for q in empty)


async def test_prometheus_scrapes_the_service_and_evaluates_every_rule_without_error(
    stack: Stack,
) -> None:
    targets = (await stack.prometheus.get("/api/v1/targets"))["data"]["activeTargets"]
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [("deleverage", "up")], targets
    groups = (await stack.prometheus.get("/api/v1/rules"))["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 20
    bad = [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] == "err"]
    assert not bad


async def test_promtool_check_metrics_is_clean_on_the_live_service(stack: Stack) -> None:
    promtool = need("promtool")
    async with httpx.AsyncClient(base_url=stack.service_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    for name in ("deleverage_pressure_side", "deleverage_instrument_info"):
        assert f"\n{name}{{" in text, f"{name} missing from the live /metrics"
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(text.encode()), timeout=30)
    assert (proc.returncode, output.decode()) == (0, "")
