"""No planted secret appears in anything ``deleverage check-config``, ``run`` or ``demo``
prints (stdout, stderr, logs at debug level) or in the API's answers, for every secret field
and URL form: the Redis URL's ``user:pass@``, ``:pass@`` and ``?password=``, a webhook
secret, Slack and Discord webhook URLs, a token in a receiver's query, the MQTT password and
ccxt credentials. Invalid configurations holding them must fail naming the key, without
echoing them.

``run`` and ``demo`` talk to a private Redis that requires those passwords; receivers and
the MQTT broker are closed loopback ports, so that delivery and connection errors (the
usual leak) are logged too.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from click.testing import CliRunner
from procs_support import free_port

from service.alerts.model import Alert, AlertEvent, EventKind, encode
from service.cli import main
from service.scores import State
from service.store import keys

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
REDIS_USER = "planted"
REDIS_USER_PASS = "PlantRedisUserPass7f3a"
REDIS_COLON_PASS = "PlantRedisColonPass2b9c"
REDIS_QUERY_PASS = "PlantRedisQueryPass5d1e"
REDIS_WRONG_PASS = "PlantRedisWrongPass8a4b"
WEBHOOK_KEY_B64 = base64.b64encode(b"PlantWebhookKey-0123456789abcdef").decode()
WEBHOOK_SECRET = f"whsec_{WEBHOOK_KEY_B64}"
SLACK_TOKEN = "PlantSlackToken4c8d"
DISCORD_TOKEN = "PlantDiscordToken9e2f"
QUERY_TOKEN = "PlantQueryToken1a6b"
MQTT_PASS = "PlantMqttPass3d7e"
CCXT_KEY = "PlantCcxtApiKey6c2d"
PLANTED = (
    REDIS_USER_PASS, REDIS_COLON_PASS, REDIS_QUERY_PASS, REDIS_WRONG_PASS, WEBHOOK_KEY_B64,
    "PlantWebhookKey", SLACK_TOKEN, DISCORD_TOKEN, QUERY_TOKEN, MQTT_PASS, CCXT_KEY,
)  # fmt: skip


def leaked(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


def redis_urls(port: int) -> dict[str, str]:
    return {
        "user:pass@": f"redis://{REDIS_USER}:{REDIS_USER_PASS}@127.0.0.1:{port}/0",
        ":pass@": f"redis://:{REDIS_COLON_PASS}@127.0.0.1:{port}/0",
        "?password=": f"redis://127.0.0.1:{port}/0?password={REDIS_QUERY_PASS}",
    }


def alerts_section(base: str) -> dict[str, Any]:
    """A generic receiver (signed, token in its query), a Slack and a Discord one."""
    return {
        "retry_initial_s": 0.05, "retry_max_s": 0.2,
        "receivers": [
            {"name": "ops", "url": f"{base}/hook?token={QUERY_TOKEN}", "secret": WEBHOOK_SECRET},
            {"name": "desk", "kind": "slack", "url": f"{base}/services/T0/B0/{SLACK_TOKEN}"},
            {"name": "chat", "kind": "discord", "url": f"{base}/api/webhooks/1/{DISCORD_TOKEN}"},
        ],
        "rules": [{"name": "all", "receivers": ["ops", "desk", "chat"]}],
    }  # fmt: skip


SLACK_URL = f"https://hooks.slack.com/services/T0/B0/{SLACK_TOKEN}"
DISCORD_URL = f"https://discord.com/api/webhooks/1/{DISCORD_TOKEN}"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DELEVERAGE_"):
            monkeypatch.delenv(name)


def check_config(tmp_path: Path, config: dict[str, Any] | str, **env: str) -> Any:
    path = tmp_path / "planted.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return CliRunner().invoke(main, ["check-config", "--config", str(path)], env=env)


@pytest.mark.parametrize("form", ["user:pass@", ":pass@", "?password="])
def test_check_config_masks_every_secret(tmp_path: Path, form: str) -> None:
    config = {
        "alerts": alerts_section("https://hooks.example.com")
        | {"public_url": "https://api.example.com"},
        "mqtt": {"host": "broker.example.com", "username": "deleverage"},
        "venues": {
            "binance_usdm": {"enabled": False},
            "bitget_polled": {
                "enabled": False,
                "ccxt": {"exchange": "bitget", "config": {"apiKey": CCXT_KEY}},
            },
        },
    }
    config["alerts"]["receivers"][1]["url"] = SLACK_URL
    config["alerts"]["receivers"][2]["url"] = DISCORD_URL
    env = {"DELEVERAGE_REDIS_URL": redis_urls(6379)[form], "DELEVERAGE_MQTT__PASSWORD": MQTT_PASS}
    result = check_config(tmp_path, config, **env)
    assert result.exit_code == 0, result.output
    assert leaked(result.output) == []
    masked = yaml.safe_load(result.stdout)  # JSON is YAML
    assert "***" in masked["redis_url"]
    assert masked["mqtt"]["password"] == "**********"
    assert [r["url"] for r in masked["alerts"]["receivers"]] == [
        "https://hooks.example.com/***", "https://hooks.slack.com/***", "https://discord.com/***",
    ]  # fmt: skip
    assert masked["alerts"]["receivers"][0]["secret"] == "**********"
    assert masked["venues"]["bitget_polled"]["ccxt"]["config"] == {"apiKey": "***"}


def _yaml_error_on_a_secret_line() -> str:
    receiver = f'{{name: ops, url: "https://h.example/x", secret: "{WEBHOOK_SECRET}'
    return f"alerts:\n  receivers:\n  - {receiver}\n"  # the quote is never closed


INVALID: dict[str, tuple[dict[str, Any] | str, dict[str, str], str]] = {
    # case: (YAML, environment, the key the message must name)
    "redis user:pass@ with a bad port": (
        {}, {"DELEVERAGE_REDIS_URL": f"redis://u:{REDIS_USER_PASS}@127.0.0.1:99999/0"},
        "redis_url",
    ),
    "redis :pass@ with a sentinel scheme": (
        {"redis_url": f"redis+sentinel://:{REDIS_COLON_PASS}@h:26379/mymaster"}, {}, "redis_url",
    ),
    "redis ?password= with an unknown argument": (
        {}, {"DELEVERAGE_REDIS_URL": f"redis://h:6379/0?password={REDIS_QUERY_PASS}&bogus=1"},
        "redis_url",
    ),
    "redis ?password= with a database that is no number": (
        {"redis_url": f"redis://h:6379/zero?password={REDIS_QUERY_PASS}"}, {}, "redis_url",
    ),
    "redis URL as a mapping": ({"redis_url": {"password": REDIS_USER_PASS}}, {}, "redis_url"),
    "webhook secret not base64": (
        {"alerts": {"receivers": [
            {"name": "ops", "url": "https://h.example/x", "secret": f"whsec_{MQTT_PASS}!!"},
        ]}},
        {}, "alerts.receivers.0.secret",
    ),
    "webhook secret without whsec_": (
        {"alerts": {"receivers": [
            {"name": "ops", "url": "https://h.example/x", "secret": WEBHOOK_KEY_B64},
        ]}},
        {}, "alerts.receivers.0.secret",
    ),
    "slack URL with a bad port": (
        {"alerts": {"receivers": [{
            "name": "desk", "kind": "slack",
            "url": f"https://hooks.slack.com:99999/services/T/B/{SLACK_TOKEN}",
        }]}},
        {}, "alerts.receivers.0.url",
    ),
    "discord URL with a bad scheme": (
        {"alerts": {"receivers": [
            {"name": "chat", "kind": "discord", "url": DISCORD_URL.replace("https", "ftp")},
        ]}},
        {}, "alerts.receivers.0.url",
    ),
    "a rule names an unknown receiver": (
        {"alerts": alerts_section("https://h.example") | {"rules": [
            {"name": "cascade", "receivers": ["ops", "nobody"]},
        ]}},
        {}, "alerts",
    ),
    "a rule names a receiver by its URL": (
        {"alerts": alerts_section("https://h.example") | {"rules": [
            {"name": "cascade", "receivers": [SLACK_URL]},
        ]}},
        {}, "alerts.rules.0.receivers.0",
    ),
    "public_url with credentials": (
        {"alerts": {"public_url": f"https://u:{REDIS_USER_PASS}@api.example.com"}}, {},
        "alerts.public_url",
    ),
    "mqtt password without username": (
        {"mqtt": {"host": "broker.example.com"}}, {"DELEVERAGE_MQTT__PASSWORD": MQTT_PASS}, "mqtt",
    ),
    "mqtt password under a misspelt key": (
        {"mqtt": {"host": "b.example", "username": "u", "pasword": MQTT_PASS}}, {}, "mqtt.pasword",
    ),
    "venue ws_url with credentials": (
        {"venues": {"binance_usdm": {"ws_url": f"wss://u:{MQTT_PASS}@fstream.binance.com/x"}}},
        {}, "venues.binance_usdm.ws_url",
    ),
    "ccxt credentials next to an unknown exchange": (
        {"venues": {"x_polled": {"ccxt": {"exchange": "nope", "config": {"apiKey": CCXT_KEY}}}}},
        {}, "venues.x_polled.ccxt.exchange",
    ),
    "YAML syntax error on a secret's line": (_yaml_error_on_a_secret_line(), {}, "planted.yaml"),
    "invalid JSON in the environment": (
        {}, {"DELEVERAGE_ALERTS__RECEIVERS": f'[{{"name": "ops", "secret": "{WEBHOOK_SECRET}"'},
        "alerts",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_configuration_names_the_key_and_never_echoes_a_secret(
    tmp_path: Path, case: str
) -> None:
    config, env, key = INVALID[case]
    result = check_config(tmp_path, config, **env)
    assert result.exit_code == 1, result.output
    assert key in result.output
    assert "Traceback" not in result.output
    assert leaked(result.output) == []


# --- the real processes --------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_redis() -> Iterator[int]:
    """A redis-server whose users need the planted passwords (ACL: one user, and the
    default user with two passwords)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="deleverage-secrets-") as tmp:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp, "--logfile", str(Path(tmp) / "log"),
             "--user", "default", "on", f">{REDIS_COLON_PASS}", f">{REDIS_QUERY_PASS}",
             "~*", "&*", "+@all",
             "--user", REDIS_USER, "on", f">{REDIS_USER_PASS}", "~*", "&*", "+@all"],
        )  # fmt: skip
        try:
            client = redis.Redis.from_url(redis_urls(port)[":pass@"])
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
            client.close()
            yield port
        finally:
            proc.terminate()
            proc.wait(10)


