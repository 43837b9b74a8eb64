"""The collector against the Gate futures simulator over real websockets and HTTP, writing to
the real Redis: units of what lands for both settlements (top of book and traded volume in
contracts of ``quanto_multiplier`` coin, or of 1 USD), and the legacy (sampled) liquidation
format end to end. What every venue must do (reconnects, rotation, the watchdog) is in
``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.config import DepthSettings
from service.events import BookTop, FundingRate, Kind, MarkPrice, OpenInterest, Side, Volume
from service.venues.gateio.simulator.server import GateSimulator
from service.venues.gateio.simulator.wire import GATE_SYMBOLS
from service.venues.gateio.venue import Gate

pytestmark = pytest.mark.integration

VENUE = "gateio"
SYMBOLS = list(GATE_SYMBOLS)


def gate(sim: GateSimulator) -> Gate:
    """Depth off: its connections are ``test_gateio_depth_live.py``'s."""
    return Gate(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))


@pytest.fixture
async def sim() -> AsyncIterator[GateSimulator]:
    # In the long cascade (scenario 20 s to 60 s), 4x faster: about 9.5 s of burst.
    async with GateSimulator(
        seed=3, time_scale=4.0, start_s=22, push_interval_s=0.2, list_only_simulated=True
    ) as s:
        yield s


