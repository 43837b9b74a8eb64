"""The collector against the OKX simulator over real websockets and HTTP, writing to the real
Redis: units of what lands, the top of book (``tickers``) and traded volume (``trades``). What
every venue must do (reconnects, whose re-subscribe burst recovers what was missed meanwhile,
rotation, the watchdog) is in ``test_conformance_live.py``."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until

from service.config import DepthSettings
from service.events import BookTop, FundingRate, Kind, Liquidation, OpenInterest, Side, Volume
from service.simulate.market import LiquidationPrint
from service.venues.okx.simulator.server import OKX_SYMBOLS, OkxSimulator
from service.venues.okx.venue import Okx

pytestmark = pytest.mark.integration

VENUE = "okx"
SYMBOLS = list(OKX_SYMBOLS)
Identity = tuple[str, int, Side, float, float]


def okx(sim: OkxSimulator) -> Okx:
    return Okx(settings_for(sim, SYMBOLS))


def _no_depth(sim: OkxSimulator) -> Okx:
    return Okx(settings_for(sim, SYMBOLS, depth=DepthSettings(top_n=0)))


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
        end = len(sim.pushed)
        await asyncio.sleep(0.5)  # what was pushed by ``end`` reaches Redis
        assert collector.health.connected
        # the liquidations on a quiet connection of their own (Connection.quiet)
        assert {"public", "liquidations"} <= set(collector._open)
        assert collector._connection("liquidations").quiet
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
    ids = [identity(x) for x in got]
    assert len(ids) == len(set(ids))  # stored once each, bursts on subscribe included
    # every one pushed (before the subscription: in its burst of the last 100)
    assert {wire_identity(sim, p) for p in sim.pushed[:end]} <= set(ids)
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


async def test_the_top_of_book_widens_and_thins_and_volume_lands_once_a_second(
    redis_client: aioredis.Redis,
) -> None:
    """The simulator's market (calm until 20 s, BTC and ETH in a long cascade from 20 s to
    60 s) on ``tickers`` and ``trades``, through the websocket, the parser and the store
    (depth off: its connections are ``test_okx_depth_live.py``'s)."""
    async with (
        OkxSimulator(seed=3, time_scale=5.0, start_s=14, list_only_simulated=True) as sim,
        running(_no_depth(sim), redis_client) as collector,
    ):
        await until(lambda: collector.ready.is_set())
        await until(lambda: sim.market.elapsed_s >= 55, within=30)
        await asyncio.sleep(1.2)  # the last second's report reaches Redis
        assert collector.health.parse_errors == {}
        assert set(collector._open) == {"public", "liquidations"}
    terms = contract_terms(sim)

    def spread_and_top(book: object) -> tuple[float, float]:
        assert isinstance(book, BookTop)
        return book.spread_bp, book.bid_usd + book.ask_usd

    for symbol in SYMBOLS:
        books = await stored(redis_client, VENUE, symbol, Kind.BOOK_TOP)
        assert len(books) >= 5, symbol
        times = [b.ts_ms for b in books]  # tickers every 100 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        (calm_spread, calm_top), (last_spread, last_top) = map(
            spread_and_top, (books[0], books[-1])
        )
        assert calm_spread < 3.0, symbol  # about 1 bp
        assert last_spread > 3 * calm_spread, symbol
        assert last_top < 0.6 * calm_top, symbol
        linear, ct_val = terms[symbol]
        top = books[-1]
        assert isinstance(top, BookTop)
        contracts = top.bid_base / ct_val if linear else top.bid_usd / ct_val
        assert contracts == pytest.approx(round(contracts))  # whole contracts of ctVal

        seconds = await stored(redis_client, VENUE, symbol, Kind.VOLUME)
        assert all(isinstance(v, Volume) for v in seconds)
        assert len(seconds) >= 5, symbol  # about 8 s of wall time, a batch a second
        times = [v.ts_ms for v in seconds]
        assert all(t % 1000 == 0 for t in times)
        assert all(b > a for a, b in itertools.pairwise(times))  # at most one a second
        for v in seconds:
            assert isinstance(v, Volume)
            assert v.trades >= 1
            if not linear:  # whole contracts of ctVal USD
                usd = v.taker_buy_usd + v.taker_sell_usd
                assert usd / ct_val == pytest.approx(round(usd / ct_val))
    btc = [v for v in await stored(redis_client, VENUE, "BTC-USDT-SWAP", Kind.VOLUME)
           if isinstance(v, Volume)]  # fmt: skip
    # the liquidated longs' closes sell into the book
    assert sum(v.taker_sell_usd for v in btc) > 1.5 * sum(v.taker_buy_usd for v in btc)
