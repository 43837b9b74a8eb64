"""Run the simulator until cancelled: the body of ``deleverage simulate``."""

from __future__ import annotations

import asyncio

import structlog

from .binance_usdm import BinanceUsdmSimulator
from .scenario import DEFAULT_SCENARIO, get_scenario

log = structlog.get_logger(__name__)


async def run_forever(
    host: str = "127.0.0.1",
    ws_port: int = 0,
    rest_port: int = 0,
    scenario: str = DEFAULT_SCENARIO,
    time_scale: float = 1.0,
    seed: int = 0,
    *,
    list_only_simulated: bool = True,
) -> None:
    """Start the Binance USDⓈ-M simulator, log its URLs, and serve until cancelled.

    Point the service at it with ``venues.binance_usdm.ws_url`` = the logged ``ws_url`` and
    ``rest_url`` = the logged ``rest_url``. Raises ``KeyError`` for an unknown scenario and
    ``OSError`` when a port cannot be bound. ``list_only_simulated`` (default here, unlike
    the class) makes exchangeInfo list only the simulated symbols, so a service configured
    with ``symbols: all`` polls no open interest that would answer HTTP 400.
    """
    sc = get_scenario(scenario)
    sim = BinanceUsdmSimulator(
        sc, seed=seed, time_scale=time_scale, list_only_simulated=list_only_simulated
    )
    await sim.start(host, ws_port, rest_port)
    try:
        log.info(
            "simulator running",
            venue="binance_usdm",
            ws_url=sim.ws_base_url,
            rest_url=sim.rest_base_url,
            scenario=sc.name,
            cycle_s=sc.duration_s,
            time_scale=time_scale,
            seed=seed,
            symbols=sim.market.symbols,
        )
        await asyncio.Event().wait()
    finally:
        await sim.stop()
