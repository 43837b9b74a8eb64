"""Writes and reads on the real Redis: layout, batching, trimming, no loss when Redis fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import msgspec
import pytest
import redis.asyncio as aioredis
from own_redis import OwnRedis

from service.config import StoreSettings
from service.events import (
    Event,
    FundingRate,
    Kind,
    Liquidation,
    MarkPrice,
    Side,
    decode,
    decode_many,
    encode,
)
from service.store import keys, reader, script, writer
from service.store.writer import CATCH_UP_MAX, CATCH_UP_S, EventSink, write_batch

NOW = int(time.time() * 1000)


def _liq(symbol: str, ts: int, side: Side = Side.LONG, qty: float = 1.0) -> Liquidation:
    return Liquidation(
        venue="binance_usdm",
        symbol=symbol,
        base=symbol[:3],
        ts_ms=ts,
        recv_ms=ts,
        side=side,
        price=100.0,
        quantity=qty,
        quantity_base=qty,
        notional_usd=100.0 * qty,
        sampled=True,
    )


def _mark(symbol: str, ts: int, price: float) -> MarkPrice:
    return MarkPrice(
        venue="binance_usdm",
        symbol=symbol,
        base=symbol[:3],
        ts_ms=ts,
        recv_ms=ts,
        mark_price=price,
        index_price=price,
    )


async def _write(
    client: aioredis.Redis, batch: list, settings: StoreSettings | None = None, now: int = NOW
) -> None:
    await write_batch(client, batch, settings or StoreSettings(), now)


async def test_a_batch_lands_in_streams_latest_hashes_handoff_and_registry(
    redis_client: aioredis.Redis,
) -> None:
    batch = [
        _mark("BTCUSDT", NOW, 100.0),
        _mark("BTCUSDT", NOW + 1, 101.0),
        _liq("BTCUSDT", NOW),
        _mark("ETHUSDT", NOW, 10.0),
    ]
    await _write(redis_client, batch)

    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.MARK)) == 2
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)) == 1
    latest = await reader.latest(redis_client, [("binance_usdm", "BTCUSDT")])
    newest_mark = latest[("binance_usdm", "BTCUSDT")][Kind.MARK]
    assert isinstance(newest_mark, MarkPrice)
    assert newest_mark.mark_price == 101.0  # the batch's last mark wins
    assert await reader.instruments(redis_client) == [
        ("binance_usdm", "BTCUSDT"),
        ("binance_usdm", "ETHUSDT"),
    ]
    (entry,) = await reader.read_handoff(redis_client, {"binance_usdm": "0-0"}, block_ms=10)
    assert entry[0] == "binance_usdm"
    assert entry[2] == batch  # one hand-off entry per venue per batch, in order


def test_every_instrument_key_shares_one_cluster_hash_tag() -> None:
    tags = {
        k[k.index("{") + 1 : k.index("}")]
        for k in (
            keys.latest("binance_usdm", "BTCUSDT"),
            keys.pressure("binance_usdm", "BTCUSDT"),
            *(keys.events("binance_usdm", "BTCUSDT", kind) for kind in Kind),
        )
    }
    assert tags == {"binance_usdm|BTCUSDT"}
    assert keys.handoff("binance_usdm").startswith("dlv:{binance_usdm}")


async def test_streams_are_trimmed_by_time(redis_client: aioredis.Redis) -> None:
    settings = StoreSettings(
        retention_s={Kind.LIQUIDATION: 60, Kind.FUNDING: 60, Kind.OPEN_INTEREST: 60, Kind.MARK: 60}
    )
    key = keys.events("binance_usdm", "BTCUSDT", Kind.MARK)
    # Entries written "two hours ago" (explicit old ids), then a write now with MINID ~.
    for i in range(300):
        await redis_client.xadd(key, {"e": b"{}"}, id=f"{NOW - 7_200_000 + i}-0")
    await _write(redis_client, [_mark("BTCUSDT", NOW, 1.0)], settings)
    # Approximate trimming removes whole old macro-nodes; every old entry must be gone or
    # nearly so, never the new one.
    remaining = await redis_client.xrange(key)
    assert remaining[-1][1][b"e"] != b"{}"
    assert len(remaining) < 300


async def test_liquidation_pages_cover_everything_once_newest_first(
    redis_client: aioredis.Redis,
) -> None:
    batch = [
        _liq(sym, NOW + i, qty=float(i + 1)) for i in range(7) for sym in ("AAAUSDT", "BBBUSDT")
    ]
    for i in range(0, len(batch), 3):  # several batches: several stream ids per ms
        await _write(redis_client, batch[i : i + 3], now=NOW)
    pairs = await reader.instruments(redis_client)
    seen: list[tuple[str, float]] = []
    cursor = None
    for _ in range(10):
        page = await reader.liquidations(
            redis_client, pairs, since_ms=None, until_ms=None, limit=4, cursor=cursor
        )
        seen += [(x.symbol, x.quantity) for x in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted((e.symbol, e.quantity) for e in batch)
    assert len(seen) == len(set(seen))


async def test_an_invalid_cursor_is_refused(redis_client: aioredis.Redis) -> None:
    with pytest.raises(reader.CursorError):
        await reader.liquidations(
            redis_client, [], since_ms=None, until_ms=None, limit=1, cursor="garbage"
        )


# -- the sink against a Redis that goes away ---------------------------------------------------


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.close()


async def test_sink_keeps_and_retries_everything_while_redis_is_down(own_redis: OwnRedis) -> None:
    client = aioredis.Redis.from_url(
        f"redis://127.0.0.1:{own_redis.port}/0", socket_connect_timeout=0.5, socket_timeout=0.5
    )
    sink = EventSink(client, StoreSettings())
    task = asyncio.create_task(sink.run())
    try:
        await sink.put([_liq("BTCUSDT", NOW + i) for i in range(10)])
        await _until(lambda: sink.written_events == 10)
        own_redis.kill()
        await sink.put([_liq("BTCUSDT", NOW + 100 + i) for i in range(25)])
        await _until(lambda: sink.write_failures >= 1)
        assert sink.written_events == 10
        down = sink.state()
        assert down.failing_s is not None
        assert down.pending == 25
        own_redis.start()  # an empty Redis again, on the same port
        await _until(lambda: sink.written_events == 35, within=15)
        up = sink.state()
        assert (up.failing_s, up.pending, up.backlog) == (None, 0, 0)
        key = keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)
        rows = await client.xrange(key)
        assert sorted(decode(r[1][b"e"]).ts_ms for r in rows) == [NOW + 100 + i for i in range(25)]
        # the empty Redis lost the instruments' registry: the writer registered them again
        assert await reader.instruments(client) == [("binance_usdm", "BTCUSDT")]
    finally:
        task.cancel()
        await client.aclose()


async def test_put_waits_while_the_backlog_is_over_its_bound(redis_client: aioredis.Redis) -> None:
    sink = EventSink(redis_client, StoreSettings(max_pending_events=5, flush_max_events=2))
    put = asyncio.create_task(sink.put([_mark("BTCUSDT", NOW + i, 1.0) for i in range(8)]))
    await asyncio.sleep(0.05)
    assert not put.done()  # no flusher yet: the producer waits instead of dropping
    flusher = asyncio.create_task(sink.run())
    await asyncio.wait_for(put, 5)
    await _until(lambda: sink.written_events == 8)
    flusher.cancel()


def test_the_liquidations_alone_fill_their_own_bound(redis_client: aioredis.Redis) -> None:
    """The liquidations' lane reads on while the sink is over its bound, until the
    liquidations alone are as many (:attr:`EventSink.urgent_backlogged`)."""
    sink = EventSink(redis_client, StoreSettings(max_pending_events=3))
    sink.put_nowait([_mark("BTCUSDT", NOW + i, 1.0) for i in range(3)])
    assert sink.backlogged
    assert not sink.urgent_backlogged
    sink.put_nowait([_liq("BTCUSDT", NOW + i) for i in range(2)])
    assert not sink.urgent_backlogged
    sink.put_nowait([_liq("BTCUSDT", NOW + 2), _mark("BTCUSDT", NOW + 3, 1.0)])
    assert sink.urgent_backlogged
    assert sink.pending == 7


async def test_funding_and_mark_round_trip_exactly(redis_client: aioredis.Redis) -> None:
    funding = FundingRate(
        venue="binance_usdm",
        symbol="BTCUSDT",
        base="BTC",
        ts_ms=NOW,
        recv_ms=NOW + 3,
        funding_rate=0.0004,
        interval_h=4.0,
        funding_rate_1h=0.0001,
        next_funding_ms=NOW + 10,
    )
    await _write(redis_client, [funding])
    latest = await reader.latest(redis_client, [("binance_usdm", "BTCUSDT")])
    assert latest[("binance_usdm", "BTCUSDT")][Kind.FUNDING] == funding


async def _until(cond, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _identified(ts: int, qty: float = 1.0) -> Liquidation:
    return msgspec.structs.replace(_liq("BTCUSDT", ts, qty=qty), event_id=f"{ts}:SELL:{qty}")


async def test_a_liquidation_resent_by_the_venue_is_stored_once(
    redis_client: aioredis.Redis,
) -> None:
    first = [_identified(NOW), _identified(NOW + 1)]
    stored, dups = await write_batch(redis_client, first, StoreSettings(), NOW)
    assert (len(stored), dups) == (2, 0)
    # After a reconnect the venue re-sends the last one, then a new one.
    again = [_identified(NOW + 1), _identified(NOW + 2), _mark("BTCUSDT", NOW + 2, 1.0)]
    stored, dups = await write_batch(redis_client, again, StoreSettings(), NOW + 5)
    assert dups == 1
    assert stored == again[1:]
    rows = await redis_client.xrange(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION))
    assert [decode(r[1][b"e"]).ts_ms for r in rows] == [NOW, NOW + 1, NOW + 2]
    # The detector's hand-off carries what was stored, nothing twice.
    handoff = await reader.read_handoff(redis_client, {"binance_usdm": "0-0"}, block_ms=10)
    liq_ts = [e.ts_ms for _, _, events in handoff for e in events if isinstance(e, Liquidation)]
    assert liq_ts == [NOW, NOW + 1, NOW + 2]


async def test_an_identity_with_the_line_formats_separators_is_stored_once_and_intact(
    redis_client: aioredis.Redis,
) -> None:
    odd = msgspec.structs.replace(_liq("BTCUSDT", NOW), event_id="a\tb\nc")
    plain = _identified(NOW + 1)
    stored, dups = await write_batch(redis_client, [odd, plain], StoreSettings(), NOW)
    assert (stored, dups) == ([odd, plain], 0)
    stored, dups = await write_batch(redis_client, [odd, plain], StoreSettings(), NOW + 5)
    assert (stored, dups) == ([], 2)
    rows = await redis_client.xrange(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION))
    assert [decode(r[1][b"e"]) for r in rows] == [odd, plain]


async def test_two_sinks_writing_the_same_liquidation_store_it_once(
    redis_client: aioredis.Redis,
) -> None:
    sinks = [EventSink(redis_client, StoreSettings()) for _ in range(2)]
    tasks = [asyncio.create_task(s.run()) for s in sinks]
    try:
        for sink in sinks:  # e.g. two collector replicas, or one restarted
            await sink.put([_identified(NOW + i) for i in range(20)])
        await _until(lambda: sum(s.written_batches for s in sinks) >= 2)
    finally:
        for t in tasks:
            t.cancel()
    rows = await redis_client.xrange(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION))
    assert len(rows) == 20
    assert sum(s.duplicates_dropped for s in sinks) == 20


async def test_liquidations_without_identity_are_never_merged(
    redis_client: aioredis.Redis,
) -> None:
    twice = [_liq("BTCUSDT", NOW), _liq("BTCUSDT", NOW)]
    stored, dups = await write_batch(redis_client, twice, StoreSettings(), NOW)
    assert (len(stored), dups) == (2, 0)


async def test_identities_are_forgotten_after_the_dedup_window(
    redis_client: aioredis.Redis,
) -> None:
    settings = StoreSettings(liquidation_dedup_s=60)
    await write_batch(redis_client, [_identified(NOW)], settings, NOW)
    await write_batch(redis_client, [_identified(NOW + 1)], settings, NOW + 120_000)
    ids = await redis_client.zrange(keys.liquidation_ids("binance_usdm", "BTCUSDT"), 0, -1)
    assert ids == [f"{NOW + 1}:SELL:1.0".encode()]


async def test_a_retried_batch_is_not_written_twice(redis_client: aioredis.Redis) -> None:
    """A reply lost in flight makes the sink send the same batch again: same id, no effect."""
    from service.store.script import STORE_SCRIPT, group_replies, queue_instruments

    await redis_client.script_load(STORE_SCRIPT)
    batch = [_mark("BTCUSDT", NOW, 1.0), _identified(NOW), _identified(NOW)]
    replies = []
    for _ in range(2):
        async with redis_client.pipeline(transaction=False) as pipe:
            calls = queue_instruments(pipe, batch, StoreSettings(), NOW, "batch-1", set())
            replies.append(group_replies(calls, await pipe.execute())[0])
    assert replies[0] == replies[1] == [3]  # the in-batch duplicate, reported both times
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.MARK)) == 1
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)) == 1


async def test_asked_for_positions_the_script_answers_each_liquidation_stored_once(
    redis_client: aioredis.Redis,
) -> None:
    """A writer whose process keeps what it stored (the API's window takes it) asks the script
    for each stored liquidation's index position: they are the index's members, each paired
    with its liquidation (the duplicate left out), and a retry of the applied batch answers
    the same whichever shape it asks for."""
    from service.store.client import is_cluster
    from service.store.script import (
        STORE_SCRIPT,
        by_venue,
        group_replies,
        queue_index,
        queue_instruments,
        split_replies,
        stored_liquidations,
    )

    indexed = not is_cluster(redis_client)  # (a cluster's calls always answer positions)
    await redis_client.script_load(STORE_SCRIPT)
    batch = [_identified(NOW), _mark("BTCUSDT", NOW, 1.0), _identified(NOW),
             _identified(NOW + 1, qty=2.0), _liq("ETHUSDT", NOW, qty=3.0),
             _mark("SOLUSDT", NOW, 1.0)]  # fmt: skip
    answers = []
    for positions in (True, False):  # the second: a retry (same batch id) asking for none
        async with redis_client.pipeline(transaction=False) as pipe:
            calls = queue_instruments(
                pipe, batch, StoreSettings(), NOW, "batch-1", set(), indexed, positions
            )
            answers.append(group_replies(calls, await pipe.execute()))
    assert answers[0] == answers[1]
    groups = [group for call in calls for group in call]
    dups, added = split_replies(answers[1])
    if not indexed:  # phase 1b
        async with redis_client.pipeline(transaction=False) as pipe:
            queue_index(pipe, by_venue(groups, added), StoreSettings(), NOW)
            await pipe.execute()
    assert dups == [[3], [], []]  # the in-batch duplicate of BTCUSDT; none on the others
    assert added[2] == []  # no liquidation: no positions (on a single Redis, nor the shape)
    if indexed:
        assert answers[1][2] == []
    pairs = [(p.decode(), liq) for p, liq in stored_liquidations(groups, dups, added)]
    members = await redis_client.zrange(keys.liquidation_index(), 0, -1)
    assert sorted(p for p, _ in pairs) == [m.decode() for m in members]
    assert [liq.quantity for _, liq in pairs] == [1.0, 2.0, 3.0]
    for position, liq in pairs:  # the entry at each position is that liquidation
        ms, seq = (int(n) for n in position.partition("~")[0].split("-"))
        member = position.partition("~")[2]
        assert member == keys.instrument_id(liq.venue, liq.symbol)
        [(_, fields)] = await redis_client.xrange(
            keys.events(liq.venue, liq.symbol, Kind.LIQUIDATION), f"{ms}-{seq}", f"{ms}-{seq}"
        )
        assert decode(fields[b"e"]) == liq
    # Not asked (a process without the API): the duplicates alone, no positions.
    async with redis_client.pipeline(transaction=False) as pipe:
        calls = queue_instruments(pipe, batch[:1], StoreSettings(), NOW, "batch-2", set(), indexed)
        plain = group_replies(calls, await pipe.execute())
    assert plain == ([[1]] if indexed else [[[1], []]])  # a duplicate of batch-1's
    assert split_replies(plain) == ([[1]], [[]])


async def test_a_retried_handoff_is_not_appended_twice(redis_client: aioredis.Redis) -> None:
    from service.events import encode
    from service.store.script import Group
    from service.store.writer import _Batch, _Queue

    sink = EventSink(redis_client, StoreSettings())
    events = [_mark("BTCUSDT", NOW, 1.0)]
    stored = Group()
    stored.events, stored.encoded = events, [encode(e) for e in events]
    batch = _Batch(id="b-1", events=events, taken=1, now_ms=NOW, queue=_Queue(), stored=stored)
    await sink._phase2(batch)
    await sink._phase2(batch)  # as after a timeout whose write had in fact gone through
    assert await redis_client.xlen(keys.handoff("binance_usdm")) == 1


async def test_a_retried_handoff_finds_its_entry_behind_other_writers(
    redis_client: aioredis.Redis,
) -> None:
    """Collector shards append to one venue's hand-off: a retry looks for its own writer's
    newest entry, wherever the others' have put it."""
    from service.events import encode
    from service.store.script import Group
    from service.store.writer import _Batch, _Queue

    sink, other = EventSink(redis_client, StoreSettings()), EventSink(redis_client, StoreSettings())
    events = [_mark("BTCUSDT", NOW, 1.0)]
    stored = Group()
    stored.events, stored.encoded = events, [encode(e) for e in events]

    def batch(batch_id: str) -> _Batch:
        return _Batch(
            id=batch_id, events=events, taken=1, now_ms=NOW, queue=_Queue(), stored=stored
        )

    await sink._phase2(batch("w1-1"))
    for n in range(1, 700):  # another shard's batches: more than a page of them
        await other._phase2(batch(f"w2-{n}"))
    retried = batch("w1-1")
    retried.handoff_tries = 1  # its reply was lost, and it had gone through
    await sink._phase2(retried)
    assert await redis_client.xlen(keys.handoff("binance_usdm")) == 700
    lost = batch("w1-2")
    lost.handoff_tries = 1  # its reply was lost, and it had not gone through
    await sink._phase2(lost)
    assert await redis_client.xlen(keys.handoff("binance_usdm")) == 701


async def test_an_instrument_redis_refuses_does_not_hold_up_the_others(
    redis_client: aioredis.Redis,
) -> None:
    await redis_client.set(keys.events("binance_usdm", "BADUSDT", Kind.MARK), "not a stream")
    sink = EventSink(redis_client, StoreSettings())
    task = asyncio.create_task(sink.run())
    try:
        await sink.put([_mark("BADUSDT", NOW, 1.0), _mark("BTCUSDT", NOW, 2.0)])
        await _until(lambda: sink.written_batches == 1)
    finally:
        task.cancel()
    assert sink.events_refused == 1
    assert sink.pending == 0
    assert await redis_client.xlen(keys.events("binance_usdm", "BTCUSDT", Kind.MARK)) == 1
    handoff = await reader.read_handoff(redis_client, {"binance_usdm": "0-0"}, block_ms=10)
    assert [e.symbol for _, _, evs in handoff for e in evs] == ["BTCUSDT"]


async def test_drain_resumes_the_batch_that_was_in_flight(redis_client: aioredis.Redis) -> None:
    sink = EventSink(redis_client, StoreSettings(flush_max_events=5))
    await sink.put([_mark("BTCUSDT", NOW + i, 1.0) for i in range(12)])
    flusher = asyncio.create_task(sink.run())
    await asyncio.sleep(0)  # let it take a batch, then stop it mid-flight as SIGTERM would
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    await sink.drain()
    assert sink.pending == 0
    rows = await redis_client.xrange(keys.events("binance_usdm", "BTCUSDT", Kind.MARK))
    assert len(rows) == 12


class _KilledBeforeHandoff(EventSink):
    """A writer whose process dies after a batch's first phase (its streams) and before its
    hand-off: the second phase never returns, and the run is cancelled without a drain (a
    SIGKILL runs no clean-up)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.at_handoff = asyncio.Event()

    async def _phase2(self, batch: writer._Batch) -> None:
        self.at_handoff.set()
        await asyncio.Event().wait()


async def _handoff_ids(client: aioredis.Redis) -> list[str]:
    rows = await client.xrange(keys.handoff("binance_usdm"))
    events = [e for _, f in rows for e in decode_many(f[b"e"])]
    return [e.event_id or "" for e in events if isinstance(e, Liquidation)]


@pytest.mark.parametrize("journal", [True, False])
async def test_a_writer_killed_before_its_handoff_hands_it_over_once_restarted(
    redis_client: aioredis.Redis, journal: bool
) -> None:
    """The liquidations of a batch stored in their streams when the process died, and not
    yet in the hand-off: the writer of the same name, started again, hands them over, once
    (without a journal they never reach the detector: the venue's re-sending them only
    meets the store's duplicate check)."""
    name = "collect:0/2" if journal else None
    batch = [_identified(NOW + i) for i in range(5)]
    killed = _KilledBeforeHandoff(redis_client, StoreSettings(), journal=name)
    await killed.put(batch)
    run = asyncio.create_task(killed.run())
    await asyncio.wait_for(killed.at_handoff.wait(), 5)
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)
    stream = keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)
    assert await redis_client.xlen(stream) == 5
    assert await _handoff_ids(redis_client) == []

    again = EventSink(redis_client, StoreSettings(), journal=name)
    await again.put(batch)  # the venue re-sends them on the new connection
    run = asyncio.create_task(again.run())
    try:
        await _until(lambda: again.pending == 0 and again._inflight is None)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert await redis_client.xlen(stream) == 5
    if journal:
        assert again.journal_resumed == 1
        assert sorted(await _handoff_ids(redis_client)) == sorted(e.event_id for e in batch)
        assert not await redis_client.exists(keys.journal(name))
    else:
        assert await _handoff_ids(redis_client) == []


