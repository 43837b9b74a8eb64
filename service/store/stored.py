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

The liquidations likewise, by their place in the tape. The API's liquidation window
(:class:`~service.publish.api.snapshot.LiquidationWindow`) follows the tape's index and read
every new liquidation back from Redis and decoded it: a quarter of the service's samples in a
profile of ``deleverage bench wire --run all`` (94,500 liquidations in a few seconds, a
cascade's share; ``docs/performance.md``, "The window takes what its own writer stored").
The store script answers the index position of each liquidation it stored (a stream id and
its instrument: unique, and the entry at it never changes), and the writer notes the
liquidation under it; the window takes it from here (once: it is dropped when taken) instead
of fetching the entry, and fetches the positions it does not find here (another process's
writes, or one noted too long ago). Bounded by time and count: what no window took within
:data:`LIQUIDATIONS_KEPT_MS` of the newest, or beyond :data:`MAX_LIQUIDATIONS`, is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from ..events import KIND_OF, Event, InstrumentId, Liquidation
from . import keys
from .poison import event_problem

_FIELD: Final = {cls: kind.value.encode() for cls, kind in KIND_OF.items()}
"""A kind's field in an instrument's latest hash (the store script's ``fields``)."""

Newest = dict[InstrumentId, dict[bytes, tuple[bytes, Event]]]
LIQUIDATIONS_KEPT_MS: Final = 30_000
"""How long after the newest noted liquidation one is kept for a window to take (the window
reads twice a second; a process starved for longer reads the rest from Redis)."""
MAX_LIQUIDATIONS: Final = 200_000
"""The most kept at once (a cascade of 50,000 a second that no window reads: about 60 MB)."""
_MS_DIGITS: Final = keys.POSITION_DIGITS


class StoredEvents:
    """The newest event of each instrument and kind that Redis stored, with its bytes."""

    __slots__ = ("liquidations", "liquidations_noted", "liquidations_taken", "newest", "noted",
                 "taken", "writing")  # fmt: skip

    def __init__(self) -> None:
        self.newest: Newest = {}
        """``(venue, symbol) -> field -> (stored bytes, event)``; read by the reader."""
        self.noted = 0
        """Events noted (usable ones)."""
        self.taken = 0
        """Values the reader took from here instead of decoding them (it counts them)."""
        self.liquidations: dict[str, Liquidation] = {}
        """Index position -> the liquidation stored there, oldest noted first."""
        self.liquidations_noted = 0
        self.liquidations_taken = 0
        self.writing = 0
        """Writes in flight (sent, their reply not yet noted): Redis may hold positions of
        them that are not noted yet."""

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

    def note_liquidations(self, stored: Iterable[tuple[bytes | str, Liquidation]]) -> None:
        """Liquidations Redis stored, each with its index position (as the store script
        answers it), in the order stored. Only usable ones (the reader would count the
        others as unusable: it reads those from Redis)."""
        kept = self.liquidations
        noted = 0
        for position, liq in stored:
            if event_problem(liq) is None:
                kept[position if isinstance(position, str) else position.decode()] = liq
                noted += 1
        if not noted:
            return
        self.liquidations_noted += noted
        last = next(reversed(kept))
        oldest_ms = int(last[:_MS_DIGITS]) - LIQUIDATIONS_KEPT_MS
        while kept:
            first = next(iter(kept))
            if len(kept) <= MAX_LIQUIDATIONS and int(first[:_MS_DIGITS]) >= oldest_ms:
                break
            del kept[first]

    @contextmanager
    def writing_now(self) -> Iterator[None]:
        """Around a write whose reply the writer notes: :attr:`writing` while it is in flight."""
        self.writing += 1
        try:
            yield
        finally:
            self.writing -= 1

    def take_liquidation(self, position: str) -> Liquidation | None:
        """The liquidation noted at ``position`` (dropped from here), or ``None``."""
        liq = self.liquidations.pop(position, None)
        if liq is not None:
            self.liquidations_taken += 1
        return liq
