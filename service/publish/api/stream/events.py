"""What the live stream sends: the entries of the Redis streams the hub tails, turned into
events, each encoded once as a Server-Sent Events frame; and the filter a client chose.

An event's id is the position of what it came from: the Redis stream entry id (``<ms>-<seq>``,
Redis's own clock), ``@<source>`` the stream (entries of two streams may have the same id:
sequence numbers are per stream) and, for an entry holding several events (a round's
scores, a batch's liquidations), ``.<n>`` its index in the entry:
``1795491796123-0@bybit.2``. Positions order events the same way in every API process
(they are Redis's ids and fixed source names), so a client may resume on any of them.

Payloads are the REST items (:mod:`..items`): a ``score`` reads like an item of
``/v1/pressure`` (without ``features``, with ``scope``), a ``transition`` like one of
``/v1/transitions``, a ``liquidation`` like one of ``/v1/liquidations``, an ``alert`` is the
notification (``kind``: opened, escalated, repeated, resolved) with the alert as in
``/v1/alerts``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ....alerts.model import AlertEvent
from ....events import Liquidation
from ....scores import ANY, Pressure, Scope, Transition
from ....store import poison
from ....store.reader import handoff_events
from ..items import alert_item, liquidation_item, pressure_item, transition_item
from ..params import rfc3339

Position = tuple[int, int, str, int]
"""``(ms, seq, source, n)``: the Redis entry id, its stream's source name, the event's index
in the entry."""
Entry = tuple[int, int, str]
"""``(ms, seq, source)``: where the events of one entry come from."""
ORIGIN: Final[Position] = (0, 0, "", 0)
ScoreKey = tuple[str, str, str]
"""A score's identity: ``(scope, venue or asset, symbol)``."""

_ID: Final = re.compile(r"([0-9]{1,15})-([0-9]{1,19})@([a-z0-9_]{1,40})(?:\.([0-9]{1,6}))?")
MAX_ID_CHARS: Final = 96
ID_PATTERN: Final = r"^[0-9]{1,15}-[0-9]{1,19}@[a-z0-9_]{1,40}(\.[0-9]{1,6})?$"
SOURCE_SCORES: Final = "scores"
SOURCE_ALERTS: Final = "alerts"


def transitions_source(scope: str) -> str:
    return f"transitions_{scope}"


_PRESSURES: Final = msgspec.json.Decoder(list[Pressure])
_TRANSITION: Final = msgspec.json.Decoder(Transition)
_ALERT_EVENT: Final = msgspec.json.Decoder(AlertEvent)
_encode = msgspec.json.Encoder().encode


class EventType(enum.StrEnum):
    SCORE = "score"
    TRANSITION = "transition"
    ALERT = "alert"
    LIQUIDATION = "liquidation"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event, with what the filters look at and its frames, encoded once."""

    pos: Position
    type: EventType
    scope: str
    asset: str
    """Upper case; ``*`` for the market."""
    venue: str
    """``*`` for an asset's or the market's event."""
    notional_usd: float
    """A liquidation's; 0 for the others."""
    frame: bytes
    """The SSE frame, with its ``id``."""
    bare: bytes
    """The same without ``id`` (a snapshot: it must not move the client's resume point)."""
    key: ScoreKey | None = None


def event_id(pos: Position) -> str:
    ms, seq, source, n = pos
    return f"{ms}-{seq}@{source}" if n == 0 else f"{ms}-{seq}@{source}.{n}"


def parse_event_id(text: str) -> Position | None:
    """The position a ``Last-Event-ID`` names, or ``None`` when it is not one of ours."""
    match = _ID.fullmatch(text.strip()) if len(text) <= MAX_ID_CHARS else None
    if match is None:
        return None
    return int(match[1]), int(match[2]), match[3], int(match[4] or 0)