async def test_a_journal_is_resumed_once_and_a_written_batch_leaves_none(
    redis_client: aioredis.Redis,
) -> None:
    """A batch written whole leaves no journal; a hand-off already written is not appended
    again by the resumed batch; ticker batches are not journaled."""
    sink = EventSink(redis_client, StoreSettings(), journal="collect")
    first = _identified(NOW)
    await sink.put([first, _mark("BTCUSDT", NOW, 1.0)])
    run = asyncio.create_task(sink.run())
    try:
        await _until(lambda: sink.pending == 0 and sink._inflight is None)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert not await redis_client.exists(keys.journal("collect"))
    assert await _handoff_ids(redis_client) == [first.event_id]
    # A journal whose hand-off went through (a process killed between the two): nothing twice.
    rows = await redis_client.xrange(keys.handoff("binance_usdm"))
    batch_id = rows[0][1][b"b"].decode()
    await redis_client.hset(keys.journal("collect"), mapping={
        "b": batch_id, "t": NOW, "e": encode([first])})  # fmt: skip
    again = EventSink(redis_client, StoreSettings(), journal="collect")
    run = asyncio.create_task(again.run())
    try:
        await _until(lambda: again.journal_resumed == 1 and again._inflight is None)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert await _handoff_ids(redis_client) == [first.event_id]
    assert not await redis_client.exists(keys.journal("collect"))


