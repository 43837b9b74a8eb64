"""Warm start: fill the baselines from the venues' own history at start-up.

A baseline needs hours of data; the venues keep days of open-interest history (5-minute
points) and every funding settlement. At start-up, per venue that serves history
(``Venue.has_history``; its endpoints are in its own module, see :mod:`service.venues.history`)
(concurrently, each within ``warmup_timeout_s`` and ``warmup_max_requests``):

1. the instrument metadata (the venue's ``load_markets``: linear or inverse, funding
   interval);
2. the instruments the model has seen on the venue, largest open interest first, up to
   ``warmup_max_symbols`` (instruments seen later, within the time limit, are warmed too);
3. per instrument, the open interest over ``warmup_history_s`` and the last
   ``FUNDING_POINTS`` funding rates, through the venue's own ccxt client (its rate limiter,
   error mapping and configurable base URL: the simulator serves the same paths), handed
   to the model's ``seed``.

A failed request is logged and skipped (the instrument stays on live baselines); nothing
here can stop the detector. Venues: Binance USDⓈ-M (``/futures/data/openInterestHist``,
``/fapi/v1/fundingRate``), Bybit (``/v5/market/open-interest``, ``/v5/market/funding/
history``; open interest of inverse contracts is in USD and skipped, the base amount being
unknown without prices), OKX (``/api/v5/rubik/stat/contracts/open-interest-history``,
``/api/v5/public/funding-rate-history``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import ccxt.async_support as ccxt_async
import structlog

from ..config import DetectorSettings, Settings, VenueSettings
from ..venues import REGISTRY
from ..venues.base import Instrument, Venue
from ..venues.history import Budget, Exhausted
from .base import Seedable

log = structlog.get_logger(__name__)

POLL_S: Final = 2.0
FIRST_PICK_S: Final = 3.0
"""Wait this long for open interest to arrive before ranking a venue's instruments."""
ERRORS = (ccxt_async.BaseError, OSError, TimeoutError, ValueError, KeyError, TypeError)


# -- orchestration ---------------------------------------------------------------------------


@dataclass(slots=True)
class VenueWarmup:
    """What the warm start did on one venue (for logs and tests)."""

    venue: str
    instruments: list[str] = field(default_factory=list)
    samples: int = 0
    requests: int = 0
    failures: int = 0


class Warmup:
    """Seeds a model from the venues' history; :meth:`run` it once, after the rebuild."""

    def __init__(
        self,
        settings: DetectorSettings,
        venues: Mapping[str, VenueSettings],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._s = settings
        self._venues = {
            v: vs for v, vs in venues.items() if v in REGISTRY and REGISTRY[v].has_history
        }
        self._clock = clock
        self.results: dict[str, VenueWarmup] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Warmup | None:
        """The warm start of the enabled venues, or ``None`` when switched off."""
        if not settings.detector.warmup:
            return None
        return cls(settings.detector, settings.enabled_venues())

    async def run(self, model: Seedable) -> int:
        """Warm every venue concurrently; the baseline samples added."""
        if not self._venues:
            return 0
        results = await asyncio.gather(
            *(self._venue(v, vs, model) for v, vs in self._venues.items())
        )
        total = sum(r.samples for r in results)
        log.info("warm start done", samples=total,
                 venues={r.venue: len(r.instruments) for r in results})  # fmt: skip
        return total

    async def _venue(self, name: str, vs: VenueSettings, model: Seedable) -> VenueWarmup:
        result = self.results[name] = VenueWarmup(name)
        venue: Venue = REGISTRY[name](vs)
        budget = Budget(self._s.warmup_max_requests)
        try:
            async with asyncio.timeout(self._s.warmup_timeout_s):
                markets = await venue.load_markets(self._s.warmup_timeout_s)
                await self._instruments(venue, markets, budget, model, result)
        except TimeoutError:  # also the normal end when fewer instruments than the maximum
            log.info("warm start: time is up", venue=name, warmed=len(result.instruments))
        except Exhausted:
            log.warning("warm start: request budget spent", venue=name, requests=budget.used)
        except ERRORS as exc:
            result.failures += 1
            log.warning("warm start: venue metadata failed; skipped", venue=name, error=str(exc))
        finally:
            result.requests = budget.used
            await venue.close()
        return result

    async def _instruments(
        self,
        venue: Venue,
        markets: Mapping[str, Instrument],
        budget: Budget,
        model: Seedable,
        result: VenueWarmup,
    ) -> None:
        name = venue.id
        done: set[str] = set()
        await asyncio.sleep(FIRST_PICK_S)
        while len(done) < self._s.warmup_max_symbols:
            todo = [(sym, asset) for v, sym, asset, _ in model.instruments()
                    if v == name and sym not in done and sym in markets]  # fmt: skip
            if not todo:
                await asyncio.sleep(POLL_S)
                continue
            for symbol, asset in todo[: self._s.warmup_max_symbols - len(done)]:
                done.add(symbol)
                until = int(self._clock() * 1000)
                since = until - int(self._s.warmup_history_s * 1000)
                try:
                    oi, funding = await venue.fetch_history(markets[symbol], since, until, budget)
                except ERRORS as exc:
                    result.failures += 1
                    log.warning("warm start: history failed; skipped", venue=name,
                                symbol=symbol, error=str(exc)[:200])  # fmt: skip
                    continue
                result.samples += model.seed(name, symbol, asset, oi, funding)
                result.instruments.append(symbol)
