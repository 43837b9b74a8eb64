"""A running Binance USDⓈ-M simulator for the integration tests, a client of whichever
``sim`` a test module runs, and a running Bybit simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.simulate.server import VenueServer
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.bybit.simulator.server import BybitSimulator


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    """The default scenario, 10x faster, pushing marks every 100 ms, already in the cascade."""
    async with BinanceUsdmSimulator(seed=7, time_scale=10.0, push_interval_s=0.1, start_s=20) as s:
        yield s


@pytest.fixture
async def bybit_sim() -> AsyncIterator[BybitSimulator]:
    """The default scenario, 10x faster, already in the long cascade."""
    async with BybitSimulator(seed=5, time_scale=10.0, start_s=22) as s:
        yield s


@pytest.fixture
async def http(sim: VenueServer[Any]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``sim``'s REST server (the module's own ``sim`` where it has one); the
    market is frozen (its clock stopped)."""
    await sim.clock.stop()
    async with httpx.AsyncClient(base_url=sim.rest_base_url, timeout=5.0) as client:
        yield client
