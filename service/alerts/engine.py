"""The alert lifecycle, pure: observations and the time in, :class:`AlertEvent` values out.

Per rule and scope key (Alertmanager semantics, reimplemented small):

* the condition holds when the state is one of the rule's ``states`` and the score is at
  least ``min_score``: of the instrument; of the detector's asset (market) score for an
  asset (market) rule, or, when the rule's filters select part of what that score combines,
  of the worst instrument they let through (:meth:`AlertRule.reads_detector_scope`);
* it must hold for ``for_s`` (pending) before the alert opens (``opened``);
* while open, a worse state than any announced is ``escalated``; no notification for
  ``repeat_interval_s`` gives ``repeated``;
* it resolves once the condition is gone **and** the score is at or below
  ``resolve_score`` (hysteresis); ``resolved`` is always sent once;
* an alert does not re-open within ``repeat_interval_s`` of its previous opening, so a
  flapping score gives at most one opened/resolved pair per interval (no storm).

No I/O and no clock: callers pass ``now_ms``; :meth:`AlertEngine.tick` advances time.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ..config_alerts import AlertRule
from ..scores import ANY, Scope, State
from .model import Alert, AlertEvent, Change, EventKind, Observation, fingerprint

SEVERITY: dict[State, int] = {
    State.CALM: 0,
    State.BUILDING: 1,
    State.UNWINDING: 2,
    State.CASCADE: 3,
}
"""How bad a state is: an open alert whose state rises in this order is ``escalated``."""

Instrument = tuple[str, str]


@dataclass
class _Track:
    rule: AlertRule
    key: str
    pending_since_ms: int | None = None
    alert: Alert | None = None
    last_opened_ms: int | None = None
    last_notified_ms: int | None = None


class AlertEngine:
    """Decides alerts from observations (see module doc). Not thread-safe; cheap."""

    def __init__(self, rules: list[AlertRule]) -> None:
        self._rules = list(rules)
        self._by_name = {r.name: r for r in rules}
        self._latest: dict[Instrument, Observation] = {}
        self._scopes: dict[tuple[Scope, str], Observation] = {}
        """The detector's asset scores by ``(ASSET, asset)``, the market's by ``(MARKET, "*")``."""
        self._tracks: dict[str, _Track] = {}

    def restore(self, alerts: list[Alert]) -> None:
        """Resume open alerts stored by a previous run (rules no longer configured: ignored)."""
        for alert in alerts:
            rule = self._by_name.get(alert.rule)
            if rule is None or alert.status != "open":
                continue
            last = alert.changes[-1].ts_ms if alert.changes else alert.updated_ms
            self._tracks[alert.fingerprint] = _Track(
                rule, alert.key, alert=alert, last_opened_ms=alert.opened_ms,
                last_notified_ms=last,
            )  # fmt: skip

    def open_alerts(self) -> list[Alert]:
        return [t.alert for t in self._tracks.values() if t.alert is not None]

    def observe(self, obs: Observation, now_ms: int) -> list[AlertEvent]:
        """Take an instrument's new state or score; the events it causes now."""
        return self.observe_many([obs], now_ms)

    def observe_many(self, observations: list[Observation], now_ms: int) -> list[AlertEvent]:
        """Take many at once (say, every stored score): each scope key is evaluated once."""
        due: dict[tuple[str, str], AlertRule] = {}
        for obs in observations:
            if obs.scope is Scope.INSTRUMENT:
                self._latest[(obs.venue, obs.symbol)] = obs
                rules = [r for r in self._rules if not r.reads_detector_scope()
                         and r.matches(obs.venue, obs.asset)]  # fmt: skip
            else:
                self._scopes[(obs.scope, _key(obs.scope, obs))] = obs
                rules = [r for r in self._rules if r.scope is obs.scope
                         and r.reads_detector_scope() and r.matches(ANY, obs.asset)]  # fmt: skip
            for rule in rules:
                due[(rule.name, _key(rule.scope, obs))] = rule
        out: list[AlertEvent] = []
        for (_, key), rule in due.items():
            out.extend(self._evaluate(rule, key, now_ms))
        return out

    def tick(self, now_ms: int) -> list[AlertEvent]:
        """Let time pass: pending conditions that held long enough open, repeats fall due."""
        out: list[AlertEvent] = []
        for track in list(self._tracks.values()):
            out.extend(self._evaluate(track.rule, track.key, now_ms))
        return out

    def _evaluate(self, rule: AlertRule, key: str, now_ms: int) -> list[AlertEvent]:
        fp = fingerprint(rule.name, rule.scope.value, key)
        track = self._tracks.get(fp)
        if track is None:
            track = self._tracks[fp] = _Track(rule, key)
        cur = self._worst(rule, key)
        active = cur is not None and cur.state in rule.states and cur.score >= rule.min_score
        alert = track.alert
        if alert is None:
            if cur is None or not active:
                track.pending_since_ms = None
                return []
            if track.pending_since_ms is None:
                track.pending_since_ms = now_ms
            held = now_ms - track.pending_since_ms >= rule.for_s * 1000
            if not held or not _due(track.last_opened_ms, rule, now_ms):
                return []
            return [self._open(track, fp, cur, now_ms)]
        if cur is None:
            return []  # nothing observed since a restart: unknown is not calm, keep it open
        alert.state, alert.side, alert.score = cur.state, cur.side, cur.score
        alert.reasons, alert.updated_ms = list(cur.reasons), now_ms
        if active:
            if SEVERITY[cur.state] > SEVERITY[alert.peak_state]:
                alert.peak_state = cur.state
                return [self._notify(track, EventKind.ESCALATED, now_ms)]
            if _due(track.last_notified_ms, rule, now_ms):
                return [self._notify(track, EventKind.REPEATED, now_ms)]
            return []
        if rule.resolve_score is not None and cur.score > rule.resolve_score:
            return []  # hysteresis: the state left, the score has not come down yet
        alert.status, alert.resolved_ms = "resolved", now_ms
        event = self._notify(track, EventKind.RESOLVED, now_ms)
        track.alert, track.pending_since_ms = None, None
        return [event]

    def _open(self, track: _Track, fp: str, cur: Observation, now_ms: int) -> AlertEvent:
        rule = track.rule
        instrument = rule.scope is Scope.INSTRUMENT
        track.alert = Alert(
            id=f"{fp}-{now_ms}", fingerprint=fp, rule=rule.name, scope=rule.scope.value,
            key=track.key, venue=cur.venue if instrument else None,
            symbol=cur.symbol if instrument else None,
            asset=None if rule.scope is Scope.MARKET else cur.asset, state=cur.state,
            peak_state=cur.state, side=cur.side, score=cur.score, reasons=list(cur.reasons),
            opened_ms=now_ms, updated_ms=now_ms, receivers=list(rule.receivers),
        )  # fmt: skip
        track.last_opened_ms = now_ms
        return self._notify(track, EventKind.OPENED, now_ms)

    @staticmethod
    def _notify(track: _Track, kind: EventKind, now_ms: int) -> AlertEvent:
        alert = track.alert
        assert alert is not None
        alert.changes = [
            *alert.changes,
            Change(kind=kind, ts_ms=now_ms, state=alert.state, score=alert.score),
        ]
        alert.updated_ms = now_ms
        track.last_notified_ms = now_ms
        snapshot = msgspec.structs.replace(alert, reasons=list(alert.reasons))
        return AlertEvent(
            id=f"{alert.id}.{len(alert.changes)}", kind=kind, ts_ms=now_ms, alert=snapshot
        )

    def _worst(self, rule: AlertRule, key: str) -> Observation | None:
        """The observation that decides the scope key: its instrument, the detector's asset
        (market) score, or the worst instrument the rule's filters let through."""
        if rule.scope is Scope.INSTRUMENT:
            venue, _, symbol = key.partition("|")
            return self._latest.get((venue, symbol))
        if rule.reads_detector_scope():
            return self._scopes.get((rule.scope, key))
        members = [
            o
            for o in self._latest.values()
            if rule.matches(o.venue, o.asset)
            and (rule.scope is Scope.MARKET or o.asset.upper() == key)
        ]
        if not members:
            return None
        return max(members, key=lambda o: (o.state in rule.states, SEVERITY[o.state], o.score))


def _key(scope: Scope, obs: Observation) -> str:
    if scope is Scope.INSTRUMENT:
        return f"{obs.venue}|{obs.symbol}"
    return obs.asset.upper() if scope is Scope.ASSET else "*"


def _due(last_ms: int | None, rule: AlertRule, now_ms: int) -> bool:
    return last_ms is None or now_ms - last_ms >= rule.repeat_interval_s * 1000
