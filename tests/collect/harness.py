"""What the live collector tests share: a collector writing to the real Redis while a test runs,
waiting for a condition, and reading back what was stored."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, Protocol

import redis.asyncio as aioredis
from waits import until as until  # re-exported: the tests import it from here

from service.collect.collector import VenueCollector
from service.config import CollectSettings, StoreSettings, VenueSettings
from service.events import BookDepth, Kind, Liquidation, OpenInterest, decode
from service.store import keys
from service.store.writer import EventSink
from service.venues.base import Connection, Venue

FAST_RECOVERY: dict[str, float] = {
    "watchdog_s": 5.0,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.2,
}
"""Collector settings for tests: reconnect within a fraction of a second."""


class Served(Protocol):
    """A started simulator: where it listens."""

    ws_base_url: str
    rest_base_url: str


def settings_for(sim: Served, symbols: list[str], **venue: Any) -> VenueSettings:
    """A venue's settings pointing at ``sim``, for ``symbols``."""
    return VenueSettings(
        ws_url=sim.ws_base_url, rest_url=sim.rest_base_url, symbols=symbols, **venue
    )


def pinged_every(connections: list[Connection], ping_s: float | None) -> list[Connection]:
    """``connections`` sending their keep-alive every ``ping_s`` (``None``: never), for a
    simulator whose idle cut or heartbeat is scaled down from the venue's."""
    if ping_s is None:
        return [replace(c, ping=None, ping_interval_s=None) for c in connections]
    return [replace(c, ping_interval_s=ping_s) for c in connections]


@asynccontextmanager
async def running(
    venue: Venue,
    redis_client: aioredis.Redis,
    *,
    cls: type[VenueCollector] = VenueCollector,
    **collect: float,
) -> AsyncIterator[VenueCollector]:
    """A collector (a ``cls``) of ``venue`` and its sink running for the body (``collect`` overrides
    :data:`FAST_RECOVERY`); on the way out both are stopped and what was collected is written."""
    settings = CollectSettings(**(FAST_RECOVERY | collect))
    sink = EventSink(redis_client, StoreSettings())
    collector = cls(venue, settings, sink, redis_client)
    tasks = [asyncio.create_task(sink.run()), asyncio.create_task(collector.run())]
    try:
        yield collector
    finally:
        await stop(tasks)
        collector.flush()  # as the runtime stops: the open seconds of traded volume
        await sink.drain()
        await collector.close()


async def stop(tasks: list[asyncio.Task[None]], within: float = 5.0) -> None:
    """Cancel ``tasks`` until they end. Once is not always enough: on Python 3.11 a task
    awaiting ``asyncio.wait_for`` (the collector's open-interest poll) ignores a cancel that
    lands as the awaited call completes (CPython gh-86296, fixed in 3.12)."""
    deadline = time.monotonic() + within
    while pending := [t for t in tasks if not t.done()]:
        if time.monotonic() >= deadline:
            dump_tasks()
            raise AssertionError(f"tasks did not stop: {pending}")
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=0.1)
    await asyncio.gather(*tasks, return_exceptions=True)


def dump_tasks() -> None:  # pragma: no cover - diagnostics
    for t in asyncio.all_tasks():
        print("TASK", t.get_name(), t.get_coro(), file=sys.stderr)
        try:
            t.print_stack(limit=6, file=sys.stderr)
        except TypeError:  # a Cython coroutine's frame has no line number (picows)
            print("  (no Python stack)", file=sys.stderr)


async def stored(client: aioredis.Redis, venue: str, symbol: str, kind: Kind) -> list[Any]:
    """The events of one stream in Redis, oldest first."""
    rows: Any = await client.xrange(keys.events(venue, symbol, kind))
    return [decode(fields[b"e"]) for _, fields in rows]


async def depths_once_a_second(
    client: aioredis.Redis, venue: str, symbol: str, at_least: int = 5
) -> list[BookDepth]:
    """The book depths stored for ``symbol``, oldest first: at least ``at_least`` of them, and
    a second apart at least (a book changes every 100-500 ms, its depth is reported once a
    second)."""
    depths = await stored(client, venue, symbol, Kind.BOOK_DEPTH)
    assert len(depths) >= at_least, symbol
    assert all(isinstance(d, BookDepth) for d in depths)
    times = [d.ts_ms for d in depths]
    assert all(b - a >= 1000 for a, b in itertools.pairwise(times)), symbol
    return depths


async def only_ranked_books_stored(
    client: aioredis.Redis, venue: str, ranked: str, never: Iterable[str]
) -> None:
    """After a new ranking of ``ranked`` alone: its book was stored, and none of ``never``'s
    (the symbols no ranking chose)."""
    assert await stored(client, venue, ranked, Kind.BOOK_DEPTH), ranked
    for symbol in never:
        assert await stored(client, venue, symbol, Kind.BOOK_DEPTH) == [], symbol


async def stored_liquidations(
    client: aioredis.Redis, venue: str, symbols: Iterable[str]
) -> list[Liquidation]:
    """Every liquidation stored for ``symbols``, symbol by symbol."""
    out: list[Liquidation] = []
    for symbol in symbols:
        out += [
            e
            for e in await stored(client, venue, symbol, Kind.LIQUIDATION)
            if isinstance(e, Liquidation)
        ]
    return out


def top_by_open_interest(collector: VenueCollector, n: int) -> set[str]:
    """The ``n`` symbols with the most open interest (USD) the collector holds: what its
    order book ranking should follow."""
    oi = {
        s: e.oi_usd
        for s, per in collector.latest.items()
        if isinstance(e := per.get(Kind.OPEN_INTEREST), OpenInterest)
    }
    return set(sorted(oi, key=lambda s: oi[s], reverse=True)[:n])


async def a_book_gap_heals(collector: VenueCollector, sim: Any, symbol: str) -> int:
    """``sim`` skips an update of ``symbol``'s book: the collector counts the gap once and
    reports the book's depth again (newer by a second) without a reconnect (resubscribed).
    Returns the time of the last depth reported before the gap."""
    await until(lambda: Kind.BOOK_DEPTH in collector.latest.get(symbol, {}))
    reconnects = collector.health.reconnects_total
    sim.book_gap(symbol)
    await until(lambda: collector.health.parse_errors.get("orderbook_gap") == 1)
    gap_ms = collector.latest[symbol][Kind.BOOK_DEPTH].ts_ms
    await until(lambda: collector.latest[symbol][Kind.BOOK_DEPTH].ts_ms > gap_ms + 1000)
    assert collector.health.parse_errors.get("orderbook_gap") == 1  # it follows again
    assert collector.health.reconnects_total == reconnects  # resubscribed, not reconnected
    return gap_ms
