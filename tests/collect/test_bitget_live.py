"""The collector against the Bitget simulator over real websockets and HTTP, writing to the real
Redis: units of what lands for both instTypes, and the text pings that keep a connection the
venue would otherwise cut. What every venue must do (reconnects, rotation, the watchdog) is in
``test_conformance_live.py``."""

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
from service.events import FundingRate, Kind, MarkPrice, OpenInterest, Side
from service.venues.base import Connection, Instrument
from service.venues.bitget.simulator.server import BitgetSimulator
from service.venues.bitget.simulator.wire import BITGET_SYMBOLS
from service.venues.bitget.venue import Bitget

pytestmark = pytest.mark.integration

VENUE = "bitget"
SYMBOLS = list(BITGET_SYMBOLS)


def bitget(sim: BitgetSimulator) -> Bitget:
    """Depth off: its connections are ``test_bitget_depth_live.py``'s."""
    return Bitget(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))


@pytest.fixture
async def sim() -> AsyncIterator[BitgetSimulator]:
    # In the long cascade (scenario 20 s to 60 s), 4x faster: about 9.5 s of burst.
    async with BitgetSimulator(
        seed=3, time_scale=4.0, start_s=22, push_interval_s=0.1, list_only_simulated=True
    ) as s:
        yield s


async def test_marks_funding_open_interest_and_sampled_liquidations_land_in_their_units(
    sim: BitgetSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(bitget(sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set() and len(sim.pushed) >= 12)
        end = len(sim.pushed)
        await asyncio.sleep(0.6)  # what was pushed by ``end`` reaches Redis
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 6  # the simulated perpetuals, via ccxt
        assert health.liquidations_sampled is True
        assert sim.clients == 4  # usdt-futures-1, coin-futures-1 and their liquidations'
        marks = {s: sim.mark(s) for s in SYMBOLS}
        oi_base = {s: sim.oi_base(s) for s in SYMBOLS}

    for symbol in SYMBOLS:
        stored_marks = await stored(redis_client, VENUE, symbol, Kind.MARK)
        assert all(isinstance(m, MarkPrice) for m in stored_marks)
        assert stored_marks[-1].mark_price == pytest.approx(marks[symbol], rel=0.01)
        times = [m.ts_ms for m in stored_marks]  # tickers every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)  # base coin for both instTypes, valued at the mark
        assert oi.oi_base == oi.oi_contracts == pytest.approx(oi_base[symbol], rel=0.01)
        assert oi.oi_usd == pytest.approx(oi.oi_base * marks[symbol], rel=0.02)
    doge = (await stored(redis_client, VENUE, "DOGEUSDT", Kind.FUNDING))[-1]
    btc = (await stored(redis_client, VENUE, "BTCUSD", Kind.FUNDING))[-1]
    assert isinstance(doge, FundingRate)
    assert isinstance(btc, FundingRate)
    assert (doge.interval_h, btc.interval_h) == (4.0, 8.0)  # the listing's fundInterval
    assert doge.funding_rate_1h == pytest.approx(doge.funding_rate / 4)
    assert doge.next_funding_ms is not None
    assert doge.next_funding_ms % (4 * 3_600_000) == 0

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    ids = [(x.symbol, x.event_id) for x in got]
    assert len(ids) == len(set(ids))  # stored once each
    assert {sim.wire_ids(p)[0] for p in sim.pushed[:end]} <= set(ids)  # every one pushed
    assert set(ids) <= {sim.wire_ids(p)[0] for p in sim.pushed}  # and nothing else
    assert {x.symbol for x in got} >= {"BTCUSDT", "BTCUSD"}
    by_id = {sim.wire_ids(p)[0]: p for p in sim.pushed}
    for liq in got:
        p = by_id[(liq.symbol, liq.event_id)]
        assert liq.sampled is True
        assert liq.side is p.side
        if liq.base == "BTC":
            assert liq.side is Side.LONG  # the long cascade
        step = sim.contracts[p.symbol].qty_step
        assert liq.quantity_base == pytest.approx(round(p.qty_base / step) * step)
        assert liq.notional_usd == pytest.approx(liq.quantity_base * liq.price)
        assert liq.notional_usd == pytest.approx(p.notional_usd, rel=0.01)
    assert len(sim.pushed) < len(sim.prints)  # Bitget publishes a sample


class _FastPingBitget(Bitget):
    """Pings every 0.2 s, against a simulator that cuts a connection silent for 0.8 s."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [replace(c, ping_interval_s=0.2) for c in super().connections(markets)]


async def test_text_pings_keep_the_connection_the_venue_would_cut(
    redis_client: aioredis.Redis,
) -> None:
    async with BitgetSimulator(ping_timeout_s=0.8, list_only_simulated=True) as sim:
        no_depth = DepthSettings(top_n=0)
        pinging = _FastPingBitget(settings_for(sim, SYMBOLS, depth=no_depth))
        async with running(pinging, redis_client) as collector:
            await until(lambda: collector.health.connected)
            await asyncio.sleep(2.5)  # three times the venue's patience
            assert collector.health.reconnects_total == 0
            assert sim.connections_total == 4  # the quiet lane's connections pinging too
        silent = Bitget(settings_for(sim, SYMBOLS, depth=no_depth))  # 25 s pings: cut at 0.8 s
        async with running(silent, redis_client) as collector:
            await until(lambda: collector.health.reconnects_total >= 2, within=5)


class _BusyRefused(Bitget):
    """Its busy connections (tickers, trades) pointed at a path the venue refuses (404): only
    the quiet lane connects."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [
            c if c.quiet else replace(c, url=c.url.replace("/v3/", "/v1/"))
            for c in super().connections(markets)
        ]


async def test_the_liquidations_arrive_on_their_quiet_connections_alone(
    sim: BitgetSimulator, redis_client: aioredis.Redis
) -> None:
    """The quiet lane (:attr:`~service.venues.base.Connection.quiet`): each instType's
    ``liquidation`` topic has a connection of its own, which subscribes nothing else. With
    every busy connection down (refused), every liquidation the simulator pushed lands, once,
    and nothing of the tickers does."""
    venue = _BusyRefused(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))
    async with running(venue, redis_client) as collector:
        await until(lambda: len(sim.pushed) >= 12, within=20)
        end = len(sim.pushed)
        assert set(collector._open) == {"usdt-futures-liquidations", "coin-futures-liquidations"}
        lanes = [set(c.session.args) for c in sim._clients]  # what each connection subscribed
        assert sorted(lanes, key=str) == [
            {("coin-futures", "liquidation", "")}, {("usdt-futures", "liquidation", "")}
        ]  # fmt: skip
        sent = sent_ids(sim, 0, end)

        async def landed() -> bool:
            got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
            return set(sent) <= {stored_id(x) for x in got}

        await eventually(landed)
        assert collector.health.parse_errors == {}

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert_stored_once([stored_id(x) for x in got], sent_ids(sim))
    assert {x.symbol for x in got} >= {"BTCUSDT", "BTCUSD"}  # both instTypes' lanes
    assert await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK) == []  # no ticker came
