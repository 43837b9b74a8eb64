from __future__ import annotations

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
