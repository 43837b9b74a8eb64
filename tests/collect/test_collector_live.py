"""The collector against the simulator over real websockets and HTTP, writing to the real Redis:
normal flow, a forced disconnect, a stalled feed (watchdog) and make-before-break rotation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import FAST_RECOVERY, running, settings_for, stop, stored, stored_liquidations, until

from service.collect.collector import VenueCollector
from service.config import CollectSettings, StoreSettings
from service.events import Kind, MarkPrice, OpenInterest
from service.store.writer import EventSink
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.usdm import BinanceUsdm

pytestmark = pytest.mark.integration

VENUE = "binance_usdm"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
CONNECTIONS = 4
"""``market`` (marks), ``liquidations``, ``book-top`` (``!bookTicker``) and ``trades-1``
(``aggTrade``): no depth connection until the ranking has open interest (5 s)."""


def usdm(sim: BinanceUsdmSimulator) -> BinanceUsdm:
    return BinanceUsdm(settings_for(sim, SYMBOLS, oi_poll_weight_per_minute=2400))


@pytest.fixture
async def sim() -> AsyncIterator[BinanceUsdmSimulator]:
    # Already in the long cascade, 10x faster, a mark-price array every 100 ms.
    async with BinanceUsdmSimulator(
        seed=3, time_scale=10.0, push_interval_s=0.1, start_s=20, list_only_simulated=True
    ) as s:
        yield s


async def test_marks_funding_liquidations_and_polled_oi_reach_redis(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(usdm(sim), redis_client) as collector:
        await until(lambda: collector.health.oi_polls_total >= 3 and len(sim.pushed) >= 3)
        await asyncio.sleep(0.3)
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.instruments == 10  # the simulated perpetuals, from exchangeInfo via ccxt
        # Read as they come: the marks' and the liquidations' delays (their own lane) are a
        # loopback's, under a second (the liquidations' event time is their trade's).
        delays = (health.delay.value(), health.liquidation_delay.value())
        assert all(d is not None and 0 <= d < 1_000 for d in delays), delays

    marks = await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK)
    assert marks
    assert all(isinstance(m, MarkPrice) for m in marks)
    (oi, *_) = await stored(redis_client, VENUE, "BTCUSDT", Kind.OPEN_INTEREST)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(oi.oi_base * collector.parser.last_mark["BTCUSDT"], rel=0.05)  # type: ignore[union-attr]
    funding = await stored(redis_client, VENUE, "DOGEUSDT", Kind.FUNDING)
    assert funding == []  # not a configured symbol: filtered, never stored

    # Every liquidation the venue pushed for our symbols is stored exactly once, as the side
    # of the position, valued at the fill price.
    pushed = {(p.symbol, p.ts_ms, p.side) for p in sim.pushed if p.symbol in SYMBOLS}
    got = await stored_liquidations(redis_client, VENUE, SYMBOLS)
    keys_got = [(x.symbol, x.ts_ms, x.side) for x in got]
    assert len(keys_got) == len(set(keys_got))
    assert set(keys_got) <= pushed
    assert len(set(keys_got)) >= len(pushed) - 3  # the last ones may still be in flight
    liq = got[0]
    assert liq.notional_usd == pytest.approx(liq.quantity * liq.price)


async def test_a_forced_disconnect_reconnects_and_counts_nothing_twice(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(usdm(sim), redis_client) as collector:
        await until(lambda: collector.health.messages_total > 10)
        await until(lambda: sim.connections_total == CONNECTIONS)
        assert await sim.drop_connections() == CONNECTIONS
        await until(
            lambda: collector.health.reconnects_total == CONNECTIONS and collector.health.connected
        )
        before = collector.health.messages_total
        await until(lambda: collector.health.messages_total > before + 10)
        assert sim.connections_total == 2 * CONNECTIONS

    marks = [m.ts_ms for m in await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK)]
    assert marks == sorted(set(marks))  # strictly increasing: nothing stored twice
    liqs = [(x.symbol, x.ts_ms) for x in await stored_liquidations(redis_client, VENUE, SYMBOLS)]
    assert len(liqs) == len(set(liqs))


async def test_a_close_frame_from_the_venue_reconnects_and_names_its_code(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(usdm(sim), redis_client) as collector:
        await until(lambda: collector.health.messages_total > 10)
        await until(lambda: sim.connections_total == CONNECTIONS)
        assert await sim.drop_connections(abrupt=False) == CONNECTIONS  # a 1001 "going away"
        await until(
            lambda: collector.health.reconnects_total == CONNECTIONS and collector.health.connected
        )
        assert "1001" in (collector.health.last_error or "")
        before = collector.health.messages_total
        await until(lambda: collector.health.messages_total > before + 10)


async def test_a_refused_handshake_is_retried_and_reported_without_ending_the_collector(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    settings = settings_for(sim, SYMBOLS, oi_poll_weight_per_minute=60)
    wrong = settings.model_copy(update={"ws_url": f"{sim.ws_base_url}/nowhere"})  # HTTP 404
    async with running(BinanceUsdm(wrong), redis_client) as collector:
        await until(lambda: collector.health.reconnects_total >= 3)
        assert "InvalidStatus" in (collector.health.last_error or "")
        assert "404" in (collector.health.last_error or "")
        assert not collector.health.connected
        assert collector.health.messages_total == 0


async def test_a_stalled_feed_is_detected_by_the_watchdog_and_reconnected(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(usdm(sim), redis_client, watchdog_s=0.5) as collector:
        await until(lambda: collector.health.messages_total > 5)
        sim.stall(1.5)  # the socket stays open; only data stops (pings still flow)
        await until(lambda: collector.health.reconnects_total >= 1, within=5)
        assert "no data" in (collector.health.last_error or "")
        await until(lambda: not sim.stalled and collector.health.connected, within=10)
        before = collector.health.messages_total
        await until(lambda: collector.health.messages_total > before + 5)


async def test_a_silence_reconnects_the_busy_connections_but_not_the_liquidations_lane(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    """The liquidations' connection is quiet (:attr:`Connection.quiet`): in a calm market it
    may deliver nothing for minutes, which is no fault, so the watchdog leaves it to its
    protocol pings; the marks' connection, silent as long, is replaced."""
    async with running(usdm(sim), redis_client, watchdog_s=0.5) as collector:
        await until(lambda: len(collector._open) == CONNECTIONS)
        await until(lambda: collector.health.messages_total > 5)
        quiet, busy = collector._open["liquidations"][1], collector._open["market"][1]
        sim.stall(2.0)  # nothing pushed on any connection (the sockets stay open)
        await until(lambda: collector.health.reconnects_total >= 1, within=5)
        await until(lambda: not sim.stalled and collector.health.connected, within=10)
        assert collector._open["liquidations"][1] is quiet
        assert quiet.close_code is None  # still open
        assert collector._open["market"][1] is not busy


