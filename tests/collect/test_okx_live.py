"""The collector against the OKX simulator over real websockets and HTTP, writing to the real
Redis: units of what lands. What every venue must do (reconnects, whose re-subscribe burst
recovers what was missed meanwhile, rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.events import FundingRate, Kind, Liquidation, OpenInterest, Side
from service.simulate.market import LiquidationPrint
from service.venues.okx.simulator.server import OKX_SYMBOLS, OkxSimulator
from service.venues.okx.venue import Okx

pytestmark = pytest.mark.integration

VENUE = "okx"
SYMBOLS = list(OKX_SYMBOLS)
Identity = tuple[str, int, Side, float, float]


def okx(sim: OkxSimulator) -> Okx:
    return Okx(settings_for(sim, SYMBOLS))


@pytest.fixture
async def sim() -> AsyncIterator[OkxSimulator]:
    # In the long cascade, 2x faster; marks every 100 ms, OI every 300 ms, funding every 500 ms.
    async with OkxSimulator(
        seed=3,
        time_scale=2.0,
        start_s=20,
        push_interval_s=0.1,
        oi_interval_s=0.3,
        funding_interval_s=0.5,
        burst_size=100,
        list_only_simulated=True,
    ) as s:
        yield s


def contract_terms(sim: OkxSimulator) -> dict[str, tuple[bool, float]]:
    """instId -> (linear, ctVal) from the recorded listing the simulator serves."""
    rows: list[dict[str, Any]] = json.loads(sim.rest.listing)["data"]
    return {r["instId"]: (r["ctType"] == "linear", float(r["ctVal"])) for r in rows}


def wire_identity(sim: OkxSimulator, p: LiquidationPrint) -> Identity:
    d = sim.detail(p)
    return (p.symbol, int(d["ts"]), p.side, float(d["sz"]), float(d["bkPx"]))


def identity(x: Liquidation) -> Identity:
    return (x.symbol, x.ts_ms, x.side, x.quantity, x.price)


async def test_marks_funding_oi_and_liquidations_land_in_their_units(
    sim: OkxSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(okx(sim), redis_client) as collector:
        await until(lambda: len(sim.pushed) >= 30 and collector.health.events_total > 100)
        await asyncio.sleep(0.5)
        assert collector.health.connected
        assert collector.health.parse_errors == {}
        assert collector.health.instruments == 4  # the simulated swaps, via ccxt
        marks = {s: collector.parser.last_mark[s] for s in SYMBOLS}  # type: ignore[union-attr]

    terms = contract_terms(sim)
    funding = {s: await stored(redis_client, VENUE, s, Kind.FUNDING) for s in SYMBOLS}
    eth_inverse = funding["ETH-USD-SWAP"][-1]
    btc_linear = funding["BTC-USDT-SWAP"][-1]
    assert isinstance(eth_inverse, FundingRate)
    assert isinstance(btc_linear, FundingRate)
    assert eth_inverse.interval_h == 4.0  # nextFundingTime - fundingTime
    assert eth_inverse.funding_rate_1h == pytest.approx(eth_inverse.funding_rate / 4)
    assert btc_linear.interval_h == 8.0
    assert btc_linear.next_funding_ms is not None
    assert btc_linear.next_funding_ms % (8 * 3_600_000) == 0
    for symbol in SYMBOLS:
        oi = (await stored(redis_client, VENUE, symbol, Kind.OPEN_INTEREST))[-1]
        assert isinstance(oi, OpenInterest)
        linear, ct_val = terms[symbol]
        assert oi.oi_base == pytest.approx(sim.oi_base(symbol), rel=0.02)
        if linear:  # contracts of ctVal coin, valued at the mark
            assert oi.oi_contracts == pytest.approx(oi.oi_base / ct_val)
            assert oi.oi_usd == pytest.approx(oi.oi_base * marks[symbol], rel=0.02)
        else:  # contracts of ctVal USD
            assert oi.oi_usd == pytest.approx(oi.oi_contracts * ct_val)

    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    assert len(got) >= 30
    by_wire = {wire_identity(sim, p): p for p in sim.pushed}
    for liq in got:
        p = by_wire[identity(liq)]  # every stored one was pushed, as pushed
        linear, ct_val = terms[liq.symbol]
        assert liq.side is p.side is Side.LONG  # the long cascade
        assert liq.sampled
        expected = liq.quantity * ct_val * liq.price if linear else liq.quantity * ct_val
        assert liq.notional_usd == pytest.approx(expected)
        if linear:  # the print's base quantity, valued at bkPx (beyond the fill, < 1.5 %)
            assert liq.quantity_base == pytest.approx(p.qty_base)
            assert liq.notional_usd == pytest.approx(p.notional_usd, rel=0.02)
        else:  # the print's USD value in whole contracts
            assert abs(liq.notional_usd - p.notional_usd) <= ct_val
