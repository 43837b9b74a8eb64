"""The alert lifecycle, pure: fake time, no Redis."""

from __future__ import annotations

import pytest

from service.alerts import AlertEngine, AlertRule, EventKind, Observation, Scope, fingerprint
from service.events import Side
from service.scores import State

T0 = 1_795_000_000_000


def obs(state: State, score: float, *, symbol: str = "BTCUSDT", venue: str = "binance_usdm",
        asset: str = "BTC", ts: int = T0) -> Observation:  # fmt: skip
    return Observation(venue=venue, symbol=symbol, asset=asset, state=state, side=Side.LONG,
                       score=score, ts_ms=ts, reasons=["OI -3% in 5m"])  # fmt: skip


def rule(**kw: object) -> AlertRule:
    base: dict[str, object] = {"name": "r", "receivers": ["ops"], "repeat_interval_s": 600}
    return AlertRule.model_validate(base | kw)


def kinds(events: list) -> list[EventKind]:  # type: ignore[type-arg]
    return [e.kind for e in events]


def test_opens_only_after_the_condition_held_for_for_s() -> None:
    engine = AlertEngine([rule(for_s=10)])
    assert engine.observe(obs(State.UNWINDING, 60), T0) == []
    assert engine.tick(T0 + 9_999) == []
    events = engine.tick(T0 + 10_000)
    assert kinds(events) == [EventKind.OPENED]
    assert events[0].alert.key == "binance_usdm|BTCUSDT"
    assert events[0].id == f"{events[0].alert.id}.1"


def test_a_condition_that_lapses_while_pending_never_opens() -> None:
    engine = AlertEngine([rule(for_s=10)])
    engine.observe(obs(State.UNWINDING, 60), T0)
    engine.observe(obs(State.CALM, 10), T0 + 5_000)
    engine.observe(obs(State.UNWINDING, 60), T0 + 6_000)
    assert engine.tick(T0 + 12_000) == []
    assert kinds(engine.tick(T0 + 16_000)) == [EventKind.OPENED]


def test_worse_state_escalates_once_then_resolves_once() -> None:
    engine = AlertEngine([rule()])
    assert kinds(engine.observe(obs(State.UNWINDING, 55), T0)) == [EventKind.OPENED]
    esc = engine.observe(obs(State.CASCADE, 90), T0 + 1_000)
    assert kinds(esc) == [EventKind.ESCALATED]
    assert esc[0].alert.peak_state is State.CASCADE
    assert engine.observe(obs(State.UNWINDING, 70), T0 + 2_000) == []  # better: silent
    assert engine.observe(obs(State.CASCADE, 95), T0 + 3_000) == []  # peak already announced
    res = engine.observe(obs(State.CALM, 5), T0 + 4_000)
    assert kinds(res) == [EventKind.RESOLVED]
    assert res[0].alert.status == "resolved"
    assert [c.kind for c in res[0].alert.changes] == [
        EventKind.OPENED, EventKind.ESCALATED, EventKind.RESOLVED,
    ]  # fmt: skip
    assert engine.open_alerts() == []


def test_hysteresis_resolves_only_once_the_score_is_down() -> None:
    engine = AlertEngine([rule(min_score=50, resolve_score=30)])
    assert engine.observe(obs(State.UNWINDING, 45), T0) == []  # below min_score
    assert kinds(engine.observe(obs(State.UNWINDING, 55), T0 + 1)) == [EventKind.OPENED]
    assert engine.observe(obs(State.CALM, 40), T0 + 2) == []  # state left, score still high
    assert kinds(engine.observe(obs(State.CALM, 29), T0 + 3)) == [EventKind.RESOLVED]


def test_flapping_score_gives_one_opened_resolved_pair_per_repeat_interval() -> None:
    engine = AlertEngine([rule(repeat_interval_s=600)])
    events = []
    for i in range(200):  # flaps every second for 200 s
        state = State.UNWINDING if i % 2 == 0 else State.CALM
        events += engine.observe(obs(state, 60 if i % 2 == 0 else 10), T0 + i * 1000)
        events += engine.tick(T0 + i * 1000 + 500)
    assert kinds(events) == [EventKind.OPENED, EventKind.RESOLVED]
    later = engine.observe(obs(State.UNWINDING, 60), T0 + 601_000)
    assert kinds(later) == [EventKind.OPENED]
    assert later[0].alert.fingerprint == events[0].alert.fingerprint
    assert later[0].alert.id != events[0].alert.id


def test_open_alert_repeats_after_the_repeat_interval() -> None:
    engine = AlertEngine([rule(repeat_interval_s=60)])
    engine.observe(obs(State.UNWINDING, 60), T0)
    assert engine.tick(T0 + 59_000) == []
    assert kinds(engine.tick(T0 + 60_000)) == [EventKind.REPEATED]
    assert engine.tick(T0 + 61_000) == []


