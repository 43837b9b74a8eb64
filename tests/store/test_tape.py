"""The liquidation index: the store script writes each stored liquidation's position in the
same step as the entry, and trims it with the retention; pages read through it are the pages
of the merge across instruments (same order, same cursors); a refill budget shortens a page
but skips nothing; positions whose entries are gone are skipped."""

from __future__ import annotations

import json
import random
import time

import redis.asyncio as aioredis

from service.config import StoreSettings
from service.events import Kind, Liquidation, Side, encode
from service.store import keys, pages, poison, tape
from service.store.writer import write_batch

NOW = time.time_ns() // 1_000_000
"""Stream ids are Redis's clock: the writes' ``now`` must be near it (retention trims)."""
VENUES = {"binance_usdm": ("BTCUSDT", "ETHUSDT", "SOLUSDT"), "bybit": ("BTCUSDT", "XRPUSDT"),
          "bybit_inverse": ("BTCUSD",)}  # fmt: skip


def _liq(venue: str, symbol: str, price: float, ts_ms: int = NOW) -> Liquidation:
    return Liquidation(
        venue=venue, symbol=symbol, base=symbol[:3], ts_ms=ts_ms, recv_ms=ts_ms,
        side=Side.LONG, price=price, quantity=1.0, quantity_base=1.0, notional_usd=price,
        sampled=False, event_id=f"{venue}-{symbol}-{price}",
    )  # fmt: skip


