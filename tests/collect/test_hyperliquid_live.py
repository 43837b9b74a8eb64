"""The collector against the Hyperliquid simulator over real websockets and HTTP, writing to the
real Redis: units of what lands, and a reconnect in the middle of a liquidation cascade, whose
``userFills`` snapshots re-send fills already stored and recover those missed meanwhile."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.events import FundingRate, Kind, Liquidation, OpenInterest
from service.simulate.market import LiquidationPrint
from service.venues.base import Connection, Instrument
from service.venues.hyperliquid.simulator.server import HyperliquidSimulator
from service.venues.hyperliquid.simulator.wire import HL_SYMBOLS
from service.venues.hyperliquid.venue import Hyperliquid

pytestmark = pytest.mark.integration

VENUE = "hyperliquid"
SYMBOLS = list(HL_SYMBOLS)
HOUR_MS = 3_600_000
Identity = tuple[str, str]


def hyperliquid(sim: HyperliquidSimulator) -> Hyperliquid:
    return Hyperliquid(settings_for(sim, SYMBOLS))


@pytest.fixture
async def sim() -> AsyncIterator[HyperliquidSimulator]:
    # In the long cascade, 2x faster; contexts every 100 ms; half the prints are backstops.
    async with HyperliquidSimulator(
        seed=3,
        time_scale=2.0,
        start_s=20,
        push_interval_s=0.1,
        backstop_share=0.5,
        snapshot_size=400,
        list_only_simulated=True,
    ) as s:
        yield s


def wire_identity(sim: HyperliquidSimulator, p: LiquidationPrint) -> Identity:
    return (p.symbol, str(sim.fill_of(p)["tid"]))


def identity(x: Liquidation) -> Identity:
    return (x.symbol, x.event_id)


async def test_marks_funding_oi_and_liquidations_land_in_their_units(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(hyperliquid(sim), redis_client) as collector:
        await until(lambda: len(sim.pushed) >= 30 and collector.health.events_total > 60)
        await asyncio.sleep(0.5)
        assert collector.health.connected
        assert collector.health.parse_errors == {}
        assert collector.health.liquidations_sampled
        assert collector.health.instruments == 4  # the simulated coins, via /info meta
        marks = {s: collector.parser.last_mark[s] for s in SYMBOLS}  # type: ignore[union-attr]

    for symbol in SYMBOLS:
        funding = (await stored(redis_client, VENUE, symbol, Kind.FUNDING))[-1]
        assert isinstance(funding, FundingRate)
        assert funding.interval_h == 1.0
        assert funding.funding_rate_1h == funding.funding_rate
        assert funding.funding_rate == pytest.approx(
            sim.market.quote(symbol).funding_rate_8h / 8, abs=5e-6
        )
        assert funding.next_funding_ms is not None
        assert funding.next_funding_ms % HOUR_MS == 0
        assert 0 < funding.next_funding_ms - funding.ts_ms <= HOUR_MS
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)
        assert oi.oi_contracts == oi.oi_base  # coin
        assert oi.oi_base == pytest.approx(sim.oi_base(symbol), rel=0.02)
        assert oi.oi_usd == pytest.approx(oi.oi_base * marks[symbol], rel=0.02)

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert len(got) >= 30
    by_wire = {wire_identity(sim, p): p for p in sim.pushed}
    for liq in got:
        p = by_wire[identity(liq)]  # every stored one was a backstop the vault filled
        fill = sim.fill_of(p)
        assert liq.side is p.side
        assert liq.sampled
        assert liq.ts_ms == fill["time"] == p.ts_ms
        assert liq.price == float(fill["px"])
        assert liq.quantity == liq.quantity_base == pytest.approx(p.qty_base)
        assert liq.notional_usd == pytest.approx(p.notional_usd, rel=0.001)
    assert len(got) < len([p for p in sim.prints if p.symbol in SYMBOLS])  # a partial view


async def test_a_reconnect_mid_cascade_stores_every_liquidation_once(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(hyperliquid(sim), redis_client) as collector:
        await until(lambda: collector.health.connected and len(sim.pushed) >= 40)
        await asyncio.sleep(0.3)
        snapshots, replayed_before, live_before = sim.snapshots, len(sim.replayed), len(sim.pushed)
        assert await sim.drop_connections() == 1
        await until(
            lambda: collector.health.reconnects_total == 1 and sim.snapshots == snapshots + 5
        )
        resent = sim.replayed[replayed_before:]  # the snapshots after the reconnect
        after = len(sim.pushed)
        await until(lambda: len(sim.pushed) >= after + 40)
        upto = len(sim.pushed)
        await asyncio.sleep(0.4)  # the last pushes reach Redis
        dropped_by_dedup = collector.dedup.dropped

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [identity(x) for x in got]
    assert len(ids) == len(set(ids))  # none stored twice
    stored_ids = set(ids)
    assert sim.connections_total == 2
    # The snapshots re-sent fills the first connection had delivered...
    resent_ids = {wire_identity(sim, p) for p in resent}
    assert resent_ids & {wire_identity(sim, p) for p in sim.pushed[:live_before]}
    assert dropped_by_dedup > 0
    # ...every liquidation pushed after the reconnect is stored...
    assert {wire_identity(sim, p) for p in sim.pushed[after:upto]} <= stored_ids
    # ...and those pushed while the connection was down came back in the snapshots.
    assert {wire_identity(sim, p) for p in sim.pushed[:upto]} <= stored_ids


async def test_a_stalled_feed_is_detected_by_the_watchdog_and_reconnected(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(hyperliquid(sim), redis_client, watchdog_s=0.5) as collector:
        await until(lambda: collector.health.messages_total > 20)
        sim.stall(1.5)  # the socket stays open; pings would still be answered
        await until(lambda: collector.health.reconnects_total >= 1, within=5)
        assert "no data" in (collector.health.last_error or "")
        await until(lambda: not sim.stalled and collector.health.connected, within=10)
        before = collector.health.messages_total
        await until(lambda: collector.health.messages_total > before + 20)


async def test_rotation_hands_over_and_its_snapshots_store_nothing_twice(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(hyperliquid(sim), redis_client, max_connection_age_s=0.7) as collector:
        await until(lambda: sim.connections_total >= 4, within=15)
        await asyncio.sleep(0.3)
        assert collector.health.reconnects_total == 0  # rotations are not reconnects
        assert collector.health.connected

    ids = [identity(x) for x in await stored_liquidations(redis_client, VENUE, SYMBOLS)]
    assert ids
    assert len(ids) == len(set(ids))
    marks = [m.ts_ms for m in await stored(redis_client, VENUE, "BTC", Kind.MARK)]
    assert marks == sorted(set(marks))
    assert max(b - a for a, b in itertools.pairwise(marks)) <= 1500  # one a second, none lost


class _EagerPingHyperliquid(Hyperliquid):
    """Pings every 0.2 s: more often than the watchdog's window, as the 30 s ping is more
    often than a 60 s watchdog would be."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [replace(c, ping_interval_s=0.2) for c in super().connections(markets)]


async def test_pongs_alone_do_not_keep_a_stalled_feed_alive(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    venue = _EagerPingHyperliquid(settings_for(sim, SYMBOLS))
    async with running(venue, redis_client, watchdog_s=1.0) as collector:
        await until(lambda: collector.health.messages_total > 20)
        sim.stall(4.0)  # data stops; the simulator still answers every ping
        await until(lambda: collector.health.reconnects_total >= 1, within=4)
        assert "no data" in (collector.health.last_error or "")
