"""What a venue's frames look like, for the drift checks: per channel, the fields its parser
reads and the other fields the venue is known to send, how often the venue documents it
pushes, and a classifier that tells what a raw frame is (data of a channel, an answer to a
subscription, a keep-alive).

Pure: no I/O, no clock. ``deleverage check-venues`` (:mod:`service.collect.probe`) runs it
on every frame of a short session; the collector's passive monitor
(:mod:`service.collect.drift`) on a sample of the frames it reads. Each venue declares its
:class:`Shape` next to its parser (``<venue>/shape.py``), the read fields derived from the
msgspec structs the parser decodes into wherever they exist.

What "differs" means: a row's field the channel does not know is *unknown* (reported: the
venue added or renamed something; the parser ignores it); a field the channel requires and a
complete row lacks is *missing* (a failure: the parser cannot read the row as it should).
Rows of delta frames (only the fields that changed) are checked for unknown fields only.
Nested objects are checked where the channel names them (``details`` of an OKX liquidation
entry: ``details.bkPx``...); other nested values count as one field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from ..events import Kind

SILENCE_FLOOR_S: Final = 60.0
"""No channel is called silent before this long without an event (network jitter, a quiet
minute on a channel that pushes on change)."""
SILENCE_FACTOR: Final = 10.0
"""A periodic channel is silent after this many of its documented periods without an
event."""

FrameKind = Literal["data", "ack", "refused", "keepalive", "other"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One channel (or REST endpoint) the service uses, as the venue documents it."""

    name: str
    """The venue's own name (``tickers``, ``mark-price``, ``futures.public_liquidates``)."""
    kinds: frozenset[Kind]
    """The events the parser makes of its frames."""
    read: frozenset[str]
    """Row fields the parser reads (dotted for nested ones: ``details.bkPx``)."""
    required: frozenset[str]
    """The read fields a complete row must carry."""
    ignored: frozenset[str] = frozenset()
    """Fields the venue sends that the parser has no use for (from its docs and captures)."""
    nested: frozenset[str] = frozenset()
    """Fields whose objects (or lists of objects) are checked field by field."""
    every_s: float | None = None
    """The documented push period; ``None`` for an event-driven channel (liquidations),
    where silence can mean that nothing happened."""
    rate: str = ""
    """The documented rate as the docs say it, for messages (``every 100 ms``)."""
    rest: bool = False
    """An endpoint polled over REST, not a websocket channel."""

    @property
    def known(self) -> frozenset[str]:
        return self.read | self.ignored

    @property
    def silent_after_s(self) -> float | None:
        """How long without an event means the channel is silent (``None``: never said)."""
        if self.every_s is None:
            return None
        return max(SILENCE_FLOOR_S, SILENCE_FACTOR * self.every_s)


@dataclass(frozen=True, slots=True)
class Seen:
    """What one frame is, as far as the drift checks care."""

    kind: FrameKind
    channel: str | None = None
    """Of a data frame: its channel."""
    rows: tuple[Mapping[str, Any], ...] = ()
    """Of a data frame: its rows (objects), to compare with the channel's fields."""
    complete: bool = True
    """False for a delta (only what changed): its rows are not checked for missing fields."""
    channels: tuple[str, ...] | None = None
    """Of an answer: the channels it names (acknowledged, or refused); ``None`` when it
    names none (then it concerns the channels of the request it answers)."""
    request: str | None = None
    """Of an answer: the id of the request it answers, when the venue echoes one."""
    detail: str = ""
    """Of a refusal: the venue's message."""


@dataclass(slots=True)
class FieldCount:
    """Unknown and missing fields seen in a channel's rows, with how many rows each."""

    rows: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)

    def add(self, channel: Channel, seen: Seen) -> None:
        for row in seen.rows:
            self.rows += 1
            keys = flatten(row, channel.nested)
            for name in keys - channel.known:
                self.unknown[name] = self.unknown.get(name, 0) + 1
            if seen.complete:
                for name in missing(channel, keys):
                    self.missing[name] = self.missing.get(name, 0) + 1


