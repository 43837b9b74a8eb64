"""The ``deleverage`` command: ``run``, ``demo``, ``simulate``, ``evaluate``, ``backtest``,
``bench``, ``check-config`` and ``check-venues``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from . import __version__
from .bench.command import bench
from .config import Settings
from .errors import ConfigError
from .logs import configure
from .preflight import load_checked
from .process import EventLoop, runner, settle_heap
from .redact import scrub
from .shard import Shard
from .venues import REGISTRY

_config_option = click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML file(s), later ones win (default: $DELEVERAGE_CONFIG or config/default.yaml).",
)


def _settings(config_files: tuple[Path, ...], **overrides: Any) -> Settings:
    """The validated settings, or exit 1 with a message naming the key (never a secret)."""
    try:
        return load_checked(list(config_files) or None, **overrides)
    except ConfigError as exc:
        raise click.ClickException(scrub(str(exc))) from None


def _configure(settings: Settings) -> None:
    configure(settings.log_level, settings.log_format, secrets=settings.secret_values())


def _run(coro: Coroutine[Any, Any, Any], service: EventLoop | None = None) -> Any:
    """``asyncio.run(coro)``; for the service (``run``, ``demo``), on the ``event_loop``
    setting's loop and with its GC policy (:mod:`.process`)."""
    try:
        with asyncio.Runner() if service is None else runner(service) as loop:
            return loop.run(coro)
    except ConfigError as exc:
        raise click.ClickException(scrub(str(exc))) from None
    except KeyboardInterrupt:
        return None


@click.group()
@click.version_option(__version__, prog_name="deleverage")
def main() -> None:
    """Watch derivatives venues and tell when leverage is being unwound."""


@main.command()
@_config_option
@click.option(
    "--only",
    type=click.Choice(["collect", "detect", "api", "alerts"]),
    multiple=True,
    help="Run only these components (repeatable); default: all.",
)
@click.option(
    "--shard",
    metavar="I/N",
    default=None,
    help="Run shard I of N (0 <= I < N): with --only collect, collect only its instruments "
    "(sets collect.shard); with --only detect, score only its assets (sets detect.shard); "
    "--only api may run beside either for its /metrics (docs/scaling.md).",
)
def run(config_files: tuple[Path, ...], only: tuple[str, ...], shard: str | None) -> None:
    """Collectors, detector, REST API and /metrics against the configured venues."""
    from .runtime import Component, Runtime, install_signal_handlers

    settings = _settings(config_files)
    if shard is not None:
        try:
            parsed = Shard.parse(shard)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
        # the shard of each sharded component the process runs (a detector's, or else the
        # collectors' as before: a process of neither ignores it)
        if "detect" in only or not only:
            detect = settings.detect.model_copy(update={"shard": parsed})
            settings = settings.model_copy(update={"detect": detect})
        if "collect" in only or "detect" not in only:
            collect = settings.collect.model_copy(update={"shard": parsed})
            settings = settings.model_copy(update={"collect": collect})
    _configure(settings)
    if settings.api.workers > 1:
        if set(only) != {"api"}:
            raise click.ClickException(
                f"api.workers is {settings.api.workers}: the API workers run as their own "
                "processes; start them with `deleverage run --only api`, and the other "
                "components in another process (e.g. `--only collect --only detect --only "
                "alerts`)"
            )
        from .workers import serve

        serve(settings, list(config_files))
        return

    async def go() -> None:
        runtime = Runtime(settings, {Component(c) for c in only} or None)
        # What start-up built (modules, the app, settings: most of the heap) lives as long
        # as the process: out of the collector's reach, a full collection scans only what
        # came after, not 300,000 objects (pauses of 150-200 ms under the API's churn).
        settle_heap("runtime built")
        task = asyncio.create_task(runtime.run())
        install_signal_handlers(task)
        with contextlib.suppress(asyncio.CancelledError):  # SIGTERM/SIGINT: a clean stop
            await task

    _run(go(), settings.event_loop)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--base-port",
    default=9400,
    show_default=True,
    type=int,
    help="Venue i listens on base+2i (websocket) and base+2i+1 (REST); 0: any free ports.",
)
@click.option("--venue", "venues", multiple=True, help="Only these venues (default: all).")
@click.option("--scenario", default="long_unwind", show_default=True)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Scenario seconds per wall second.",
)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--urls-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write each venue's websocket and REST URLs here (JSON) once listening.",
)
@click.option(
    "--drift",
    "drifts",
    multiple=True,
    metavar="VENUE:KIND=VALUE",
    help="Play a protocol change (repeatable): retire_channel=<name>, rename_field=<old>:<new> "
    "or silence=<regex> (frames matching it are not sent).",
)
@click.option("--log-level", default="info", show_default=True)
def simulate(
    host: str,
    base_port: int,
    venues: tuple[str, ...],
    scenario: str,
    time_scale: float,
    seed: int,
    urls_file: Path | None,
    drifts: tuple[str, ...],
    log_level: str,
) -> None:
    """Local venue servers (websocket + REST, real protocols) playing a labelled scenario."""
    from .simulate import SCENARIOS
    from .simulate.drift import ProtocolDrift
    from .simulate.runner import run_forever
    from .venues import SIMULATORS

    drifted: dict[str, ProtocolDrift] = {}
    for spec in drifts:
        venue, colon, rest = spec.partition(":")
        if not colon or venue not in SIMULATORS:
            raise click.BadParameter(f"VENUE:KIND=VALUE, VENUE one of {', '.join(SIMULATORS)}",
                                     param_hint="--drift")  # fmt: skip
        try:
            drifted[venue] = drifted.get(venue, ProtocolDrift()).merge(ProtocolDrift.parse(rest))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--drift") from None

    if scenario not in SCENARIOS:
        raise click.BadParameter(
            f"choose from {', '.join(sorted(SCENARIOS))}", param_hint="--scenario"
        )
    for venue in venues:
        if venue not in SIMULATORS:
            raise click.BadParameter(f"choose from {', '.join(SIMULATORS)}", param_hint="--venue")
    configure(log_level)
    _run(
        run_forever(
            SIMULATORS,
            host=host,
            base_port=base_port,
            scenario=scenario,
            time_scale=time_scale,
            seed=seed,
            venues=venues or None,
            urls_file=urls_file,
            drifts=drifted,
        )
    )


