"""The collector's order book depth against the OKX simulator, writing to the real Redis: the
top N by open interest get a ``books`` connection of their own, their depth (in contracts:
linear and inverse) is stored once a second and thins through the simulated cascade, a new set
reconnects that connection only, and a break in the ``seqId`` chain is counted and healed by a
resubscription on the same connection."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from harness import (
    a_book_gap_heals,
    depths_once_a_second,
    only_ranked_books_stored,
    running,
    settings_for,
    stored,
    top_by_open_interest,
    until,
)

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import Kind
from service.venues.okx.simulator.server import OKX_SYMBOLS, OkxSimulator
from service.venues.okx.venue import Okx

pytestmark = pytest.mark.integration

VENUE = "okx"
SYMBOLS = list(OKX_SYMBOLS)


def _sim() -> OkxSimulator:
    return OkxSimulator(
        seed=3, time_scale=4.0, start_s=22, oi_interval_s=0.3, list_only_simulated=True
    )


async def test_the_top_n_by_open_interest_get_books_stored_once_a_second(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        _sim() as sim,
        running(Okx(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: set(collector._open) == {"public", "liquidations", "depth-1"})
        await asyncio.sleep(6.0)
        assert collector.health.parse_errors == {}  # every checksum matched
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # Another ranking: the depth connection rotates to it (or, on a venue that does not
        # rotate, is closed and opened again at once), the others stay up.
        others = sorted(set(SYMBOLS) - set(top))
        reconnects = collector.health.reconnects_total
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset(others[:1]))
        await until(lambda: venue.depth_symbols == {others[0]})
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get(others[0], {}))
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == {"public", "liquidations", "depth-1"}
        assert collector.health.parse_errors == {}
        marks = dict(collector.parser.last_mark)  # type: ignore[union-attr]

    for symbol in top:
        depths = await depths_once_a_second(redis_client, VENUE, symbol)
        last = depths[-1]
        assert last.mid == pytest.approx(marks[symbol], rel=0.01)
        assert all(last.exact(side, 2.0) for side in ("bid", "ask"))  # 400 levels reach 6 %
        assert 0 < last.bid_usd_0p5 < last.bid_usd_1 < last.bid_usd_2
        if symbol.startswith("BTC"):  # in the long cascade: thinner
            assert depths[-1].bid_usd_1 < 0.85 * depths[0].bid_usd_1, symbol
    await only_ranked_books_stored(redis_client, VENUE, others[0], others[1:])


async def test_a_gap_is_counted_and_the_book_resubscribed_on_its_connection(
    redis_client: aioredis.Redis,
) -> None:
    depth = DepthSettings(symbols=["BTC-USD-SWAP"])  # a list: no ranking, a book at once
    async with (
        _sim() as sim,
        running(Okx(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        gap_ms = await a_book_gap_heals(collector, sim, "BTC-USD-SWAP")
        assert set(collector._open) == {"public", "liquidations", "depth-1"}
    depths = await stored(redis_client, VENUE, "BTC-USD-SWAP", Kind.BOOK_DEPTH)
    assert depths[-1].ts_ms > gap_ms  # stored after the resync