def seed_outboxes(url: str) -> None:
    """One notification per receiver (delivery is attempted, and fails: the port is closed)
    and one unreadable entry."""
    now = int(time.time() * 1000)
    alert = Alert(
        id="a1", fingerprint="f", rule="all", scope="instrument", key="okx|BTC", venue="okx",
        symbol="BTC-USDT-SWAP", asset="BTC", state=State.UNWINDING, peak_state=State.UNWINDING,
        side=None, score=60.0, reasons=["OI -3%"], opened_ms=now, updated_ms=now,
        receivers=["ops", "desk", "chat"],
    )  # fmt: skip
    event = AlertEvent(id="a1.1", kind=EventKind.OPENED, ts_ms=now, alert=alert)
    with contextlib.closing(redis.Redis.from_url(url)) as client:
        client.flushdb()
        for name in ("ops", "desk", "chat"):
            client.xadd(keys.outbox(name), {"e": encode(event)})
        client.xadd(keys.outbox("ops"), {"e": b"not an event"})


def process_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELEVERAGE_")}
    return env | {"NO_COLOR": "1"} | extra


class Service:
    """A ``python -m service ...`` process whose output (stdout and stderr) goes to a file
    (a pipe left unread could fill up and stall a chatty process); always stopped."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str]) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", *args],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, then the exit code (killed, and a failure, if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in started:
            if service.proc.poll() is None:
                service.proc.kill()
                service.proc.wait()


def service_config(tmp: Path, name: str, closed_port: int, **extra: Any) -> Path:
    config = {
        "log_level": "debug",
        "venues": {"binance_usdm": {"enabled": False}},
        "mqtt": {"host": "127.0.0.1", "port": closed_port, "username": "deleverage",
                 "backoff_initial_s": 0.1, "backoff_max_s": 0.5},
        "alerts": alerts_section(f"http://127.0.0.1:{closed_port}"),
    } | extra  # fmt: skip
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def api_answers(port: int) -> str:
    """What the API shows about receivers, venues, readiness and metrics."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        paths = ("/v1/receivers", "/v1/venues", "/readyz", "/metrics")
        return "\n".join(http.get(path).text for path in paths)