async def _walk(
    client: aioredis.Redis, venue: str | None, limit: int, indexed: bool
) -> list[float]:
    pairs = [(v, s) for v, symbols in VENUES.items() for s in symbols if venue in (None, v)]
    seen: list[float] = []
    cursor = None
    for _ in range(1000):
        if indexed:
            page = await tape.indexed_liquidations(
                client, venue, since_ms=None, until_ms=None, limit=limit, cursor=cursor
            )
        else:
            page = await pages.liquidations(
                client, pairs, since_ms=None, until_ms=None, limit=limit, cursor=cursor
            )
        seen += [e.price for e in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("pagination did not end")


async def _store_random_batches(client: aioredis.Redis, seed: int) -> dict[float, tuple[str, str]]:
    """Liquidations in 12 batches on random instruments; returns each one's by price."""
    rng = random.Random(seed)
    pairs = [(v, s) for v, symbols in VENUES.items() for s in symbols]
    prices: dict[float, tuple[str, str]] = {}
    for batch in range(12):
        events = []
        for _ in range(rng.randint(1, 9)):
            venue, symbol = rng.choice(pairs)
            price = float(len(prices) + 1)
            prices[price] = (venue, symbol)
            events.append(_liq(venue, symbol, price))
        # One write_batch is one pipeline: instruments of a batch often share stream ids.
        await write_batch(client, events, StoreSettings(), NOW + batch)
    return prices


async def test_the_store_script_indexes_every_stored_liquidation(
    redis_client: aioredis.Redis,
) -> None:
    prices = await _store_random_batches(redis_client, seed=3)
    # A duplicate is not stored, and not indexed.
    await write_batch(redis_client, [_liq(*prices[1.0], 1.0)], StoreSettings(), NOW)
    positions = set()
    for venue, symbols in VENUES.items():
        for symbol in symbols:
            member = keys.instrument_id(venue, symbol)
            for sid, _ in await redis_client.xrange(keys.events(venue, symbol, Kind.LIQUIDATION)):
                ms, seq = sid.decode().split("-")
                positions.add(keys.liquidation_position(int(ms), int(seq), member))
    everything = {p.decode() for p in await redis_client.zrange(keys.liquidation_index(), 0, -1)}
    assert everything == positions
    assert len(positions) == len(prices)
    for venue in VENUES:
        mine = await redis_client.zrange(keys.liquidation_index(venue), 0, -1)
        assert {p.decode() for p in mine} == {p for p in positions if f"~{venue}|" in p}


async def test_indexed_pages_are_the_merged_pages(redis_client: aioredis.Redis) -> None:
    prices = await _store_random_batches(redis_client, seed=5)
    for venue in (None, "binance_usdm", "bybit", "okx"):
        merged = await _walk(redis_client, venue, len(prices) + 1, indexed=False)
        assert sorted(merged) == sorted(p for p, (v, _) in prices.items() if venue in (None, v))
        for limit in (1, 2, 3, 7, len(prices)):
            assert await _walk(redis_client, venue, limit, indexed=True) == merged, (venue, limit)


async def test_a_cursor_of_one_path_is_a_cursor_of_the_other(redis_client: aioredis.Redis) -> None:
    await _store_random_batches(redis_client, seed=8)
    first = await tape.indexed_liquidations(
        redis_client, None, since_ms=None, until_ms=None, limit=5, cursor=None
    )
    assert first.next_cursor is not None
    pairs = [(v, s) for v, symbols in VENUES.items() for s in symbols]
    merged = await pages.liquidations(
        redis_client, pairs, since_ms=None, until_ms=None, limit=5, cursor=first.next_cursor
    )
    indexed = await tape.indexed_liquidations(
        redis_client, None, since_ms=None, until_ms=None, limit=5, cursor=first.next_cursor
    )
    assert indexed == merged


async def test_the_index_forgets_what_the_retention_drops(redis_client: aioredis.Redis) -> None:
    settings = StoreSettings(retention_s={k: 60.0 for k in Kind})
    now = time.time_ns() // 1_000_000
    await write_batch(redis_client, [_liq("bybit", "BTCUSDT", 1.0)], settings, now)
    await write_batch(redis_client, [_liq("okx", "XRPUSDT", 2.0)], settings, now)
    assert await redis_client.zcard(keys.liquidation_index()) == 2
    # A write a retention later: every position stored before it is past the retention.
    await write_batch(redis_client, [_liq("bybit", "XRPUSDT", 3.0)], settings, now + 120_000)
    assert await redis_client.zcard(keys.liquidation_index()) == 0
    assert await redis_client.zcard(keys.liquidation_index("bybit")) == 0
    # Trimmed with the writes of the venue whose index it is: okx's is written by okx's.
    assert await redis_client.zcard(keys.liquidation_index("okx")) == 1


async def test_positions_whose_entries_are_gone_are_skipped(redis_client: aioredis.Redis) -> None:
    await write_batch(redis_client, [_liq("bybit", "BTCUSDT", 1.0)], StoreSettings(), NOW)
    await write_batch(redis_client, [_liq("bybit", "XRPUSDT", 2.0)], StoreSettings(), NOW + 1)
    await redis_client.delete(keys.events("bybit", "BTCUSDT", Kind.LIQUIDATION))
    page = await tape.indexed_liquidations(
        redis_client, None, since_ms=None, until_ms=None, limit=5, cursor=None
    )
    assert [e.price for e in page.items] == [2.0]
    assert page.next_cursor is None


async def test_a_refill_budget_shortens_pages_but_never_skips(
    redis_client: aioredis.Redis,
) -> None:
    good: list[float] = []
    key = keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)
    member = keys.instrument_id("binance_usdm", "BTCUSDT")
    raw = json.loads(encode(_liq("binance_usdm", "BTCUSDT", 1.0)))
    raw["price"] = None
    ms = NOW
    for run in range(4):
        for i in range(3):
            ms += 1
            price = float(run * 10 + i + 1)
            good.append(price)
            await redis_client.xadd(key, {"e": encode(_liq("binance_usdm", "BTCUSDT", price))},
                                    id=f"{ms}-0")  # fmt: skip
            await redis_client.zadd(keys.liquidation_index(),
                                    {keys.liquidation_position(ms, 0, member): 0})  # fmt: skip
        for _ in range(25):
            ms += 1
            await redis_client.xadd(key, {"e": json.dumps(raw)}, id=f"{ms}-0")
            await redis_client.zadd(keys.liquidation_index(),
                                    {keys.liquidation_position(ms, 0, member): 0})  # fmt: skip
    before = poison.counts().get(("liquidation", "undecodable"), 0)
    seen: list[float] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(100):
        page = await tape.indexed_liquidations(
            redis_client, None, since_ms=None, until_ms=None, limit=2, cursor=cursor,
            max_refill=5,
        )  # fmt: skip
        seen += [e.price for e in page.items]
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(good, reverse=True)
    assert 0 in sizes[:-1], "the budget should have cut some page short"
    assert poison.counts()[("liquidation", "undecodable")] >= before + 100


async def test_an_index_of_the_wrong_type_is_an_empty_page(redis_client: aioredis.Redis) -> None:
    await redis_client.set(keys.liquidation_index(), b"not a sorted set")
    before = poison.counts().get(("liquidation", "wrong_type"), 0)
    page = await tape.indexed_liquidations(
        redis_client, None, since_ms=None, until_ms=None, limit=5, cursor=None
    )
    assert page == pages.Page([], None)
    assert poison.counts()[("liquidation", "wrong_type")] == before + 1