def test_asset_scope_follows_the_worst_instrument_and_filters() -> None:
    engine = AlertEngine([rule(scope=Scope.ASSET, venues=["binance_usdm", "bybit"])])
    assert engine.observe(obs(State.UNWINDING, 60, venue="okx"), T0) == []  # filtered out
    opened = engine.observe(obs(State.UNWINDING, 60), T0 + 1)
    assert kinds(opened) == [EventKind.OPENED]
    assert opened[0].alert.key == "BTC"
    assert opened[0].alert.symbol is None
    assert engine.observe(obs(State.UNWINDING, 70, venue="bybit"), T0 + 2) == []  # same alert
    assert engine.observe(obs(State.CALM, 5), T0 + 3) == []  # bybit still unwinding
    assert kinds(engine.observe(obs(State.CALM, 5, venue="bybit"), T0 + 4)) == [EventKind.RESOLVED]


def scope_obs(scope: Scope, state: State, score: float, asset: str = "BTC") -> Observation:
    """The detector's asset (market) score, as stored and as a transition carries it."""
    return Observation(venue="*", symbol="*", asset=asset if scope is Scope.ASSET else "*",
                       state=state, side=Side.LONG, score=score, ts_ms=T0, scope=scope,
                       reasons=["2 of 3 under pressure (70% of open interest)"])  # fmt: skip


def test_an_asset_rule_reads_the_detectors_asset_score_not_the_worst_instrument() -> None:
    """One small venue in a cascade does not page an asset rule; the asset's own score,
    weighted by open interest across venues, does."""
    engine = AlertEngine([rule(scope=Scope.ASSET)])
    assert engine.observe(obs(State.CASCADE, 95, venue="okx"), T0) == []
    assert engine.observe(scope_obs(Scope.ASSET, State.CALM, 20), T0 + 1) == []
    opened = engine.observe(scope_obs(Scope.ASSET, State.UNWINDING, 64), T0 + 2)
    assert kinds(opened) == [EventKind.OPENED]
    alert = opened[0].alert
    assert (alert.key, alert.asset, alert.venue, alert.symbol) == ("BTC", "BTC", None, None)
    assert alert.reasons == ["2 of 3 under pressure (70% of open interest)"]
    assert engine.observe(obs(State.CALM, 1, venue="okx"), T0 + 3) == []  # still open
    resolved = engine.observe(scope_obs(Scope.ASSET, State.CALM, 10), T0 + 4)
    assert kinds(resolved) == [EventKind.RESOLVED]


def test_a_market_rule_reads_the_detectors_market_score() -> None:
    engine = AlertEngine([rule(scope=Scope.MARKET)])
    assert engine.observe(scope_obs(Scope.ASSET, State.CASCADE, 90), T0) == []
    opened = engine.observe(scope_obs(Scope.MARKET, State.CASCADE, 80), T0 + 1)
    assert kinds(opened) == [EventKind.OPENED]
    assert (opened[0].alert.key, opened[0].alert.asset) == ("*", None)


def test_a_rule_filtering_part_of_a_scope_follows_its_worst_instrument() -> None:
    """The detector keeps no score of some assets of the market: a market rule naming
    assets reads the worst of their instruments (as an asset rule naming venues does)."""
    market = rule(scope=Scope.MARKET, assets=["ETH"])
    assert not market.reads_detector_scope()
    assert rule(scope=Scope.ASSET, assets=["ETH"]).reads_detector_scope()
    engine = AlertEngine([market])
    assert engine.observe(scope_obs(Scope.MARKET, State.CASCADE, 90), T0) == []
    assert engine.observe(obs(State.CASCADE, 90), T0 + 1) == []  # BTC: filtered out
    opened = engine.observe(obs(State.UNWINDING, 60, symbol="ETHUSDT", asset="ETH"), T0 + 2)
    assert kinds(opened) == [EventKind.OPENED]


def test_fingerprint_is_stable_per_identity() -> None:
    assert fingerprint("r", "asset", "BTC") == fingerprint("r", "asset", "BTC")
    assert fingerprint("r", "asset", "BTC") != fingerprint("r", "asset", "ETH")
    assert len(fingerprint("r", "market", "*")) == 16


def test_restored_alert_resolves_instead_of_reopening() -> None:
    first = AlertEngine([rule()])
    opened = first.observe(obs(State.CASCADE, 90), T0)[0].alert
    second = AlertEngine([rule()])
    second.restore([opened])
    assert second.observe(obs(State.CASCADE, 92), T0 + 1_000) == []
    assert kinds(second.observe(obs(State.CALM, 3), T0 + 2_000)) == [EventKind.RESOLVED]


def test_rule_validation_names_the_problem() -> None:
    with pytest.raises(ValueError, match="calm"):
        rule(states=["calm"])
    with pytest.raises(ValueError, match="hysteresis"):
        rule(min_score=40, resolve_score=60)


def test_a_restored_alert_without_fresh_data_stays_open() -> None:
    rule = AlertRule(name="r", receivers=["x"])
    first = AlertEngine([rule])
    (opened,) = first.observe(obs(State.CASCADE, 90.0), T0)
    second = AlertEngine([rule])
    second.restore(first.open_alerts())
    assert second.tick(T0 + 3_600_000) == []  # no observation yet: not resolved, not repeated
    assert [a.id for a in second.open_alerts()] == [opened.alert.id]
    (resolved,) = second.observe(obs(State.CALM, 5.0), T0 + 3_700_000)
    assert resolved.kind is EventKind.RESOLVED
