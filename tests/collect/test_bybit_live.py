"""The collector against the Bybit simulator over real websockets and HTTP, writing to the real
Redis: events of both categories land in their units. What every venue must do (reconnects,
rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until
from waits import eventually
from wire_ids import assert_stored_once, sent_ids, stored_id

from service.config import DepthSettings
from service.events import BookTop, FundingRate, Kind, MarkPrice, OpenInterest, Side, Volume
from service.venues.base import Connection, Instrument
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.bybit.venue import Bybit

pytestmark = pytest.mark.integration

VENUE = "bybit"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "DOGEUSDT", "BTCUSD", "ETHUSD"]


def bybit(sim: BybitSimulator) -> Bybit:
    """Depth off: its connections are ``test_bybit_depth_live.py``'s."""
    return Bybit(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))


@pytest.fixture
async def sim() -> AsyncIterator[BybitSimulator]:
    # In the long cascade (scenario 20 s to 60 s), 5x faster: about 7.6 s of burst.
    async with BybitSimulator(seed=3, time_scale=5.0, start_s=22) as s:
        yield s


async def test_marks_funding_open_interest_and_liquidations_of_both_categories_reach_redis(
    sim: BybitSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(bybit(sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set() and len(sim.pushed) >= 40)
        end = len(sim.pushed)
        await asyncio.sleep(0.8)  # what was pushed by ``end`` reaches Redis
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 9  # the fixture's perpetuals in trading
        assert health.liquidations_sampled is False
        assert sim.clients == 4  # linear-1, inverse-1 and their liquidations' connections
        marks = {s: sim.mark(s) for s in SYMBOLS}
        oi_base = {s: sim.oi_base(s) for s in SYMBOLS}

    for symbol in SYMBOLS:
        stored_marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        assert all(isinstance(m, MarkPrice) for m in stored_marks)
        assert stored_marks[-1].mark_price == pytest.approx(marks[symbol], rel=0.01)
        times = [m.ts_ms for m in stored_marks]  # tickers every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
    doge = (await stored(redis_client, VENUE, "DOGEUSDT", Kind.FUNDING))[-1]
    btc = (await stored(redis_client, VENUE, "BTCUSDT", Kind.FUNDING))[-1]
    assert isinstance(doge, FundingRate)
    assert isinstance(btc, FundingRate)
    assert (doge.interval_h, btc.interval_h) == (4.0, 8.0)  # fundingIntervalHour
    assert doge.funding_rate_1h == pytest.approx(doge.funding_rate / 4)
    assert doge.next_funding_ms is not None
    assert doge.next_funding_ms % (4 * 3_600_000) == 0
    assert await stored(redis_client, VENUE, "SOLUSDT", Kind.FUNDING) == []  # not configured

    linear_oi = (await stored(redis_client, VENUE, "BTCUSDT", Kind.OPEN_INTEREST))[-1]
    assert isinstance(linear_oi, OpenInterest)  # base coin, valued at the mark
    assert linear_oi.oi_base == pytest.approx(oi_base["BTCUSDT"], rel=0.01)
    assert linear_oi.oi_usd == pytest.approx(linear_oi.oi_base * marks["BTCUSDT"], rel=0.02)
    inverse_oi = (await stored(redis_client, VENUE, "BTCUSD", Kind.OPEN_INTEREST))[-1]
    assert isinstance(inverse_oi, OpenInterest)  # USD contracts of 1 USD
    assert inverse_oi.oi_usd == inverse_oi.oi_contracts
    assert inverse_oi.oi_usd == pytest.approx(oi_base["BTCUSD"] * marks["BTCUSD"], rel=0.02)
    assert inverse_oi.oi_base == pytest.approx(oi_base["BTCUSD"], rel=0.02)

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [(x.symbol, x.event_id) for x in got]
    assert len(ids) == len(set(ids))  # stored once each
    assert {sim.wire_ids(p)[0] for p in sim.pushed[:end]} <= set(ids)  # all of them
    assert set(ids) <= {sim.wire_ids(p)[0] for p in sim.pushed}  # and nothing else
    assert {x.symbol for x in got} >= {"BTCUSDT", "BTCUSD"}
    for liq in got:
        assert liq.sampled is False
        if liq.symbol.startswith("BTC"):
            assert liq.side is Side.LONG  # the long cascade
        if liq.symbol.endswith("USDT"):
            assert liq.notional_usd == pytest.approx(liq.quantity * liq.price)
        else:  # inverse: the size is the USD value
            assert liq.notional_usd == pytest.approx(liq.quantity)
            assert liq.quantity_base == pytest.approx(liq.quantity / liq.price)


async def test_the_top_of_book_widens_and_thins_through_the_cascade(
    redis_client: aioredis.Redis,
) -> None:
    """The simulator's book follows its market (calm until 20 s, BTC and ETH in a long cascade
    from 20 s to 60 s; DOGE untouched), through the websocket, the parser and the store."""
    async with (
        BybitSimulator(seed=3, time_scale=5.0, start_s=14) as sim,
        running(bybit(sim), redis_client) as collector,
    ):
        await until(lambda: collector.ready.is_set())
        await until(lambda: sim.market.elapsed_s >= 55, within=30)
        await asyncio.sleep(1.2)  # the last second's report reaches Redis
        assert collector.health.parse_errors == {}

    def spread_and_top(book: object) -> tuple[float, float]:
        assert isinstance(book, BookTop)
        return book.spread_bp, book.bid_usd + book.ask_usd

    for symbol in ("BTCUSDT", "BTCUSD", "ETHUSDT"):
        books = await stored(redis_client, VENUE, symbol, Kind.BOOK_TOP)
        assert len(books) >= 5, symbol
        times = [b.ts_ms for b in books]  # tickers every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        (calm_spread, calm_top), (last_spread, last_top) = map(
            spread_and_top, (books[0], books[-1])
        )
        assert calm_spread < 3.0, symbol  # about 1 bp, on the tick grid
        assert last_spread > 3 * calm_spread, symbol
        assert last_top < 0.6 * calm_top, symbol
    doge = await stored(redis_client, VENUE, "DOGEUSDT", Kind.BOOK_TOP)
    assert len(doge) >= 5
    assert all(spread_and_top(b)[0] < 2.5 for b in doge)  # 1 bp, or 1-2 ticks of 0.00001
    assert spread_and_top(doge[-1])[1] > 0.8 * spread_and_top(doge[0])[1]  # no thinning


async def test_traded_volume_reaches_redis_one_event_a_second_and_sells_lead_in_a_long_cascade(
    sim: BybitSimulator, redis_client: aioredis.Redis
) -> None:
    """The simulator's tape and liquidation fills on ``publicTrade``, through the websocket, the
    parser's seconds and the store (the seconds still open at the stop flushed)."""
    async with running(bybit(sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set())
        await until(lambda: sim.market.elapsed_s >= 45, within=30)  # the long cascade
        assert collector.health.parse_errors == {}

    def volumes(seconds: list[object]) -> list[Volume]:
        assert all(isinstance(v, Volume) for v in seconds)
        return [v for v in seconds if isinstance(v, Volume)]

    for symbol in ("BTCUSDT", "BTCUSD", "DOGEUSDT"):
        seconds = volumes(await stored(redis_client, VENUE, symbol, Kind.VOLUME))
        assert len(seconds) >= 3, symbol  # about 4.6 s of wall time, a batch a second
        assert all(v.trades >= 1 for v in seconds)
        times = [v.ts_ms for v in seconds]
        assert all(t % 1000 == 0 for t in times)
        assert all(b > a for a, b in itertools.pairwise(times))  # at most one a second
    btc = volumes(await stored(redis_client, VENUE, "BTCUSDT", Kind.VOLUME))
    # the liquidated longs' closes sell into the book
    assert sum(v.taker_sell_usd for v in btc) > 1.5 * sum(v.taker_buy_usd for v in btc)
    for v in volumes(await stored(redis_client, VENUE, "BTCUSD", Kind.VOLUME)):
        usd, base = v.taker_buy_usd + v.taker_sell_usd, v.taker_buy_base + v.taker_sell_base
        assert usd == round(usd)  # whole USD contracts (inverse)
        assert 30_000 < usd / base < 90_000  # valued at ~60k a BTC


class _BusyRefused(Bybit):
    """Its busy connections (tickers, trades) pointed at a path the venue refuses (404): only
    the quiet lane connects."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [
            c if c.quiet else replace(c, url=c.url.rsplit("/", 1)[0] + "/spot")
            for c in super().connections(markets)
        ]


async def test_the_liquidations_arrive_on_their_quiet_connections_alone(
    sim: BybitSimulator, redis_client: aioredis.Redis
) -> None:
    """The quiet lane (:attr:`~service.venues.base.Connection.quiet`): the ``allLiquidation``
    topics have connections of their own, which subscribe nothing else. With every busy
    connection down (refused), every liquidation the simulator pushed lands, once, and
    nothing of the tickers does."""
    venue = _BusyRefused(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))
    async with running(venue, redis_client) as collector:
        await until(lambda: len(sim.pushed) >= 40, within=20)
        end = len(sim.pushed)
        assert set(collector._open) == {"linear-liquidations-1", "inverse-liquidations-1"}
        lanes = [c.session.topics for c in sim._clients]  # what each connection subscribed
        assert len(lanes) == 2
        assert set().union(*lanes) == {f"allLiquidation.{s}" for s in SYMBOLS}
        sent = sent_ids(sim, 0, end)

        async def landed() -> bool:
            got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
            return set(sent) <= {stored_id(x) for x in got}

        await eventually(landed)
        assert collector.health.parse_errors == {}

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert_stored_once([stored_id(x) for x in got], sent_ids(sim))
    assert {x.symbol for x in got} >= {"BTCUSDT", "BTCUSD"}  # both categories' lanes
    assert await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK) == []  # no ticker came
