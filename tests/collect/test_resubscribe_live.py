"""A connection whose subscription changes rotates to a successor with the new one, once, and
only when its own subscription differs from what the metadata asks for now; the book snapshots
a session asks for are fetched one at a time (the example venue, over real websockets, into the
real Redis)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, until
from venues.example_venue.simulator.server import ExampleSimulator
from venues.example_venue.venue import Example

from service.venues.base import Connection, Instrument, Parser

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC-PERP", "ETH-PERP"]


class Switchable(Example):
    """The example venue with a subscription the test can change."""

    subscribe = ('{"op":"subscribe"}',)

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [replace(c, subscribe=self.subscribe) for c in super().connections(markets)]


async def test_a_changed_subscription_rotates_once_and_a_stale_flag_does_not(
    redis_client: aioredis.Redis,
) -> None:
    async with (
        ExampleSimulator(push_interval_s=0.1, list_only_simulated=True) as sim,
        running(venue := Switchable(settings_for(sim, SYMBOLS)), redis_client) as collector,
    ):
        await until(lambda: collector.health.connected and bool(collector._open))
        (name,) = collector._open
        conn = collector._connection(name)
        # A flag raised for a subscription that is the session's own (raised while a
        # successor was opening, or before a reconnect): dropped, no rotation.
        collector._resubscribe.add(name)
        assert not collector._rotation_due(name, conn, math.inf)
        assert name not in collector._resubscribe
        # The metadata asks for another subscription: the session rotates, once.
        venue.subscribe = ('{"op":"subscribe"}', '{"op":"subscribe","again":true}')
        collector._resubscribe.add(name)
        assert collector._rotation_due(name, conn, math.inf)
        assert not collector._rotation_due(name, conn, math.inf)  # consumed
        assert collector._rotation_due(name, conn, deadline=0.0)  # its age, as before
        # End to end: the change rotates the connection to the new subscription.
        opened = sim.connections_total
        collector._follow_connections()
        await until(lambda: collector._open.get(name, ((),))[0] == venue.subscribe, within=10)
        await until(lambda: len(collector._open) == 1 and sim.connections_total == opened + 1)
        assert collector.health.reconnects_total == 0


async def test_book_snapshots_over_rest_are_fetched_one_at_a_time(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session that opens asks for every book's snapshot at once; queued together in the
    venue's rate limiter they held its other calls past their timeout (CI: a Binance
    open-interest poll timed out behind them). One at a time, each timed from its turn."""
    in_flight, most = 0, 0

    async def fetch(symbol: str) -> object:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return {"symbol": symbol}

    class Books:
        def book_snapshot(self, symbol: str, payload: object, recv_ms: int) -> list[Any]:
            snapshots.append(symbol)
            return []

    snapshots: list[str] = []
    async with (
        ExampleSimulator(push_interval_s=0.1, list_only_simulated=True) as sim,
        running(Switchable(settings_for(sim, SYMBOLS)), redis_client) as collector,
    ):
        monkeypatch.setattr(collector.venue, "fetch_book_snapshot", fetch)
        parser = cast(Parser, Books())
        fetches = [
            collector._book_snapshot(parser, f"S{i}", (id(parser), f"S{i}")) for i in range(8)
        ]
        await asyncio.wait_for(asyncio.gather(*fetches), timeout=5)
    assert most == 1
    assert sorted(snapshots) == [f"S{i}" for i in range(8)]
    assert collector.health.rest_failures == {}
