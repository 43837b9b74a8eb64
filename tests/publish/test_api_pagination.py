"""``GET /v1/liquidations`` pages against stream ids that collide across instruments: every page
size walks the whole tape newest first, with no gap and no repeat, poisoned entries or not."""

from __future__ import annotations

import random

import httpx
import pytest
import redis.asyncio as aioredis
from poison_support import null_price_liquidation
from publish_support import index_liquidation, liquidation

from service.config import ApiSettings, Settings
from service.events import Kind, encode
from service.store import keys

IDS = [(1_700_000_000_000 + ms, seq) for ms in (0, 1, 2, 5, 9, 40, 41, 300, 301, 302)
       for seq in range(3)]  # fmt: skip
"""30 stream ids, oldest first (several per millisecond, as a busy pipeline writes them)."""
WINDOWS = {
    ("binance_usdm", "BTCUSDT"): (0, 30),  # the whole span: alone in its oldest stretch
    ("binance_usdm", "ETHUSDT"): (12, 24),
    ("bybit", "BTCUSDT"): (6, 30),
    ("bybit", "ETHUSDT"): (20, 30),
    ("okx", "BTC-USDT-SWAP"): (10, 22),
    ("okx", "ETH-USDT-SWAP"): (27, 30),  # alone with nothing: its newest ids are shared
    ("bitget", "BTCUSDT"): (14, 16),
    # A venue id that extends another: "bybit_inverse|" sorts before "bybit|" as text, though
    # ("bybit_inverse", ...) sorts after ("bybit", ...) as a tuple. Ties follow the text.
    ("bybit_inverse", "BTCUSD"): (8, 30),
}
"""Which ids each instrument has (a slice of :data:`IDS`, a few left out at random): every id
from the 7th on is shared, and some stretches have one instrument only."""
Entry = tuple[tuple[int, int], str, float]
"""(stream id, instrument, price): the price tells the entries apart."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api": ApiSettings(default_limit=20, max_limit=500)})


async def _tape(redis: aioredis.Redis, poison_every: int = 0) -> list[Entry]:
    """Liquidations under explicit stream ids, most ids shared by several instruments; with
    ``poison_every``, every n-th entry is poisoned instead. Returns the good ones, newest
    first, as the API must order them."""
    rng = random.Random(11)
    good: list[Entry] = []
    n = 0
    for (venue, symbol), (first, end) in WINDOWS.items():
        member = keys.instrument_id(venue, symbol)
        await redis.sadd(keys.INSTRUMENTS, member)
        for sid in IDS[first:end]:
            if rng.random() < 0.2:
                continue
            n += 1
            price = float(n)
            if poison_every and n % poison_every == 0:
                raw = null_price_liquidation(venue, symbol) if n % 2 else b"{garbage"
            else:
                raw = encode(liquidation(venue, symbol, price=price))
                good.append((sid, member, price))
            stream = keys.events(venue, symbol, Kind.LIQUIDATION)
            await redis.xadd(stream, {"e": raw}, id=f"{sid[0]}-{sid[1]}")
            await index_liquidation(redis, venue, symbol, f"{sid[0]}-{sid[1]}")
    shared = {sid for sid in IDS if sum(1 for e in good if e[0] == sid) > 1}
    assert len(shared) >= len(IDS) // 3, "the test needs ids shared across instruments"
    return sorted(good, reverse=True)


async def _walk(client: httpx.AsyncClient, limit: int, **params: str) -> list[list[float]]:
    pages: list[list[float]] = []
    query: dict[str, str | int] = {"limit": limit, **params}
    for _ in range(500):
        r = await client.get("/v1/liquidations", params=query)
        assert r.status_code == 200, r.text
        pages.append([i["price"] for i in r.json()["items"]])
        if r.json()["next_cursor"] is None:
            return pages
        query["cursor"] = r.json()["next_cursor"]
    raise AssertionError("pagination did not end")


async def test_every_page_size_walks_the_tape_once_in_order(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    tape = await _tape(redis)
    expected = [price for _, _, price in tape]
    for limit in range(1, len(tape) + 2):
        pages = await _walk(client, limit)
        assert [p for page in pages for p in page] == expected, f"limit={limit}"
        assert all(len(page) == limit for page in pages[:-1]), f"limit={limit}"
        assert 0 < len(pages[-1]) <= limit, f"limit={limit}"


async def test_pages_within_a_time_range(client: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    tape = await _tape(redis)
    since, until = IDS[9][0], IDS[20][0]  # from the 4th millisecond to the 8th
    expected = [price for sid, _, price in tape if since <= sid[0] <= until]
    assert 0 < len(expected) < len(tape)
    for limit in range(1, len(expected) + 2):
        pages = await _walk(client, limit, since=str(since), until=str(until))
        assert [p for page in pages for p in page] == expected, f"limit={limit}"


async def test_poisoned_entries_leave_no_gap_and_no_repeat(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    tape = await _tape(redis, poison_every=3)
    expected = [price for _, _, price in tape]
    for limit in range(1, len(tape) + 2):
        pages = await _walk(client, limit)
        assert [p for page in pages for p in page] == expected, f"limit={limit}"
        assert all(len(page) == limit for page in pages[:-1]), f"limit={limit}"
