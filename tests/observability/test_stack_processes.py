"""The compose stack's parts as plain processes, configured from ``docker-compose.yml``.

No Docker engine runs here, so each service of the compose file in its simulator profile
(``.env.example`` with the simulator lines uncommented) runs as a process on loopback:
``redis-server`` with the compose command, ``mosquitto`` with the mounted
``config/mosquitto/mosquitto.conf``, ``deleverage simulate`` and ``deleverage run`` with the
compose command, environment and inline simulator config, and ``prometheus`` with the mounted
``config/prometheus/``. Only host names and ports are rewritten (compose's DNS names and fixed
ports become 127.0.0.1 and free ports). Then: the service's healthcheck answers, Prometheus
scrapes it, every simulated venue is connected, Redis holds the events, Mosquitto relays.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from pathlib import Path

import aiomqtt
import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from obs_support import (
    REPO,
    Json,
    compose,
    env_example,
    need,
    run_prometheus,
    start,
    stop,
)
from procs_support import free_port

from service.config import load_settings

pytestmark = pytest.mark.integration

SIMULATOR_BASE = 9400
"""The simulator's base port in docker-compose.yml (asserted below)."""


def _free_base(count: int) -> int:
    """A base port with ``count`` consecutive free ports above it."""
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def _mount(service: Json, target: str) -> Path:
    """The repository file the service mounts at ``target``."""
    volumes: list[str] = service["volumes"]
    for volume in volumes:
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return REPO / source
    raise AssertionError(f"nothing mounted at {target}")


def _localize(url: str, host: str, base: int) -> str:
    """``ws://simulator:9402/x`` -> ``ws://127.0.0.1:<base+2>/x``."""
    m = re.fullmatch(rf"(\w+)://{host}:(\d+)(.*)", url)
    assert m is not None, url
    return f"{m[1]}://127.0.0.1:{base + int(m[2]) - SIMULATOR_BASE}{m[3]}"