@main.command()
@_config_option
@click.option("--port", default=8000, show_default=True, type=int, help="API and /metrics port.")
@click.option("--scenario", default="long_unwind", show_default=True)
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after this many seconds and print the run's figures as JSON.",
)
def demo(config_files: tuple[Path, ...], port: int, scenario: str, duration: float | None) -> None:
    """Simulator + embedded Redis + collectors + detector + API, on 127.0.0.1, in one command."""
    from .demo import run_demo

    defaults = [Path("config/default.yaml"), Path("config/demo.yaml")]
    files = list(config_files) or [f for f in defaults if f.exists()]  # named ones must exist
    settings = _settings(tuple(files))
    _configure(settings)
    _run(
        run_demo(settings, files, port=port, scenario=scenario, duration_s=duration),
        settings.event_loop,
    )


def _names(values: tuple[str, ...]) -> list[str]:
    """Repeatable options that also take comma-separated lists."""
    return [n for v in values for n in v.split(",") if n]


@main.command()
@_config_option
@click.option("--seeds", default=20, show_default=True, type=int, help="Seeds per kind.")
@click.option("--first-seed", default=0, show_default=True, type=int)
@click.option("--kinds", "kinds", multiple=True, help="Scenario kinds (default: all).")
@click.option(
    "--venues", "venues", multiple=True, help="Venues played (default: binance_usdm, bybit, okx)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
@click.option(
    "--slow-step",
    default=10.0,
    show_default=True,
    help="Seconds per market step in slow phases (fast phases: 1).",
)
@click.option(
    "--slow-eval",
    default=30.0,
    show_default=True,
    help="Seconds between evaluations in slow phases (fast phases: 1).",
)
@click.option("--all-contracts", is_flag=True, help="Every simulated contract, not one per asset.")
@click.option("--grace", default=900.0, show_default=True, help="Seconds after a label's end.")
@click.option("--warmup", default=1800.0, show_default=True, help="Seconds not scored at start.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@click.option(
    "--suite",
    type=click.Choice(["all", "synthetic", "real", "liquidity"]),
    default="all",
    show_default=True,
    help="The simulator's scenarios, the labelled real history, or both; or the lead time "
    "with and without the liquidity features on the scenarios where liquidity moves first.",
)
@click.option(
    "--real-data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The shared real data (default: $DELEVERAGE_SHARED_DATA or ../shared/data).",
)
@click.option(
    "--real-set",
    type=click.Choice(["all", "tuning", "judging"]),
    default="all",
    show_default=True,
    help="Real episodes and calm stretches used to tune, held out to judge, or both.",
)
@click.option("--real-datasets", multiple=True, help="Real data sets to play (default: all).")
def evaluate(
    config_files: tuple[Path, ...],
    seeds: int,
    first_seed: int,
    kinds: tuple[str, ...],
    venues: tuple[str, ...],
    as_json: bool,
    out: Path | None,
    slow_step: float,
    slow_eval: float,
    all_contracts: bool,
    grace: float,
    warmup: float,
    quiet: bool,
    suite: str,
    real_data: Path | None,
    real_set: str,
    real_datasets: tuple[str, ...],
) -> None:
    """Play the labelled scenario suite and the labelled real history through the detector
    and print how it did (docs/evaluation.md)."""
    from .evaluate.command import run_evaluate

    settings = _settings(config_files)
    configure("warning", secrets=settings.secret_values())
    try:
        run_evaluate(
            settings,
            seeds=range(first_seed, first_seed + seeds),
            kinds=_names(kinds),
            venues=_names(venues),
            as_json=as_json,
            out=out,
            pace=(slow_step, slow_eval, all_contracts),
            grace_s=grace,
            warmup_s=warmup,
            quiet=quiet,
            suite=suite,
            real_data=real_data,
            real_sets=("tuning", "judging") if real_set == "all" else (real_set,),
            real_datasets=_names(real_datasets),
        )
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0])) from None
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@_config_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--col", "columns", multiple=True, help="FIELD=COLUMN, e.g. time=timestamp.")
@click.option(
    "--venue", "venue", multiple=True, help="Venue of files without one (once, or per file)."
)
@click.option(
    "--symbol", "symbol", multiple=True, help="Symbol of files without one (once, or per file)."
)
@click.option(
    "--bar", "bar", default=None, help="Resample to this bar size (1h, 1d...) when coarser."
)
@click.option("--since", default=None, help="First bar time (ISO 8601, UTC).")
@click.option("--until", default=None, help="Last bar time (ISO 8601, UTC).")
@click.option(
    "--only", "only", multiple=True, help="Keep: VENUE:SYMBOL, VENUE:*, SYMBOL or asset (lists)."
)
@click.option("--exclude", "exclude", multiple=True, help="Drop: the same forms as --only.")
@click.option(
    "--prices",
    "prices",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A price file serving every instrument of the same asset without a price.",
)
@click.option(
    "--prices-venue", "price_venues", multiple=True, help="Venues of --prices, preferred first."
)
@click.option("--sampled", "sampled", multiple=True, help="Venues whose liquidations are a sample.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Intervals as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Print the intervals as JSON.")
def backtest(
    config_files: tuple[Path, ...],
    paths: tuple[str, ...],
    columns: tuple[str, ...],
    venue: tuple[str, ...],
    symbol: tuple[str, ...],
    bar: str | None,
    since: str | None,
    until: str | None,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    prices: tuple[Path, ...],
    price_venues: tuple[str, ...],
    sampled: tuple[str, ...],
    out: Path | None,
    as_json: bool,
) -> None:
    """Run the detector over historical bars (CSV or Parquet), in real time, and print its
    state intervals (instrument, asset and market scopes)."""
    from .backtest.command import run_backtest

    settings = _settings(config_files)
    configure("warning", secrets=settings.secret_values())
    try:
        run_backtest(
            settings,
            [Path(p) for p in paths],
            columns=list(columns),
            venue=list(venue) or None,
            symbol=list(symbol) or None,
            bar=bar,
            since=since,
            until=until,
            only=_names(only),
            exclude=_names(exclude),
            prices=list(prices),
            price_venues=_names(price_venues),
            sampled=_names(sampled),
            out=out,
            as_json=as_json,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("check-config")
@_config_option
def check_config(config_files: tuple[Path, ...]) -> None:
    """Validate the configuration and print it as JSON, secrets masked; exit 1 with a
    message naming the key if anything would fail at run time."""
    settings = _settings(config_files)
    click.echo(settings.model_dump_json(indent=2))


@main.command("check-venues")
@_config_option
@click.option(
    "--venue", "venues", multiple=True, help="Only these enabled venues (default: every one)."
)
@click.option(
    "--timeout",
    "timeout_s",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds per venue (venues are checked at the same time).",
)
@click.option(
    "--symbols-per-group",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Symbols subscribed per kind of contract when the venue is configured with all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check_venues(
    config_files: tuple[Path, ...],
    venues: tuple[str, ...],
    timeout_s: float,
    symbols_per_group: int,
    as_json: bool,
) -> None:
    """Connect to each enabled venue with the configured URLs, subscribe to every channel the
    service uses, and check the acknowledgements, the first frames and their fields against
    the parsers; exit 1 if any venue fails (docs/venues.md: "When a venue changes its API")."""
    from .collect.probe import check_venues as run_checks
    from .collect.probe_report import as_json as render_json
    from .collect.probe_report import table

    settings = _settings(config_files)
    # The parsers' own warnings (a refused subscription...) are in the report already.
    configure("error", settings.log_format, secrets=settings.secret_values())
    enabled = {n: v for n, v in settings.enabled_venues().items() if v.ccxt is None}
    for name in _names(venues):
        if name not in enabled:
            known = settings.venues.get(name)
            why = "not configured" if known is None else "polled through ccxt (no websocket)"
            if known is not None and not known.enabled:
                retired = REGISTRY[name].retired if name in REGISTRY else None
                why = "disabled" + (f" (retired: {retired})" if retired else "")
            raise click.BadParameter(f"{name}: {why}; enable it to check it", param_hint="--venue")
    chosen = {n: enabled[n] for n in _names(venues)} if venues else enabled
    if not chosen:
        raise click.ClickException("no native venue is enabled in the configuration")
    results = _run(run_checks(chosen, timeout_s=timeout_s, per_group=symbols_per_group))
    click.echo(render_json(results) if as_json else table(results))
    if any(r.verdict == "fail" for r in results):
        sys.exit(1)


main.add_command(bench)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
