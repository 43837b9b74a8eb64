"""The collector against the BitMEX simulator over real websockets and HTTP, writing to the real
Redis: units of what lands (inverse, quanto and linear contracts), and a reconnect in the middle
of a liquidation cascade, whose partial re-sends the orders still open for what is left of them.
What every venue must do (rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.events import FundingRate, Kind, MarkPrice, OpenInterest, Side
from service.venues.bitmex.simulator import wire
from service.venues.bitmex.simulator.server import BitmexSimulator
from service.venues.bitmex.venue import Bitmex

pytestmark = pytest.mark.integration

VENUE = "bitmex"
SYMBOLS = list(wire.BITMEX_SYMBOLS)


def bitmex(sim: BitmexSimulator) -> Bitmex:
    return Bitmex(settings_for(sim, SYMBOLS))


@pytest.fixture
async def sim() -> AsyncIterator[BitmexSimulator]:
    # In the long cascade, 2x faster; instruments every 200 ms; orders rest 2 s.
    async with BitmexSimulator(
        seed=3, time_scale=2.0, start_s=20, push_interval_s=0.2, list_only_simulated=True
    ) as s:
        yield s


def orders_by_id(sim: BitmexSimulator) -> dict[str, wire.Order]:
    return {sim.order(p).order_id: sim.order(p) for p in sim.placed}


async def test_marks_funding_oi_and_liquidations_land_in_their_units(
    sim: BitmexSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(bitmex(sim), redis_client) as collector:
        await until(lambda: len(sim.placed) >= 60 and collector.health.events_total > 100)
        await asyncio.sleep(0.5)
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 3  # the simulated perpetuals
        assert health.liquidations_sampled is False
        assert sim.clients == 1
        marks = {s: sim.mark(s) for s in SYMBOLS}
        oi_base = {s: sim.oi_base(s) for s in SYMBOLS}
        xbt = sim.xbt_usd()

    for symbol in SYMBOLS:
        mark = (await stored(redis_client, VENUE, symbol, Kind.MARK))[-1]
        assert isinstance(mark, MarkPrice)
        assert mark.mark_price == pytest.approx(marks[symbol], rel=0.01)
        funding = (await stored(redis_client, VENUE, symbol, Kind.FUNDING))[-1]
        assert isinstance(funding, FundingRate)
        assert funding.interval_h == 8.0
        assert funding.funding_rate_1h == pytest.approx(funding.funding_rate / 8)
        assert funding.next_funding_ms is not None
        assert (funding.next_funding_ms - 4 * 3_600_000) % (8 * 3_600_000) == 0
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)
        assert oi.oi_base == pytest.approx(oi_base[symbol], rel=0.02)
        assert oi.oi_usd == pytest.approx(oi_base[symbol] * marks[symbol], rel=0.03)
        if symbol == "XBTUSD":  # USD contracts
            assert oi.oi_usd == oi.oi_contracts
        elif symbol == "XBTUSDT":  # 1e-6 XBT contracts
            assert oi.oi_base == pytest.approx(oi.oi_contracts * 1e-6)
        else:  # quanto: 100 XBt per USD of ETH price, paid at the XBT price
            assert oi.oi_usd == pytest.approx(oi.oi_contracts * 1e-6 * mark.mark_price * xbt, 0.03)

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert len(got) >= 60
    assert {x.symbol for x in got} == set(SYMBOLS)
    orders = orders_by_id(sim)
    replayed = {o.order_id for o in sim.replayed}
    for liq in got:
        order = orders[liq.event_id]  # every stored one was placed, under its orderID
        assert liq.side is order.print.side is Side.LONG  # the long cascade
        assert not liq.sampled
        assert liq.price == order.price  # the order's limit: the bankruptcy price
        if order.order_id in replayed:  # came in the first partial: what was left then
            assert liq.quantity <= order.contracts
        else:  # counted at insert, before any fill
            assert liq.quantity == order.contracts
        if liq.symbol == "XBTUSD":
            assert liq.notional_usd == liq.quantity
        elif liq.symbol == "XBTUSDT":
            assert liq.quantity_base == pytest.approx(liq.quantity * 1e-6)
            assert liq.quantity_base == pytest.approx(order.print.qty_base, rel=1e-3)
        else:
            assert liq.notional_usd == pytest.approx(order.print.notional_usd, rel=0.05)


async def test_a_reconnect_mid_cascade_stores_every_liquidation_once(
    sim: BitmexSimulator, redis_client: aioredis.Redis
) -> None:
    # Back in 0.6 s: orders are placed meanwhile, still open (2 s) when the partials come.
    async with running(
        bitmex(sim), redis_client, backoff_initial_s=0.6, backoff_max_s=1.0
    ) as collector:
        await until(lambda: collector.health.connected and len(sim.placed) >= 40)
        await asyncio.sleep(0.3)
        before, replayed_before = len(sim.placed), len(sim.replayed)
        assert await sim.drop_connections() == 1
        await until(lambda: collector.health.reconnects_total >= 1)
        await until(lambda: len(sim.replayed) > replayed_before)
        resent = sim.replayed[replayed_before:]  # the orders still open, in the new partials
        after = len(sim.placed)
        await until(lambda: len(sim.placed) >= after + 40)
        upto = len(sim.placed)
        await asyncio.sleep(0.4)  # the last inserts reach Redis
        orders_before = collector.parser.orders  # type: ignore[union-attr]
        assert orders_before

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [(x.symbol, x.event_id) for x in got]
    assert len(ids) == len(set(ids))  # none stored twice
    stored_ids = {x.event_id for x in got}
    assert sim.connections_total == 2
    placed_ids = [sim.order(p).order_id for p in sim.placed]
    # The partials re-sent orders the first connection had delivered...
    assert {o.order_id for o in resent} & set(placed_ids[:before])
    # ...those placed while the connection was down came back in them, for what was left...
    gap = set(placed_ids[before:after])
    assert gap
    assert gap <= stored_ids
    by_id = {x.event_id: x for x in got}
    assert all(by_id[o.order_id].quantity == o.leaves_qty for o in resent if o.order_id in gap)
    # ...and every order placed up to the end is stored.
    assert set(placed_ids[:upto]) <= stored_ids