async def test_an_unreadable_journal_is_dropped_and_the_writer_runs_on(
    redis_client: aioredis.Redis,
) -> None:
    await redis_client.hset(keys.journal("collect"), mapping={"b": "x", "e": b"not json"})
    sink = EventSink(redis_client, StoreSettings(), journal="collect")
    run = asyncio.create_task(sink.run())
    try:
        await _until(lambda: not sink.journal_resumed)
        await sink.put([_identified(NOW)])
        await _until(lambda: sink.pending == 0 and sink._inflight is None)
        assert await _handoff_ids(redis_client) == [_identified(NOW).event_id]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert not await redis_client.exists(keys.journal("collect"))


async def test_scripts_lost_by_redis_are_loaded_again_without_a_failed_write(
    own_redis: OwnRedis,
) -> None:
    client = aioredis.Redis.from_url(own_redis.url)
    sink = EventSink(client, StoreSettings())
    task = asyncio.create_task(sink.run())
    try:
        await sink.put([_liq("BTCUSDT", NOW)])
        await _until(lambda: sink.written_events == 1)
        await client.script_flush()  # as a restarted Redis: NOSCRIPT on the next write
        started = time.monotonic()
        await sink.put([_liq("BTCUSDT", NOW + 1)])
        await _until(lambda: sink.written_events == 2)
        assert time.monotonic() - started < 0.2  # no backoff
        assert sink.write_failures == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