async def test_marks_funding_open_interest_and_every_liquidation_land_in_their_units(
    sim: GateSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(gate(sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set() and len(sim.pushed) >= 100)
        end = len(sim.pushed)
        await asyncio.sleep(0.8)  # what was pushed by ``end`` reaches Redis
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 5  # the simulated contracts, via ccxt
        assert health.liquidations_sampled is False
        # the liquidations on a quiet connection per settlement (Connection.quiet)
        assert set(collector._open) == {"usdt-1", "usdt-liquidations", "btc-1", "btc-liquidations"}
        assert sim.clients == 4
        marks = {s: sim.mark(s) for s in SYMBOLS}
        oi_base = {s: sim.oi_base(s) for s in SYMBOLS}

    for symbol in SYMBOLS:
        stored_marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        assert all(isinstance(m, MarkPrice) for m in stored_marks)
        assert stored_marks[-1].mark_price == pytest.approx(marks[symbol], rel=0.01)
        times = [m.ts_ms for m in stored_marks]  # tickers every 200 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)
        assert oi.oi_base == pytest.approx(oi_base[symbol], rel=0.01)
        assert oi.oi_usd == pytest.approx(oi_base[symbol] * marks[symbol], rel=0.02)
    inverse = (await stored(redis_client, VENUE, "BTC_USD", Kind.OPEN_INTEREST))[-1]
    assert isinstance(inverse, OpenInterest)
    assert inverse.oi_usd == inverse.oi_contracts  # 1 USD contracts
    linear = (await stored(redis_client, VENUE, "BTC_USDT", Kind.OPEN_INTEREST))[-1]
    assert isinstance(linear, OpenInterest)
    assert linear.oi_base == pytest.approx(linear.oi_contracts * 0.0001)  # quanto_multiplier
    doge = (await stored(redis_client, VENUE, "DOGE_USDT", Kind.FUNDING))[-1]
    btc = (await stored(redis_client, VENUE, "BTC_USD", Kind.FUNDING))[-1]
    assert isinstance(doge, FundingRate)
    assert isinstance(btc, FundingRate)
    assert (doge.interval_h, btc.interval_h) == (4.0, 8.0)  # the listing's funding_interval
    assert doge.funding_rate_1h == pytest.approx(doge.funding_rate / 4)
    assert doge.next_funding_ms is not None
    assert doge.next_funding_ms % (4 * 3_600_000) == 0

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [(x.symbol, x.event_id) for x in got]
    assert len(ids) == len(set(ids))  # stored once each
    assert {sim.wire_ids(p)[0] for p in sim.pushed[:end]} <= set(ids)  # every one pushed
    assert set(ids) <= {sim.wire_ids(p)[0] for p in sim.pushed}  # and nothing else
    by_id = {sim.wire_ids(p)[0]: p for p in sim.pushed}
    for liq in got:
        p = by_id[(liq.symbol, liq.event_id)]
        assert liq.sampled is False
        assert liq.side is p.side
        if liq.base == "BTC":
            assert liq.side is Side.LONG  # the long cascade
        c = sim.contracts[liq.symbol]
        assert liq.quantity == c.decimal_contracts(p.qty_base, p.price)  # fractional contracts
        if c.linear:
            assert liq.notional_usd == pytest.approx(liq.quantity * c.multiplier * liq.price)
        else:
            assert liq.notional_usd == liq.quantity
        assert liq.notional_usd == pytest.approx(p.notional_usd, rel=0.03)  # at the order price


async def test_the_legacy_format_lands_as_a_sample(redis_client: aioredis.Redis) -> None:
    async with (
        GateSimulator(
            seed=3,
            time_scale=4.0,
            start_s=22,
            liquidation_format="legacy",
            list_only_simulated=True,
        ) as sim,
        running(gate(sim), redis_client) as collector,
    ):
        await until(lambda: collector.ready.is_set() and len(sim.pushed) >= 8)
        end = len(sim.pushed)
        await asyncio.sleep(0.8)
        assert collector.health.parse_errors == {}
        assert len(sim.pushed) < len(sim.prints) / 5  # most liquidations were never sent

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert {sim.wire_ids(p)[0] for p in sim.pushed[:end]} <= {(x.symbol, x.event_id) for x in got}
    assert got
    assert all(x.sampled for x in got)
    assert all(x.ts_ms % 1000 == 0 for x in got)  # time in seconds


async def test_the_top_of_book_widens_and_thins_through_the_cascade(
    redis_client: aioredis.Redis,
) -> None:
    """``futures.book_ticker`` follows the simulated market (calm until 20 s, BTC and ETH in a
    long cascade from 20 s to 60 s; DOGE untouched), through the websocket, the parser and
    the store, at most once a second."""
    async with (
        GateSimulator(seed=3, time_scale=5.0, start_s=14, list_only_simulated=True) as sim,
        running(gate(sim), redis_client) as collector,
    ):
        await until(lambda: collector.ready.is_set())
        await until(lambda: sim.market.elapsed_s >= 55, within=30)
        await asyncio.sleep(1.2)  # the last second's report reaches Redis
        assert collector.health.parse_errors == {}
        btc_mark = sim.mark("BTC_USDT")

    def spread_and_top(book: object) -> tuple[float, float]:
        assert isinstance(book, BookTop)
        return book.spread_bp, book.bid_usd + book.ask_usd

    for symbol in ("BTC_USDT", "BTC_USD", "ETH_USDT"):
        books = await stored(redis_client, VENUE, symbol, Kind.BOOK_TOP)
        assert len(books) >= 5, symbol
        times = [b.ts_ms for b in books]  # pushed every 500 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        (calm_spread, calm_top), (last_spread, last_top) = map(
            spread_and_top, (books[0], books[-1])
        )
        assert calm_spread < 3.0, symbol  # about 1 bp, on the tick grid
        assert last_spread > 3 * calm_spread, symbol
        assert last_top < 0.6 * calm_top, symbol
    last = (await stored(redis_client, VENUE, "BTC_USDT", Kind.BOOK_TOP))[-1]
    assert isinstance(last, BookTop)
    # sizes in contracts of 0.0001 BTC: a top of a few BTC at ~60k, not thousands of BTC
    assert last.bid_usd == pytest.approx(last.bid_base * last.bid_price)
    assert 0.01 < last.bid_base < 100
    assert last.bid_price == pytest.approx(btc_mark, rel=0.05)
    inverse = (await stored(redis_client, VENUE, "BTC_USD", Kind.BOOK_TOP))[-1]
    assert isinstance(inverse, BookTop)
    assert inverse.bid_usd == round(inverse.bid_usd)  # whole USD contracts
    doge = await stored(redis_client, VENUE, "DOGE_USDT", Kind.BOOK_TOP)
    assert len(doge) >= 5
    assert spread_and_top(doge[-1])[1] > 0.8 * spread_and_top(doge[0])[1]  # no thinning


async def test_traded_volume_reaches_redis_one_event_a_second_and_sells_lead_in_a_long_cascade(
    sim: GateSimulator, redis_client: aioredis.Redis
) -> None:
    """The simulator's tape and liquidation fills on ``futures.trades`` (size signed by the
    taker), through the websocket, the parser's seconds and the store."""
    async with running(gate(sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set())
        await until(lambda: sim.market.elapsed_s >= 45, within=30)  # the long cascade
        assert collector.health.parse_errors == {}

    def volumes(seconds: list[object]) -> list[Volume]:
        assert all(isinstance(v, Volume) for v in seconds)
        return [v for v in seconds if isinstance(v, Volume)]

    for symbol in ("BTC_USDT", "BTC_USD", "DOGE_USDT"):
        seconds = volumes(await stored(redis_client, VENUE, symbol, Kind.VOLUME))
        assert len(seconds) >= 3, symbol  # about 5 s of wall time, a batch a second
        assert all(v.trades >= 1 for v in seconds)
        times = [v.ts_ms for v in seconds]
        assert all(t % 1000 == 0 for t in times)
        assert all(b > a for a, b in itertools.pairwise(times))  # at most one a second
    btc = volumes(await stored(redis_client, VENUE, "BTC_USDT", Kind.VOLUME))
    # the liquidated longs' closes sell into the book
    assert sum(v.taker_sell_usd for v in btc) > 1.5 * sum(v.taker_buy_usd for v in btc)
    for v in btc:  # contracts of 0.0001 BTC valued at ~60k a BTC
        usd, base = v.taker_buy_usd + v.taker_sell_usd, v.taker_buy_base + v.taker_sell_base
        assert 30_000 < usd / base < 90_000
    for v in volumes(await stored(redis_client, VENUE, "BTC_USD", Kind.VOLUME)):
        usd, base = v.taker_buy_usd + v.taker_sell_usd, v.taker_buy_base + v.taker_sell_base
        assert usd == pytest.approx(round(usd))  # whole USD contracts (inverse)
        assert 30_000 < usd / base < 90_000
