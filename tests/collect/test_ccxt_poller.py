"""The ccxt poller against the REST-only Bitget simulator, through ccxt's real ``bitget``
client, writing to the real Redis: values and units of what lands, the rate limit and the
spreading of per-symbol calls, and failures counted and retried without ending the poller."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis
import structlog
import structlog.testing
from harness import FAST_RECOVERY, stop, stored, until

from service.collect.poller import CcxtPoller, Unchanged
from service.config import CollectSettings, StoreSettings, VenueSettings
from service.events import FundingRate, Kind, MarkPrice, OpenInterest
from service.health import decode_snapshot
from service.simulate.ccxt_bitget import CcxtBitgetSimulator
from service.store import keys
from service.store.writer import EventSink
from service.venues.ccxt_polled import CcxtVenue, PolledMarket

pytestmark = pytest.mark.integration

VENUE = "bitget_ccxt"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BTCUSD", "ETHUSD"]
INVERSE = {"BTCUSD", "ETHUSD"}
SWAPS_ONLY = {"options": {"fetchMarkets": {"types": ["swap"]}}}


@pytest.fixture
async def sim() -> AsyncIterator[CcxtBitgetSimulator]:
    async with CcxtBitgetSimulator(seed=5, time_scale=5.0) as s:
        yield s


def settings(sim: CcxtBitgetSimulator, **ccxt: Any) -> VenueSettings:
    return VenueSettings(
        rest_url=sim.rest_base_url,
        ccxt={"exchange": "bitget", "oi_amount_unit": "base", "config": SWAPS_ONLY, **ccxt},
    )


@asynccontextmanager
async def polling(
    venue_settings: VenueSettings,
    redis_client: aioredis.Redis,
    adjust: Callable[[CcxtVenue], None] | None = None,
) -> AsyncIterator[CcxtPoller]:
    """A poller and its sink running for the body; ``adjust`` edits the venue first."""
    collect = CollectSettings(**FAST_RECOVERY)
    sink = EventSink(redis_client, StoreSettings())
    venue = CcxtVenue(VENUE, venue_settings, timeout_s=collect.rest_timeout_s)
    if adjust is not None:
        adjust(venue)
    poller = CcxtPoller(venue, collect, sink, redis_client)
    tasks = [asyncio.create_task(sink.run()), asyncio.create_task(poller.run())]
    try:
        yield poller
    finally:
        await stop(tasks)
        await sink.drain()
        await poller.close()


def has_all(poller: CcxtPoller, kind: Kind) -> bool:
    return all(kind in poller.latest.get(s, {}) for s in SYMBOLS)


async def test_funding_mark_and_open_interest_land_in_redis_in_usd_and_base_units(
    sim: CcxtBitgetSimulator, redis_client: aioredis.Redis
) -> None:
    async with polling(settings(sim, poll_interval_s=1.0), redis_client) as poller:
        await until(lambda: has_all(poller, Kind.OPEN_INTEREST) and poller.cycles_total >= 2)
        await asyncio.sleep(1.5)  # the health snapshot of a running poller is written
        raw: Any = await redis_client.get(keys.health(VENUE))
    health = decode_snapshot(raw)
    assert (health.mode, health.connected, health.poll_interval_s) == ("polled", True, 1.0)
    assert health.instruments == 4  # the four swaps served, nothing else
    assert health.oi_polls_total >= 8
    assert health.rest_failures == {}
    assert health.parse_errors_total == 0

    for symbol in SYMBOLS:
        tickers = {t["ts"]: t for t in sim.rest.served[("ticker", symbol)]}
        sizes = {float(r["openInterestList"][0]["size"]) for r in
                 sim.rest.served[("open_interest", symbol)]}  # fmt: skip
        funding = await stored(redis_client, VENUE, symbol, Kind.FUNDING)
        marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        ois = await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST)
        assert funding
        assert marks
        assert ois
        for f in funding:  # as served: the rate per 8 h, at the ticker's own time
            assert isinstance(f, FundingRate)
            t = tickers[str(f.ts_ms)]
            assert f.funding_rate == float(t["fundingRate"])
            assert (f.interval_h, f.funding_rate_1h) == (8.0, f.funding_rate / 8)
            assert f.base == symbol[:3]
        for m in marks:
            assert isinstance(m, MarkPrice)
            t = tickers[str(m.ts_ms)]
            assert (m.mark_price, m.index_price) == (float(t["markPrice"]), float(t["indexPrice"]))
        for oi in ois:  # base coin as served, valued at the mark polled just before
            assert isinstance(oi, OpenInterest)
            assert oi.oi_base in sizes
            assert oi.oi_contracts == oi.oi_base  # Bitget sizes both kinds of swap in coin
            mark = max((m for m in marks if m.recv_ms <= oi.recv_ms), key=lambda m: m.recv_ms)
            assert oi.oi_usd == pytest.approx(oi.oi_base * mark.mark_price, rel=1e-12)
        # an inverse swap's open interest is coin times price, not a count of USD contracts
        expected_usd = sim.oi_base(symbol) * sim.mark(symbol)
        assert ois[-1].oi_usd == pytest.approx(expected_usd, rel=0.05)
        assert ois[-1].oi_usd > 1e6


async def test_calls_keep_to_the_rate_limit_and_spread_over_the_interval(
    sim: CcxtBitgetSimulator, redis_client: aioredis.Redis
) -> None:
    # ccxt's limit (250 ms here) makes 2 ticker + 4 open-interest calls overrun a 1 s interval
    slow = settings(sim, poll_interval_s=1.0, config={**SWAPS_ONLY, "rateLimit": 250})
    async with polling(slow, redis_client) as poller:
        await until(lambda: poller.cycles_total >= 3, within=15)
    times = [t for t, _ in sim.requests]
    # ccxt's throttle is a leaky bucket: a call that comes late (a busy loop) lets the next
    # one come early, so the limit holds over every run of calls, within one call's slack.
    assert len(times) >= 8
    for i, j in itertools.combinations(range(len(times)), 2):
        assert times[j] - times[i] >= 0.25 * (j - i - 1) - 0.01, (i, j, times)
    assert poller.overruns >= 1

    sim.requests.clear()
    # ccxt's own limit (50 ms): the 4 open-interest calls are spread over a 2 s interval
    async with polling(settings(sim, poll_interval_s=2.0), redis_client) as poller:
        await until(lambda: poller.cycles_total >= 2, within=15)
    oi_times = [t for t, path in sim.requests if "open-interest" in path]
    cycle = oi_times[:4]
    spread = [b - a for a, b in itertools.pairwise(cycle)]
    assert all(0.3 < g < 0.7 for g in spread), spread
    assert poller.overruns == 0


async def test_failures_are_counted_logged_once_and_retried_without_ending_the_poller(
    sim: CcxtBitgetSimulator, redis_client: aioredis.Redis
) -> None:
    sim.fail("contracts?productType=USDT-FUTURES", 2)  # metadata: the first two loads fail
    sim.fail("open-interest?symbol=BTCUSD&", 2, status=429)
    with structlog.testing.capture_logs() as logs:
        async with polling(settings(sim, poll_interval_s=1.0), redis_client) as poller:
            await until(lambda: poller.health.rest_failures["metadata"] == 2)
            await until(lambda: has_all(poller, Kind.OPEN_INTEREST), within=15)
            await until(lambda: poller.health.oi_poll_failures_total == 2, within=15)
            sim.fail("tickers", 3, status=502)
            await until(lambda: sum(poller.health.rest_failures.values()) == 7, within=15)
            before = poller.latest["BTCUSDT"][Kind.FUNDING].ts_ms
            await until(lambda: poller.latest["BTCUSDT"][Kind.FUNDING].ts_ms > before, within=15)
            assert poller.health.connected
            failures = dict(poller.health.rest_failures)
    assert failures["metadata"] == 2
    assert failures["open_interest"] == 2
    assert failures.get("funding", 0) + failures.get("tickers", 0) == 3
    assert poller.health.last_error is not None
    assert "502" in poller.health.last_error
    logged = [e for e in logs if e["event"] == "ccxt poll failed"]
    assert len(logged) == len(failures), logged  # the first failure of each endpoint only


async def test_without_bulk_calls_funding_is_polled_per_symbol_and_marks_come_from_tickers(
    sim: CcxtBitgetSimulator, redis_client: aioredis.Redis
) -> None:
    groups: list[tuple[str, ...]] = []

    def adjust(venue: CcxtVenue) -> None:
        """An exchange with fetchOpenInterests but no fetchFundingRates (Bitget has the
        opposite): the bulk open-interest call is emulated with the per-symbol one."""

        async def open_interests(group: list[PolledMarket]) -> list[Mapping[str, Any]]:
            groups.append(tuple(pm.instrument.symbol for pm in group))
            return [await venue.open_interest(pm) for pm in group]

        venue.bulk_funding, venue.bulk_open_interest = False, True
        venue.open_interests = open_interests  # type: ignore[method-assign]

    async with polling(settings(sim, poll_interval_s=1.0), redis_client, adjust) as poller:
        await until(lambda: has_all(poller, Kind.FUNDING) and poller.cycles_total >= 2)
        await until(lambda: has_all(poller, Kind.OPEN_INTEREST) and has_all(poller, Kind.MARK))
    # one bulk call per group: the linear USDT swaps, the inverse swaps
    assert set(groups) == {("BTCUSDT", "ETHUSDT"), ("BTCUSD", "ETHUSD")}
    paths = [path for _, path in sim.requests]
    for product in ("USDT-FUTURES", "COIN-FUTURES"):  # tickers: one call per cycle each
        assert sum(f"tickers?productType={product}" in p for p in paths) <= poller.cycles_total + 1
    for symbol in SYMBOLS:
        served = {r["nextUpdate"]: r for r in sim.rest.served[("funding", symbol)]}
        for f in await stored(redis_client, VENUE, symbol, Kind.FUNDING):
            assert isinstance(f, FundingRate)
            assert f.interval_h == 8.0  # from fundingRateInterval
            assert f.next_funding_ms is not None
            assert f.funding_rate == float(served[str(f.next_funding_ms)]["fundingRate"])
        tickers = {t["ts"]: t for t in sim.rest.served[("ticker", symbol)]}
        marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        assert marks
        for m in marks:
            assert isinstance(m, MarkPrice)
            assert m.mark_price == float(tickers[str(m.ts_ms)]["markPrice"])


def test_unchanged_values_are_written_again_only_after_the_rewrite_interval() -> None:
    def oi(ts: int, base: float) -> OpenInterest:
        return OpenInterest(venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=ts, recv_ms=ts + 5,
                            oi_contracts=base, oi_base=base, oi_usd=base * 60_000)  # fmt: skip

    f = Unchanged(rewrite_ms=60_000)
    assert f.filter([oi(1_000, 10.0)]) == [oi(1_000, 10.0)]
    assert f.filter([oi(1_000, 11.0)]) == []  # the same venue time: the same observation
    assert f.filter([oi(31_000, 10.0)]) == []  # unchanged, 30 s later
    assert f.filter([oi(41_000, 10.5)]) == [oi(41_000, 10.5)]  # changed
    assert f.filter([oi(101_000, 10.5)]) == [oi(101_000, 10.5)]  # unchanged for 60 s: again
    assert f.dropped == 2
    funding = FundingRate(venue=VENUE, symbol="BTCUSDT", base="BTC", ts_ms=1_000, recv_ms=1_000,
                          funding_rate=1e-4, interval_h=8.0, funding_rate_1h=1.25e-5,
                          next_funding_ms=None)  # fmt: skip
    assert f.filter([funding]) == [funding]  # kinds are kept apart
    changed = msgspec.structs.replace(funding, ts_ms=2_000, funding_rate=2e-4)
    assert f.filter([changed]) == [changed]