async def test_the_compose_stack_runs_as_processes_with_its_own_config(tmp_path: Path) -> None:
    for tool in ("redis-server", "mosquitto", "prometheus"):
        need(tool)
    doc = compose(env_example(uncomment_simulator=True))
    services: dict[str, Json] = doc["services"]
    env_base = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
    procs: list[asyncio.subprocess.Process] = []
    try:
        # Redis: the compose command, on a free port, its files in tmp.
        redis_port = free_port()
        redis_cmd = services["redis"]["command"]
        procs.append(
            await start(
                [
                    *redis_cmd,
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(tmp_path),
                ],
                tmp_path / "redis.log",
            )
        )
        # Mosquitto: the mounted configuration, listener and persistence moved.
        mqtt_port = free_port()
        conf = _mount(services["mosquitto"], "/mosquitto/config/mosquitto.conf").read_text()
        assert re.search(r"^listener 1883$", conf, re.M)
        (tmp_path / "mosquitto").mkdir()
        conf = re.sub(r"^listener 1883$", f"listener {mqtt_port} 127.0.0.1", conf, flags=re.M)
        conf = re.sub(
            r"^persistence_location .*$",
            f"persistence_location {tmp_path / 'mosquitto'}/",
            conf,
            flags=re.M,
        )
        (tmp_path / "mosquitto.conf").write_text(conf)
        procs.append(
            await start(
                [need("mosquitto"), "-c", str(tmp_path / "mosquitto.conf")],
                tmp_path / "mosquitto.log",
            )
        )
        # The simulator: the compose command, its base port moved.
        sim_cmd: list[str] = list(services["simulator"]["command"])
        i = sim_cmd.index("--base-port")
        assert int(sim_cmd[i + 1]) == SIMULATOR_BASE
        base = _free_base(8)
        sim_cmd[i + 1] = str(base)
        sim_cmd[sim_cmd.index("--host") + 1] = "127.0.0.1"
        procs.append(
            await start(
                [sys.executable, "-m", "service", *sim_cmd],
                tmp_path / "simulator.log",
                cwd=REPO,
                env=env_base,
            )
        )
        # The service: the compose environment and inline simulator config, hosts localized.
        service = services["deleverage"]
        overlay = yaml.safe_load(doc["configs"]["simulator-venues"]["content"])
        for venue in overlay["venues"].values():
            for key in ("ws_url", "rest_url"):
                venue[key] = _localize(venue[key], "simulator", base)
        (mount,) = service["configs"]
        overlay_path = tmp_path / "simulator.yaml"
        overlay_path.write_text(yaml.safe_dump(overlay))
        environment: dict[str, str] = dict(service["environment"])
        files = environment["DELEVERAGE_CONFIG"].split(",")
        environment["DELEVERAGE_CONFIG"] = ",".join(
            str(overlay_path) if f == mount["target"] else f for f in files
        )
        assert environment["DELEVERAGE_REDIS_URL"] == "redis://redis:6379/0"
        environment["DELEVERAGE_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        api_port = free_port()
        environment |= {"DELEVERAGE_API__HOST": "127.0.0.1", "DELEVERAGE_API__PORT": str(api_port)}
        procs.append(
            await start(
                [sys.executable, "-m", "service", *service["command"]],
                tmp_path / "service.log",
                cwd=REPO,
                env=env_base | environment,
            )
        )
        healthcheck = " ".join(service["healthcheck"]["test"])
        (health_url,) = re.findall(r"http://127\.0\.0\.1:8000/\w+", healthcheck)
        health_url = health_url.replace(":8000", f":{api_port}")
        await _wait_for(health_url, procs, tmp_path)
        # The compose healthchecks themselves (the same commands, ports moved) pass.
        assert await _healthcheck(service, {8000: api_port}) == 0
        assert await _healthcheck(services["simulator"], {9401: base + 1}) == 0

        # Prometheus: the mounted configuration directory, scraping the service.
        config_dir = _mount(services["prometheus"], "/etc/prometheus")
        async with run_prometheus(tmp_path, f"127.0.0.1:{api_port}", config_dir) as prometheus:
            # The venues the configuration enables: BitMEX (retired) stays off.
            venues = sorted(
                load_settings(None, [REPO / "config/default.yaml", overlay_path]).enabled_venues()
            )
            assert "bitmex" not in venues
            assert len(venues) == len(overlay["venues"]) - 1
            deadline = time.monotonic() + 45
            connected: list[str] = []
            while time.monotonic() < deadline:
                result = await prometheus.query(
                    'deleverage_feed_connected == 1 and on () up{job="deleverage"} == 1'
                )
                connected = sorted(r["metric"]["venue"] for r in result)
                if connected == venues:
                    break
                await asyncio.sleep(1)
            assert connected == venues, _logs(tmp_path)

        client = aioredis.Redis.from_url(environment["DELEVERAGE_REDIS_URL"])
        try:
            assert await client.dbsize() > 0
        finally:
            await client.aclose()
        async with aiomqtt.Client("127.0.0.1", mqtt_port, identifier="stack-test") as mqtt:
            await mqtt.subscribe("deleverage/test")
            await mqtt.publish("deleverage/test", b"ping", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(mqtt.messages))
            assert message.payload == b"ping"
    finally:
        for proc in reversed(procs):
            await stop(proc)


async def _healthcheck(service: Json, ports: dict[int, int]) -> int:
    """Run a compose ``CMD python -c ...`` healthcheck here, with its ports moved."""
    test: list[str] = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], test
    code = test[3]
    for old, new in ports.items():
        assert str(old) in code, (old, code)
        code = code.replace(str(old), str(new))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    return await asyncio.wait_for(proc.wait(), 10)


async def _wait_for(url: str, procs: list[asyncio.subprocess.Process], tmp: Path) -> None:
    deadline = time.monotonic() + 40
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            dead = [p for p in procs if p.returncode is not None]
            assert not dead, _logs(tmp)
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url} never answered\n{_logs(tmp)}")


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp.glob("*.log")))