async def test_rotation_hands_over_without_loss_or_duplicates(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    async with running(usdm(sim), redis_client, max_connection_age_s=0.7) as collector:
        await until(lambda: sim.connections_total >= 4, within=15)
        await asyncio.sleep(0.3)
        assert collector.health.reconnects_total == 0  # rotations are not reconnects
        assert collector.health.connected

    marks = [m.ts_ms for m in await stored(redis_client, VENUE, "BTCUSDT", Kind.MARK)]
    assert marks == sorted(set(marks))
    steps = {b - a for a, b in itertools.pairwise(marks)}
    assert steps == {100}, f"a mark-price push was lost or doubled across rotations: {steps}"


class SlowToEndWatchdogs(VenueCollector):
    """A collector whose connection watchdogs take a moment to end once cancelled (as any
    task may on a loaded loop), and which says when the first one is cancelled: that is the
    old connection handing over to its successor at a rotation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handing_over = asyncio.Event()

    async def _watchdog(self, *args: Any) -> None:
        try:
            await super()._watchdog(*args)
        except asyncio.CancelledError:
            self.handing_over.set()
            await asyncio.sleep(0.5)
            raise


async def test_a_stop_during_a_handover_ends_the_collector(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    """The collector stopped while a rotated-out connection waits for its watchdog to end:
    the stop ends the collector (:func:`harness.stop` allows 5 s). Stop 29's CI: the old
    connection's wait swallowed the stop (``suppress(CancelledError)`` cannot tell the
    watchdog's cancellation from its own), returned its successor as if nothing happened,
    and the collector read on for ever."""
    venue = usdm(sim)
    async with running(
        venue, redis_client, cls=SlowToEndWatchdogs, max_connection_age_s=0.3
    ) as collector:
        assert isinstance(collector, SlowToEndWatchdogs)
        await asyncio.wait_for(collector.handing_over.wait(), 15)
    assert sim.connections_total >= 2


@pytest.mark.parametrize("ws_ping_s", [None, 0.2])
async def test_a_collector_held_back_keeps_its_connections_unless_protocol_pings_are_on(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis, ws_ping_s: float | None
) -> None:
    """A collector that stops reading for a while (here Redis behind: its writer starts 3 s
    late, so the sink is full and the connections wait for room) is behind the venue: a
    websocket pong arrives after every frame still unread. With protocol pings (the picows
    and websockets default, 20 s) the collector then closed its own connections (1011
    "keepalive ping timeout"), and lost what the venue had sent on them: in ``bench market``
    most of the liquidations lost. Off (the default) it keeps them, and stores every
    liquidation the venue pushed once the writer catches up."""
    settings = CollectSettings(**FAST_RECOVERY, ws_ping_s=ws_ping_s)
    sink = EventSink(redis_client, StoreSettings(max_pending_events=1))
    collector = VenueCollector(usdm(sim), settings, sink, redis_client)
    tasks = [asyncio.create_task(collector.run())]
    try:
        await until(lambda: sink.backlogged)  # the collector waits for room now
        await asyncio.sleep(3.0)  # picows' queue (16 frames) fills: nothing more is read
        tasks.append(asyncio.create_task(sink.run()))
        await until(lambda: not sink.backlogged)
        await asyncio.sleep(1.0)
        sent = {(p.symbol, p.ts_ms, p.side) for p in sim.pushed if p.symbol in SYMBOLS}
        reconnects = collector.health.reconnects_total
        error = collector.health.last_error or ""
    finally:
        await stop(tasks)
        await sink.drain()
        await collector.close()
    if ws_ping_s is not None:
        assert reconnects >= 1
        assert "1011" in error
        return
    assert reconnects == 0, error
    got = {
        (x.symbol, x.ts_ms, x.side) for x in await stored_liquidations(redis_client, VENUE, SYMBOLS)
    }
    assert len(got) >= len(sent) - 3  # the last ones may still be in flight


async def test_the_liquidations_lane_reads_on_while_redis_is_behind(
    sim: BinanceUsdmSimulator, redis_client: aioredis.Redis
) -> None:
    """Redis behind (the writer not started, the sink full): the busy connections wait for
    room, the liquidations' lane reads on (its events go to the sink's urgent queue, written
    first); a lane that waited would have its pongs unread, and its keep-alive would close
    it (seen in ``bench market``: 1011 on every venue's lane, half the liquidations lost)."""
    # Room for the lane's few (20 liquidations), filled by the marks within a second.
    sink = EventSink(redis_client, StoreSettings(max_pending_events=20))
    collector = VenueCollector(usdm(sim), CollectSettings(**FAST_RECOVERY), sink, redis_client)
    tasks = [asyncio.create_task(collector.run())]
    try:
        await until(lambda: sink.backlogged and "BTCUSDT" in collector.latest)
        await asyncio.sleep(0.5)  # what the busy connections had read is in
        mark = collector.latest["BTCUSDT"][Kind.MARK]
        await asyncio.sleep(2.0)
        sent = [p for p in sim.pushed if p.symbol in SYMBOLS]  # the cascade: a few a second
        assert len(sent) >= 4
        read = sum(collector.liquidation_totals.values())
        assert read >= len(sent) - 2, (read, len(sent))  # the last ones may be in flight
        assert collector.latest["BTCUSDT"][Kind.MARK] is mark  # the marks wait
        tasks.append(asyncio.create_task(sink.run()))
        await until(lambda: collector.latest["BTCUSDT"][Kind.MARK] is not mark)
        assert collector.health.reconnects_total == 0
    finally:
        await stop(tasks)
        await sink.drain()
        await collector.close()
