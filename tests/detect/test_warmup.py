"""The warm start against the simulators' history endpoints (Binance USDⓈ-M, Bybit, OKX):
the model has baselines within seconds, without any live history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest

from service.config import DetectorSettings, VenueSettings
from service.detect.robust_model import RobustModel
from service.detect.warmup import Warmup
from service.events import OpenInterest
from service.simulate.scenario import get_scenario
from service.venues.binance.history import parse_binance_funding, parse_binance_oi
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bybit.history import parse_bybit_oi
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.okx.history import parse_okx_oi
from service.venues.okx.simulator.server import OkxSimulator

pytestmark = pytest.mark.integration

SYMBOLS = {"binance_usdm": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP"}


@contextlib.asynccontextmanager
async def simulators() -> AsyncIterator[dict[str, str]]:
    calm = get_scenario("calm")
    async with (
        BinanceUsdmSimulator(calm, seed=1, list_only_simulated=True) as binance,
        BybitSimulator(calm, seed=2, list_only_simulated=True) as bybit,
        OkxSimulator(calm, seed=3, list_only_simulated=True) as okx,
    ):
        yield {
            "binance_usdm": binance.rest_base_url,
            "bybit": bybit.rest_base_url,
            "okx": okx.rest_base_url,
        }


def seen(model: RobustModel, venue: str, symbol: str) -> None:
    """One live open-interest event: the model knows the instrument."""
    now = int(time.time() * 1000)
    model.update([OpenInterest(venue=venue, symbol=symbol, base="BTC", ts_ms=now, recv_ms=now,
                               oi_contracts=1.0, oi_base=80_000.0, oi_usd=4.8e9)])  # fmt: skip


async def test_baselines_are_filled_from_venue_history_within_seconds() -> None:
    settings = DetectorSettings(warmup_timeout_s=20)
    model = RobustModel(settings)
    for venue, symbol in SYMBOLS.items():
        seen(model, venue, symbol)
    async with simulators() as urls:
        warmup = Warmup(settings, {v: VenueSettings(rest_url=u) for v, u in urls.items()})
        started = time.monotonic()
        task = asyncio.create_task(warmup.run(model))
        ready: dict[str, float] = {}
        while len(ready) < len(SYMBOLS) and time.monotonic() - started < 15:
            for venue, symbol in SYMBOLS.items():
                samples = model.baseline_samples(venue, symbol)
                if venue not in ready and samples["oi_300s"] >= 100 and samples["funding"] >= 20:
                    ready[venue] = time.monotonic() - started
            await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert set(ready) == set(SYMBOLS), ready
    assert max(ready.values()) < 10, ready  # FIRST_PICK_S (3 s) then a few requests
    for venue, symbol in SYMBOLS.items():
        samples = model.baseline_samples(venue, symbol)
        # a day of 5-minute points: every window from 5 m up has a (nearly) full baseline
        assert min(samples["oi_300s"], samples["oi_900s"]) >= 280, (venue, samples)
        assert samples["oi_3600s"] >= 90, (venue, samples)
        assert samples["oi_14400s"] >= 20, (venue, samples)
        assert samples["oi_60s"] == 0  # history is too coarse for 1 m
        result = warmup.results[venue]
        assert result.instruments == [symbol]
        assert result.failures == 0
        assert 2 <= result.requests <= 5


async def test_a_venue_that_fails_is_logged_and_skipped() -> None:
    settings = DetectorSettings(warmup_timeout_s=8)
    model = RobustModel(settings)
    seen(model, "binance_usdm", "BTCUSDT")
    seen(model, "okx", "BTC-USDT-SWAP")
    async with simulators() as urls:
        venues = {
            "binance_usdm": VenueSettings(rest_url=urls["binance_usdm"]),
            "okx": VenueSettings(rest_url="http://127.0.0.1:9"),  # nothing listens
        }
        warmup = Warmup(settings, venues)
        async with asyncio.timeout(15):
            await warmup.run(model)
    assert warmup.results["binance_usdm"].instruments == ["BTCUSDT"]
    assert warmup.results["okx"].instruments == []
    assert warmup.results["okx"].failures == 1
    assert model.baseline_samples("okx", "BTC-USDT-SWAP")["oi_300s"] == 0


def test_history_parsers_read_the_documented_shapes() -> None:
    assert parse_binance_oi(
        [{"symbol": "BTCUSDT", "sumOpenInterest": "34085.00000000",
          "sumOpenInterestValue": "1927265695.27131325", "timestamp": 1616438700000}]
    ) == [(1616438700000, 34085.0, 1927265695.27131325)]  # fmt: skip
    assert parse_binance_funding(
        [{"symbol": "BTCUSDT", "fundingTime": 1570608000000, "fundingRate": "-0.03750000",
          "markPrice": "34287.54619963"}], 8.0
    ) == [(1570608000000, -0.0046875)]  # fmt: skip
    # Before singleOpenInterest, only both sides: one side is half.
    body = {"retCode": 0, "result": {"symbol": "BTCUSD", "category": "inverse", "list": [
        {"openInterest": "461134384.00000000", "timestamp": "1669571400000"}],
        "nextPageCursor": "abc"}}  # fmt: skip
    assert parse_bybit_oi(body) == ([(1669571400000, 230567192.0)], "abc")
    # The docs' example (https://bybit-exchange.github.io/docs/v5/market/open-interest,
    # first two entries as stored): "openInterest ... the sum of both sides",
    # "singleOpenInterest ... the single side".
    documented = json.loads("""{
"retCode": 0,
"retMsg": "OK",
"result": {
"symbol": "BTCUSD",
"category": "inverse",
"list": [
{
"openInterest": "63910691.00000000",
"singleOpenInterest": "31955346",
"timestamp": "1780963200000"
},
{
"openInterest": "63942311.00000000",
"singleOpenInterest": "31971156",
"timestamp": "1780704000000"
}
],
"nextPageCursor": ""
}
}""")
    assert parse_bybit_oi(documented) == (
        [(1780963200000, 31955346.0), (1780704000000, 31971156.0)],
        "",
    )
    okx = {"code": "0", "data": [["1790550000000", "2800476.45", "28006.5419",
                                  "2360916466.88"]], "msg": ""}  # fmt: skip
    assert parse_okx_oi(okx) == [(1790550000000, 28006.5419, 2360916466.88)]
