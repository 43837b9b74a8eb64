"""A liquidations' lane handing over to its successor at a rotation: what the venue sent the
old connection alone, before the successor's subscription took effect, is read before the
old connection closes (the example venue, over real websockets, into the real Redis)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored_liquidations, until
from venues.example_venue.simulator import wire
from venues.example_venue.simulator.server import ExampleSimulator, _Client
from venues.example_venue.venue import VENUE, Example
from websockets.asyncio.server import ServerConnection

from service.simulate.clock import wall_ms
from service.venues.base import Connection, Instrument

pytestmark = pytest.mark.integration

LATE = 40
"""Liquidations the venue sends the old lane alone, each in a frame of its own."""
HELD_S = 0.3
"""How long after answering the successor the venue sends them."""


class LaneOnly(Example):
    """The example venue with its one connection as the liquidations' lane."""

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [Connection("liquidations", self.ws_url, ('{"op":"subscribe"}',), quiet=True)]


class LateOnTheOldLane(ExampleSimulator):
    """At the first rotation, the venue answers the successor's subscription, and only then
    delivers :data:`LATE` liquidations on the old connection: liquidations it produced
    before the new subscription took effect, so for the old connection alone, and still on
    their way there when the collector reads the successor's answer (two sockets, two
    queues). The old connection's input is held meanwhile: a ping the collector sends on it
    is answered after them, as a venue answers in order on a connection."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.late_ids = [f"late-{i}" for i in range(LATE)]
        self.late_sent = asyncio.Event()
        self.old_closed = asyncio.Event()
        """Set once the old connection is closed: by the collector, after its handover."""
        self._held: asyncio.Task[None] | None = None
        self._old: ServerConnection | None = None

    async def _handle(self, conn: ServerConnection) -> None:
        client = _Client(conn)
        with self._tracked(client):
            async for message in conn:
                if message != '{"op":"subscribe"}':
                    continue
                old = [c for c in self._clients if c.subscribed]
                client.subscribed = True
                if old and self._held is None:
                    self._old = old[0].conn
                    self._old.transport.pause_reading()
                    self._held = asyncio.create_task(self._late(self._old))
                await conn.send(wire.SUBSCRIBED)
        if conn is self._old:
            self.old_closed.set()

    async def _late(self, old: ServerConnection) -> None:
        await asyncio.sleep(HELD_S)
        now = wall_ms()
        for order_id in self.late_ids:
            row = {"id": order_id, "s": "BTC-PERP", "side": "long", "px": 59_000.0,
                   "qty": 0.01, "t": now}  # fmt: skip
            await old.send(json.dumps({"ch": "liquidation", "ts": now, "data": [row]}))
        old.transport.resume_reading()
        self.late_sent.set()


@pytest.fixture
async def sim() -> AsyncIterator[LateOnTheOldLane]:
    async with LateOnTheOldLane(push_interval_s=0.1, list_only_simulated=True) as s:
        yield s


async def test_a_lane_handing_over_reads_what_the_venue_sent_it_alone(
    sim: LateOnTheOldLane, redis_client: aioredis.Redis
) -> None:
    venue = LaneOnly(settings_for(sim, ["BTC-PERP", "ETH-PERP"]))
    async with running(venue, redis_client, max_connection_age_s=1.0) as collector:
        await asyncio.wait_for(sim.late_sent.wait(), 15)
        await asyncio.wait_for(sim.old_closed.wait(), 15)  # read, or closed without them
        await until(lambda: collector.sink.pending == 0)
        assert collector.health.reconnects_total == 0  # a rotation is no reconnect
    late = set(sim.late_ids)
    stored = Counter(
        e.event_id for e in await stored_liquidations(redis_client, VENUE, ["BTC-PERP"])
    )
    missing = sorted(late - set(stored), key=lambda i: int(i.split("-")[1]))
    assert not missing, f"{len(missing)} of {LATE} lost at the handover: {missing[:5]}..."
    assert all(stored[i] == 1 for i in late)