def wait_api(service: Service, port: int, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and service.proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/v1/receivers", timeout=1).status_code == 200:
                return True
        time.sleep(0.1)
    return False


def test_run_prints_no_secret_for_any_redis_url_form(tmp_path: Path, private_redis: int) -> None:
    urls = redis_urls(private_redis)
    wrong = urls["user:pass@"].replace(REDIS_USER_PASS, REDIS_WRONG_PASS)
    seed_outboxes(urls[":pass@"])
    closed = free_port()
    forms = [*urls, "wrong password"]
    ports = {form: free_port() for form in forms}
    with services() as started:
        for i, (form, url) in enumerate([*urls.items(), ("wrong password", wrong)]):
            config = service_config(tmp_path, f"run{i}", closed, api={"port": ports[form]})
            env = process_env(DELEVERAGE_REDIS_URL=url, DELEVERAGE_MQTT__PASSWORD=MQTT_PASS)
            started.append(Service(tmp_path / f"run{i}.log", ["run", "--config", str(config)], env))
        runs = dict(zip(forms, started, strict=True))
        answers = {}
        for form in urls:
            assert wait_api(runs[form], ports[form]), f"{form}: no API\n{runs[form].output()}"
            answers[form] = api_answers(ports[form])
        time.sleep(1.0)  # delivery and MQTT connection attempts fail, and are logged
        codes = {form: service.stop() for form, service in runs.items()}
    for form, service in runs.items():
        output = service.output() + answers.get(form, "")
        assert leaked(output) == [], f"{form}:\n{output}"
        if form == "wrong password":  # whether it keeps retrying or stops, it says nothing
            continue
        assert codes[form] == 0, f"{form}:\n{output}"
        masked = {
            "user:pass@": "//planted:***@127",
            ":pass@": "//:***@127",
            "?password=": "/0?password=***",
        }
        assert masked[form] in output  # the start-up line names Redis, masked
        assert "alert_delivery_failures_total" in output


def test_demo_prints_no_secret(tmp_path: Path, private_redis: int) -> None:
    redis_url = redis_urls(private_redis)["user:pass@"]
    seed_outboxes(redis_url)
    planted = service_config(tmp_path, "demo", free_port(), redis_url=redis_url)
    config = yaml.safe_load(planted.read_text())
    del config["mqtt"]  # the demo starts its own broker; the credentials go to it
    planted.write_text(yaml.safe_dump(config))
    args = ["--config", str(REPO / "config/demo.yaml"), "--config", str(planted)]
    env = process_env(DELEVERAGE_MQTT__USERNAME="deleverage", DELEVERAGE_MQTT__PASSWORD=MQTT_PASS)
    with services() as started:
        demo = Service(
            tmp_path / "demo.log", ["demo", "--duration", "2", "--port", "0", *args], env
        )
        started.append(demo)
        code = demo.proc.wait(120)
    output = demo.output()
    assert code == 0, output
    assert leaked(output) == [], output
    assert "redis        redis://planted:***@" in output
    assert '"duration_s"' in output  # it ran to the end and printed its figures


def test_an_invalid_configuration_stops_every_command_without_echoing(tmp_path: Path) -> None:
    """The real processes, stderr included: ``check-config``, ``run`` and ``demo``."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "redis_url": f"redis://u:{REDIS_USER_PASS}@127.0.0.1:99999/0",
        "mqtt": {"host": "b.example"},
        "alerts": alerts_section("https://h.example") | {"rules": [
            {"name": "r", "receivers": ["nobody"]},
        ]},
    }))  # fmt: skip
    env = process_env(DELEVERAGE_MQTT__PASSWORD=MQTT_PASS)
    with services() as started:
        for command in ("check-config", "run", "demo"):
            started.append(
                Service(tmp_path / f"{command}.log", [command, "--config", str(bad)], env)
            )
        codes = [service.proc.wait(60) for service in started]
    for service, code in zip(started, codes, strict=True):
        output = service.output()
        assert code == 1, output
        assert "redis_url:" in output, output
        assert "mqtt: password given without username" in output, output
        assert "rule 'r' names receiver(s) 'nobody'" in output, output
        assert leaked(output) == [], output
