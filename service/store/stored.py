"""The newest events a process's writer stored, with the bytes it stored them as: a reader
of the latest hashes in the same process takes the event for bytes it finds there, instead
of decoding them again.

In ``deleverage run`` the API's snapshot (:class:`.market.MarketReader`) reads every
instrument's latest hash from Redis every half second and decodes each value that changed
since its last read. Under the whole market nearly every value changes between two reads
(every mark moves each 100 ms), so a read decoded and checked about 15,000 values that this
same process had just encoded and written: 8 % of the service's samples in a profile of
``deleverage bench market --no-load`` (``docs/performance.md``, "The snapshot takes what
its own writer stored").

A stored value is immutable JSON and decoding is a function of its bytes, so an event is
taken from here only when the bytes read are equal to the bytes its writer encoded: then it
is the event the decoding would have made. An event is noted only when the reader would
accept it (:func:`.poison.event_problem`), under its own instrument and its kind's field, so
the reader's other checks (the field names the kind, the event is of the hash's instrument)
hold by construction. Anything else (another process wrote the hash, Redis holds an older
value, the event was not usable) is decoded and checked as before.

Bounded by the instruments written: one entry per instrument and kind, the newest (about
20,000 at the whole market's 3,036 instruments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..events import KIND_OF, Event, InstrumentId
from .poison import event_problem

_FIELD: Final = {cls: kind.value.encode() for cls, kind in KIND_OF.items()}
"""A kind's field in an instrument's latest hash (the store script's ``fields``)."""

Newest = dict[InstrumentId, dict[bytes, tuple[bytes, Event]]]


class StoredEvents:
    """The newest event of each instrument and kind that Redis stored, with its bytes."""

    __slots__ = ("newest", "noted", "taken")

    def __init__(self) -> None:
        self.newest: Newest = {}
        """``(venue, symbol) -> field -> (stored bytes, event)``; read by the reader."""
        self.noted = 0
        """Events noted (usable ones)."""
        self.taken = 0
        """Values the reader took from here instead of decoding them (it counts them)."""

    def note(self, events: Sequence[Event], encoded: Sequence[bytes]) -> None:
        """``events``, encoded as ``encoded``, were stored (in this order: the last of an
        instrument's kind is the newest in its latest hash)."""
        newest = self.newest
        noted = 0
        for event, data in zip(events, encoded, strict=True):
            if event_problem(event) is None:
                pair = (event.venue, event.symbol)
                fields = newest.get(pair)
                if fields is None:
                    fields = newest[pair] = {}
                fields[_FIELD[type(event)]] = (data, event)
                noted += 1
        self.noted += noted
