"""What the detector knows of its input: which events can be used, and which venues' data is
missing rather than calm (pure; the runner reports its reads to it).

Missing data is not calm. :meth:`InputWatch.holds` names the venues whose instruments must
keep their states (at quality 0, see :meth:`~.base.PressureModel.evaluate`):

* every venue while the store is unreachable (the last read failed or hung);
* a venue whose newest event (receive time) is older than its input gap: its collector is
  down, its feed silent, or the writer behind;
* after an outage, a venue whose events up to the moment the store answered again have not
  arrived yet (the writer's backlog), for at most its input gap.

:meth:`InputWatch.screen` drops the events that hold impossible values
(:func:`service.validate.problem`), counted in :mod:`service.store.poison`: a model fed a
negative size or a zero price would fail on every restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..events import STRESS_KIND_OF, HandoffEvent
from ..scores import ANY
from ..store import keys, poison
from ..validate import problem

INPUT_GAP_S: Final = 10.0
"""A venue with no new event for this long is held: several intervals of every websocket
venue's mark-price feed. A polled venue is given twice its poll interval."""
STORE_DOWN: Final = "no data: the store is unreachable; holding the last state"
CAUGHT_UP_SLACK: Final = 10
"""After an outage a venue has caught up once its newest event is within a tenth of its
input gap of the moment the store answered."""


class InputWatch:
    """The newest receive time per venue and the store's state, for :meth:`holds`."""

    def __init__(self, venues: list[str], gap_s: Mapping[str, float] | None = None) -> None:
        self._gap_ms = {v: int((gap_s or {}).get(v, INPUT_GAP_S) * 1000) for v in venues}
        self._seen_ms: dict[str, int] = {}
        self._store_down = False
        self._recovered_ms: int | None = None
        self.events_dropped = 0
        """Events that held impossible values (skipped)."""

    def reset(self) -> None:
        """Forget what was read (the detector starts over from the hand-off history)."""
        self._seen_ms.clear()

    def read_failed(self) -> bool:
        """A read failed or hung; True when the store was answering until now."""
        first = not self._store_down
        self._store_down = True
        self._recovered_ms = None
        return first

    def read_done(self, now_ms: int) -> bool:
        """A read succeeded; True when the store answers again after an outage."""
        if not self._store_down:
            return False
        self._store_down = False
        self._recovered_ms = now_ms
        return True

    def screen(self, events: list[HandoffEvent], venue: str, now_ms: int) -> list[HandoffEvent]:
        """``events`` without those holding impossible values (counted); notes the newest
        receive time (one ahead of ``now_ms`` is not trusted) of the market data: a stress
        event comes from the stress poller, not the venue's feed, and says nothing of it."""
        newest = 0
        for e in events:
            if problem(e) is not None:
                break
            if e.recv_ms > newest and type(e) not in STRESS_KIND_OF:
                newest = e.recv_ms
        else:
            self._saw(venue, min(newest, now_ms))
            return events
        keep = []
        for e in events:
            why = problem(e)
            if why is None:
                keep.append(e)
                continue
            self.events_dropped += 1
            poison.record("handoff", poison.Reason.INVALID, keys.handoff(venue), f"{why}: {e}")
        data = (e.recv_ms for e in keep if type(e) not in STRESS_KIND_OF)
        self._saw(venue, min(max(data, default=0), now_ms))
        return keep

    def _saw(self, venue: str, recv_ms: int) -> None:
        if recv_ms > self._seen_ms.get(venue, 0):
            self._seen_ms[venue] = recv_ms

    def holds(self, now_ms: int) -> dict[str, str]:
        """The venues (:data:`~.model.ANY`: all) whose instruments must keep their states
        now, with the reason (see module doc)."""
        if self._store_down:
            return {ANY: STORE_DOWN}
        out: dict[str, str] = {}
        recovered = self._recovered_ms
        behind = False
        for venue, gap_ms in self._gap_ms.items():
            seen = self._seen_ms.get(venue)
            if seen is None:
                continue  # nothing of it yet: no instruments to hold
            if now_ms - seen > gap_ms:
                quiet = round((now_ms - seen) / 1000)
                out[venue] = f"no data from {venue} for {quiet} s: holding the last state"
            elif (
                recovered is not None
                and seen < recovered - gap_ms // CAUGHT_UP_SLACK
                and now_ms - recovered <= gap_ms
            ):
                behind = True
                out[venue] = "catching up after a store outage: holding the last state"
        if recovered is not None and not behind:
            self._recovered_ms = None  # every venue caught up (or gave up waiting)
        return out
