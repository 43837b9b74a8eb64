"""Drops events already seen, so reconnects and overlapping connections count nothing twice.

* State-like events (mark, funding, open interest) are dropped unless they are newer than
  the last one kept for the same instrument and kind: a replay after a reconnect, or the
  same frame arriving on both connections during a make-before-break rotation, is older
  or equal.
* A liquidation is identified by its instrument and ``event_id`` (the venue's own identity,
  see :class:`~service.events.Liquidation`), or, without one, by its time, side, quantity
  and price; the last ``liquidation_memory`` identities are remembered.

An identity is remembered as its 64-bit hash, not as the tuple it is made of: 86 bytes an
identity at 100,000 (the hash's int in a set, and its slot in an ``int64`` ring that keeps
the order to forget them in), against 161 to 185 for the tuple of strings and numbers in an
ordered dict: 8.6 MB instead of up to 18.5 MB per venue once it has sent
``liquidation_memory`` liquidations. Two distinct identities with the same hash would drop
the second as a duplicate: with 100,000 remembered, about one liquidation in 10^14 (Python's
string hashing is keyed per process, so a venue cannot aim at it). The store deduplicates
again, by ``event_id``, over ``store.liquidation_dedup_s`` (docs/redis.md).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Final

from ..events import Event, Liquidation

LIQUIDATION: Final = "liquidation"
STATE: Final = "state"
"""The kinds of :attr:`Deduplicator.counts`: a liquidation whose identity was seen, a
state-like event not newer than the last one kept."""


class Deduplicator:
    def __init__(self, liquidation_memory: int = 100_000) -> None:
        self._last_ts: dict[tuple[type, str], int] = {}
        self._liquidations: set[int] = set()
        """The remembered identities' hashes."""
        self._order = array("q")
        """The same hashes in the order seen, then (once ``liquidation_memory`` long) a ring
        with the oldest at ``_next``."""
        self._next = 0
        self._memory = liquidation_memory
        self.counts: Counter[str] = Counter()
        """What was dropped, by kind (:data:`LIQUIDATION`, :data:`STATE`); a collector shares
        its health's counter here (``deleverage_feed_duplicates_total``)."""

    @property
    def dropped(self) -> int:
        return self.counts[LIQUIDATION] + self.counts[STATE]

    def remember(self, events: Sequence[Event]) -> None:
        """Take the state-like ``events`` as already kept (a collector's restart: the newest
        of each kind its instruments have in Redis), so that a venue's snapshot after the
        reconnect is not kept again. Liquidations are left to the store's identities."""
        last_ts = self._last_ts
        for ev in events:
            if type(ev) is not Liquidation:
                skey = (type(ev), ev.symbol)
                last_ts[skey] = max(ev.ts_ms, last_ts.get(skey, -1))

    def filter(self, events: Sequence[Event]) -> list[Event]:
        """The events of ``events`` not seen before, in order."""
        out: list[Event] = []
        last_ts = self._last_ts
        for ev in events:
            if type(ev) is Liquidation:
                key = hash(
                    (ev.symbol, ev.event_id)
                    if ev.event_id
                    else (ev.symbol, ev.ts_ms, ev.side, ev.quantity, ev.price)
                )
                seen = self._liquidations
                if key in seen:
                    self.counts[LIQUIDATION] += 1
                    continue
                seen.add(key)
                order = self._order
                if len(order) < self._memory:
                    order.append(key)
                else:
                    seen.discard(order[self._next])  # the oldest: forgotten
                    order[self._next] = key
                    self._next = (self._next + 1) % self._memory
            else:
                skey = (type(ev), ev.symbol)
                if ev.ts_ms <= last_ts.get(skey, -1):
                    self.counts[STATE] += 1
                    continue
                last_ts[skey] = ev.ts_ms
            out.append(ev)
        return out
