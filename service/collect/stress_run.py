"""A venue's stress polling as a component of the service: the plan built from the venue's
collector's instruments, run inside its own budget, the events to the stress writer.

* :data:`PLANS`: the venues with a stress plan (``service/venues/<venue>/stress.py``), their
  published limits, and how each plan is built from the collector's instruments.
* :class:`StressRunner`: waits for the collector's first instrument list, builds the plan,
  splits it by the limits it charges (one :class:`~.stress_poll.StressPoller` per group,
  all on the venue's one :class:`~.stress_poll.RequestBudget`: a venue-wide call such as the
  insurance fund never waits behind a round of per-symbol ``futures/data`` calls of another
  limit) and runs them until cancelled.

The budget is the venue's stress budget: each published limit times ``limit_share``. It is
not the open-interest poller's: that one paces itself at ``oi_poll_weight_per_minute`` (a
fixed interval per call, not a window account), so the two are separate shares of the
published limit, and their sum must stay inside it (the defaults: docs/stress.md).

Failure semantics: a venue that answers errors or not at all is counted (:attr:`failures`,
logged at the 1st, 10th, 100th... failure) and polled again at the next turn; nothing here
touches the collector, and a bug that escapes is the supervisor's (this component alone is
restarted). The plan is built once per run: new listings join at the next restart.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
import structlog

from ..config import StressSettings
from ..events import StressEvent
from ..store import keys
from ..venues._stress import Limit, StressRequest
from ..venues.base import Instrument, ParseStats
from ..venues.binance import stress as binance_stress
from ..venues.binance.usdm import VENUE as BINANCE_USDM
from ..venues.bybit import stress as bybit_stress
from ..venues.bybit.venue import VENUE as BYBIT
from ..venues.gateio import stress as gate_stress
from ..venues.gateio.instruments import VENUE as GATEIO
from ..venues.okx import stress as okx_stress
from ..venues.okx.instruments import VENUE as OKX
from .stress_poll import RequestBudget, StressPoller

log = structlog.get_logger(__name__)

PlanBuilder = Callable[
    [str, Mapping[str, Instrument], Sequence[str], StressSettings], list[StressRequest]
]
MarketsSource = Callable[[], tuple[Mapping[str, Instrument], set[str] | None]]
"""The collector's instruments and the symbols it wants (``None``: all of them)."""


@dataclass(frozen=True, slots=True)
class StressVenue:
    limits: tuple[Limit, ...]
    plan: PlanBuilder


def _or(every_s: float | None, default: float) -> float:
    return default if every_s is None else every_s


def _binance(
    venue: str, markets: Mapping[str, Instrument], symbols: Sequence[str], s: StressSettings
) -> list[StressRequest]:
    ratings = _or(s.venue_every_s, 300.0)
    return binance_stress.plan(venue, markets, symbols, every_s=s.every_s, ratings_every_s=ratings)


def _bybit(
    venue: str, markets: Mapping[str, Instrument], symbols: Sequence[str], s: StressSettings
) -> list[StressRequest]:
    return bybit_stress.plan(
        markets, symbols, every_s=s.every_s, alerts_every_s=_or(s.venue_every_s, 60.0),
        insurance_every_s=_or(s.venue_every_s, 300.0),
    )  # fmt: skip


def _okx(
    venue: str, markets: Mapping[str, Instrument], symbols: Sequence[str], s: StressSettings
) -> list[StressRequest]:
    families = sorted({("SWAP", x.removesuffix("-SWAP")) for x in symbols if x.endswith("-SWAP")})
    ccys = sorted({markets[x].base for x in symbols})
    insurance = _or(s.venue_every_s, 60.0)
    return okx_stress.plan(families, ccys, every_s=s.every_s, insurance_every_s=insurance)


def _gate(
    venue: str, markets: Mapping[str, Instrument], symbols: Sequence[str], s: StressSettings
) -> list[StressRequest]:
    return gate_stress.plan(markets, symbols, every_s=s.every_s)


PLANS: Mapping[str, StressVenue] = {
    BINANCE_USDM: StressVenue(binance_stress.LIMITS, _binance),
    BYBIT: StressVenue(bybit_stress.LIMITS, _bybit),
    OKX: StressVenue(okx_stress.LIMITS, _okx),
    GATEIO: StressVenue(gate_stress.LIMITS, _gate),
}
"""The venues whose stress endpoints are polled (docs/stress.md has why the others are not)."""


def by_limits(plan: Sequence[StressRequest]) -> list[list[StressRequest]]:
    """``plan`` split by the set of limits each call charges, in plan order."""
    groups: dict[frozenset[str], list[StressRequest]] = {}
    for req in plan:
        groups.setdefault(frozenset(name for name, _ in req.charges), []).append(req)
    return list(groups.values())


class StressRunner:
    """One venue's stress polling (see module doc). ``run`` may be called again after it
    failed: the counters carry over."""

    def __init__(
        self,
        venue: str,
        rest_url: str,
        settings: StressSettings,
        markets: MarketsSource,
        emit: Callable[[list[StressEvent]], None],
        *,
        timeout_s: float = 10.0,
        budget: RequestBudget | None = None,
    ) -> None:
        self.venue = venue
        self.rest_url = rest_url
        self.settings = settings
        self.spec = PLANS[venue]
        self.markets = markets
        self.timeout_s = timeout_s
        self.budget = budget or RequestBudget(
            self.spec.limits, {lim.name: settings.limit_share for lim in self.spec.limits}
        )
        self.stats = ParseStats()
        self.failures: Counter[str] = Counter()
        self.events_total = 0
        self.pollers: list[StressPoller] = []
        self._polls_before = 0
        self.latest: dict[str, StressEvent] = {}
        """The newest event per :func:`~service.store.keys.stress_field` (for /metrics);
        bounded by the plan's instruments, pools and figures."""
        self._emit = emit

    @property
    def polls_total(self) -> int:
        return self._polls_before + sum(p.polls for p in self.pollers)

    def _on_events(self, events: list[StressEvent]) -> None:
        self.events_total += len(events)
        for ev in events:
            self.latest[keys.stress_field(ev)] = ev
        self._emit(events)

    async def _wait_for_markets(self) -> tuple[Mapping[str, Instrument], list[str]]:
        while True:
            markets, wanted = self.markets()
            if markets:
                symbols = sorted(s for s in markets if wanted is None or s in wanted)
                return markets, symbols
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Poll until cancelled."""
        markets, symbols = await self._wait_for_markets()
        plan = self.spec.plan(self.venue, markets, symbols, self.settings)
        groups = by_limits(plan)
        log.info("stress polling", venue=self.venue, calls=len(plan), symbols=len(symbols))
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            pollers = []
            for group in groups:
                poller = StressPoller(
                    self.venue, self.rest_url, group, self.budget, client, self._on_events,
                    timeout_s=self.timeout_s,
                )  # fmt: skip
                poller.stats, poller.failures = self.stats, self.failures  # shared counters
                pollers.append(poller)
            self._polls_before += sum(p.polls for p in self.pollers)
            self.pollers = pollers
            async with asyncio.TaskGroup() as tg:
                for i, poller in enumerate(pollers):
                    tg.create_task(poller.run(), name=f"stress:{self.venue}:{i}")
