"""Helpers for the simulator's tests: our real parser's instruments, frame collection, the
venue's collector side against a simulator."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from waits import until as until  # re-exported: the tests import it from here
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from service.config import VenueSettings
from service.simulate.server import VenueServer
from service.venues.base import Connection, Instrument, Venue
from service.venues.binance.simulator.usdm_wire import FOUR_HOUR_SYMBOLS, load_exchange_info
from service.venues.bybit.simulator import wire as bybit_wire
from service.venues.bybit.venue import parse_instruments as bybit_parse_instruments

VENUE = "binance_usdm"


def instruments() -> dict[str, Instrument]:
    """Every perpetual of the recorded exchangeInfo, as the service would build them."""
    info = json.loads(load_exchange_info())
    return {
        s["symbol"]: Instrument(
            VENUE,
            s["symbol"],
            s["baseAsset"],
            s["quoteAsset"],
            linear=True,
            funding_interval_h=4.0 if s["symbol"] in FOUR_HOUR_SYMBOLS else 8.0,
        )
        for s in info["symbols"]
        if s["contractType"] == "PERPETUAL"
    }


async def collect(
    ws: ClientConnection, seconds: float, at_least: int = 0, within: float = 10.0
) -> list[str]:
    """Every text frame received within ``seconds``; past them, until ``at_least`` frames
    have come (at most ``within`` seconds in all): a test that counts a push grid's frames
    does not fail because a loaded machine made the simulator skip late ticks."""
    out: list[str] = []
    start = time.monotonic()
    deadline = start + seconds
    while (left := deadline - time.monotonic()) > 0 or (
        len(out) < at_least and (left := start + within - time.monotonic()) > 0
    ):
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        out.append(msg if isinstance(msg, str) else msg.decode())
    return out


async def listed_markets(venue: type[Venue], sim: VenueServer[Any]) -> dict[str, Instrument]:
    """The markets ``venue``'s collector side loads from ``sim``'s REST server."""
    client = venue(VenueSettings(rest_url=sim.rest_base_url))
    try:
        return await client.load_markets(timeout_s=5.0)
    finally:
        await client.close()


async def session(conn: Connection, seconds: float) -> list[str]:
    """What ``conn`` receives within ``seconds`` of connecting and sending its subscription,
    as the collector opens it."""
    async with connect(conn.url) as ws:
        for request in conn.subscribe:
            await ws.send(request)
        return await collect(ws, seconds)


async def refused_status(url: str) -> int:
    """The HTTP status with which the server refuses a websocket handshake at ``url``."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    return info.value.response.status_code


async def read_until_closed(ws: ClientConnection) -> None:
    """Read (and drop) frames until the connection closes (raises how it closed)."""
    while True:
        await asyncio.wait_for(ws.recv(), 1.0)


async def assert_aborted(*conns: ClientConnection) -> None:
    """Each of ``conns`` was cut with no close frame (1006: abnormal closure)."""
    for ws in conns:
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert ws.close_code == 1006


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, a JSON object (within 2 s)."""
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
    return msg


def bybit_instruments() -> dict[str, Instrument]:
    """Every perpetual of the Bybit simulator's recorded lists, as the service builds them."""
    out: dict[str, Instrument] = {}
    for category in bybit_wire.CATEGORIES:
        listed, _ = bybit_parse_instruments(bybit_wire.load_instruments(category))
        out.update((i.symbol, i) for i in listed)
    return out