@pytest.mark.parametrize("kind", [Kind.LIQUIDATION, Kind.MARK])
async def test_an_event_that_cannot_be_encoded_is_dropped_alone(
    redis_client: aioredis.Redis, kind: Kind
) -> None:
    """A liquidation's batch, or a batch of the other events (built before it is in flight,
    :meth:`EventSink._build`): the bad event is dropped and counted, the others written."""
    sink = EventSink(redis_client, StoreSettings())
    if kind is Kind.LIQUIDATION:
        events: list[Event] = [_liq("BTCUSDT", NOW + i) for i in range(3)]
        events[1] = msgspec.structs.replace(events[1], event_id="lone \ud800 surrogate")
    else:
        events = [_mark("BTCUSDT", NOW + i, 1.0) for i in range(3)]
        events[1] = msgspec.structs.replace(events[1], base="lone \ud800 surrogate")
    await sink.put(events)
    task = asyncio.create_task(sink.run())
    try:
        await _until(lambda: sink.written_batches == 1 or task.done())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (sink.written_events, sink.events_dropped, sink.pending) == (2, 1, 0)
    key = keys.events("binance_usdm", "BTCUSDT", kind)
    assert [decode(r[1][b"e"]).ts_ms for r in await redis_client.xrange(key)] == [NOW, NOW + 2]


