from __future__ import annotations

import base64
from pathlib import Path

import pytest

from service.config import load_settings
from service.errors import ConfigError
from service.venues import REGISTRY

VENUES = set(REGISTRY)


def test_defaults_come_from_the_committed_default_yaml() -> None:
    repo = Path(__file__).resolve().parent.parent
    settings = load_settings(VENUES, [repo / "config" / "default.yaml"])
    venue = settings.venues["binance_usdm"]
    assert str(venue.ws_url) == "wss://fstream.binance.com/market"
    assert venue.symbols == "all"
    assert settings.detector.window_s == 300


def test_environment_overrides_yaml_with_nested_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("venues:\n  binance_usdm:\n    symbols: [BTCUSDT]\n    rest_url: http://a\n")
    monkeypatch.setenv("DELEVERAGE_VENUES__BINANCE_USDM__SYMBOLS", "ETHUSDT, SOLUSDT")
    monkeypatch.setenv("DELEVERAGE_REDIS_URL", "redis://10.0.0.1:6380/2")
    settings = load_settings(VENUES, [cfg])
    assert settings.venues["binance_usdm"].symbols == ["ETHUSDT", "SOLUSDT"]
    assert str(settings.venues["binance_usdm"].rest_url) == "http://a/"  # kept from YAML
    assert str(settings.redis_url) == "redis://10.0.0.1:6380/2"


