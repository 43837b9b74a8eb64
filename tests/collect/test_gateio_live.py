"""The collector against the Gate futures simulator over real websockets and HTTP, writing to
the real Redis: units of what lands for both settlements, and the legacy (sampled) liquidation
format end to end. What every venue must do (reconnects, rotation, the watchdog) is in
``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.events import FundingRate, Kind, MarkPrice, OpenInterest, Side
from service.venues.gateio.simulator.server import GateSimulator
from service.venues.gateio.simulator.wire import GATE_SYMBOLS
from service.venues.gateio.venue import Gate

pytestmark = pytest.mark.integration

VENUE = "gateio"
SYMBOLS = list(GATE_SYMBOLS)


def gate(sim: GateSimulator) -> Gate:
    return Gate(settings_for(sim, SYMBOLS))


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
        assert sim.clients == 2  # usdt-1 and btc-1
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