async def test_the_sink_state_tells_how_old_the_oldest_unwritten_event_is(
    redis_client: aioredis.Redis,
) -> None:
    now = [100.0]
    sink = EventSink(redis_client, StoreSettings(), clock=lambda: now[0])
    assert sink.state().oldest_pending_s == 0.0
    sink.put_nowait([_mark("BTCUSDT", NOW, 1.0)])
    now[0] += 0.5
    sink.put_nowait([_mark("BTCUSDT", NOW + 1, 1.0)])
    now[0] += 2.5
    assert (sink.state().pending, sink.state().oldest_pending_s) == (2, 3.0)
    await sink.drain()
    assert (sink.state().pending, sink.state().oldest_pending_s) == (0, 0.0)
    assert sink.state().failing_s is None


async def test_liquidations_are_written_before_the_tickers_waiting_ahead_of_them(
    redis_client: aioredis.Redis,
) -> None:
    """A market's second of tickers is written a few instruments at a time, and a liquidation
    put after them goes in the next batch, not after all of them."""
    # A clock that stands still: the tickers never wait long enough for bigger batches.
    sink = EventSink(redis_client, StoreSettings(flush_max_instruments=10), clock=lambda: 0.0)
    symbols = [f"Q{i:03d}USDT" for i in range(50)]
    await sink.put([_mark(s, NOW, 1.0) for s in symbols])
    await sink.put([_liq("Q049USDT", NOW + 5), _mark("Q000USDT", NOW + 5, 2.0)])
    await sink._flush_once()  # the oldest liquidation queue goes first: it holds one
    assert sink.written_events == 1
    assert sink.pending == 51
    liquidations = await redis_client.xrange(
        keys.events("binance_usdm", "Q049USDT", Kind.LIQUIDATION)
    )
    assert len(liquidations) == 1
    assert await redis_client.xlen(keys.events("binance_usdm", "Q049USDT", Kind.MARK)) == 0
    await sink._flush_once()  # then the tickers, ten instruments at a time, oldest first
    assert sink.written_events == 11
    written = [await redis_client.xlen(keys.events("binance_usdm", s, Kind.MARK)) for s in symbols]
    assert written == [1] * 10 + [0] * 40
    while sink.pending:
        await sink._flush_once()
    assert sink.written_batches == 1 + 5 + 1  # the last: Q000USDT's second mark
    rows = await redis_client.xrange(keys.events("binance_usdm", "Q000USDT", Kind.MARK))
    assert [decode(fields[b"e"]).mark_price for _, fields in rows] == [1.0, 2.0]  # in order


