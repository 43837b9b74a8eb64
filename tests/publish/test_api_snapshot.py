"""The data endpoints answer from a snapshot of Redis (``api.snapshot_s``): within its period
a request reads nothing, however many arrive; a snapshot older than the period but within
the bound (two periods) answers at once, never waiting for the read in progress; an older
one is replaced by a read that began after the request; the background task refreshes it
unasked; a Redis that cannot be read is a 503; the liquidation sums the snapshot keeps by
following the index are those the streams give; ``/metrics`` is rendered once per period,
and bytes within the bound are served while a render runs in the background."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from publish_support import (
    PROBLEM,
    MemorySource,
    index_liquidation,
    liquidation,
    now_ms,
    pressure,
    snapshot,
    store_events,
    store_pressure,
    store_small_market,
)

from service.config import ApiSettings, MetricsSettings, Settings, StoreSettings
from service.events import Kind, Side, encode
from service.publish.api import create_app
from service.publish.api.snapshot import (
    BUCKET_MS,
    RESCAN_MS,
    STALE_PERIODS,
    LiquidationWindow,
    Snapshots,
    _Bucket,
)
from service.publish.metrics import MetricsCollector
from service.store import keys, reader, tape
from service.store.stored import StoredEvents
from service.store.writer import write_batch

LONG_S = 600.0
"""A period no test outlives: what a test sees after the first read is the snapshot."""


def _with(settings: Settings, snapshot_s: float) -> Settings:
    api = settings.api.model_copy(update={"snapshot_s": snapshot_s})
    return settings.model_copy(update={"api": api})


@asynccontextmanager
async def _serve(
    settings: Settings, redis: aioredis.Redis, registry: CollectorRegistry | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Snapshots]]:
    app = create_app(settings, redis=redis, metrics_registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c, app.state.snapshots


def _scores(r: httpx.Response) -> list[tuple[str, float]]:
    assert r.status_code == 200, r.text
    return [(i["symbol"], i["score"]) for i in r.json()["items"]]


ONE_VIEW_URLS = (
    "/v1/assets", "/v1/assets/BTC", "/v1/assets/ETH", "/v1/assets?limit=1", "/v1/pressure",
    "/v1/pressure?limit=1", "/v1/pressure?asset=ETH", "/v1/funding", "/v1/funding?venue=bybit",
    "/v1/open-interest", "/v1/mark", "/v1/venues", "/v1/liquidations",
    "/v1/liquidations?limit=2", "/v1/assets/BTC/history?window_s=600",
)  # fmt: skip


@pytest.mark.parametrize("order", [1, -1], ids=["forward", "backward"])
async def test_one_view_answers_every_endpoint_as_a_read_per_request(
    settings: Settings, redis: aioredis.Redis, order: int
) -> None:
    await store_small_market(redis)
    async with _serve(_with(settings, 0), redis) as (fresh, _):
        expected = {url: (await fresh.get(url)).json() for url in ONE_VIEW_URLS}
    async with _serve(_with(settings, LONG_S), redis) as (client, snaps):
        for url in ONE_VIEW_URLS[::order] + ONE_VIEW_URLS[::order]:  # built, then kept
            r = await client.get(url)
            assert r.status_code == 200, (url, r.text)
            assert _no_times(r.json()) == _no_times(expected[url]), url
        assert snaps.refreshes == 1


def _no_times(body: Any) -> Any:
    """``body`` without what changes from one second to the next (history bucket times)."""
    if isinstance(body, dict):
        return {k: _no_times(v) for k, v in body.items() if k != "at"}
    if isinstance(body, list):
        return [_no_times(v) for v in body]
    return body


async def test_requests_within_the_period_read_nothing(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
    async with _serve(_with(settings, LONG_S), redis) as (client, snaps):
        first = _scores(await client.get("/v1/pressure"))
        reads = snaps.refreshes
        await store_pressure(redis, pressure("bybit", "ETHUSDT", 90.0))
        answers = await asyncio.gather(*(client.get("/v1/pressure") for _ in range(20)))
        assert [_scores(r) for r in answers] == [first] * 20 == [[("BTCUSDT", 40.0)]] * 20
        assert snaps.refreshes == reads


async def test_an_old_snapshot_is_replaced_by_a_read_after_the_request(
    settings: Settings, redis: aioredis.Redis
) -> None:
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
    async with _serve(_with(settings, LONG_S), redis) as (client, snaps):
        await client.get("/v1/pressure")
        await store_pressure(redis, pressure("bybit", "ETHUSDT", 90.0))
        view = await snaps.get()
        view.started -= STALE_PERIODS * LONG_S + 1  # past the bound with no refresh
        reads = snaps.refreshes
        asked = time.monotonic()
        answers = await asyncio.gather(*(client.get("/v1/pressure") for _ in range(20)))
        for r in answers:
            assert _scores(r) == [("ETHUSDT", 90.0), ("BTCUSDT", 40.0)]
        assert snaps.refreshes == reads + 1, "concurrent requests share one read"
        assert (await snaps.get()).started >= asked


async def test_a_view_within_the_bound_answers_at_once_while_a_read_is_in_progress(
    settings: Settings, redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view older than the period but within two answers every request at once, without
    waiting for the read in progress (nor starting one); the read's view answers once it
    lands."""
    await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
    async with _serve(_with(settings, LONG_S), redis) as (client, snaps):
        assert _scores(await client.get("/v1/pressure")) == [("BTCUSDT", 40.0)]
        await store_pressure(redis, pressure("bybit", "ETHUSDT", 90.0))
        (await snaps.get()).started -= LONG_S + 1  # older than the period, within the bound
        gate = asyncio.Event()
        market_read = snaps._market.read

        async def held() -> Any:
            await gate.wait()
            return await market_read()

        monkeypatch.setattr(snaps._market, "read", held)
        reads = snaps.refreshes
        reading = snaps._start_read()  # what the timer does: a read, held in progress
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get("/v1/pressure") for _ in range(20))), timeout=10
        )
        assert [_scores(r) for r in answers] == [[("BTCUSDT", 40.0)]] * 20
        assert not reading.done()
        assert snaps.refreshes == reads
        gate.set()
        await reading
        assert snaps.refreshes == reads + 1
        assert _scores(await client.get("/v1/pressure")) == [("ETHUSDT", 90.0), ("BTCUSDT", 40.0)]


