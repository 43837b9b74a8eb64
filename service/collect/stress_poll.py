"""Polling a venue's leverage-stress endpoints inside its published request limits.

Two parts:

* :class:`RequestBudget`: the venue's published limits (:class:`~service.venues._stress.Limit`:
  Binance USDⓈ-M's 2400 weight a minute, its ``futures/data`` endpoints' 1000 requests per
  5 minutes...), each given as the share this budget may spend, counted over a sliding
  window. :meth:`RequestBudget.take` waits until a call fits: a plan that asks for more than
  its share is slowed down, never sent over the limit. One budget per venue is meant to be
  shared by every REST task of the venue (open interest, history, stress).
* :class:`StressPoller`: a venue's plan (``service/venues/<venue>/stress.py``'s ``plan()``:
  paths, parameters, charges, cadence, parser) run against a REST base URL; each body goes
  through its parser (which never raises: drops are counted in :attr:`StressPoller.stats`)
  and the events to ``emit``.

The runtime starts one per venue with a plan (:mod:`.stress_run`); the events go to the
stress writer (:mod:`service.store.stress`).

Failure semantics: an HTTP error status or a network error is counted in
:attr:`StressPoller.failures` (``http_<status>``, ``network``, ``timeout``) and the call is
retried at its next turn; nothing here raises out of :meth:`StressPoller.run` but
cancellation.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

import httpx
import structlog

from ..aio import checkpoint
from ..events import StressEvent
from ..venues._stress import Limit, StressRequest
from ..venues.base import ParseStats

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
_EPSILON_S = 1e-9
"""Float slack when an entry leaves its window (``at + window`` computed, then slept to)."""
Sleep = Callable[[float], Awaitable[None]]


class RequestBudget:
    """Sliding-window accounting of one venue's request limits.

    ``shares`` gives, per limit name, the part of its capacity this budget may use (default
    1.0: all of it); a limit's usable capacity is ``floor(capacity × share)``. ``clock`` is
    monotonic seconds; ``sleep`` waits (both replaceable, for a test on a virtual clock)."""

    def __init__(
        self,
        limits: Sequence[Limit],
        shares: Mapping[str, float] | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        shares = shares or {}
        unknown = set(shares) - {lim.name for lim in limits}
        if unknown:
            raise ValueError(f"shares of unknown limits: {sorted(unknown)}")
        self.limits = {lim.name: lim for lim in limits}
        self.capacity = {
            lim.name: math.floor(lim.capacity * shares.get(lim.name, 1.0)) for lim in limits
        }
        self._spent: dict[str, deque[tuple[float, int]]] = {lim.name: deque() for lim in limits}
        self.clock = clock
        self.sleep = sleep
        self.waited_s = 0.0
        """Time spent waiting for room: above 0, the budget has slowed a plan down."""

    def used(self, name: str) -> int:
        """Units of limit ``name`` spent in the window ending now."""
        self._expire(name, self.clock())
        return sum(units for _, units in self._spent[name])

    def _expire(self, name: str, now: float) -> None:
        spent, window = self._spent[name], self.limits[name].window_s
        while spent and spent[0][0] <= now - window + _EPSILON_S:
            spent.popleft()

    def wait_s(self, charges: Sequence[tuple[str, int]]) -> float:
        """How long until ``charges`` fit in every limit (0: now); raises ``ValueError`` for
        a charge larger than its limit's usable capacity (it would never fit)."""
        now = self.clock()
        wait = 0.0
        for name, units in charges:
            if units > self.capacity[name]:
                raise ValueError(f"a charge of {units} never fits {name} ({self.capacity[name]})")
            if units == 0:
                continue
            self._expire(name, now)
            spent, window = self._spent[name], self.limits[name].window_s
            room = self.capacity[name] - sum(u for _, u in spent)
            freed = 0
            for at, u in spent:  # the oldest entries leave the window first
                if room + freed >= units:
                    break
                freed += u
                wait = max(wait, at + window - now)
        return wait

    async def take(self, charges: Sequence[tuple[str, int]]) -> None:
        """Record ``charges`` once they fit, waiting as long as needed."""
        while (wait := self.wait_s(charges)) > 0.0:
            self.waited_s += wait
            await self.sleep(wait)
        now = self.clock()
        for name, units in charges:
            if units:
                self._spent[name].append((now, units))


class StressPoller:
    """Runs one venue's stress ``plan`` against ``base_url``, every call taken from
    ``budget``. ``emit`` receives each body's events; ``now_ms`` stamps ``recv_ms``."""

    def __init__(
        self,
        venue: str,
        base_url: str,
        plan: Sequence[StressRequest],
        budget: RequestBudget,
        client: httpx.AsyncClient,
        emit: Callable[[list[StressEvent]], None],
        *,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        timeout_s: float = 10.0,
    ) -> None:
        self.venue = venue
        self.base_url = base_url.rstrip("/")
        self.plan = list(plan)
        self.budget = budget
        self.client = client
        self.emit = emit
        self.now_ms = now_ms
        self.timeout_s = timeout_s
        self.stats = ParseStats()
        self.polls = 0
        self.failures: Counter[str] = Counter()
        self.resent = 0
        """Calls sent again after the venue closed the connection without an answer."""
        self._due = [0.0] * len(self.plan)

    async def run(self) -> None:
        """Poll for ever (cancel the task to stop)."""
        while True:
            checkpoint()
            await self.run_due()
            wait = min(self._due, default=1.0) - self.budget.clock()
            await self.budget.sleep(max(wait, 0.0) if self.plan else 1.0)

    async def run_due(self) -> int:
        """Make every call whose turn has come (in plan order); returns how many were made."""
        made = 0
        for i, req in enumerate(self.plan):
            if self._due[i] > self.budget.clock():
                continue
            await self.budget.take(req.charges)
            self._due[i] = self.budget.clock() + req.every_s
            await self._call(req)
            made += 1
        return made

    async def _call(self, req: StressRequest) -> None:
        self.polls += 1
        try:
            response = await self._get(req)
        except httpx.TimeoutException:
            self._fail("timeout", req.path)
            return
        except httpx.HTTPError as exc:
            self._fail("network", f"{req.path}: {type(exc).__name__}")
            return
        if response.status_code != 200:
            self._fail(f"http_{response.status_code}", req.path)
            return
        events = req.parse(response.content, self.now_ms(), self.stats)
        if events:
            self.emit(events)

    async def _get(self, req: StressRequest) -> httpx.Response:
        """The call, sent again once at once (from the budget) when the venue closed the
        connection without an answer (:class:`httpx.RemoteProtocolError`): a kept-alive
        connection that the server closed as it was being reused, its idle timeout meeting
        ours (uvicorn's and httpx's are both 5 s; the demo's log showed it). A ``GET`` is safe
        to send again; a second close is a failure."""
        url, params = self.base_url + req.path, dict(req.params)
        try:
            return await self.client.get(url, params=params, timeout=self.timeout_s)
        except httpx.RemoteProtocolError:
            self.resent += 1
            await self.budget.take(req.charges)
            return await self.client.get(url, params=params, timeout=self.timeout_s)

    def _fail(self, reason: str, detail: str) -> None:
        """Count a failed call; log it at its reason's 1st, 10th, 100th... occurrence."""
        self.failures[reason] += 1
        n = self.failures[reason]
        if n in (1, 10, 100) or n % 1000 == 0:
            log.warning("stress poll failed", venue=self.venue, reason=reason, detail=detail,
                        failures=n)  # fmt: skip
