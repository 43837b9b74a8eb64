"""The collector on Binance COIN-M against its simulator over real websockets and HTTP, writing
to the real Redis: inverse sizing of what lands. What every venue must do (reconnects,
rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.events import FundingRate, Kind, Liquidation, MarkPrice, OpenInterest
from service.simulate.market import LiquidationPrint
from service.venues.base import Instrument
from service.venues.binance.coinm import VENUE, BinanceCoinm, BinanceCoinmParser
from service.venues.binance.simulator import usdm_wire as wire
from service.venues.binance.simulator.coinm import BinanceCoinmSimulator
from service.venues.binance.simulator.coinm_wire import COINM, print_contracts

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSD_PERP", "ETHUSD_PERP", "XRPUSD_PERP"]
SIZES = {"BTCUSD_PERP": 100.0, "ETHUSD_PERP": 10.0, "XRPUSD_PERP": 10.0}


def coinm(sim: BinanceCoinmSimulator) -> BinanceCoinm:
    return BinanceCoinm(settings_for(sim, SYMBOLS, oi_poll_weight_per_minute=2400))


def as_received(sim: BinanceCoinmSimulator, p: LiquidationPrint) -> Liquidation:
    """A pushed print as our parser reads it off the wire (its identity, its sizing)."""
    frame = wire.frame(
        "!forceOrder@arr", wire.encode(COINM.force_order(p, sim.contracts[p.symbol], 0)), True
    )
    (liq,) = BinanceCoinmParser(VENUE, _instruments(), None).parse(frame, 0)
    assert isinstance(liq, Liquidation)
    return liq


def _instruments() -> dict[str, Instrument]:
    return {
        s: Instrument(VENUE, s, s.partition("USD")[0], "USD", linear=False, contract_size=size)
        for s, size in SIZES.items()
    }


async def test_events_land_in_redis_sized_as_inverse_contracts(
    redis_client: aioredis.Redis,
) -> None:
    # Already in the long cascade, 10x faster, a mark every 100 ms.
    async with (
        BinanceCoinmSimulator(
            seed=3, time_scale=10.0, push_interval_s=0.1, start_s=20, list_only_simulated=True
        ) as sim,
        running(coinm(sim), redis_client) as collector,
    ):
        await until(
            lambda: (
                collector.health.oi_polls_total >= 3
                and sum(p.symbol in SYMBOLS for p in sim.pushed) >= 3
            )
        )
        await asyncio.sleep(0.3)
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 4  # the simulated perpetuals, from exchangeInfo via ccxt
        assert health.liquidations_sampled
        # ccxt's load_markets asked for exchangeInfo only; then fundingInfo and the OI polls.
        assert set(sim.rest.paths) == {
            "/dapi/v1/exchangeInfo",
            "/dapi/v1/fundingInfo",
            "/dapi/v1/openInterest",
        }
        assert sim.rest.paths["/dapi/v1/exchangeInfo"] == 1
        pushed_while_running = sum(p.symbol in SYMBOLS for p in sim.pushed)
        oi_base_now = sim.oi_base("BTCUSD_PERP")

    marks = await stored(redis_client, VENUE, "BTCUSD_PERP", Kind.MARK)
    assert marks
    assert all(isinstance(m, MarkPrice) for m in marks)
    (funding, *_) = await stored(redis_client, VENUE, "ETHUSD_PERP", Kind.FUNDING)
    assert isinstance(funding, FundingRate)
    assert funding.interval_h == 8.0
    assert await stored(redis_client, VENUE, "BNBUSD_PERP", Kind.MARK) == []  # not configured

    ois = await stored(redis_client, VENUE, "BTCUSD_PERP", Kind.OPEN_INTEREST)
    assert ois
    for oi in ois:
        assert isinstance(oi, OpenInterest)
        assert oi.oi_contracts == int(oi.oi_contracts)  # whole 100 USD contracts
        assert oi.oi_usd == pytest.approx(oi.oi_contracts * 100.0)
        assert oi.oi_base == pytest.approx(oi_base_now, rel=0.1)  # USD / mark

    # Every liquidation stored once, the side of the position, notional = contracts x size.
    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert got
    by_id = {as_received(sim, p).event_id: p for p in sim.pushed if p.symbol in SYMBOLS}
    assert len({x.event_id for x in got}) == len(got)
    assert {x.event_id for x in got} <= set(by_id)
    assert len(got) >= pushed_while_running - 3  # the last ones may still be in flight
    for liq in got:
        p = by_id[liq.event_id]
        n = print_contracts(p, sim.contracts[p.symbol])
        assert (liq.symbol, liq.side, liq.ts_ms, liq.quantity) == (p.symbol, p.side, p.ts_ms, n)
        assert liq.notional_usd == pytest.approx(n * SIZES[liq.symbol])
        assert liq.quantity_base == pytest.approx(n * SIZES[liq.symbol] / liq.price)
        assert liq.sampled
