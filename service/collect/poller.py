"""One ccxt-polled venue's collector: REST polls on a schedule, health, retries.

The long tail: a venue with no native module is polled through ccxt's unified API (see
:mod:`service.venues.ccxt_polled`). Each poll cycle, every ``poll_interval_s``:

1. funding and mark: one ``fetch_funding_rates`` call per group of markets (linear swaps of
   one settle currency, inverse swaps), the scope exchanges' bulk calls tend to have, and
   again for any market an answer left out; where the funding structures carry no mark
   price, ``fetch_tickers`` supplies one (mark events, and a price to value open interest);
2. open interest: the same with ``fetch_open_interests``, where the exchange has it;
3. the per-symbol calls (``fetch_open_interest``, and ``fetch_funding_rate`` on exchanges
   without the bulk call), spread evenly over the rest of the interval.

Every call goes through ccxt's rate limiter (``enableRateLimit``, the exchange's
``rateLimit``), so a cycle that cannot fit in the interval takes longer instead of bursting
(counted in :attr:`CcxtPoller.overruns`, logged once). An observation already written (the
same venue time, or the same values within ``rewrite_unchanged_s``) is dropped.

Failure semantics: a failed call (network, HTTP error, an answer ccxt cannot read) is counted
in the health snapshot by endpoint, logged at the 1st, 10th, 100th and every 1000th failure,
and retried at the next cycle; a cycle in which every call failed is retried after an
exponential backoff capped at the poll interval. Nothing here ends the service.

Health is written to Redis every second like the websocket collectors' (``mode: polled``):
a successful REST answer counts as a message, and ``connected`` says the last call succeeded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
import structlog

from ..aio import checkpoint
from ..backoff import Backoff
from ..config import CollectSettings
from ..events import KIND_OF, Event, Kind, MarkPrice, Side
from ..store.writer import EventSink
from ..validate import Boundary
from ..venues.base import ParseStats, now_ms
from ..venues.ccxt_polled import (
    CcxtVenue,
    PolledMarket,
    funding_events,
    open_interest_event,
    ticker_mark,
)
from .collector import REST_ERRORS
from .health import VenueHealth, write_health

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _worth_logging(count: int) -> bool:
    return count in (1, 10, 100) or count % 1000 == 0


class Unchanged:
    """Drops observations already written: not newer than the last one of the same kind and
    instrument, or equal to it (times aside) and less than ``rewrite_ms`` newer. Rewriting an
    unchanged value now and then keeps the detector from reading a quiet market as stale."""

    def __init__(self, rewrite_ms: int) -> None:
        self.rewrite_ms = rewrite_ms
        self._last: dict[tuple[type, str], Event] = {}
        self.dropped = 0

    def filter(self, events: Sequence[Event]) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            key = (type(ev), ev.symbol)
            last = self._last.get(key)
            if last is not None and (
                ev.ts_ms <= last.ts_ms
                or (
                    ev.ts_ms - last.ts_ms < self.rewrite_ms
                    and msgspec.structs.replace(ev, ts_ms=0, recv_ms=0)
                    == msgspec.structs.replace(last, ts_ms=0, recv_ms=0)
                )
            ):
                self.dropped += 1
                continue
            self._last[key] = ev
            out.append(ev)
        return out


class CcxtPoller:
    """Polls one venue through ccxt. Call :meth:`run`; cancel the task to stop."""

    def __init__(
        self,
        venue: CcxtVenue,
        settings: CollectSettings,
        sink: EventSink,
        redis: aioredis.Redis,
        *,
        rewrite_unchanged_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.settings = settings
        self.sink = sink
        self.redis = redis
        self.clock = clock
        self.interval_s = venue.ccxt.poll_interval_s
        self.health = VenueHealth(
            venue=venue.id,
            ws_url="",
            rest_url=venue.rest_url,
            liquidations_sampled=False,
            mode="polled",
            poll_interval_s=self.interval_s,
        )
        self.stats = ParseStats(errors=self.health.parse_errors)
        self.boundary = Boundary(venue.id, self.health.events_invalid)
        self.markets: dict[str, PolledMarket] = {}
        self.marks: dict[str, float] = {}
        """The latest mark price by native symbol (values open interest)."""
        self.unchanged = Unchanged(int(rewrite_unchanged_s * 1000))
        self.latest: dict[str, dict[Kind, Event]] = {}
        self.liquidation_totals: Counter[tuple[str, Side]] = Counter()
        """Always empty: a polled venue has no liquidations (the metrics read it)."""
        self.liquidation_notional: defaultdict[tuple[str, Side], float] = defaultdict(float)
        self.cycles_total = 0
        self.overruns = 0
        """Cycles that took longer than the interval (the rate limit would not fit them)."""
        self._unvalued_logged = False
        self._fresh_marks: set[str] = set()
        self.ready = asyncio.Event()
        """Set once metadata is loaded and the first events were handed to the sink."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        await self._load_markets_until_done()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._poll_forever(), name=f"{self.venue.id}:poll")
            tg.create_task(self._refresh_markets(), name=f"{self.venue.id}:metadata")
            tg.create_task(self._publish_health(), name=f"{self.venue.id}:health")

    async def close(self) -> None:
        self.health.connected = False
        await self._write_health()
        await self.venue.close()

    # -- REST calls --------------------------------------------------------------------------

    async def _call(self, endpoint: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """``call()`` within the REST timeout; ``None`` when it failed (counted, logged)."""
        try:
            async with asyncio.timeout(self.settings.rest_timeout_s):
                result = await call()
        except REST_ERRORS as exc:
            h = self.health
            h.rest_failures[endpoint] += 1
            if endpoint == "open_interest":
                h.oi_poll_failures_total += 1
            h.connected = False
            h.last_error = f"{endpoint}: {type(exc).__name__}: {exc}"[:300]
            if _worth_logging(h.rest_failures[endpoint]):
                log.warning("ccxt poll failed", venue=self.venue.id, endpoint=endpoint,
                            failures=h.rest_failures[endpoint], error=h.last_error)  # fmt: skip
            return None
        now = now_ms()
        if not self.health.connected:
            if self.health.connected_since_ms is not None:
                log.info("ccxt polls answer again", venue=self.venue.id, endpoint=endpoint)
            self.health.connected = True
            self.health.connected_since_ms = now
        self.health.messages_total += 1
        self.health.last_message_ms = now
        if endpoint == "open_interest":
            self.health.oi_polls_total += 1
        return result

    # -- metadata ----------------------------------------------------------------------------

    async def _load_markets_until_done(self) -> None:
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        while True:
            checkpoint()
            markets = await self._call("metadata", self.venue.load_markets)
            if markets is not None:
                self._set_markets(markets)
                return
            await self._write_health()
            await asyncio.sleep(backoff.next_delay())

    def _set_markets(self, markets: dict[str, PolledMarket]) -> None:
        self.markets = markets
        self.health.instruments = len(markets)
        symbols = self.venue.settings.symbols
        if symbols != "all" or self.venue.shard is not None:
            self.health.subscribed_symbols = len(self.venue.wanted(markets))
        if symbols != "all":
            unknown = sorted(set(symbols) - set(markets))
            if unknown:
                log.warning("configured symbols not listed by the venue as perpetual swaps",
                            venue=self.venue.id, symbols=unknown)  # fmt: skip

    async def _refresh_markets(self) -> None:
        while True:
            checkpoint()
            await asyncio.sleep(self.venue.settings.metadata_refresh_s)
            markets = await self._call("metadata", self.venue.load_markets)
            if markets is not None:  # else keep the cached metadata until the next period
                self._set_markets(markets)

    # -- polls -------------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        backoff = Backoff(
            self.settings.backoff_initial_s, min(self.settings.backoff_max_s, self.interval_s)
        )
        while True:
            checkpoint()
            started = self.clock()
            answered = await self._cycle(started + self.interval_s)
            self.cycles_total += 1
            if not answered:
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            late = self.clock() - started - self.interval_s
            if late > 0:
                self.overruns += 1
                if _worth_logging(self.overruns):
                    log.warning("poll cycle longer than the poll interval (rate limit)",
                                venue=self.venue.id, late_s=round(late, 2),
                                overruns=self.overruns)  # fmt: skip
            else:
                await asyncio.sleep(-late)

    async def _cycle(self, deadline: float) -> bool:
        """One poll of every wanted market; True when at least one call was answered."""
        venue = self.venue
        wanted = venue.wanted(self.markets)
        if not wanted:
            return True
        answered = False
        self._fresh_marks.clear()
        if venue.bulk_funding:
            rates, ok = await self._bulk("funding", venue.funding_rates, wanted)
            answered |= ok
            await self._accept_funding(rates, wanted)
        unvalued = [pm for pm in wanted if pm.instrument.symbol not in self._fresh_marks]
        if unvalued and venue.has_tickers:
            tickers, ok = await self._bulk("tickers", venue.tickers, unvalued)
            answered |= ok
            await self._accept_tickers(tickers, unvalued)
        if venue.bulk_open_interest:
            found, ok = await self._bulk("open_interest", venue.open_interests, wanted)
            answered |= ok
            await self._accept_open_interest(found, wanted)
        single: list[tuple[str, PolledMarket]] = []
        for pm in wanted:
            if not venue.bulk_funding:
                single.append(("funding", pm))
            if not venue.bulk_open_interest:
                single.append(("open_interest", pm))
        for i, (endpoint, pm) in enumerate(single):
            checkpoint()
            started = self.clock()
            if endpoint == "funding":
                rate = await self._call(endpoint, partial(venue.funding_rate, pm))
                if rate is not None:
                    answered = True
                    await self._accept_funding([rate], [pm])
            else:
                oi = await self._call(endpoint, partial(venue.open_interest, pm))
                if oi is not None:
                    answered = True
                    await self._accept_open_interest([oi], [pm])
            if i + 1 < len(single):  # spread the rest evenly over what is left of the interval
                gap = max(0.0, deadline - self.clock()) / (len(single) - i)
                await asyncio.sleep(max(0.0, gap - (self.clock() - started)))
        return answered

    async def _bulk(
        self,
        endpoint: str,
        fetch: Callable[[list[PolledMarket]], Awaitable[list[Mapping[str, Any]]]],
        wanted: list[PolledMarket],
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """``fetch`` for the markets of one group at a time, again for what an answer left
        out (an exchange whose calls are narrower than our groups), until every market was
        answered or its group's call failed or answered none of it. Returns the structures
        answered and whether any call was answered."""
        merged: list[Mapping[str, Any]] = []
        answered = False
        remaining = list(wanted)
        while remaining:
            checkpoint()
            group = [pm for pm in remaining if pm.group == remaining[0].group]
            got = await self._call(endpoint, partial(fetch, group))
            returned = {str(s.get("symbol")) for s in got or ()}
            if got is not None:
                answered = True
                merged.extend(got)
            done = {pm.unified for pm in group if pm.unified in returned}
            if not done:  # failed, or not listed: until the next cycle
                done = {pm.unified for pm in group}
            remaining = [pm for pm in remaining if pm.unified not in done]
        return merged, answered

    async def _accept_funding(
        self, rates: Sequence[Mapping[str, Any]], wanted: Sequence[PolledMarket]
    ) -> None:
        by_unified = {pm.unified: pm for pm in wanted}
        recv = now_ms()
        events: list[Event] = []
        for rate in rates:
            pm = by_unified.get(str(rate.get("symbol")))
            if pm is None:
                continue  # a market not configured (or not a perpetual)
            for ev in funding_events(rate, pm, recv, self.stats):
                if type(ev) is MarkPrice:
                    self.marks[ev.symbol] = ev.mark_price
                    self._fresh_marks.add(ev.symbol)
                events.append(ev)
        await self._accept(events)

    async def _accept_tickers(
        self, tickers: Sequence[Mapping[str, Any]], wanted: Sequence[PolledMarket]
    ) -> None:
        by_unified = {pm.unified: pm for pm in wanted}
        recv = now_ms()
        events: list[Event] = []
        for t in tickers:
            pm = by_unified.get(str(t.get("symbol")))
            if pm is None:
                continue
            price, event = ticker_mark(t, pm, recv)
            if price is not None:
                self.marks[pm.instrument.symbol] = price
            if event is not None:
                events.append(event)
        await self._accept(events)

    async def _accept_open_interest(
        self, found: Sequence[Mapping[str, Any]], wanted: Sequence[PolledMarket]
    ) -> None:
        by_unified = {pm.unified: pm for pm in wanted}
        recv = now_ms()
        events: list[Event] = []
        for oi in found:
            pm = by_unified.get(str(oi.get("symbol")))
            if pm is None:
                continue
            mark = self.marks.get(pm.instrument.symbol)
            if mark is None:
                if not self._unvalued_logged:
                    self._unvalued_logged = True
                    log.warning("no mark price yet to value open interest; skipped",
                                venue=self.venue.id, symbol=pm.instrument.symbol)  # fmt: skip
                continue
            unit = self.venue.ccxt.oi_amount_unit
            ev = open_interest_event(oi, pm, mark, unit, recv, self.stats)
            if ev is not None:
                events.append(ev)
        await self._accept(events)

    async def _accept(self, events: list[Event]) -> None:
        """The storage boundary: drops (and counts in ``health.events_invalid``) the events
        that fail :func:`service.validate.check`, then those already written."""
        recv = now_ms()
        events = self.unchanged.filter(self.boundary.keep(events, recv))
        if not events:
            return
        self.health.events_total += len(events)
        self.health.last_event_ms = recv
        for ev in events:
            self.latest.setdefault(ev.symbol, {})[KIND_OF[type(ev)]] = ev
        await self.sink.put(events)
        self.ready.set()

    # -- health ------------------------------------------------------------------------------

    async def _publish_health(self) -> None:
        while True:
            checkpoint()
            await self._write_health()
            await asyncio.sleep(1.0)

    async def _write_health(self) -> None:
        await write_health(self.redis, self.health)
