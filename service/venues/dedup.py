"""Drops events already seen, so reconnects and overlapping connections count nothing twice.

* State-like events (mark, funding, open interest) are dropped unless they are newer than
  the last one kept for the same instrument and kind: a replay after a reconnect, or the
  same frame arriving on both connections during a make-before-break rotation, is older
  or equal.
* A liquidation is identified by its instrument and ``event_id`` (the venue's own identity,
  see :class:`~service.events.Liquidation`), or, without one, by its time, side, quantity
  and price; the last ``liquidation_memory`` identities are remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from ..events import Event, Liquidation


class Deduplicator:
    def __init__(self, liquidation_memory: int = 100_000) -> None:
        self._last_ts: dict[tuple[type, str], int] = {}
        self._liquidations: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self._memory = liquidation_memory
        self.dropped = 0

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
                key = (
                    (ev.symbol, ev.event_id)
                    if ev.event_id
                    else (ev.symbol, ev.ts_ms, ev.side, ev.quantity, ev.price)
                )
                if key in self._liquidations:
                    self.dropped += 1
                    continue
                self._liquidations[key] = None
                if len(self._liquidations) > self._memory:
                    self._liquidations.popitem(last=False)
            else:
                skey = (type(ev), ev.symbol)
                if ev.ts_ms <= last_ts.get(skey, -1):
                    self.dropped += 1
                    continue
                last_ts[skey] = ev.ts_ms
            out.append(ev)
        return out
