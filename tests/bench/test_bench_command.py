"""``deleverage bench``: each scenario at a tiny size prints JSON of the documented shape
whose invariants hold (nothing lost, every figure present). Timings are never checked."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from service.bench.frames import BINANCE, BYBIT, OKX, Mix, plan, topics_of
from service.cli import main
from service.config import DetectorSettings, VenueSettings
from service.venues import REGISTRY
from service.venues.base import Instrument


def _bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def _markets() -> dict[str, dict[str, Instrument]]:
    return {
        BINANCE: {s: Instrument(BINANCE, s, s[:-4], "USDT", True) for s in ("BTCUSDT", "ETHUSDT")},
        BYBIT: {s: Instrument(BYBIT, s, s[:-4], "USDT", True) for s in ("BTCUSDT", "SOLUSDT")},
        OKX: {
            s: Instrument(OKX, s, s.split("-")[0], "USDT", True, 0.01)
            for s in ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
        },
    }


def test_every_planned_frame_has_a_topic_the_venue_subscribes_to() -> None:
    markets = _markets()
    frames = plan(markets, 50, Mix(liquidations=3, symbols=2), 1_760_000_000_000)
    for venue, insts in markets.items():
        settings = VenueSettings(ws_url=f"ws://127.0.0.1:1/{venue}", rest_url="http://127.0.0.1:1")
        conns = REGISTRY[venue](settings).connections(insts)
        subscribed = {t for c in conns for m in c.subscribe for t in topics_of(venue, m)}
        sent = {f.topic for f in frames if f.venue == venue}
        assert sent
        assert sent <= subscribed, sent - subscribed


@pytest.mark.integration
def test_wire_stores_every_event_sent_through_the_service() -> None:
    out = _bench("wire", "--frames", "1500", "--liquidations", "20", "--symbols", "5",
                 "--run", "all", "--run", "path", "--run", "collect")  # fmt: skip
    assert out["scenario"] == "wire"
    assert out["frames"] >= 1500
    assert set(out["instruments"]) == {BINANCE, BYBIT, OKX}
    assert all(out["instruments"].values())
    sent = out["events_sent"]
    assert sent == sum(out["events_by_venue_kind"].values()) > 0
    assert {k.split(":")[0] for k in out["events_by_venue_kind"]} == {BINANCE, BYBIT, OKX}
    assert out["floor"]["events_read"] > 0
    assert out["floor"]["cpu_us_per_event"] > 0
    assert set(out["service"]) == {"all", "path", "collect"}
    for run in out["service"].values():
        assert run["events_lost"] == 0
        assert run["events_stored"] == sent
        assert run["cpu_us_per_event"] > 0
        assert run["ratio_to_floor"] > 0
        assert run["redis_cpu_us_per_event"] > 0
        assert run["detector_pressure_keys"] >= 0
    assert out["service"]["collect"]["command"] == "run --only collect"
    assert out["service"]["path"]["command"] == "run --only collect --only detect"
    assert out["service"]["collect"]["detector_pressure_keys"] == 0  # no detector there
    assert out["cpus"] >= 1
    assert set(out["versions"]) == {"python", "websockets", "picows", "uvloop"}
    assert {run["event_loop"] for run in out["service"].values()} == {"asyncio"}  # the default


@pytest.mark.integration
def test_wire_under_a_wrapper_stops_the_service_so_the_wrapper_ends_by_itself(
    tmp_path: Path,
) -> None:
    # A wrapper that, like py-spy, writes its output once its child has exited and dies
    # without writing on a SIGTERM of its own.
    out = tmp_path / "wrapper.out"
    wrapper = (
        "import subprocess, sys; r = subprocess.run(sys.argv[2:]); "
        "open(sys.argv[1], 'w').write(str(r.returncode))"
    )
    wrap = shlex.join([sys.executable, "-c", wrapper, str(out)])
    result = _bench("wire", "--frames", "300", "--liquidations", "5", "--symbols", "2",
                    "--wrap", wrap, "--loop", "uvloop")  # fmt: skip
    assert result["service"]["all"]["events_lost"] == 0
    assert result["service"]["all"]["event_loop"] == "uvloop"  # the option, through the service
    assert out.read_text() == "0"  # the service stopped cleanly, then the wrapper wrote


def test_detector_reports_update_and_tick_costs_per_size() -> None:
    out = _bench("detector", "--instruments", "30", "--instruments", "60", "--seconds", "3")
    assert out["scenario"] == "detector"
    default = DetectorSettings().round_budget_ms
    assert [(r["instruments"], r["round_budget_ms"]) for r in out["runs"]] == [
        (30, default), (30, 0), (60, default), (60, 0)
    ]  # fmt: skip
    for run in out["runs"]:
        assert run["events"] > 2 * run["instruments"] * run["seconds"]
        assert run["update_us_per_event"] > 0
        assert run["first_tick_scored"] == run["instruments"]  # nothing scored before it
        assert 0 < run["tick_ms_p50"] <= run["tick_ms_p99"] <= run["tick_ms_max"]
        assert run["deferred_per_tick_max"] == 0  # under the limit
        assert 0 < run["oldest_score_s"] <= 10  # a calm instrument's wait, at most 9 rounds
        assert run["model_cost_us"] > 0
        # resident memory moves with the allocator at these sizes: its shape, not its value
        assert isinstance(run["rss_grown_mb"], float)
        assert isinstance(run["kb_per_instrument"], float)
    assert [m["instruments"] for m in out["memory"]] == [30, 60]  # tracemalloc, one per size
    for m in out["memory"]:
        assert min(m["rings"], m["baselines"], m["other"]) > 0
        assert abs(m["rings"] + m["baselines"] + m["other"] - m["bytes_per_instrument"]) <= 2
        cap = m["at_capacity"]
        assert cap["baselines"] > m["baselines"]  # a day seeded is not every baseline full
        assert abs(cap["rings"] + cap["baselines"] - cap["bytes_per_instrument"]) <= 1


def test_the_detector_bench_sends_the_liquidity_events_unless_told_not_to() -> None:
    args = ("detector", "--instruments", "90", "--seconds", "3", "--budget-ms", "0",
            "--no-memory")  # fmt: skip
    with_, without = _bench(*args), _bench(*args, "--no-liquidity")
    assert (with_["liquidity"], without["liquidity"]) == (True, False)
    # 4 seconds (0-3): each instrument's top of book and volume, and the depth of the first
    # 20 of each of the 3 venues (60 of the 90)
    added = 4 * (2 * 90 + 3 * 20)
    assert with_["runs"][0]["events"] - without["runs"][0]["events"] == added


def test_the_detector_bench_prints_json_alone_on_stdout() -> None:
    # its runs are processes of their own: their logs ("heap settled") go to stderr too
    argv = [sys.executable, "-m", "service", "bench", "detector", "--instruments", "30",
            "--seconds", "2", "--budget-ms", "0", "--no-memory"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout)["scenario"] == "detector"
    assert "heap settled" in done.stderr


def test_the_detector_bench_shows_what_a_round_limit_defers() -> None:
    out = _bench("detector", "--instruments", "60", "--seconds", "4", "--limit", "20",
                 "--budget-ms", "0", "--no-memory")  # fmt: skip
    (run,) = out["runs"]
    assert out["memory"] == []  # --no-memory
    assert (run["max_evaluations_per_round"], run["round_budget_ms"]) == (20, 0)
    assert run["model_cost_us"] > 0
    assert run["first_tick_scored"] == 20
    assert run["scored_per_tick"] <= 20
    assert run["deferred_per_tick_max"] > 0  # 60 never scored, 20 a round
    assert run["oldest_score_s"] >= 1


@pytest.mark.integration
def test_pipeline_takes_every_parsed_event_into_the_model() -> None:
    out = _bench("pipeline", "--seconds", "2", "--liq-per-s", "20")
    assert out["scenario"] == "pipeline"
    assert out["full_path"]["events"] == out["parse_only"]["events"] > 0
    assert out["full_path"]["redis_batches"] >= 1


@pytest.mark.integration
@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)"
)
def test_api_reports_every_endpoint_against_the_healthz_floor() -> None:
    # The command in a process of its own, as users run it: it forks the API, Redis and wrk,
    # and in this test process the other tests' threads (anyio portals, child watchers)
    # would be forked with it; three whole-suite runs hung here, the loop idle, a child alive
    # (cause not found). Its children die with it (PR_SET_PDEATHSIG) if the timeout ends it.
    argv = [sys.executable, "-m", "service", "bench", "api", "--instruments", "60",
            "--liquidations", "2", "--seconds", "1"]  # fmt: skip
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=100)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"bench api still running after 100 s: {exc.stderr!r}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["scenario"] == "api"
    assert out["market"]["instruments"] == 60
    assert out["market"]["venues"] == len(REGISTRY)
    assert out["market"]["liquidations_indexed"] == 120
    assert out["load"] == {"tool": "wrk", "connections": 16, "threads": 1, "seconds": 1}
    endpoints = out["endpoints"]
    assert list(endpoints) == [
        "/healthz", "/v1/pressure?limit=100", "/v1/assets/BTC", "/v1/funding", "/v1/venues",
        "/v1/liquidations?limit=100", "/v1/liquidations?limit=100&cursor=", "/metrics",
    ]  # fmt: skip
    assert endpoints["/healthz"]["ratio_to_healthz"] == 1.0
    for path, figures in endpoints.items():
        assert figures["requests"] > 0, path
        assert figures["non_2xx"] == figures["socket_errors"] == figures["timeouts"] == 0, path
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], path
        assert figures["requests_per_s"] > 0, path
        assert figures["ratio_to_healthz"] > 0, path
        assert figures["api_cpu_share"] >= 0, path


def test_wrk_output_is_read_in_milliseconds() -> None:
    from service.bench.api import parse_wrk

    output = """Running 1s test @ http://127.0.0.1:1/healthz
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.12ms    1.10ms  18.51ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    4.50ms
     90%    5.00ms
     99%    1.20s
  5830 requests in 1.00s, 0.90MB read
  Socket errors: connect 0, read 1, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:   5829.64
