"""The ``deleverage bench`` command group: one subcommand per scenario, each printing JSON
on stdout (logs go to stderr)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from ..logs import configure


def _print(result: dict[str, Any]) -> None:
    click.echo(json.dumps(result, indent=2))


@click.group()
def bench() -> None:
    """Measure the data path; print the figures as JSON (docs/performance.md)."""
    configure("warning")  # stdout carries only the JSON


@bench.command()
@click.option("--frames", default=100_000, show_default=True, help="Frames to send (at least).")
@click.option(
    "--liquidations",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Liquidation frames per venue per second of venue time (a cascade).",
)
@click.option(
    "--symbols",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Bybit and OKX symbols with ticker / mark / open-interest pushes each second.",
)
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Choice(["all", "path", "collect"]),  # wire.RUNS (imported when it runs)
    help="Service runs to measure (repeatable): every component; path: --only collect "
    "--only detect (parse -> dedup -> Redis -> detector); collect: --only collect "
    "(default: all).",
)
@click.option(
    "--wrap",
    default=None,
    help="A command the service runs under, e.g. 'py-spy record -o profile.txt -f raw --' "
    "(its figures then include the wrapper's cost).",
)
@click.option(
    "--loop",
    "event_loop",
    type=click.Choice(["uvloop", "asyncio"]),
    default=None,
    help="The service's event_loop setting (default: the setting's default).",
)
def wire(
    frames: int,
    liquidations: int,
    symbols: int,
    runs: tuple[str, ...],
    wrap: str | None,
    event_loop: str | None,
) -> None:
    """The service process and a floor consumer reading the same real-shape frames from a
    loopback venue: CPU per event of each, Redis's, and events lost."""
    from .frames import Mix
    from .wire import BenchError, run_wire

    mix = Mix(liquidations, symbols)
    try:
        result = asyncio.run(run_wire(frames, mix, runs or ("all",), wrap, event_loop))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    _print(result)


@bench.command()
@click.option(
    "--instruments",
    "sizes",
    multiple=True,
    type=click.IntRange(min=3),
    help="Instrument counts (repeatable; default: 1000 and 10000).",
)
@click.option("--seconds", default=30, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--liq-share",
    default=0.05,
    show_default=True,
    type=click.FloatRange(min=0, max=1),
    help="Share of the instruments with a liquidation each second.",
)
@click.option(
    "--budget-ms",
    "budgets_ms",
    multiple=True,
    type=click.FloatRange(min=0),
    help="detector.round_budget_ms (repeatable; 0: no budget; default: the setting's "
    "default, then 0).",
)
@click.option(
    "--limit",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="detector.max_evaluations_per_round of every run (0: no limit).",
)
@click.option(
    "--memory/--no-memory",
    default=True,
    show_default=True,
    help="Count the model's bytes per instrument (tracemalloc, a run per size).",
)
@click.option(
    "--liquidity/--no-liquidity",
    default=True,
    show_default=True,
    help="Every instrument's top of book and traded volume each second, and the depth of "
    "the top 20 of each venue, as the collectors send them by default.",
)
def detector(
    sizes: tuple[int, ...],
    seconds: int,
    liq_share: float,
    budgets_ms: tuple[float, ...],
    limit: int,
    memory: bool,
    liquidity: bool,
) -> None:
    """The pressure model's update cost per event, one evaluation tick's p50/p99, and its
    bytes per instrument."""
    from .detector import run_detector

    budgets = budgets_ms or (None, 0.0)
    sizes = sizes or (1000, 10_000)
    _print(run_detector(sizes, seconds, liq_share, budgets, limit, memory, liquidity))


@bench.command()
@click.option("--seconds", default=200, show_default=True, help="Seconds of venue traffic.")
@click.option(
    "--liq-per-s",
    default=500,
    show_default=True,
    help="Liquidation frames per second of traffic (a cascade).",
)
@click.option("--redis-url", default=None, help="Default: a private redis-server.")
@click.option("--flush", is_flag=True, help="Allow emptying a non-empty --redis-url database.")
def pipeline(seconds: int, liq_per_s: int, redis_url: str | None, flush: bool) -> None:
    """Binance frames through the parser alone, then parser → dedup → Redis → model, in
    this process."""
    from .pipeline import run_pipeline

    _print(asyncio.run(run_pipeline(seconds, liq_per_s, redis_url, flush)))


@bench.command()
@click.option("--instruments", default=3000, show_default=True, type=click.IntRange(min=45))
@click.option(
    "--liquidations",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Liquidations per instrument over the last hour.",
)
@click.option("--seconds", default=10, show_default=True, type=click.IntRange(min=1),
              help="Load per endpoint.")  # fmt: skip
