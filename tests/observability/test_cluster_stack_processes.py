"""The compose file's ``cluster`` profile as plain processes, from ``docker-compose.yml``.

No Docker engine runs here, so each service of the profile runs as a process on loopback,
with the compose file's own command and environment (``.env.example``, simulator lines
uncommented):

* the six ``redis-node-*`` commands (``--cluster-announce-hostname`` and
  ``--cluster-preferred-endpoint-type hostname`` included: the nodes announce ``localhost``,
  a host name the clients must resolve), then ``redis-cluster-init``'s own script, which
  creates the cluster from host names and waits until every node is ``ok``;
* the simulator (Bybit and OKX only: two cores), the two collector shards, the detector, the
  alerts and the API, each ``deleverage run`` with the profile's command and environment;
* Prometheus with ``config/prometheus/cluster.yml``, scraping every process.

Only host names and ports are rewritten (compose's DNS names and fixed ports become
``localhost``/127.0.0.1 and free ports), plus one configuration file of the test's that turns
the other venues off. Then data flows end to end: both shards' instruments are collected,
scored by the detector and served by the API, and Prometheus scrapes every process.

The detector shards (``detect-0``, ``detect-1``: ``run --only detect --shard I/2``) run as
the compose file writes them: each scores its own assets, and ``detect-0`` the market.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import yaml
from cluster_support import free_cluster_ports
from obs_support import REPO, Json, Prometheus, compose, env_example, need, start, stop, wait_http
from procs_support import free_port
from test_stack_processes import SIMULATOR_BASE, _free_base, _localize

from service.shard import asset_owner, owner

pytestmark = pytest.mark.integration

VENUES = ("bybit", "okx")
"""The simulated venues this test runs (the profile's overlay lists every venue)."""
COMPOSE_API_PORT = 8000


def _node_command(service: Json, port: int, data: Path) -> list[str]:
    """A node's compose command on ``port``, announcing ``localhost``, its files in ``data``."""
    command: list[str] = list(service["command"])
    command[command.index("--port") + 1] = str(port)
    command[command.index("--cluster-announce-hostname") + 1] = "localhost"
    data.mkdir()
    return [need(command[0]), *command[1:], "--bind", "127.0.0.1", "--dir", str(data)]


def _localize_redis_url(url: str, ports: dict[str, int]) -> str:
    """``redis+cluster://redis-node-0:6379?node=redis-node-1:6379`` -> the local ports."""

    def one(m: re.Match[str]) -> str:
        assert m[2] == "6379", url
        return f"localhost:{ports[m[1]]}"

    return re.sub(r"(redis-node-\d):(\d+)", one, url)


async def _prometheus(
    tmp: Path, targets: dict[str, str]
) -> tuple[Prometheus, asyncio.subprocess.Process, list[str]]:
    """Prometheus with a copy of ``config/prometheus/`` whose ``cluster.yml`` targets are
    ``targets`` (compose target -> local address)."""
    conf = tmp / "prometheus"
    shutil.copytree(REPO / "config" / "prometheus", conf)
    main = conf / "cluster.yml"
    config = yaml.safe_load(main.read_text())
    (job,) = config["scrape_configs"]
    (static,) = job["static_configs"]
    static["targets"] = [targets[t] for t in static["targets"] if t in targets]
    main.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await start(
        [need("prometheus"), f"--config.file={main}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        tmp / "prometheus.log",
    )  # fmt: skip
    prometheus = Prometheus(f"http://127.0.0.1:{port}", time.time())
    await wait_http(f"{prometheus.base_url}/-/ready", 30)
    return prometheus, proc, static["targets"]


async def test_the_cluster_profile_runs_as_processes_and_data_flows_end_to_end(
    tmp_path: Path,
) -> None:
    for tool in ("redis-server", "redis-cli", "prometheus", "sh"):
        need(tool)
    doc = compose(env_example(uncomment_simulator=True))
    services: dict[str, Json] = doc["services"]
    cluster = {n: s for n, s in services.items() if "cluster" in s.get("profiles", [])}
    env_base = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
    procs: dict[str, asyncio.subprocess.Process] = {}
    prometheus: Prometheus | None = None
    prometheus_proc: asyncio.subprocess.Process | None = None

    def alive() -> None:
        dead = {n: p.returncode for n, p in procs.items() if p.returncode is not None}
        assert not dead, f"{dead}\n{_logs(tmp_path)}"

    try:
        # The Redis Cluster: the six node commands, then the init job's script.
        nodes = sorted(n for n in cluster if n.startswith("redis-node-"))
        ports = dict(zip(nodes, free_cluster_ports(len(nodes)), strict=True))
        for name in nodes:
            argv = _node_command(cluster[name], ports[name], tmp_path / name)
            procs[name] = await start(argv, tmp_path / f"{name}.log")
        init = cluster["redis-cluster-init"]
        for name in nodes:  # the init job's depends_on: healthy (redis-cli ping)
            await _until_ping(ports[name], alive)
        command: list[str] = init["command"]
        assert command[:2] == ["sh", "-euc"]
        nodes_env = " ".join(
            f"localhost:{ports[n.split(':')[0]]}"
            for n in init["environment"]["CLUSTER_NODES"].split()
        )
        for attempt in range(2):  # a second run finds the cluster formed and only waits
            code, out = await _run(command, env_base | {"CLUSTER_NODES": nodes_env})
            assert code == 0, (attempt, out)
            assert out.strip().endswith("cluster ok"), out
            assert ("Performing Cluster Check" in out) == (attempt == 0), out
        code, out = await _run([need("redis-cli"), "-p", str(ports[nodes[0]]), "cluster", "slots"])
        slots = out.split()
        assert "localhost" in slots  # the endpoints clients get are the announced host names

        # The simulator: the compose command, its base port moved, two venues.
        sim_cmd: list[str] = list(services["simulator"]["command"])
        assert int(sim_cmd[sim_cmd.index("--base-port") + 1]) == SIMULATOR_BASE
        base = _free_base(18)
        sim_cmd[sim_cmd.index("--base-port") + 1] = str(base)
        sim_cmd[sim_cmd.index("--host") + 1] = "127.0.0.1"
        sim_cmd += [a for v in VENUES for a in ("--venue", v)]
        procs["simulator"] = await start(
            [sys.executable, "-m", "service", *sim_cmd], tmp_path / "simulator.log",
            cwd=REPO, env=env_base,
        )  # fmt: skip

        # The deleverage processes: the profile's command and environment, hosts localized.
        overlay = yaml.safe_load(doc["configs"]["simulator-venues"]["content"])
        for venue in overlay["venues"].values():
            for key in ("ws_url", "rest_url"):
                venue[key] = _localize(venue[key], "simulator", base)
        overlay_path = tmp_path / "simulator.yaml"
        overlay_path.write_text(yaml.safe_dump(overlay))
        only_path = tmp_path / "only-these-venues.yaml"  # the test's: two cores
        only_path.write_text(yaml.safe_dump({
            "venues": {v: {"enabled": False} for v in overlay["venues"] if v not in VENUES}
        }))  # fmt: skip
        api_ports: dict[str, int] = {}
        for name, service in sorted(cluster.items()):
            if service.get("command", [""])[0] != "run":
                continue
            args = list(service["command"])
            environment: dict[str, str] = dict(service["environment"])
            (mount,) = service["configs"]
            files = environment["DELEVERAGE_CONFIG"].split(",")
            assert files == ["config/default.yaml", mount["target"]], files
            environment["DELEVERAGE_CONFIG"] = ",".join(
                [files[0], str(overlay_path), str(only_path)]
            )
            environment["DELEVERAGE_REDIS_URL"] = _localize_redis_url(
                environment["DELEVERAGE_REDIS_URL"], ports
            )
            assert environment["DELEVERAGE_API__PORT"] == str(COMPOSE_API_PORT)
            api_ports[name] = free_port()
            environment |= {
                "DELEVERAGE_API__HOST": "127.0.0.1",
                "DELEVERAGE_API__PORT": str(api_ports[name]),
                "DELEVERAGE_LOG_FORMAT": "console",
            }
            procs[name] = await start(
                [sys.executable, "-m", "service", *args], tmp_path / f"{name}.log",
                cwd=REPO, env=env_base | environment,
            )  # fmt: skip
        assert {
            "collect-0",
            "collect-1",
            "detect-0",
            "detect-1",
            "alerts",
            "api",
        } <= api_ports.keys()
        for port in api_ports.values():  # the compose healthcheck's URL, port moved
            await _until_http(f"http://127.0.0.1:{port}/healthz", alive, 60)

        # Prometheus (cluster.yml) scrapes every process.
        targets = {f"{n}:{COMPOSE_API_PORT}": f"127.0.0.1:{p}" for n, p in api_ports.items()}
        prometheus, prometheus_proc, scraped = await _prometheus(tmp_path, targets)
        assert sorted(scraped) == sorted(targets.values())

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api_ports['api']}", timeout=5
        ) as http:
            # Both shards write both venues' health; the API merges them.
            async def venues_connected() -> bool:
                items = (await http.get("/v1/venues")).json()["items"]
                found = {v["venue"]: v for v in items}
                return all(
                    v in found and found[v]["connected"] and found[v]["shards"] == ["0/2", "1/2"]
                    for v in VENUES
                )

            await _until(venues_connected, alive, 60, "both venues connected through 2 shards")

            # Scores for instruments of both collector shards, of assets of both detector
            # shards, and liquidations.
            async def scored_both() -> bool:
                items = (await http.get("/v1/pressure", params={"limit": 500})).json()["items"]
                collected = {owner(p["venue"], p["symbol"], 2) for p in items}
                detected = {asset_owner(p["asset"], 2) for p in items}
                return collected == detected == {0, 1}

            await _until(scored_both, alive, 90, "scores of both collector and detector shards")

            async def liquidations() -> bool:
                items = (await http.get("/v1/liquidations", params={"limit": 100})).json()["items"]
                return {owner(i["venue"], i["symbol"], 2) for i in items} == {0, 1}

            await _until(liquidations, alive, 90, "liquidations of both shards")
            assert (await http.get("/readyz")).status_code == 200, _logs(tmp_path)

        async def all_up() -> bool:
            assert prometheus is not None
            result = await prometheus.query('up{job="deleverage"} == 1')
            return len(result) == len(targets)

        await _until(all_up, alive, 45, "Prometheus scraping every process")
        shards = await prometheus.query("deleverage_collect_shard_info")
        assert sorted(r["metric"]["shard"] for r in shards) == ["0/2", "1/2"]
    finally:
        if prometheus is not None:
            await prometheus.http.aclose()
        if prometheus_proc is not None:
            await stop(prometheus_proc)
        for proc in reversed(procs.values()):
            await stop(proc)


async def _until(
    cond: Callable[[], Awaitable[bool]], alive: Callable[[], None], within_s: float, what: str
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        alive()
        if await cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.5)


async def _until_ping(port: int, alive: Callable[[], None]) -> None:
    async def ping() -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.write(b"PING\r\n")
        ok = (await reader.readline()).startswith(b"+PONG")
        writer.close()
        return ok

    await _until(ping, alive, 20, f"redis node {port}")


async def _until_http(url: str, alive: Callable[[], None], within_s: float) -> None:
    async with httpx.AsyncClient(timeout=2) as http:

        async def ok() -> bool:
            try:
                return (await http.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        await _until(ok, alive, within_s, url)


async def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and output (both streams) of ``argv``, within 60 s."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp.glob("*.log")))
