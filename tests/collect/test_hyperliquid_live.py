"""The collector against the Hyperliquid simulator over real websockets and HTTP, writing to the
real Redis: units of what lands. What every venue must do (reconnects, whose ``userFills``
snapshots recover the fills missed meanwhile, rotation, the watchdog) is in
``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest
import redis.asyncio as aioredis
from harness import pinged_every, running, settings_for, stored, stored_liquidations, until
from waits import eventually
from wire_ids import assert_stored_once, sent_ids, stored_id

from service.events import FundingRate, Kind, OpenInterest
from service.venues.base import Connection, Instrument
from service.venues.hyperliquid.simulator.server import HyperliquidSimulator
from service.venues.hyperliquid.simulator.wire import HL_SYMBOLS
from service.venues.hyperliquid.venue import Hyperliquid

pytestmark = pytest.mark.integration

VENUE = "hyperliquid"
SYMBOLS = list(HL_SYMBOLS)
HOUR_MS = 3_600_000


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


async def test_marks_funding_oi_and_liquidations_land_in_their_units(
    sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(hyperliquid(sim), redis_client) as collector:
        # The vaults' fills on their own connection, the quiet lane.
        await until(lambda: set(collector._open) == {"public", "liquidations"})
        await until(lambda: len(sim.pushed) >= 30 and collector.health.events_total > 60)
        upto = len(sim.pushed)  # before the collector subscribed: in the vaults' snapshots

        async def all_stored() -> bool:
            got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
            return set(sent_ids(sim, 0, upto)) <= {stored_id(x) for x in got}

        await eventually(all_stored)
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
    assert_stored_once([stored_id(x) for x in got], sent_ids(sim))  # every one pushed, once
    by_wire = {sim.wire_ids(p)[0]: p for p in sim.pushed}
    for liq in got:
        p = by_wire[(liq.symbol, liq.event_id)]  # every stored one was a backstop the vault filled
        fill = sim.fill_of(p)
        assert liq.side is p.side
        assert liq.sampled
        assert liq.ts_ms == fill["time"] == p.ts_ms
        assert liq.price == float(fill["px"])
        assert liq.quantity == liq.quantity_base == pytest.approx(p.qty_base)
        assert liq.notional_usd == pytest.approx(p.notional_usd, rel=0.001)
    assert len(got) < len([p for p in sim.prints if p.symbol in SYMBOLS])  # a partial view


class _FastPingHyperliquid(Hyperliquid):
    """Sends its ``{"method":"ping"}`` every ``ping_s`` (``None``: never), for a simulator
    whose idle cut is scaled down from 60 s."""

    ping_s: float | None = 0.3

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return pinged_every(super().connections(markets), self.ping_s)


class _SilentHyperliquid(_FastPingHyperliquid):
    ping_s = None


@pytest.fixture
async def calm_sim() -> AsyncIterator[HyperliquidSimulator]:
    """No backstop: the vaults' fills are silent; an idle cut of 1 s (the venue's: 60 s)."""
    async with HyperliquidSimulator(
        seed=3,
        push_interval_s=0.1,
        backstop_share=0.0,
        idle_close_s=1.0,
        list_only_simulated=True,
    ) as s:
        yield s


async def test_the_liquidations_lane_lives_on_its_pings_through_the_idle_cut(
    calm_sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    """Silent for longer than the data watchdog's window and than the venue's idle cut: the
    watchdog leaves the quiet lane alone, and the pongs to its pings keep the venue from
    closing it."""
    sim = calm_sim
    venue = _FastPingHyperliquid(settings_for(sim, SYMBOLS))
    async with running(venue, redis_client, watchdog_s=0.8) as collector:
        await until(lambda: set(collector._open) == {"public", "liquidations"})
        quiet = collector._open["liquidations"][1]
        await asyncio.sleep(3.5)
        assert (sim.idle_closes, collector.health.reconnects_total) == (0, 0)
        assert collector._open["liquidations"][1] is quiet
        assert collector.health.connected


async def test_without_its_pings_the_venue_closes_the_liquidations_lane_and_it_reconnects(
    calm_sim: HyperliquidSimulator, redis_client: aioredis.Redis
) -> None:
    sim = calm_sim
    async with running(_SilentHyperliquid(settings_for(sim, SYMBOLS)), redis_client) as collector:
        await until(lambda: set(collector._open) == {"public", "liquidations"})
        busy = collector._open["public"][1]  # its contexts keep it open
        await until(lambda: sim.idle_closes >= 1, within=5)
        await until(lambda: collector.health.reconnects_total >= 1)
        await until(lambda: set(collector._open) == {"public", "liquidations"})
        assert collector._open["public"][1] is busy  # the quiet lane's reconnect only