async def test_the_background_task_refreshes_unasked(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async with _serve(_with(settings, 0.05), redis) as (_client, snaps):
        await store_pressure(redis, pressure("bybit", "BTCUSDT", 40.0))
        deadline = time.monotonic() + 10
        while snaps.refreshes < 5 and time.monotonic() < deadline:  # noqa: ASYNC110 - a counter
            await asyncio.sleep(0.02)
        assert snaps.refreshes >= 5
        view = await snaps.get()  # fresh enough: no read of its own
        assert [p.symbol for p in view.ranked()] == ["BTCUSDT"]


async def test_a_redis_that_cannot_be_read_is_a_503_with_a_snapshot_period(
    settings: Settings,
) -> None:
    dead = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        async with _serve(_with(settings, 1.0), dead) as (client, _snaps):
            for url in ("/v1/pressure", "/v1/venues", "/v1/funding", "/v1/assets/BTC"):
                r = await client.get(url)
                assert r.status_code == 503, (url, r.text)
                assert r.headers["content-type"] == PROBLEM
    finally:
        await dead.aclose()


async def test_the_kept_liquidation_sums_are_the_streams_sums(redis: aioredis.Redis) -> None:
    window = LiquidationWindow()
    pairs = [("binance_usdm", "BTCUSDT"), ("bybit", "BTCUSDT"), ("bybit", "ETHUSDT")]
    for batch in range(4):
        await store_events(
            redis,
            [
                liquidation(v, s, side=Side.LONG if (i + batch) % 2 else Side.SHORT,
                            price=100.0 + batch, quantity=1.0 + i, sampled=v == "bybit")
                for i, (v, s) in enumerate(pairs)
            ],
        )  # fmt: skip
        now = now_ms()
        await window.update(redis, now)
        expected = await reader.liquidation_sums(redis, pairs, now - window.window_s * 1000)
        got = window.totals()
        assert set(got) == set(expected)
        for pair, sums in expected.items():
            assert got[pair].count == sums.count == batch + 1
            assert got[pair].long_usd == pytest.approx(sums.long_usd)
            assert got[pair].short_usd == pytest.approx(sums.short_usd)
            assert got[pair].sampled == sums.sampled
    await window.update(redis, now_ms() + (window.window_s + 1) * 1000)  # an hour later
    assert window.totals() == {}
    assert not window.entries


async def test_the_tape_head_from_memory_is_the_indexed_page(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pairs = [("binance_usdm", "BTCUSDT"), ("bybit", "BTCUSDT"), ("bybit", "ETHUSDT")]
    for batch in range(8):  # instruments of one batch share stream ids: ties on the tape
        await store_events(redis, [liquidation(v, s, price=batch * 10.0 + i)
                                   for i, (v, s) in enumerate(pairs)])  # fmt: skip
    async with _serve(settings, redis) as (client, snaps):
        for limit in (1, 5, 10, 23):
            r = await client.get("/v1/liquidations", params={"limit": limit})
            assert r.status_code == 200, r.text
            assert len((await snaps.get()).tape_head) == 24 > limit  # served from memory
            page = await tape.indexed_liquidations(
                redis, None, since_ms=None, until_ms=None, limit=limit, cursor=None
            )
            assert [i["price"] for i in r.json()["items"]] == [e.price for e in page.items]
            assert r.json()["next_cursor"] == page.next_cursor
        # 24 liquidations, 24 per page: the head cannot tell whether older ones exist.
        r = await client.get("/v1/liquidations", params={"limit": 24})
        assert len(r.json()["items"]) == 24
        assert r.json()["next_cursor"] is None


async def test_a_liquidation_that_sorts_before_the_last_one_read_is_not_missed(
    redis: aioredis.Redis,
) -> None:
    # Ids grow per stream: on a Redis Cluster one indexed after the last read may sort
    # before it (its index lags its stream; the nodes' clocks differ). Written by hand here to
    # make the race certain, with the cluster's rescan on either store (on a single Redis the
    # script indexes an entry with it, at Redis's clock: a read starts at the last one's).
    window = LiquidationWindow(rescan_ms=RESCAN_MS)
    await store_events(redis, [liquidation("okx", "ZZZUSDT", price=1.0)])
    await window.update(redis, now_ms())
    [(sid, _)] = await redis.xrange(keys.events("okx", "ZZZUSDT", Kind.LIQUIDATION))
    late = liquidation("bybit", "AAAUSDT", price=2.0)
    await redis.xadd(keys.events("bybit", "AAAUSDT", Kind.LIQUIDATION), {"e": encode(late)},
                     id=sid)  # fmt: skip
    await index_liquidation(redis, "bybit", "AAAUSDT", sid)
    await window.update(redis, now_ms())
    assert [liq.price for _, liq in window.head(10)] == [1.0, 2.0]  # the tape's order
    assert window.totals()[("bybit", "AAAUSDT")].count == 1
    await window.update(redis, now_ms())  # read again: nothing twice
    assert [liq.price for _, liq in window.head(10)] == [1.0, 2.0]
    assert sum(s.count for s in window.totals().values()) == 2


async def test_a_step_back_of_redis_clock_reads_the_window_again_whole(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a step back of Redis's clock (an NTP step, a VM restored), a liquidation stored
    # on an instrument with no newer entry gets a stream id below the last read's clock,
    # where the next read does not look. Redis's clock cannot be stepped here: the reads of
    # the index answer a clock set back by ``step_ms``, and the entry is written by hand at the
    # id Redis would then give it.
    step_ms = 5000
    window = LiquidationWindow()
    await store_events(redis, [liquidation("okx", "ZZZUSDT", price=1.0)])
    for _ in range(3):  # reads a moment apart, the clock as it is: no step
        await window.update(redis, now_ms())
        await asyncio.sleep(0.1)
    assert window.clock_steps == 0
    assert window.read_ms is not None
    follow = tape.follow

    async def stepped(client: aioredis.Redis, start: str, count: int) -> Any:
        clock_ms, positions = await follow(client, start, count)
        return clock_ms - step_ms, positions

    monkeypatch.setattr(tape, "follow", stepped)
    sid = f"{window.read_ms - step_ms + 100}-0"
    late = liquidation("bybit", "AAAUSDT", price=2.0)
    await redis.xadd(keys.events("bybit", "AAAUSDT", Kind.LIQUIDATION), {"e": encode(late)},
                     id=sid)  # fmt: skip
    await index_liquidation(redis, "bybit", "AAAUSDT", sid)
    await window.update(redis, now_ms())
    assert window.clock_steps == 1
    assert sorted(liq.price for _, liq in window.head(10)) == [1.0, 2.0]
    assert window.totals()[("bybit", "AAAUSDT")].count == 1
    for _ in range(2):  # the stepped clock runs on from there: read on, nothing twice
        await asyncio.sleep(0.1)
        await window.update(redis, now_ms())
    assert window.clock_steps == 1
    assert sum(s.count for s in window.totals().values()) == 2


async def test_after_a_burst_a_refresh_fetches_only_new_entries_and_then_reads_nothing(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A burst of liquidations, then none: the window must stop re-reading the burst once it
    # is RESCAN_MS old (the API spent most of its CPU re-reading the last second of a
    # 94,500-liquidation burst twice a second, for minutes after it).
    window = LiquidationWindow()
    await store_events(redis, [liquidation("bybit", f"S{i % 40}USDT", price=1.0 + i)
                               for i in range(3000)])  # fmt: skip
    read: list[int] = []
    fetched: list[int] = []
    follow, entries_at = tape.follow, tape.entries_at

    async def counted_follow(client: aioredis.Redis, start: str, count: int) -> Any:
        clock_ms, positions = await follow(client, start, count)
        read.append(len(positions))
        return clock_ms, positions

    async def counted_entries(client: aioredis.Redis, positions: list[str]) -> Any:
        fetched.append(len(positions))
        return await entries_at(client, positions)

    monkeypatch.setattr(tape, "follow", counted_follow)
    monkeypatch.setattr(tape, "entries_at", counted_entries)
    await window.update(redis, now_ms())
    assert sum(fetched) == 3000
    assert sum(s.count for s in window.totals().values()) == 3000
    await window.update(redis, now_ms())  # within RESCAN_MS of the burst: seen, not fetched
    assert sum(fetched) == 3000
    late = liquidation("bybit", "S0USDT", price=0.5)
    await store_events(redis, [late])
    await asyncio.sleep(RESCAN_MS / 1000 + 0.2)
    read.clear()
    await window.update(redis, now_ms())  # the last read was within RESCAN_MS of the burst
    assert sum(fetched) == 3001  # the late one only
    await window.update(redis, now_ms())
    assert read[-1] == 0  # the burst is RESCAN_MS behind the last read: nothing is read
    assert sum(s.count for s in window.totals().values()) == 3001
    assert window.head(1)[0][1].price == 0.5


def _counting_entries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The positions the window fetches from Redis, from now on."""
    fetched: list[str] = []
    entries_at = tape.entries_at

    async def counted(client: aioredis.Redis, positions: list[str]) -> Any:
        fetched.extend(positions)
        return await entries_at(client, positions)

    monkeypatch.setattr(tape, "entries_at", counted)
    return fetched


async def test_the_window_takes_what_its_own_writer_stored_and_answers_the_same(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In the writer's process the window takes each liquidation the writer stored instead of
    # reading it back from Redis; another writer's are read: the sums and the head are those
    # of a window that reads every one.
    mine = StoredEvents()
    own = [liquidation("bybit", f"S{i % 7}USDT", price=1.0 + i,
                       side=Side.LONG if i % 3 else Side.SHORT) for i in range(300)]  # fmt: skip
    other = [liquidation("binance_usdm", f"O{i % 3}USDT", price=0.5 + i) for i in range(40)]
    await write_batch(redis, own[:150], StoreSettings(), now_ms(), stored=mine)
    await store_events(redis, other)  # another process's writer
    await write_batch(redis, own[150:], StoreSettings(), now_ms(), stored=mine)
    fetched = _counting_entries(monkeypatch)
    window = LiquidationWindow(head_size=200, stored=mine)
    await window.update(redis, now_ms())
    assert len(fetched) == len(other)
    assert mine.liquidations_taken == len(own)
    assert not mine.liquidations
    plain = LiquidationWindow(head_size=200)
    await plain.update(redis, now_ms())
    assert window.totals() == plain.totals()
    assert window.head(200) == plain.head(200)
    taken = {id(e) for e in own}  # the writer's objects, not decoded copies
    assert all(id(liq) in taken for _, liq in window.head(200) if liq.venue == "bybit")


async def test_positions_its_writer_has_not_noted_yet_wait_for_the_next_read(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store script indexes a liquidation before its writer has the reply (and its
    # position): a read then leaves the positions it cannot take for the next read, which
    # takes those noted since and fetches the rest (a write that failed after the script ran).
    mine, noted = StoredEvents(), StoredEvents()
    own = [liquidation("bybit", f"S{i % 5}USDT", price=1.0 + i) for i in range(20)]
    await write_batch(redis, own, StoreSettings(), now_ms(), stored=noted)
    fetched = _counting_entries(monkeypatch)
    window = LiquidationWindow(stored=mine)
    mine.writing = 1  # the writer waits for the script's reply
    await window.update(redis, now_ms())
    assert window.totals() == {}
    assert fetched == []
    assert len(window.deferred) == len(own)
    await asyncio.sleep(0.05)  # the next read starts after the positions (a single Redis)
    positions = list(noted.liquidations.items())
    mine.note_liquidations(positions[:15])  # the reply: noted; the rest never will be
    mine.writing = 0
    await window.update(redis, now_ms())
    assert len(fetched) == 5
    assert sorted(fetched) == sorted(p for p, _ in positions[15:])
    assert mine.liquidations_taken == 15
    assert sum(s.count for s in window.totals().values()) == len(own)
    await window.update(redis, now_ms())  # nothing twice
    assert sum(s.count for s in window.totals().values()) == len(own)
    assert window.deferred == []


async def test_positions_taken_a_read_late_keep_the_heads_order(redis: aioredis.Redis) -> None:
    # Deferred positions interleave with those the read before took: the head merges them
    # into the tape's order, and keeps the newest head_size, as a window that read them all.
    mine, noted = StoredEvents(), StoredEvents()
    own = [liquidation("bybit", f"S{i % 6}USDT", price=1.0 + i) for i in range(60)]
    await write_batch(redis, own, StoreSettings(), now_ms(), stored=noted)
    positions = list(noted.liquidations.items())
    window = LiquidationWindow(head_size=25, stored=mine)
    mine.note_liquidations(positions[::2])
    mine.writing = 1
    await window.update(redis, now_ms())
    assert len(window.deferred) == 30
    mine.note_liquidations(positions[1::2])
    mine.writing = 0
    await window.update(redis, now_ms())
    plain = LiquidationWindow(head_size=25)
    await plain.update(redis, now_ms())
    assert [p for p, _ in window.head(25)] == [p for p, _ in plain.head(25)]
    assert window.totals() == plain.totals()
    assert mine.liquidations_taken == 60


async def test_the_windows_memory_is_bounded_by_its_head_and_buckets_not_its_liquidations(
    redis: aioredis.Redis,
) -> None:
    # 6,000 liquidations on 40 instruments within a second or two: the window keeps the
    # head's 25 whole, and one sum per instrument per bucket, while its answers are the
    # tape's first page and the streams' sums.
    window = LiquidationWindow(head_size=25)
    pairs = [("bybit", f"S{i}USDT") for i in range(40)]
    started = now_ms()
    for burst in range(2):
        await store_events(redis, [liquidation(*pairs[i % 40], price=1.0 + i + burst,
                                               side=Side.LONG if i % 3 else Side.SHORT)
                                   for i in range(3000)])  # fmt: skip
        now = now_ms()
        await window.update(redis, now)
        assert len(window.entries) == 25
        assert len(window.buckets) <= (now - started) // BUCKET_MS + 2  # one a second
        assert all(len(b.pairs) <= 40 for b in window.buckets)
        page = await tape.indexed_liquidations(
            redis, None, since_ms=None, until_ms=None, limit=25, cursor=None
        )
        assert [liq.price for _, liq in window.head(25)] == [e.price for e in page.items]
        expected = await reader.liquidation_sums(redis, pairs, now - window.window_s * 1000)
        got = window.totals()
        assert sum(s.count for s in got.values()) == 3000 * (burst + 1)
        assert set(got) == set(expected)
        for pair, sums in expected.items():
            assert got[pair].count == sums.count
            assert got[pair].long_usd == pytest.approx(sums.long_usd)
            assert got[pair].short_usd == pytest.approx(sums.short_usd)


async def test_a_bucket_leaves_the_window_whole_once_all_of_it_is_older_than_the_window(
    redis: aioredis.Redis,
) -> None:
    window = LiquidationWindow()
    await store_events(redis, [liquidation("okx", "BTCUSDT", price=1.0, quantity=2.0)])
    await window.update(redis, now_ms())
    [(stored_ms, _, _)] = window.entries
    bucket_end_ms = (stored_ms // BUCKET_MS + 1) * BUCKET_MS
    last_in_window = bucket_end_ms + window.window_s * 1000 - 1
    await window.update(redis, last_in_window)  # the liquidation is older than the hour...
    if stored_ms < bucket_end_ms - 1:
        assert not window.entries  # ...so it is off the tape's head,
    assert window.totals()[("okx", "BTCUSDT")].count == 1  # but its bucket is not all past
    await window.update(redis, last_in_window + 1)
    assert window.totals() == {}
    assert not window.buckets


def test_a_sealed_bucket_still_takes_a_late_liquidation() -> None:
    bucket = _Bucket(at=5)
    bucket.add(("okx", "BTCUSDT"), 0, 10.0, False)
    bucket.index = None  # sealed: what update does once no read can return its second
    bucket.add(("okx", "BTCUSDT"), 1, 2.5, True)
    bucket.add(("bybit", "ETHUSDT"), 0, 1.0, False)
    assert bucket.pairs == [("okx", "BTCUSDT"), ("bybit", "ETHUSDT")]
    assert list(bucket.values) == [10.0, 2.5, 2, 1, 1.0, 0.0, 1, 0]


async def test_metrics_are_rendered_once_per_period(
    settings: Settings, redis: aioredis.Redis
) -> None:
    source = MemorySource(snapshots=[snapshot("bybit", messages_total=1)])
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings()))
    async with _serve(_with(settings, LONG_S), redis, registry) as (client, _):
        first = (await client.get("/metrics")).text
        assert 'deleverage_feed_messages_total{venue="bybit"} 1.0' in first
        source.snapshots = [snapshot("bybit", messages_total=2)]
        assert (await client.get("/metrics")).text == first
    async with _serve(_with(settings, 0), redis, registry) as (client, _):
        text = (await client.get("/metrics")).text
        assert 'deleverage_feed_messages_total{venue="bybit"} 2.0' in text


async def test_metrics_within_the_bound_are_served_while_a_render_runs_behind(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Bytes older than the period but within two are served at once, and start a render
    in the background: a later scrape gets its bytes."""
    source = MemorySource(snapshots=[snapshot("bybit", messages_total=1)])
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings()))
    period_s = 1.0
    async with _serve(_with(settings, period_s), redis, registry) as (client, _):
        first = (await client.get("/metrics")).text
        assert 'deleverage_feed_messages_total{venue="bybit"} 1.0' in first
        source.snapshots = [snapshot("bybit", messages_total=2)]
        await asyncio.sleep(period_s * 1.1)  # older than the period, within two
        assert (await client.get("/metrics")).text == first  # at once: the kept bytes
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = (await client.get("/metrics")).text
            if 'deleverage_feed_messages_total{venue="bybit"} 2.0' in text:
                break
            await asyncio.sleep(0.05)
        assert 'deleverage_feed_messages_total{venue="bybit"} 2.0' in text


def test_the_default_period_is_a_second() -> None:
    assert ApiSettings().snapshot_s == 1.0