@click.option("--connections", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--redis-url", default=None, help="Default: a private redis-server.")
@click.option("--flush", is_flag=True, help="Allow emptying a non-empty --redis-url database.")
@click.option(
    "--code",
    default=None,
    type=click.Path(exists=True, file_okay=False, resolve_path=True),
    help="Run the API from this checkout instead (e.g. another branch's worktree).",
)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="API worker processes (api.workers).")  # fmt: skip
def api(
    instruments: int,
    liquidations: int,
    seconds: int,
    connections: int,
    redis_url: str | None,
    flush: bool,
    code: str | None,
    workers: int,
) -> None:
    """The API process over a synthesized market of --instruments, each GET endpoint under
    wrk: req/s, p50, p99, and the ratio to /healthz's rate."""
    from .api import run_api
    from .wire import BenchError

    try:
        result = asyncio.run(
            run_api(
                instruments, liquidations, seconds, connections, redis_url, flush, code, workers
            )
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    _print(result)


@bench.command()
@click.option("--seconds", default=600, show_default=True, type=click.IntRange(min=10),
              help="Length of the run: 60 % normal, 20 % cascade (10x), 20 % normal.")  # fmt: skip
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=4),
    help="Times each venue's real number of perpetuals (a smoke run: 0.05).",
)
@click.option("--connections", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--wrk-seconds", default=10, show_default=True, type=click.IntRange(min=2),
              help="Length of one wrk run on one endpoint.")  # fmt: skip
@click.option(
    "--venue",
    "venues",
    multiple=True,
    help="Only this venue (repeatable; default: every operating venue).",
)
@click.option("--profile", default=None, type=click.Path(dir_okay=False, resolve_path=True),
              help="Run the service under cProfile, writing its stats here (its figures then "
              "include the profiler's cost).")  # fmt: skip
@click.option("--api-apart", is_flag=True,
              help="Load an API of its own (run --only api) instead of the service's.")  # fmt: skip
@click.option("--liquidity/--no-liquidity", default=True, show_default=True,
              help="Collect traded volume and order book depth (the venues' defaults: depth "
              "for the top 20 by open interest); off: what they cost, by difference.")  # fmt: skip
@click.option("--load/--no-load", "api_load", default=True, show_default=True,
              help="Load the API with wrk; off: the service's CPU is the market's.")  # fmt: skip
@click.option("--service-log", default=None,
              type=click.Path(dir_okay=False, writable=True, resolve_path=True),
              help="Keep the service's log (JSON lines) in this file.")  # fmt: skip
def market(seconds: int, scale: float, connections: int, wrk_seconds: int,
           venues: tuple[str, ...], profile: str | None, api_apart: bool,
           liquidity: bool, api_load: bool, service_log: str | None) -> None:  # fmt: skip
    """The whole market from the simulators (every venue at its real listing size and push
    rates, a 10x cascade), the real service consuming it and its API under wrk."""
    from .market import run_market
    from .wire import BenchError

    try:
        result = asyncio.run(
            run_market(seconds, scale, connections, wrk_seconds, only=venues, profile=profile,
                       api_apart=api_apart, liquidity=liquidity, api_load=api_load,
                       service_log=service_log)
        )  # fmt: skip
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    _print(result)


@bench.command()
@click.option(
    "--shards",
    "shard_counts",
    multiple=True,
    type=click.IntRange(1, 64),
    help="Collector shard counts to measure (repeatable; default: 1, 2 and 4).",
)
@click.option("--events", default=200_000, show_default=True, type=click.IntRange(min=1),
              help="Events to send (at least), the same for every shard count.")  # fmt: skip
@click.option(
    "--liquidations",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="OKX liquidation frames per round, on the all-market channel every shard reads.",
)
@click.option(
    "--store",
    type=click.Choice(["single", "cluster"]),
    default="single",
    show_default=True,
    help="A private Redis, or a private Redis Cluster of 3 masters and 3 replicas.",
)
def scale(shard_counts: tuple[int, ...], events: int, liquidations: int, store: str) -> None:
    """The same market load through 1, 2 and 4 collector shard processes (run --only
    collect --shard I/N): events/s, CPU per event of the shards, Redis and the load
    generator, and latency from frame received to stored."""
    from .scale import run_scale
    from .wire import BenchError

    try:
        result = asyncio.run(run_scale(shard_counts or (1, 2, 4), events, liquidations, store))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    _print(result)
