"""The collector against the Deribit simulator over real websockets and HTTP, writing to the real
Redis: units of what lands, and the heartbeat kept by the periodic ``public/test``. What every
venue must do (reconnects, rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping

import pytest
import redis.asyncio as aioredis
from harness import pinged_every, running, settings_for, stored, stored_liquidations, until

from service.config import DepthSettings, VenueSettings
from service.events import FundingRate, Kind, MarkPrice, OpenInterest, Side
from service.venues.base import Connection, Instrument
from service.venues.deribit.simulator import wire
from service.venues.deribit.simulator.server import DeribitSimulator
from service.venues.deribit.venue import Deribit

pytestmark = pytest.mark.integration

VENUE = "deribit"
SYMBOLS = list(wire.DERIBIT_SYMBOLS)


def _settings(sim: DeribitSimulator) -> VenueSettings:
    """Depth off: its ``depth-*`` connections are ``test_deribit_depth_live.py``'s (the
    heartbeat tests count two connections: ``public`` and ``trades``)."""
    return settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0))


def deribit(sim: DeribitSimulator) -> Deribit:
    return Deribit(_settings(sim))


@pytest.fixture
async def sim() -> AsyncIterator[DeribitSimulator]:
    # In the long cascade (scenario 20 s to 60 s), 5x faster: about 7 s of cascade.
    async with DeribitSimulator(seed=3, time_scale=5.0, start_s=21, list_only_simulated=True) as s:
        yield s


async def test_marks_funding_open_interest_and_liquidations_land_in_their_units(
    sim: DeribitSimulator, redis_client: aioredis.Redis
) -> None:
    funding_start = {s: sim.market.quote(s).funding_rate_8h for s in SYMBOLS}
    async with running(deribit(sim), redis_client) as collector:
        # The trades (and their liquidations) on a connection of their own.
        await until(lambda: set(collector._open) == {"public", "trades"})
        await until(lambda: collector.ready.is_set() and len(sim.sent) >= 60)
        end = len(sim.sent)
        await asyncio.sleep(0.6)  # what was sent by ``end`` reaches Redis
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 4  # the simulated perpetuals, listed alone
        assert health.liquidations_sampled is False
        marks = {s: sim.mark(s) for s in SYMBOLS}
        oi_base = {s: sim.oi_base(s) for s in SYMBOLS}
        funding_end = {s: sim.market.quote(s).funding_rate_8h for s in SYMBOLS}

    for symbol in SYMBOLS:
        stored_marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        assert all(isinstance(m, MarkPrice) for m in stored_marks)
        assert stored_marks[-1].mark_price == pytest.approx(marks[symbol], rel=0.01)
        times = [m.ts_ms for m in stored_marks]  # tickers every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        funding = (await stored(redis_client, VENUE, symbol, Kind.FUNDING))[-1]
        assert isinstance(funding, FundingRate)
        assert (funding.interval_h, funding.next_funding_ms) == (8.0, None)
        # per 8 h, as the market quotes it; in the cascade it falls from 0.01 % towards
        # -0.005 %, so the last one reported lies between the start's and the end's
        assert funding_end[symbol] <= funding.funding_rate <= funding_start[symbol] + 1e-8
        assert funding.funding_rate_1h == pytest.approx(funding.funding_rate / 8)
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)
        assert oi.oi_base == pytest.approx(oi_base[symbol], rel=0.01)
        if symbol.endswith("_USDC-PERPETUAL"):  # coin, valued at the mark
            assert oi.oi_contracts == oi.oi_base
            assert oi.oi_usd == pytest.approx(oi.oi_base * marks[symbol], rel=0.02)
        else:  # USD
            assert oi.oi_usd == oi.oi_contracts
            assert oi.oi_usd == pytest.approx(oi_base[symbol] * marks[symbol], rel=0.02)

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [(x.symbol, x.event_id) for x in got]
    assert len(ids) == len(set(ids))  # stored once each
    assert set(sim.sent_ids(upto=end)) <= set(ids)  # all of them (two for an MT trade)
    assert set(ids) <= set(sim.sent_ids())  # and nothing else
    rows = {(row["instrument_name"], row["trade_id"]): (p, row) for p, row in sim.sent}
    for liq in got:
        p, row = rows[(liq.symbol, liq.event_id.split(":")[0])]
        assert liq.sampled is False
        assert liq.quantity == row["amount"]
        assert liq.price == row["price"]
        if p.base == "BTC" and wire.flag(p) != "MT":
            assert liq.side is Side.LONG  # the long cascade
        if liq.symbol.endswith("_USDC-PERPETUAL"):  # coin
            assert liq.notional_usd == pytest.approx(liq.quantity * liq.price)
            assert liq.quantity_base == liq.quantity
        else:  # the amount is the USD value
            assert liq.notional_usd == liq.quantity
            assert liq.quantity_base == pytest.approx(liq.quantity / liq.price)


class _FastPingDeribit(Deribit):
    """Sends its ``public/test`` every ``ping_s`` (``None``: never), for a simulator whose
    heartbeat interval is scaled down from 30 s."""

    ping_s: float | None = 0.3

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return pinged_every(super().connections(markets), self.ping_s)


class _SilentDeribit(_FastPingDeribit):
    ping_s = None


@pytest.fixture
async def fast_heartbeat_sim() -> AsyncIterator[DeribitSimulator]:
    """A heartbeat interval of 30 s / 30 = 1 s."""
    async with DeribitSimulator(seed=4, heartbeat_scale=30.0, list_only_simulated=True) as s:
        yield s


async def test_the_periodic_public_test_answers_every_test_request(
    fast_heartbeat_sim: DeribitSimulator, redis_client: aioredis.Redis
) -> None:
    sim = fast_heartbeat_sim
    async with running(_FastPingDeribit(_settings(sim)), redis_client) as collector:
        await until(lambda: collector.ready.is_set())
        await asyncio.sleep(3.5)  # three test_requests
        assert sim.heartbeat_closes == 0
        assert collector.health.reconnects_total == 0
        assert collector.health.parse_errors == {}
        # About ten public/test requests on each connection (public, trades), each with an
        # id of its own on its connection.
        clients = sim._clients
        assert len(clients) == 2
        assert all(c.session.tests >= 8 for c in clients)
        assert sim.reused_request_ids == 0


async def test_without_the_public_test_the_venue_closes_and_the_collector_reconnects(
    fast_heartbeat_sim: DeribitSimulator, redis_client: aioredis.Redis
) -> None:
    sim = fast_heartbeat_sim
    async with running(_SilentDeribit(_settings(sim)), redis_client) as collector:
        await until(lambda: collector.health.reconnects_total >= 1, within=5)
        assert sim.heartbeat_closes >= 1
        assert "test_request not answered" in (collector.health.last_error or "")


async def test_heartbeats_and_test_answers_alone_do_not_keep_a_stalled_feed_alive(
    fast_heartbeat_sim: DeribitSimulator, redis_client: aioredis.Redis
) -> None:
    sim = fast_heartbeat_sim
    venue = _FastPingDeribit(_settings(sim))
    async with running(venue, redis_client, watchdog_s=1.5) as collector:
        await until(lambda: collector.health.messages_total > 20)
        sim.stall(5.0)  # data stops; heartbeats and answers to public/test go on
        await until(lambda: collector.health.reconnects_total >= 1, within=5)
        assert "no data" in (collector.health.last_error or "")
        assert sim.heartbeat_closes == 0