async def test_a_queue_that_falls_behind_is_written_in_bigger_batches_until_it_catches_up(
    redis_client: aioredis.Redis,
) -> None:
    """A batch of tickers costs a few turns of a busy event loop whatever its size, so a
    fixed size bounds the write rate: once the oldest waiting ticker is late, a batch takes
    one more share of ``flush_max_instruments`` per ``CATCH_UP_S`` of lateness (at most
    ``CATCH_UP_MAX``), and a queue that keeps up is written at the usual size."""
    clock = [100.0]
    sink = EventSink(redis_client, StoreSettings(flush_max_instruments=10),
                     clock=lambda: clock[0])  # fmt: skip
    symbols = [f"Q{i:03d}USDT" for i in range(200)]
    sink.put_nowait([_mark(s, NOW, 1.0) for s in symbols])
    await sink._flush_once()  # on time: ten instruments
    assert sink.last_batch_size == 10
    clock[0] += 2.5 * CATCH_UP_S  # the oldest has waited two and a half shares' time
    await sink._flush_once()
    assert sink.last_batch_size == 30
    clock[0] += 100 * CATCH_UP_S
    await sink._flush_once()
    assert sink.last_batch_size == 10 * CATCH_UP_MAX
    sink.put_nowait([_liq(s, NOW + 1) for s in symbols])  # liquidations: the usual size
    await sink._flush_once()
    assert (sink.last_batch_size, len(sink._urgent.events)) == (10, 190)
    while sink.pending:
        await sink._flush_once()
    clock[0] += 100 * CATCH_UP_S  # caught up: the next batch, put now, is on time again
    sink.put_nowait([_mark(s, NOW + 2, 2.0) for s in symbols])
    await sink._flush_once()
    assert sink.last_batch_size == 10
    while sink.pending:
        await sink._flush_once()
    for s in symbols:  # every instrument's marks once each, in order
        rows = await redis_client.xrange(keys.events("binance_usdm", s, Kind.MARK))
        assert [decode(fields[b"e"]).mark_price for _, fields in rows] == [1.0, 2.0], s


