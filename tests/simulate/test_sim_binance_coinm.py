"""The Binance COIN-M simulator over real websockets and HTTP on loopback, read by our real COIN-M
venue: its subscription, parser, ccxt metadata and open-interest polls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from simkit import collect, refused_status
from websockets.asyncio.client import connect

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, Side
from service.simulate.clock import MarketClock
from service.simulate.market import DEFAULT_SPECS, DEFAULT_SYMBOLS, Market
from service.simulate.scenario import get_scenario
from service.venues.base import Instrument, now_ms
from service.venues.binance.coinm import VENUE, BinanceCoinm, BinanceCoinmParser
from service.venues.binance.simulator import usdm_wire as wire
from service.venues.binance.simulator.coinm import COINM_SPECS, COINM_SYMBOLS, BinanceCoinmSimulator
from service.venues.binance.simulator.coinm_wire import COINM, print_contracts
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator

pytestmark = pytest.mark.integration

ACK = '{"result":null,"id":1}'
SIZES = {"BTCUSD_PERP": 100.0, "ETHUSD_PERP": 10.0, "BNBUSD_PERP": 10.0, "XRPUSD_PERP": 10.0}


@pytest.fixture
async def sim() -> AsyncIterator[BinanceCoinmSimulator]:
    """The default scenario, 10x faster, marks every 100 ms, already in the long cascade."""
    async with BinanceCoinmSimulator(seed=7, time_scale=10.0, push_interval_s=0.1, start_s=20) as s:
        yield s


def _instruments() -> dict[str, Instrument]:
    return {
        s: Instrument(VENUE, s, s.partition("USD")[0], "USD", linear=False, contract_size=size)
        for s, size in SIZES.items()
    }


async def test_service_subscription_is_acked_and_every_frame_parses_inverse(
    sim: BinanceCoinmSimulator,
) -> None:
    venue = BinanceCoinm(VenueSettings(ws_url=sim.ws_base_url))
    marks_conn, liquidations = venue.connections(_instruments())[:2]
    assert (marks_conn.name, liquidations.name, liquidations.quiet) == (
        "market",
        "liquidations",
        True,
    )
    async with connect(marks_conn.url) as ws:  # both subscriptions on one socket here
        for conn in (marks_conn, liquidations):
            await ws.send(conn.subscribe[0])
            assert await ws.recv() == ACK
        frames = await collect(ws, 1.0)
    parser = BinanceCoinmParser(VENUE, _instruments(), None)
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    assert {json.loads(f)["stream"] for f in frames} == {
        "!forceOrder@arr",
        *(f"{s.lower()}@markPrice@1s" for s in COINM_SYMBOLS),
    }
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert {m.symbol for m in marks} == set(COINM_SYMBOLS)
    assert len(marks) >= 8 * len(COINM_SYMBOLS)  # every 100 ms for ~1 s
    last_btc = next(m for m in reversed(marks) if m.symbol == "BTCUSD_PERP")
    assert last_btc.mark_price == pytest.approx(sim.mark("BTCUSD_PERP"), rel=0.005)
    funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
    assert set(funding) == set(COINM_SYMBOLS)
    assert all(
        f.interval_h == 8.0 and f.next_funding_ms % (8 * 3_600_000) == 0 for f in funding.values()
    )

    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert any(e.symbol == "BTCUSD_PERP" for e in liqs)  # the fixture starts in the cascade
    pushed = {(p.symbol, p.ts_ms): p for p in sim.pushed}
    for liq in liqs:
        p = pushed[(liq.symbol, liq.ts_ms)]
        n = print_contracts(p, sim.contracts[p.symbol])
        assert liq.quantity == n  # whole contracts
        assert liq.notional_usd == pytest.approx(n * SIZES[liq.symbol])
        assert liq.notional_usd == pytest.approx(p.qty_base * p.price, abs=SIZES[liq.symbol])
        assert liq.quantity_base == pytest.approx(liq.notional_usd / liq.price)
        assert liq.side is p.side
    assert all(e.side is Side.LONG for e in liqs if e.symbol == "BTCUSD_PERP")
    assert len(sim.prints) > len(sim.pushed)  # the throttle hides most of the cascade


async def test_every_path_delivers_and_pair_streams_are_arrays(
    sim: BinanceCoinmSimulator,
) -> None:
    async with (
        connect(f"{sim.ws_base_url}/ws/btcusd@markPrice@1s") as pair_raw,
        connect(f"{sim.ws_base_url}/stream?streams=ethusd_perp@markPrice@1s") as combined,
        connect(f"{sim.ws_base_url}/ws") as bare,
    ):
        await bare.send(
            '{"method":"SUBSCRIBE","params":["!markPrice@arr@1s","xrpusd_perp@markPrice"],"id":1}'
        )
        assert await bare.recv() == ACK
        got = await asyncio.gather(*(collect(ws, 0.9) for ws in (pair_raw, combined, bare)))
    pairs, singles, slow = ([json.loads(f) for f in frames] for frames in got)
    assert len(pairs) >= 6
    assert all(isinstance(f, list) and [u["s"] for u in f] == ["BTCUSD_PERP"] for f in pairs)
    assert len(singles) >= 6
    assert all(f["stream"] == "ethusd_perp@markPrice@1s" for f in singles)
    # !markPrice@arr does not exist on COIN-M: acked, never delivered; only the 3 s XRP stream.
    assert slow
    assert all(isinstance(f, dict) and f["s"] == "XRPUSD_PERP" for f in slow)
    assert len(slow) <= 4  # every third 100 ms tick


async def test_unknown_path_is_refused(sim: BinanceCoinmSimulator) -> None:
    # /market is USDⓈ-M's routing, not dstream's
    assert await refused_status(f"{sim.ws_base_url}/market/stream") == 404


async def test_rest_serves_dapi_bodies_in_contracts_with_venue_weights(
    http: httpx.AsyncClient, sim: BinanceCoinmSimulator
) -> None:
    sim.rest.clock = lambda: 1_700_000_000_000  # a fresh minute, which nothing else crosses
    oi = await http.get("/dapi/v1/openInterest", params={"symbol": "BTCUSD_PERP"})
    body = oi.json()
    assert list(body) == ["symbol", "pair", "openInterest", "contractType", "time"]
    usd = sim.oi_base("BTCUSD_PERP") * sim.mark("BTCUSD_PERP")
    assert body["openInterest"] == str(round(usd / 100))
    assert (body["pair"], body["contractType"]) == ("BTCUSD", "PERPETUAL")
    one = await http.get("/dapi/v1/premiumIndex", params={"symbol": "ETHUSD_PERP"})
    assert [r["symbol"] for r in one.json()] == ["ETHUSD_PERP"]  # a list, even for one
    pair = await http.get("/dapi/v1/premiumIndex", params={"pair": "XRPUSD"})
    assert [r["symbol"] for r in pair.json()] == ["XRPUSD_PERP"]
    every = await http.get("/dapi/v1/premiumIndex")
    assert [r["symbol"] for r in every.json()] == list(COINM_SYMBOLS)
    funding = await http.get("/dapi/v1/fundingInfo")
    assert funding.json() == []  # every simulated COIN-M perpetual funds every 8 h
    used = [int(r.headers["X-MBX-USED-WEIGHT-1M"]) for r in (oi, one, pair, every, funding)]
    assert used == [1, 11, 21, 31, 31]
    unknown = await http.get("/dapi/v1/openInterest", params={"symbol": "BTCUSDT"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, -1121)
    assert (await http.get("/fapi/v1/ping")).status_code == 404  # not USDⓈ-M


async def test_exchange_info_is_the_recording_with_a_fresh_server_time(
    http: httpx.AsyncClient, sim: BinanceCoinmSimulator
) -> None:
    served = (await http.get("/dapi/v1/exchangeInfo")).json()
    recorded = json.loads(wire.load_exchange_info(COINM))
    assert abs(served["serverTime"] - now_ms()) < 2_000
    assert {**served, "serverTime": recorded["serverTime"]} == recorded


async def test_the_venue_loads_markets_through_exchange_info_only_and_polls_contracts(
    sim: BinanceCoinmSimulator,
) -> None:
    await sim.clock.stop()  # freeze the market
    venue = BinanceCoinm(VenueSettings(ws_url=sim.ws_base_url, rest_url=sim.rest_base_url))
    try:
        markets = await venue.load_markets(timeout_s=5.0)
        assert dict(sim.rest.paths) == {"/dapi/v1/exchangeInfo": 1, "/dapi/v1/fundingInfo": 1}
        oi = await venue.fetch_open_interest(markets["BTCUSD_PERP"], sim.mark("BTCUSD_PERP"))
    finally:
        await venue.close()
    assert len(markets) == 18  # every recorded perpetual, no quarterly
    assert all(s.endswith("_PERP") and not i.linear for s, i in markets.items())
    btc, eth = markets["BTCUSD_PERP"], markets["ETHUSD_PERP"]
    assert (btc.base, btc.quote, btc.contract_size, btc.funding_interval_h) == (
        "BTC",
        "USD",
        100.0,
        8.0,
    )
    assert eth.contract_size == 10.0
    assert oi.oi_contracts == round(sim.oi_base("BTCUSD_PERP") * sim.mark("BTCUSD_PERP") / 100)
    assert oi.oi_usd == oi.oi_contracts * 100
    assert oi.oi_base == pytest.approx(sim.oi_base("BTCUSD_PERP"), rel=1e-6)
    assert venue.connections({})[0].url == f"{sim.ws_base_url}/stream"


async def test_listing_only_simulated_symbols_is_an_option() -> None:
    async with (
        BinanceCoinmSimulator(list_only_simulated=True, push_interval_s=10) as sim,
        httpx.AsyncClient(base_url=sim.rest_base_url) as http,
    ):
        info = (await http.get("/dapi/v1/exchangeInfo")).json()
    assert sorted(s["symbol"] for s in info["symbols"]) == sorted(COINM_SYMBOLS)


async def test_one_market_clock_drives_both_binance_products_with_their_own_symbols() -> None:
    market = Market(get_scenario("long_unwind"), specs=DEFAULT_SPECS + COINM_SPECS, start_s=20)
    clock = MarketClock(market, time_scale=10.0)
    clock.start()
    try:
        async with (
            BinanceUsdmSimulator(clock=clock, push_interval_s=0.1) as usdm,
            BinanceCoinmSimulator(clock=clock, push_interval_s=0.1) as coinm,
            connect(f"{coinm.ws_base_url}/stream?streams=!forceOrder@arr") as ws,
        ):
            assert list(usdm.contracts) == list(DEFAULT_SYMBOLS)
            assert list(coinm.contracts) == list(COINM_SYMBOLS)
            frames = [json.loads(f)["data"]["o"]["s"] for f in await collect(ws, 1.2)]
            assert frames
            assert set(frames) <= set(COINM_SYMBOLS)
            assert {p.symbol for p in coinm.prints} <= set(COINM_SYMBOLS)
            assert {p.symbol for p in usdm.prints} <= set(DEFAULT_SYMBOLS)
            # The same story on both venues: the cascade liquidates longs on BTC.
            btc = [p for p in clock.prints if p.base == "BTC"]
            assert {p.symbol for p in btc} == {"BTCUSDT", "BTCUSD_PERP"}
            assert {p.side for p in btc} == {Side.LONG}
    finally:
        await clock.stop()
