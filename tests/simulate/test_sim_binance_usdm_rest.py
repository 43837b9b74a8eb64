"""The simulator's REST side over real HTTP on loopback: raw requests, ccxt, and our venue."""

from __future__ import annotations

import json

import httpx
import pytest

from service.config import VenueSettings
from service.simulate.market import DEFAULT_SYMBOLS
from service.venues.base import now_ms
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.usdm import BinanceUsdm
from service.venues.ccxt_markets import ccxt_client, close_quietly

pytestmark = pytest.mark.integration


async def test_ping_time_and_weight_header(
    http: httpx.AsyncClient, sim: BinanceUsdmSimulator
) -> None:
    ping = await http.get("/fapi/v1/ping")
    assert ping.status_code == 200
    assert ping.text == "{}"
    assert ping.headers["content-type"] == "application/json"
    server_time = (await http.get("/fapi/v1/time")).json()["serverTime"]
    assert abs(server_time - now_ms()) < 2_000
    sim.rest.clock = lambda: 1_700_000_000_000  # a fresh minute, which nothing else crosses
    used = [
        int((await http.get(path, params=params)).headers["X-MBX-USED-WEIGHT-1M"])
        for path, params in [
            ("/fapi/v1/ping", {}),
            ("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}),
            ("/fapi/v1/premiumIndex", {}),
            ("/fapi/v1/fundingInfo", {}),
            ("/fapi/v1/exchangeInfo", {}),
        ]
    ]
    assert used == [1, 2, 12, 12, 13]


async def test_exchange_info_is_the_recording_with_a_fresh_server_time(
    http: httpx.AsyncClient, sim: BinanceUsdmSimulator
) -> None:
    body = (await http.get("/fapi/v1/exchangeInfo")).text
    recorded = json.loads(sim.rest.exchange_info)
    served = json.loads(body)
    assert abs(served["serverTime"] - now_ms()) < 2_000
    assert {**served, "serverTime": recorded["serverTime"]} == recorded
    assert len(served["symbols"]) == 122


async def test_open_interest_and_premium_index_are_the_market_state(
    http: httpx.AsyncClient, sim: BinanceUsdmSimulator
) -> None:
    oi = (await http.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"})).json()
    assert list(oi) == ["openInterest", "symbol", "time"]
    assert oi["symbol"] == "BTCUSDT"
    assert oi["openInterest"] == f"{sim.oi_base('BTCUSDT'):.3f}"  # quantityPrecision 3
    one = (await http.get("/fapi/v1/premiumIndex", params={"symbol": "DOGEUSDT"})).json()
    assert list(one) == [
        "symbol",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "nextFundingTime",
        "interestRate",
        "time",
    ]
    assert one["markPrice"] == f"{round(sim.mark('DOGEUSDT'), 6):.8f}"  # pricePrecision 6
    assert one["interestRate"] == "0.00005000"  # a 4 h symbol
    assert one["nextFundingTime"] % (4 * 3_600_000) == 0
    rows = (await http.get("/fapi/v1/premiumIndex")).json()
    assert [r["symbol"] for r in rows] == list(DEFAULT_SYMBOLS)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/fapi/v1/openInterest", {"symbol": "FOOUSDT"}),
        ("/fapi/v1/premiumIndex", {"symbol": "X"}),
        ("/fapi/v1/openInterest", {"symbol": "EOSUSDT"}),
    ],  # listed, but not simulated
)
async def test_unknown_symbol_is_a_400_with_binance_error(
    http: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await http.get(path, params=params)
    assert response.status_code == 400
    assert response.json() == {"code": -1121, "msg": "Invalid symbol."}
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


async def test_missing_symbol_is_a_400_and_funding_info_lists_only_adjusted_symbols(
    http: httpx.AsyncClient,
) -> None:
    missing = await http.get("/fapi/v1/openInterest")
    assert missing.status_code == 400
    assert missing.json()["code"] == -1102
    rows = (await http.get("/fapi/v1/fundingInfo")).json()
    assert {r["symbol"]: r["fundingIntervalHours"] for r in rows} == {"DOGEUSDT": 4, "DOTUSDT": 4}


async def test_weight_over_the_limit_is_a_429() -> None:
    async with (
        BinanceUsdmSimulator(weight_limit=3, push_interval_s=10) as sim,
        httpx.AsyncClient(base_url=sim.rest_base_url) as http,
    ):
        sim.rest.clock = lambda: 1_760_000_030_000  # one minute of weight (not two)
        codes = [(await http.get("/fapi/v1/ping")).status_code for _ in range(4)]
        last = await http.get("/fapi/v1/ping")
    assert codes == [200, 200, 200, 429]
    assert last.json()["code"] == -1003
    assert "Retry-After" in last.headers


async def test_ccxt_loads_markets_funding_info_and_open_interest(
    sim: BinanceUsdmSimulator,
) -> None:
    await sim.clock.stop()  # freeze the market
    client = ccxt_client("binanceusdm", ("https://fapi.binance.com",), sim.rest_base_url)
    try:
        markets = await client.load_markets()
        funding = await client.fapiPublicGetFundingInfo()
        oi = await client.fapiPublicGetOpenInterest({"symbol": "BTCUSDT"})
    finally:
        await close_quietly(client)
    btc = markets["BTC/USDT:USDT"]
    assert (btc["id"], btc["swap"], btc["linear"], btc["active"]) == ("BTCUSDT", True, True, True)
    assert {r["symbol"] for r in funding} == {"DOGEUSDT", "DOTUSDT"}
    assert oi["symbol"] == "BTCUSDT"
    assert oi["openInterest"] == f"{sim.oi_base('BTCUSDT'):.3f}"


async def test_the_service_venue_loads_markets_and_polls_open_interest(
    sim: BinanceUsdmSimulator,
) -> None:
    await sim.clock.stop()  # freeze the market
    venue = BinanceUsdm(VenueSettings(ws_url=sim.ws_base_url, rest_url=sim.rest_base_url))
    try:
        markets = await venue.load_markets(timeout_s=5.0)
        oi = await venue.fetch_open_interest(markets["ETHUSDT"], sim.mark("ETHUSDT"))
    finally:
        await venue.close()
    assert set(DEFAULT_SYMBOLS) <= set(markets)
    assert markets["DOGEUSDT"].funding_interval_h == 4.0
    assert markets["BTCUSDT"].funding_interval_h == 8.0
    assert oi.oi_base == pytest.approx(sim.oi_base("ETHUSDT"), abs=0.0006)  # 3 decimals
    assert oi.oi_usd == pytest.approx(oi.oi_base * sim.mark("ETHUSDT"))
    assert venue.connections({})[0].url == f"{sim.ws_base_url}/stream"


async def test_listing_only_simulated_symbols_is_an_option() -> None:
    async with (
        BinanceUsdmSimulator(list_only_simulated=True, push_interval_s=10) as sim,
        httpx.AsyncClient(base_url=sim.rest_base_url) as http,
    ):
        info = (await http.get("/fapi/v1/exchangeInfo")).json()
    assert sorted(s["symbol"] for s in info["symbols"]) == sorted(DEFAULT_SYMBOLS)


async def test_a_busy_port_fails_start_and_leaves_nothing_running(
    sim: BinanceUsdmSimulator,
) -> None:
    busy = int(sim.rest_base_url.rsplit(":", 1)[1])
    other = BinanceUsdmSimulator(push_interval_s=10)
    with pytest.raises(OSError, match="in use"):
        await other.start(rest_port=busy)
    assert other.clients == 0
    assert other._ws is None  # the websocket server it had bound is closed again
