"""The history endpoints the detector's warm start reads, on the Binance USDⓈ-M, Bybit and OKX
simulators (raw HTTP), and the pure history they serve."""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import AsyncIterator

import httpx
import pytest

from service.simulate import history
from service.simulate.scenario import get_scenario
from service.venues.base import now_ms
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.okx.simulator.server import OkxSimulator

pytestmark = pytest.mark.integration

NOW = 1_760_000_123_456
STEP = history.STEP_MS


def test_the_walk_ends_at_the_current_market_and_is_the_same_for_overlapping_spans() -> None:
    pts = history.oi_history("BTCUSDT", 80_000.0, 60_000.0, NOW, NOW - 86_400_000, NOW)
    assert len(pts) == 288
    assert all(b.ts_ms - a.ts_ms == STEP for a, b in itertools.pairwise(pts))
    assert pts[-1].ts_ms == (NOW // STEP) * STEP
    assert pts[-1].oi_base == pytest.approx(80_000.0, rel=0.01)  # one step away at most
    again = history.oi_history("BTCUSDT", 80_000.0, 60_000.0, NOW, NOW - 3_600_000, NOW)
    assert again == pts[-12:]
    changes = [math.log(b.oi_base / a.oi_base) for a, b in itertools.pairwise(pts)]
    sd = math.sqrt(sum(c * c for c in changes) / len(changes))
    assert sd == pytest.approx(history.OI_NOISE_PER_STEP, rel=0.25)  # a calm market's noise


def test_funding_is_one_rate_per_settlement_near_the_base_rate() -> None:
    rates = history.funding_history("BTCUSDT", 8.0, NOW, NOW - 10 * 86_400_000, NOW)
    assert len(rates) == 30
    assert all(ts % (8 * 3_600_000) == 0 for ts, _ in rates)
    assert all(abs(r - 0.0001) < 0.00003 for _, r in rates)


@contextlib.asynccontextmanager
async def client(
    sim: BinanceUsdmSimulator | BybitSimulator | OkxSimulator,
) -> AsyncIterator[httpx.AsyncClient]:
    async with sim, httpx.AsyncClient(base_url=sim.rest_base_url, timeout=5.0) as http:
        yield http


async def test_binance_open_interest_and_funding_history() -> None:
    sim = BinanceUsdmSimulator(get_scenario("calm"), list_only_simulated=True)
    async with client(sim) as http:
        r = await http.get(
            "/futures/data/openInterestHist",
            params={"symbol": "BTCUSDT", "period": "5m", "limit": 500},
        )
        rows = r.json()
        assert r.status_code == 200
        assert len(rows) == 500
        assert set(rows[0]) == {"symbol", "sumOpenInterest", "sumOpenInterestValue", "timestamp"}
        assert rows[0]["timestamp"] < rows[-1]["timestamp"]  # oldest first
        start = rows[-10]["timestamp"]
        page = (
            await http.get(
                "/futures/data/openInterestHist",
                params={
                    "symbol": "BTCUSDT",
                    "period": "1h",
                    "startTime": start - 7_200_000,
                    "limit": 2,
                },
            )
        ).json()
        assert [p["timestamp"] % 3_600_000 for p in page] == [0, 0]
        assert len(page) == 2
        bad = await http.get(
            "/futures/data/openInterestHist", params={"symbol": "NOPE", "period": "5m"}
        )
        assert bad.status_code == 400
        assert bad.json()["code"] == -1121
        funding = (await http.get("/fapi/v1/fundingRate", params={"symbol": "BTCUSDT"})).json()
        assert len(funding) == 100
        assert set(funding[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}


async def test_bybit_open_interest_pages_newest_first_and_funding_history() -> None:
    sim = BybitSimulator(get_scenario("calm"), list_only_simulated=True)
    async with client(sim) as http:
        now = now_ms()
        params = {
            "category": "linear",
            "symbol": "BTCUSDT",
            "intervalTime": "5min",
            "startTime": now - 86_400_000,
            "endTime": now,
            "limit": 200,
        }
        seen: list[int] = []
        while True:
            body = (await http.get("/v5/market/open-interest", params=params)).json()
            assert body["retCode"] == 0
            seen += [int(r["timestamp"]) for r in body["result"]["list"]]
            for r in body["result"]["list"]:  # both sides, and one side (since 2026-06-11)
                assert float(r["openInterest"]) == pytest.approx(2 * float(r["singleOpenInterest"]))
            if not body["result"]["nextPageCursor"]:
                break
            params["cursor"] = body["result"]["nextPageCursor"]
        assert seen == sorted(seen, reverse=True)
        assert len(seen) == len(set(seen)) == 288
        wrong = await http.get(
            "/v5/market/open-interest",
            params={"category": "inverse", "symbol": "BTCUSDT", "intervalTime": "5min"},
        )
        assert wrong.json()["retCode"] == 10001
        funding = (
            await http.get(
                "/v5/market/funding/history", params={"category": "linear", "symbol": "BTCUSDT"}
            )
        ).json()
        rows = funding["result"]["list"]
        assert len(rows) == 200
        assert set(rows[0]) == {"symbol", "fundingRate", "fundingRateTimestamp"}


async def test_okx_open_interest_and_funding_history() -> None:
    sim = OkxSimulator(get_scenario("calm"), list_only_simulated=True)
    async with client(sim) as http:
        body = (
            await http.get(
                "/api/v5/rubik/stat/contracts/open-interest-history",
                params={"instId": "BTC-USDT-SWAP", "period": "5m"},
            )
        ).json()
        rows = body["data"]
        assert body["code"] == "0"
        assert len(rows) == 100
        assert len(rows[0]) == 4
        assert int(rows[0][0]) > int(rows[-1][0])  # newest first
        older = (
            await http.get(
                "/api/v5/rubik/stat/contracts/open-interest-history",
                params={"instId": "BTC-USDT-SWAP", "period": "5m", "end": rows[-1][0]},
            )
        ).json()["data"]
        assert int(older[0][0]) == int(rows[-1][0]) - STEP  # ``end`` is exclusive
        missing = await http.get(
            "/api/v5/rubik/stat/contracts/open-interest-history",
            params={"instId": "NOPE-USDT-SWAP"},
        )
        assert missing.status_code == 400
        assert missing.json()["code"] == "51001"
        funding = (
            await http.get(
                "/api/v5/public/funding-rate-history",
                params={"instId": "BTC-USDT-SWAP", "limit": 5},
            )
        ).json()
        assert [r["instId"] for r in funding["data"]] == ["BTC-USDT-SWAP"] * 5