Transfer/sec:      0.90MB
"""
    assert parse_wrk(output) == {
        "requests_per_s": 5829.64, "p50_ms": 0.85, "p99_ms": 1200.0, "requests": 5830,
        "non_2xx": 2, "socket_errors": 1, "timeouts": 3,
    }  # fmt: skip


def test_market_without_liquidity_configures_no_trades_and_no_books() -> None:
    from types import SimpleNamespace

    from service.bench.market import Sims, service_config

    sim = SimpleNamespace(ws_base_url="ws://127.0.0.1:1", rest_base_url="http://127.0.0.1:1")
    sims = Sims(clock=None, servers={"bybit": sim, "okx": sim})  # type: ignore[arg-type]
    on, off = (service_config("redis://x", sims, 1, liquidity=f) for f in (True, False))
    for venue in ("bybit", "okx"):
        with_, without = (VenueSettings(**c["venues"][venue]) for c in (on, off))
        assert (with_.volume, with_.depth.top_n) == (True, 20)  # the defaults
        assert (without.volume, without.depth.top_n) == (False, 0)
        assert without.symbols == with_.symbols == "all"
    assert on["venues"]["deribit"] == off["venues"]["deribit"] == {"enabled": False}


@pytest.mark.integration
@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)"
)
def test_market_stores_every_liquidation_the_venues_sent_and_loads_each_endpoint() -> None:
    from service.bench.market import ENDPOINTS, LISTED, PHASES

    # 24 s of normal market: the seven endpoints of a sweep at 2 s each fit in it
    out = _bench("market", "--seconds", "40", "--scale", "0.01", "--wrk-seconds", "2")
    assert out["scenario"] == "market"
    assert set(out["instruments_listed"]) == set(LISTED)  # every operating venue
    for venue, listed in out["instruments_listed"].items():
        # a venue lists its own and the shared market's symbols it has (BNBUSDT...)
        assert out["instruments_loaded"][venue] >= listed, venue
    assert set(out["phases"]) == set(PHASES)
    for phase in out["phases"].values():
        assert phase["seconds"] > 0
        assert phase["service_cpu_share"] > 0
        assert phase["detector_round"]["rounds"] > 0
        read = phase["state_read_delay_ms"]  # sampled from the venues' health every second
        assert read["samples"] > 0
        assert 0 <= read["p50"] <= read["max"]
        ready = phase["not_ready"]  # /readyz asked every second
        assert 0 <= ready["not_ready"] <= ready["samples"]
        assert ready["samples"] > 0
        # a small market's data is written on time (one late second allowed: a loaded CI)
        assert ready["checks"].get("store:writer", 0) <= 1
    rss = out["service_rss_mb"]
    assert 0 < rss["start"] <= rss["peak"]
    assert rss["end"] > 0
    liq = out["liquidations"]
    assert liq["sent"] > 0
    assert liq["lost"] == 0
    assert liq["stored_not_sent"] == 0
    for venue, figures in liq["by_venue"].items():
        assert figures["lost"] == figures["stored_twice"] == 0, venue
        assert figures["stored"] == figures["sent"], venue  # no burst re-sent: no reconnect
    assert liq["frame_to_redis"]["cascade"]["count"] > 0  # ten times the prints
    delays = [v for v in liq["frame_to_redis"].values() if v["count"]]
    assert all(0 <= d["p50_ms"] <= d["p99_ms"] <= d["max_ms"] for d in delays)
    assert sum(d["count"] for d in liq["frame_to_redis"].values()) == liq["stored"]
    counts = {phase: v["count"] for phase, v in liq["frame_to_redis"].items()}
    for part in ("frame_to_read", "read_to_redis"):  # its two parts, per phase
        assert {phase: v["count"] for phase, v in liq[part].items()} == counts, part
        # (1 ms of slack: the service's receive time is whole milliseconds, the send's not)
        assert all(-1 <= v["p50_ms"] <= v["p99_ms"] for v in liq[part].values() if v["count"])
    assert all(n == 0 for n in out["parse_errors"].values())
    stored = out["events_stored"]  # per venue and kind: what each channel added
    assert sum(kinds["liquidation"] for kinds in stored.values()) == liq["stored"]
    assert all(kinds["mark"] > 0 for kinds in stored.values())
    for venue, kinds in stored.items():  # every venue's liquidity channels, by default
        assert kinds["book_top"] > 0, venue
        assert kinds["volume"] > 0, venue
        assert kinds["book_depth"] > 0, venue  # the top 20 by open interest
    assert list(out["endpoints"]["normal"]) == list(ENDPOINTS)  # a sweep, /healthz first
    everything = out["endpoints"]["all"]
    for path, figures in everything.items():
        assert figures["requests"] > 0, path
        assert figures["non_2xx"] == figures["errors"] == 0, path
        assert figures["ratio_to_healthz"] > 0, path
