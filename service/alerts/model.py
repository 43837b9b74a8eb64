"""Alerts as values: what the engine decides, what Redis keeps and what receivers get.

An :class:`Alert` is one occurrence of a rule firing for one scope key (``opened`` until
``resolved``); its ``fingerprint`` names the identity (rule, scope, key) and is the same for
every occurrence. Each notification is an :class:`AlertEvent` whose ``id`` is stable
(``<alert id>.<n>``): it is the ``webhook-id`` receivers use to drop duplicates.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Literal

import msgspec

from ..events import Side
from ..scores import Pressure, Scope, State, Transition


class EventKind(enum.StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    """The state worsened (e.g. unwinding → cascade) while open."""
    REPEATED = "repeated"
    """Still open after ``repeat_interval_s`` without a notification."""
    RESOLVED = "resolved"


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """What the engine is told about one instrument: from a transition or a score."""

    venue: str
    symbol: str
    asset: str
    state: State
    side: Side | None
    score: float
    ts_ms: int
    reasons: list[str] = []
    scope: Scope = Scope.INSTRUMENT
    """An instrument's, or the detector's asset (market) score: ``venue`` and ``symbol``
    are then ``*`` (and ``asset`` too for the market)."""

    @classmethod
    def of(cls, value: Transition | Pressure) -> Observation:
        if isinstance(value, Transition):
            state, ts_ms = value.to_state, value.ts_ms
        else:
            state, ts_ms = value.state, value.updated_ms
        return cls(
            venue=value.venue, symbol=value.symbol, asset=value.asset, state=state,
            side=value.side, score=value.score, ts_ms=ts_ms, reasons=list(value.reasons),
            scope=value.scope,
        )  # fmt: skip


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One step of an alert's history."""

    kind: EventKind
    ts_ms: int
    state: State
    score: float


class Alert(msgspec.Struct, kw_only=True):
    id: str
    fingerprint: str
    rule: str
    scope: str
    key: str
    """``venue|symbol``, the asset, or ``*`` (market)."""
    venue: str | None
    symbol: str | None
    asset: str | None
    state: State
    peak_state: State
    side: Side | None
    score: float
    reasons: list[str]
    status: Literal["open", "resolved"] = "open"
    opened_ms: int
    updated_ms: int
    resolved_ms: int | None = None
    receivers: list[str]
    changes: list[Change] = []


class AlertEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: EventKind
    ts_ms: int
    alert: Alert


def fingerprint(rule: str, scope: str, key: str) -> str:
    """Stable identity of an alert: the same rule, scope and key give the same fingerprint."""
    return hashlib.sha256(f"{rule}\x1f{scope}\x1f{key}".encode()).hexdigest()[:16]


encode = msgspec.json.Encoder().encode
decode_alert = msgspec.json.Decoder(Alert).decode
decode_event = msgspec.json.Decoder(AlertEvent).decode