def test_later_files_win_and_merge_deeply(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("detector:\n  window_s: 120\n  min_dwell_s: 3\n")
    b.write_text("detector:\n  window_s: 60\n")
    settings = load_settings(VENUES, [a, b])
    assert (settings.detector.window_s, settings.detector.min_dwell_s) == (60, 3)


@pytest.mark.parametrize(
    ("env", "value", "key"),
    [
        ("DELEVERAGE_VENUES__BINANCE_USDM__WS_URL", "not a url", "venues.binance_usdm.ws_url"),
        ("DELEVERAGE_DETECTOR__WINDOW_S", "-5", "detector.window_s"),
        ("DELEVERAGE_API__PORT", "70000", "api.port"),
        ("DELEVERAGE_LOG_LEVEL", "loud", "log_level"),
        ("DELEVERAGE_EVENT_LOOP", "tokio", "event_loop"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(VENUES, [])


def test_unknown_keys_and_venues_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detector:\n  windw_s: 60\n")
    with pytest.raises(ConfigError, match=r"detector\.windw_s"):
        load_settings(VENUES, [cfg])
    cfg.write_text("venues:\n  binanse: {}\n")
    with pytest.raises(ConfigError, match=r"venues\.binanse: unknown venue"):
        load_settings(VENUES, [cfg])


def test_hysteresis_and_retention_are_checked_across_keys() -> None:
    with pytest.raises(ConfigError, match="exit_score must be below enter_score"):
        load_settings(VENUES, [], detector={"enter_score": 40, "exit_score": 45})
    with pytest.raises(ConfigError, match="handoff_retention_s"):
        load_settings(VENUES, [], store={"handoff_retention_s": 60})


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(VENUES, [tmp_path / "nope.yaml"])


def test_the_cli_refuses_to_start_with_a_message_naming_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from click.testing import CliRunner

    from service.cli import main

    monkeypatch.setenv("DELEVERAGE_COLLECT__WATCHDOG_S", "soon")
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code == 1
    assert "collect.watchdog_s" in result.output


def test_passwords_never_reach_dumps_or_logs() -> None:
    from service.config import redacted

    settings = load_settings(VENUES, [], redis_url="redis://:s3cret@redis:6379/0")
    assert "s3cret" not in settings.model_dump_json()
    assert redacted("redis://user:s3cret@redis:6379/0") == "redis://user:***@redis:6379/0"
    assert redacted("redis://redis:6379/0") == "redis://redis:6379/0"
    assert str(settings.redis_url) == "redis://:s3cret@redis:6379/0"  # still usable to connect
    assert "s3cret" not in repr(settings.redis_url)


def test_redacted_masks_every_url_credential_form() -> None:
    from service.config import redacted

    assert redacted("redis://:s3cret@r:6379/0") == "redis://:***@r:6379/0"
    assert redacted("rediss://u:p%40ss@r:6380/1") == "rediss://u:***@r:6380/1"
    assert redacted("redis://r:6379/0?password=s3cret&db=2") == "redis://r:6379/0?password=***&db=2"
    assert redacted("redis://r/0?db=1&password=s3cret") == "redis://r/0?db=1&password=***"
    assert redacted("https://tok3n@h.example/x") == "https://***@h.example/x"
    assert (
        redacted("https://h.example/x?access_token=t0k&a=1")
        == "https://h.example/x?access_token=***&a=1"
    )
    assert redacted("mqtt://u:s3cret@broker:1883") == "mqtt://u:***@broker:1883"
    assert "T0/B0/x" not in redacted("https://hooks.slack.com/services/T0/B0/xyz")
    assert "wh/tok" not in redacted("https://discord.com/api/webhooks/wh/tok")


def test_the_log_filter_masks_the_settings_secrets_wherever_they_appear() -> None:
    from service.redact import Redactor

    settings = load_settings(
        VENUES, [],
        redis_url="redis://u:pa%2Fss@r:6379/0",
        mqtt={"host": "b", "username": "u", "password": "mqtt-s3cret"},
        alerts={"receivers": [
            {"name": "desk", "kind": "slack", "url": "http://127.0.0.1:9/services/T/B/sl4ck"},
        ]},
    )  # fmt: skip
    redact = Redactor(settings.secret_values())
    line = "auth pa/ss failed; mqtt-s3cret refused; posting to /services/T/B/sl4ck"
    assert redact(line) == "auth *** failed; *** refused; posting to ***"


def test_webhook_secrets_are_decoded_once_at_start_up() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    receiver = {"name": "ops", "url": "https://h.example/x", "secret": secret}
    settings = load_settings(VENUES, [], alerts={"receivers": [receiver]})
    held = settings.alerts.receivers[0].secret
    assert held is not None
    assert held.get_secret_value() == key
    for bad, why in (
        ("whsec_S3cretPa55w0rd!!", "must be base64"),
        ("S3cretPa55w0rd", "whsec_<base64>"),
        ("whsec_", "empty"),
    ):
        with pytest.raises(ConfigError, match=why) as caught:
            load_settings(VENUES, [], alerts={"receivers": [receiver | {"secret": bad}]})
        assert r"alerts.receivers.0.secret" in str(caught.value)
        assert "S3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("VENUES__BINANCE_USDM__WS_URL", "http://h/ws", r"ws_url: URL scheme should be 'ws'"),
        ("VENUES__BINANCE_USDM__REST_URL", "ftp://h", r"rest_url: URL scheme should be 'http'"),
        ("VENUES__BINANCE_USDM__WS_URL", "wss://u:p@h/ws", r"ws_url: must not carry credentials"),
        ("VENUES__BINANCE_USDM__REST_URL", "https://h:0", r"rest_url: port must be between"),
        ("REDIS_URL", "redis+sentinel://h:26379/m", r"redis_url: URL scheme should be 'redis'"),
        ("REDIS_URL", "redis://h:6379/zero", r"redis_url: the path must be a database number"),
        ("REDIS_URL", "redis://h:6379/0?bogus=1", r"redis_url: not usable by redis-py.*'bogus'"),
        ("REDIS_URL", "redis://h:6379/0?db=x", r"redis_url: not usable by redis-py.*'db'"),
        ("REDIS_URL", "unix://localhost", r"redis_url: a unix:// URL needs the socket's path"),
        ("API__DEFAULT_LIMIT", "5000", r"api: default_limit must be at most max_limit"),
        ("API__HOST", "not a host!", r"api\.host: must be a host name or an IP address"),
        ("COLLECT__BACKOFF_INITIAL_S", "60", r"collect: backoff_initial_s must be at most"),
        ("ALERTS__RETRY_INITIAL_S", "600", r"alerts: retry_initial_s must be at most"),
        ("DETECTOR__BASELINE_MIN_SAMPLES", "300", r"detector: baseline_min_samples must be"),
        ("MQTT__PASSWORD", "s3cret", r"mqtt: password given without username"),
        ("ALERTS__PUBLIC_URL", "https://u:p@h", r"alerts\.public_url: must not carry"),
    ],
)
def test_what_would_fail_at_run_time_fails_at_start_up(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"DELEVERAGE_{env}", value)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(VENUES, [])
    assert value not in str(caught.value)  # the value itself is never quoted


def test_good_redis_urls_of_every_form_are_accepted() -> None:
    for url in (
        "redis://u:p@r:6379/0", "redis://:p@r:6379/0", "redis://r:6379/0?password=p",
        "rediss://r:6380", "redis://r", "unix:///run/redis.sock?db=1",
        "redis://r:6379/0?socket_timeout=3&health_check_interval=10",
    ):  # fmt: skip
        assert str(load_settings(VENUES, [], redis_url=url).redis_url) == url


def test_a_rule_naming_an_unknown_receiver_names_both_and_nothing_else() -> None:
    receivers = [
        {"name": "ops", "url": "https://h.example/x?token=t0k3n", "secret": "whsec_AAAA"},
        {"name": "desk", "url": "https://hooks.slack.com/services/T/B/sl4ck", "kind": "slack"},
    ]
    rules = [{"name": "cascade", "receivers": ["ops", "nobody"]}]
    with pytest.raises(ConfigError) as caught:
        load_settings(VENUES, [], alerts={"receivers": receivers, "rules": rules})
    message = str(caught.value)
    assert "rule 'cascade' names receiver(s) 'nobody'" in message
    assert "(defined: ops, desk)" in message
    assert [s for s in ("t0k3n", "sl4ck", "AAAA") if s in message] == []


def test_an_unloadable_mqtt_ca_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    for path, why in ((tmp_path / "missing.pem", "No such file"), (bad, "cannot be loaded")):
        mqtt = {"host": "b", "tls": True, "tls_ca_file": str(path)}
        with pytest.raises(ConfigError, match=rf"mqtt: tls_ca_file .*{why}"):
            load_settings(VENUES, [], mqtt=mqtt)


def test_yaml_and_environment_syntax_errors_name_the_place_not_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('mqtt:\n  host: b\n  password: "s3cret\n')
    with pytest.raises(ConfigError, match=r"c\.yaml: invalid YAML at line \d+, column \d+") as e:
        load_settings(VENUES, [cfg])
    assert "s3cret" not in str(e.value)
    cfg.write_text("- a list\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_settings(VENUES, [cfg])
    monkeypatch.setenv("DELEVERAGE_ALERTS__RECEIVERS", '[{"secret": "whsec_s3cret"')
    with pytest.raises(ConfigError, match='field "alerts"') as e:
        load_settings(VENUES, [])
    assert "s3cret" not in str(e.value)


def test_the_reprs_hide_every_secret() -> None:
    settings = load_settings(
        VENUES, [],
        redis_url="redis://u:s3cret@r:6379/0",
        venues={"x_polled": {"ccxt": {"exchange": "bitget", "config": {"apiKey": "k3y"}}}},
    )  # fmt: skip
    assert "s3cret" not in repr(settings)
    assert "k3y" not in repr(settings)
    assert settings.model_dump(mode="json")["venues"]["x_polled"]["ccxt"]["config"] == {
        "apiKey": "***"
    }