async def test_the_oldest_waiting_event_is_the_oldest_of_either_queue(
    redis_client: aioredis.Redis,
) -> None:
    clock = [100.0]
    sink = EventSink(redis_client, StoreSettings(), clock=lambda: clock[0])
    sink.put_nowait([_mark("BTCUSDT", NOW, 1.0)])
    clock[0] = 103.0
    sink.put_nowait([_liq("BTCUSDT", NOW + 1)])
    clock[0] = 104.0
    assert sink.state().oldest_pending_s == pytest.approx(4.0)
    await sink._flush_once()  # the liquidation: the mark still waits
    assert sink.state().pending == 1
    assert sink.state().oldest_pending_s == pytest.approx(4.0)
    await sink._flush_once()
    assert sink.state().oldest_pending_s == 0.0


async def test_a_full_redis_holds_a_batch_until_it_has_room_then_writes_it_once(
    own_redis: OwnRedis,
) -> None:
    """OOM inside the store script (each instrument of a call is applied on its own) is a
    refusal that goes away: the whole batch is retried, not counted as refused."""
    client = aioredis.Redis.from_url(own_redis.url)
    sink = EventSink(client, StoreSettings())
    task = asyncio.create_task(sink.run())
    try:
        await client.config_set("maxmemory", "1")
        await sink.put([_mark(f"Q{i:03d}USDT", NOW, 1.0) for i in range(120)])
        await _until(lambda: sink.write_failures >= 2)
        assert sink.written_events == 0
        await client.config_set("maxmemory", "0")
        await _until(lambda: sink.written_events == 120)
        assert sink.events_refused == 0
        for i in (0, 60, 119):
            assert await client.xlen(keys.events("binance_usdm", f"Q{i:03d}USDT", Kind.MARK)) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


