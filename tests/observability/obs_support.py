"""Helpers of the observability tests: the dashboards' queries, the rules, a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from procs_support import free_port

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
PROMETHEUS_DIR = REPO / "config" / "prometheus"
GRAFANA_DIR = REPO / "config" / "grafana"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
COMPOSE_TARGET = "deleverage:8000"
"""The scrape target in config/prometheus/prometheus.yml (the compose service's name)."""
RATE_INTERVAL = "20s"
"""What Grafana makes of ``$__rate_interval`` with the datasource's 5 s ``timeInterval``
(4 x the scrape interval) on a short time range."""
TEST_REDIS_URL = os.environ.get("DELEVERAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")

Json = dict[str, Any]


def need(tool: str) -> str:
    """The path of ``tool``; skipped where it is missing, but a failure in CI."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not on PATH (apt-get install prometheus mosquitto redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_dashboards() -> dict[str, Json]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, rows' nested panels included (a row itself is a header, not a panel)."""
    for p in dashboard.get("panels", []):
        if p.get("type") != "row":
            yield p
        yield from p.get("panels", [])


@dataclass(frozen=True)
class Query:
    where: str
    """``dashboard / panel title / refId``, for messages."""
    expr: str
    instant: bool = False


def dashboard_queries(dashboard: Json) -> list[Query]:
    """Every PromQL expression of a dashboard: panel targets and annotations."""
    title = dashboard["title"]
    out = [
        Query(f"{title} / {p['title']} / {t['refId']}", t["expr"], bool(t.get("instant")))
        for p in panels(dashboard)
        for t in p.get("targets", [])
    ]
    out += [
        Query(f"{title} / annotation {a['name']}", a["expr"])
        for a in dashboard["annotations"]["list"]
        if "expr" in a
    ]
    return out


def variable_queries(dashboard: Json) -> dict[str, str]:
    """``label_values(...)`` query of each query variable, by variable name."""
    return {
        v["name"]: v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        for v in dashboard["templating"]["list"]
        if v["type"] == "query"
    }


LABEL_VALUES = re.compile(r"^label_values\((?P<match>.+),\s*(?P<label>\w+)\)$")


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's variables replaced as Grafana would (multi values: a regex)."""
    out = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "5s")
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        out = out.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in out, f"unsubstituted variable in {out}"
    return out


def recording_rules() -> list[tuple[str, str]]:
    """(record, expr) of every recording rule."""
    out = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [(r["record"], r["expr"]) for r in group["rules"] if "record" in r]
    return out


def alerting_rules() -> list[str]:
    out = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [r["alert"] for r in group["rules"] if "alert" in r]
    return out


async def wait_http(url: str, timeout_s: float) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within {timeout_s} s")
            await asyncio.sleep(0.2)


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after 10 s: this process only."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def start(argv: list[str], log: Path, **kwargs: Any) -> asyncio.subprocess.Process:
    """Start ``argv`` with stdout and stderr to ``log`` (a pipe nobody reads would fill)."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, **kwargs
        )


class Prometheus:
    """A real ``prometheus`` process on loopback, with the project's own configuration."""

    def __init__(self, base_url: str, started: float) -> None:
        self.base_url = base_url
        self.started = started
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def query_range(self, expr: str, step_s: float = 2.0) -> list[Json]:
        """The series of ``expr`` from Prometheus's start until now."""
        now = time.time()
        r = await self.http.post(
            "/api/v1/query_range",
            data={"query": expr, "start": self.started, "end": now, "step": step_s},
        )
        body = r.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        result: list[Json] = body["data"]["result"]
        return result

    async def query(self, expr: str) -> list[Json]:
        r = await self.http.post("/api/v1/query", data={"query": expr})
        body = r.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        result: list[Json] = body["data"]["result"]
        return result

    async def label_values(self, label: str, match: str) -> list[str]:
        r = await self.http.get(
            f"/api/v1/label/{label}/values",
            params={"match[]": match, "start": self.started, "end": time.time()},
        )
        body = r.json()
        assert body.get("status") == "success", body
        values: list[str] = body["data"]
        return values

    async def get(self, path: str) -> Json:
        body: Json = (await self.http.get(path)).json()
        return body


@contextlib.asynccontextmanager
async def run_prometheus(
    tmp: Path, target: str, config_dir: Path = PROMETHEUS_DIR
) -> AsyncIterator[Prometheus]:
    """Prometheus with a copy of ``config_dir`` whose scrape target is ``target``."""
    binary = need("prometheus")
    conf = tmp / "prometheus"
    shutil.copytree(config_dir, conf)
    main = conf / "prometheus.yml"
    text = main.read_text()
    assert text.count(COMPOSE_TARGET) == 1, f"expected one {COMPOSE_TARGET} target in {main}"
    main.write_text(text.replace(COMPOSE_TARGET, target))
    port = free_port()
    started = time.time()
    proc = await start(
        [
            binary,
            f"--config.file={main}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        tmp / "prometheus.log",
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", started)
    try:
        await wait_http(f"{prometheus.base_url}/-/ready", 30)
        yield prometheus
    finally:
        await prometheus.http.aclose()
        await stop(proc)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` (and ``$$``)."""

    def one(m: re.Match[str]) -> str:
        value = env.get(m["name"])
        if m["op"] in (":-", "-"):
            return value if value else m["arg"]
        if m["op"] in (":?", "?"):
            assert value, f"{m['name']} is required: {m['arg']}"
        return value or ""

    return VARIABLE.sub(one, text).replace("$$", "$")


def env_example(uncomment_simulator: bool = False) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if uncomment_simulator and line.startswith(("# COMPOSE_PROFILES", "# DELEVERAGE_CONFIG")):
            line = line.removeprefix("# ")
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    env.setdefault("GRAFANA_ADMIN_PASSWORD", "")
    env["GRAFANA_ADMIN_PASSWORD"] = env["GRAFANA_ADMIN_PASSWORD"] or "filled-in"
    return env


def compose(env: dict[str, str] | None = None) -> Json:
    """The compose file, interpolated as Compose does it: in string values, after parsing."""

    def walk(node: object) -> object:
        if isinstance(node, str):
            return node if env is None else interpolate(node, env)
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        return node

    doc = walk(yaml.safe_load(COMPOSE_FILE.read_text()))
    assert isinstance(doc, dict)
    return doc