def flatten(row: Mapping[str, Any], nested: frozenset[str], prefix: str = "") -> set[str]:
    """The field names of ``row``, those of its ``nested`` objects as ``parent.child``."""
    out: set[str] = set()
    for key, value in row.items():
        name = f"{prefix}{key}"
        out.add(name)
        if name not in nested:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, Mapping):
                out |= flatten(item, nested, f"{name}.")
    return out


def missing(channel: Channel, keys: set[str]) -> set[str]:
    """The required fields absent from a complete row's ``keys``. A nested field is required
    only where its parent holds something (an empty list of fills lacks nothing)."""
    out: set[str] = set()
    for name in channel.required - keys:
        parent = name.rpartition(".")[0]
        if not parent or (parent in keys and any(k.startswith(f"{parent}.") for k in keys)):
            out.add(name)
    return out


def fields_of(struct: type[msgspec.Struct], prefix: str = "") -> frozenset[str]:
    """The wire names of a msgspec struct's fields (what the parser reads)."""
    return frozenset(f"{prefix}{f.encode_name}" for f in msgspec.structs.fields(struct))


def required_of(struct: type[msgspec.Struct], prefix: str = "") -> frozenset[str]:
    """The wire names of the fields a msgspec struct cannot decode without."""
    return frozenset(
        f"{prefix}{f.encode_name}" for f in msgspec.structs.fields(struct) if f.required
    )


def names(*groups: Iterable[str] | str) -> frozenset[str]:
    """Field names from strings of space-separated names and iterables of names."""
    out: set[str] = set()
    for g in groups:
        out |= set(g.split()) if isinstance(g, str) else set(g)
    return frozenset(out)


def subscription(message: str, key: str, value: str) -> dict[str, Any] | None:
    """One of our messages as a JSON object when it is a subscription (its ``key`` is
    ``value``: ``"op": "subscribe"``), else ``None`` (for :meth:`Shape.requested`)."""
    try:
        req = msgspec.json.decode(message)
    except msgspec.DecodeError:
        return None
    return req if isinstance(req, dict) and req.get(key) == value else None


_decode = msgspec.json.Decoder()


def decode(frame: str | bytes) -> Any:
    """A frame as JSON values, or its text when it is not JSON (``pong``) or nested deeper
    than the decoder follows (a hostile frame: the parser counts it as ``too_deep``).
    Never raises."""
    try:
        return _decode.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        return frame if isinstance(frame, str) else frame.decode("utf-8", "replace")


def rows_of(value: Any) -> tuple[Mapping[str, Any], ...]:
    """The objects of a frame's payload: an object, a list of objects, a list of lists."""
    if isinstance(value, Mapping):
        return (value,)
    if not isinstance(value, list):
        return ()
    out: list[Mapping[str, Any]] = []
    for item in value:
        if isinstance(item, Mapping):
            out.append(item)
        elif isinstance(item, list):
            out.extend(i for i in item if isinstance(i, Mapping))
    return tuple(out)


def named_in(text: str, channels: Iterable[str]) -> tuple[str, ...]:
    """The channels whose names appear in ``text`` (a venue's refusal message)."""
    return tuple(c for c in channels if c in text)


class Shape(ABC):
    """A venue's frames: its channels, and how to tell what a frame is."""

    channels: tuple[Channel, ...]

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)

    @property
    def streamed(self) -> tuple[Channel, ...]:
        """The websocket channels (not the REST endpoints)."""
        return tuple(c for c in self.channels if not c.rest)

    @abstractmethod
    def classify(self, msg: Any) -> Seen:
        """What ``msg`` is (a frame as :func:`decode` returns it). Never raises."""

    @abstractmethod
    def requested(self, message: str) -> tuple[str | None, frozenset[str]]:
        """Of one of our subscribe messages: its request id (``None`` when the venue's
        protocol has none) and the channels it subscribes."""

    def answer_channels(self, seen: Seen, sent: Mapping[str, frozenset[str]]) -> set[str]:
        """The channels an answer concerns: those it names, else those of the request it
        answers (``sent``: request id -> channels, from :meth:`requested`)."""
        if seen.channels is not None:
            return set(seen.channels)
        if seen.request is not None:
            return set(sent.get(seen.request, ()))
        return set()


def text(value: Any) -> str:
    """A JSON value as short text (a venue's message)."""
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()[:300]