def entry_position(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def frame(kind: str, data: bytes, id_: str | None = None) -> bytes:
    """An SSE frame. ``data`` is compact JSON: it holds no line break."""
    head = b"" if id_ is None else b"id: " + id_.encode() + b"\n"
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def control(kind: str, **data: Any) -> bytes:
    """A frame of the stream itself (``heartbeat``, ``dropped``, ``reset``): no id."""
    return frame(kind, _encode(data))


def _event(
    pos: Position | None, type_: EventType, item: dict[str, Any], *, scope: str, asset: str,
    venue: str, notional_usd: float = 0.0, key: ScoreKey | None = None,
) -> LiveEvent:  # fmt: skip
    data = _encode(item)
    bare = frame(type_.value, data)
    framed = bare if pos is None else frame(type_.value, data, event_id(pos))
    return LiveEvent(
        pos or ORIGIN, type_, scope, asset.upper(), venue, notional_usd, framed, bare, key
    )


def score_event(pos: Position | None, p: Pressure) -> LiveEvent:
    """A score (of any scope); ``pos`` ``None`` for one read from the latest scores."""
    item = pressure_item(p)
    del item["features"]
    item["scope"] = p.scope
    name = p.symbol if p.scope is Scope.INSTRUMENT else p.asset
    key = (p.scope.value, p.venue, name)
    return _event(pos, EventType.SCORE, item, scope=p.scope, asset=p.asset, venue=p.venue, key=key)


def score_events(entry: Entry, raw: bytes, stream: str) -> list[LiveEvent]:
    """The events of one ``keys.SCORES`` entry (a round's scores)."""
    scores = poison.decode_or_record(_PRESSURES, raw, "scores", stream) or []
    out = []
    for n, p in enumerate(scores):
        problem = poison.pressure_problem(p)
        if problem is not None:
            poison.record("scores", poison.Reason.INVALID, stream, problem)
            continue
        out.append(score_event((*entry, n), p))
    return out


def transition_events(entry: Entry, raw: bytes, stream: str) -> list[LiveEvent]:
    t = poison.decode_or_record(_TRANSITION, raw, "transition", stream)
    if t is None:
        return []
    problem = poison.transition_problem(t)
    if problem is not None:
        poison.record("transition", poison.Reason.INVALID, stream, problem)
        return []
    item = transition_item(f"{entry[0]}-{entry[1]}", t)
    return [
        _event((*entry, 0), EventType.TRANSITION, item, scope=t.scope, asset=t.asset,
               venue=t.venue)
    ]  # fmt: skip


def alert_events(entry: Entry, raw: bytes, stream: str) -> list[LiveEvent]:
    ev = poison.decode_or_record(_ALERT_EVENT, raw, "alert", stream)
    if ev is None:
        return []
    a = ev.alert
    problem = poison.times_problem([("ts_ms", ev.ts_ms), ("opened_ms", a.opened_ms),
                                    ("updated_ms", a.updated_ms)])  # fmt: skip
    if problem is not None:
        poison.record("alert", poison.Reason.INVALID, stream, problem)
        return []
    item = {"id": ev.id, "kind": ev.kind, "at": rfc3339(ev.ts_ms), "alert": alert_item(a)}
    return [
        _event((*entry, 0), EventType.ALERT, item, scope=a.scope, asset=a.asset or ANY,
               venue=a.venue or ANY)
    ]  # fmt: skip


LIQUIDATION_TAG: Final = b'"liquidation"'
"""In a hand-off entry that holds a liquidation: entries without it are not decoded."""


def liquidation_events(entry: Entry, raw: bytes, stream: str) -> list[LiveEvent]:
    """The liquidations of one hand-off entry (a batch of one venue's stored events)."""
    if LIQUIDATION_TAG not in raw:
        return []
    out = []
    n = 0
    for e in handoff_events(raw, stream):
        if type(e) is not Liquidation:
            continue
        problem = poison.event_problem(e)
        if problem is not None:
            poison.record("handoff", poison.Reason.INVALID, stream, problem)
            continue
        out.append(
            _event((*entry, n), EventType.LIQUIDATION, liquidation_item(e),
                   scope=Scope.INSTRUMENT, asset=e.base, venue=e.venue,
                   notional_usd=e.notional_usd)
        )  # fmt: skip
        n += 1
    return out


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one client asked for; ``None`` means any. ``scope``, ``asset`` and ``venue``
    apply to every event (a liquidation is an instrument's event; an asset's and the
    market's events have venue ``*``, the market's asset ``*``); ``min_notional_usd`` to
    liquidations only."""

    types: frozenset[EventType] = frozenset(EventType)
    scope: str | None = None
    asset: str | None = None
    venue: str | None = None
    min_notional_usd: float | None = None

    def matches(self, ev: LiveEvent) -> bool:
        return (
            ev.type in self.types
            and (self.scope is None or ev.scope == self.scope)
            and (self.asset is None or ev.asset == self.asset)
            and (self.venue is None or ev.venue == self.venue)
            and (
                self.min_notional_usd is None
                or ev.type is not EventType.LIQUIDATION
                or ev.notional_usd >= self.min_notional_usd
            )
        )

    def select(self, events: Iterable[LiveEvent]) -> list[bytes]:
        """The frames of the matching events."""
        return [ev.frame for ev in events if self.matches(ev)]