async def test_a_flush_builds_its_calls_with_the_loop_running_and_writes_them_all(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a slice shorter than anything, the flush pauses after every call it builds:
    another task runs meanwhile, and events put during the pauses wait for the next batch."""
    monkeypatch.setattr(writer, "SLICE_S", 0.0)
    monkeypatch.setattr(script, "INSTRUMENTS_PER_CALL", 5)  # 120 instruments: 24 calls
    sink = EventSink(redis_client, StoreSettings())
    symbols = [f"Q{i:03d}USDT" for i in range(120)]
    await sink.put([_mark(s, NOW, 1.0) for s in symbols])
    turns = 0

    async def other() -> None:
        nonlocal turns
        while True:
            turns += 1
            sink.put_nowait([_mark("Q000USDT", NOW + turns, 2.0)])  # arrives mid-flush
            await asyncio.sleep(0)

    task = asyncio.create_task(other())  # (first runs once the batch is taken)
    await sink._flush_once()
    task.cancel()
    assert turns >= 24
    assert sink.written_events == 120
    assert sink.pending == turns  # what arrived meanwhile waits for the next batch
    written = [await redis_client.xlen(keys.events("binance_usdm", s, Kind.MARK)) for s in symbols]
    assert written == [1] * 120
    assert len(await redis_client.smembers(keys.INSTRUMENTS)) == 120


async def test_a_liquidation_is_written_while_a_batch_of_tickers_is_being_built(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A liquidation that comes while a batch of tickers is being built (in slices, the loop
    running between them) is written at the next slice, before that batch is sent: it waits
    for a slice, not for the whole build (on a busy process, many turns of the loop)."""
    monkeypatch.setattr(writer, "SLICE_S", 0.0)
    monkeypatch.setattr(script, "INSTRUMENTS_PER_CALL", 5)  # 120 instruments: 24 calls
    sink = EventSink(redis_client, StoreSettings())
    symbols = [f"Q{i:03d}USDT" for i in range(120)]
    await sink.put([_mark(s, NOW, 1.0) for s in symbols])
    liquidation = _identified(NOW + 1)

    async def lane() -> None:  # first runs once the batch of tickers is taken
        sink.put_nowait([liquidation])

    task = asyncio.create_task(lane())
    await sink._flush_once()
    await task
    assert (sink.written_batches, sink.written_events, sink.pending) == (2, 121, 0)
    rows = await redis_client.xrange(keys.handoff("binance_usdm"))
    first, second = (decode_many(fields[b"e"]) for _, fields in rows)
    assert first == [liquidation]  # handed over before the batch it came during
    assert [e.symbol for e in second] == symbols
