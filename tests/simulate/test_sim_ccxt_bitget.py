"""The REST-only Bitget of the ccxt-polled venues: what it answers, Bitget's errors, the
failure hook, and values that follow the shared market."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.simulate.ccxt_bitget import SPECS, CcxtBitgetSimulator
from service.simulate.clock import MarketClock
from service.simulate.market import Market
from service.simulate.scenario import get_scenario

pytestmark = pytest.mark.integration


@pytest.fixture
async def http() -> AsyncIterator[tuple[CcxtBitgetSimulator, httpx.AsyncClient]]:
    async with (
        CcxtBitgetSimulator(seed=1) as sim,
        httpx.AsyncClient(base_url=sim.rest_base_url, timeout=5) as client,
    ):
        yield sim, client


async def test_contracts_tickers_and_open_interest_by_product_type(
    http: tuple[CcxtBitgetSimulator, httpx.AsyncClient],
) -> None:
    sim, client = http
    linear = (await client.get("/api/v2/mix/market/contracts?productType=USDT-FUTURES")).json()
    inverse = (await client.get("/api/v2/mix/market/contracts?productType=COIN-FUTURES")).json()
    usdc = (await client.get("/api/v2/mix/market/contracts?productType=USDC-FUTURES")).json()
    assert linear["code"] == "00000"
    assert [r["symbol"] for r in linear["data"]] == ["BTCUSDT", "ETHUSDT"]
    assert [r["symbol"] for r in inverse["data"]] == ["BTCUSD", "ETHUSD"]
    assert usdc["data"] == []
    assert {r["symbolType"] for r in linear["data"] + inverse["data"]} == {"perpetual"}

    tickers = (await client.get("/api/v2/mix/market/tickers?productType=COIN-FUTURES")).json()
    btc = tickers["data"][0]
    assert btc["symbol"] == "BTCUSD"
    assert float(btc["markPrice"]) == pytest.approx(sim.mark("BTCUSD"), rel=1e-3)
    assert float(btc["holdingAmount"]) == pytest.approx(sim.oi_base("BTCUSD"), rel=1e-3)

    oi = await client.get("/api/v2/mix/market/open-interest?symbol=ETHUSD&productType=COIN-FUTURES")
    (row,) = oi.json()["data"]["openInterestList"]
    assert row["symbol"] == "ETHUSD"
    assert float(row["size"]) == pytest.approx(sim.oi_base("ETHUSD"), rel=1e-3)
    assert sim.rest.served[("open_interest", "ETHUSD")][-1] == oi.json()["data"]

    fund = await client.get(
        "/api/v2/mix/market/current-fund-rate?symbol=BTCUSDT&productType=USDT-FUTURES"
    )
    (rate,) = fund.json()["data"]
    assert rate["fundingRateInterval"] == "8"
    assert int(rate["nextUpdate"]) % (8 * 3_600_000) == 0


async def test_bitget_errors_and_injected_failures(
    http: tuple[CcxtBitgetSimulator, httpx.AsyncClient],
) -> None:
    sim, client = http
    missing = await client.get("/api/v2/mix/market/tickers")
    assert (missing.status_code, missing.json()["code"]) == (400, "40019")
    wrong = await client.get(
        "/api/v2/mix/market/open-interest?symbol=BTCUSD&productType=USDT-FUTURES"
    )
    assert (wrong.status_code, wrong.json()["code"]) == (400, "40034")

    sim.fail("open-interest", 1, status=429)
    sim.fail("tickers", 1, status=502)
    limited = await client.get(
        "/api/v2/mix/market/open-interest?symbol=BTCUSD&productType=COIN-FUTURES"
    )
    assert (limited.status_code, limited.json()["code"]) == (429, "429")
    gateway = await client.get("/api/v2/mix/market/tickers?productType=USDT-FUTURES")
    assert (gateway.status_code, gateway.text) == (502, "Bad Gateway")
    again = await client.get("/api/v2/mix/market/tickers?productType=USDT-FUTURES")
    assert again.status_code == 200  # each failure answers one request
    assert len(sim.requests) == 5


async def test_shares_another_servers_market() -> None:
    market = Market(get_scenario("long_unwind"), symbols=["BTCUSDT", "BTCUSD"], specs=SPECS)
    clock = MarketClock(market)
    async with CcxtBitgetSimulator(clock=clock) as sim:
        assert sim.market is market
        assert sorted(sim.rest.contracts) == ["BTCUSD", "BTCUSDT"]
