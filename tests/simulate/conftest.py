"""A running Binance USDⓈ-M simulator for the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.venues.binance.simulator.usdm import BinanceUsdmSimulator


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    """The default scenario, 10x faster, pushing marks every 100 ms, already in the cascade."""
    async with BinanceUsdmSimulator(seed=7, time_scale=10.0, push_interval_s=0.1, start_s=20) as s:
        yield s
