"""The collector's order book depth against the Bitget simulator, writing to the real Redis: the
top N by open interest get a v2 ``books15`` connection of their own, their depth is stored once
a second with the bands 15 levels do not reach flagged and thins through the simulated cascade,
and a new set reconnects that connection only."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from harness import (
    depths_once_a_second,
    only_ranked_books_stored,
    running,
    settings_for,
    top_by_open_interest,
    until,
)

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import Kind
from service.venues.bitget.simulator.server import BitgetSimulator
from service.venues.bitget.simulator.wire import BITGET_SYMBOLS
from service.venues.bitget.venue import Bitget

pytestmark = pytest.mark.integration

VENUE = "bitget"
SYMBOLS = list(BITGET_SYMBOLS)
NOT_BOOKS = {
    "usdt-futures-1",
    "coin-futures-1",
    "usdt-futures-liquidations",
    "coin-futures-liquidations",
}
"""The connections other than the books': tickers, and the liquidations' quiet lane."""


async def test_the_top_n_by_open_interest_get_books_stored_once_a_second(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        BitgetSimulator(seed=3, time_scale=4.0, start_s=22, list_only_simulated=True) as sim,
        running(Bitget(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: set(collector._open) == NOT_BOOKS | {"depth-1"})
        await asyncio.sleep(6.0)
        assert collector.health.parse_errors == {}
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # Another ranking: the depth connection rotates to it (or, on a venue that does not
        # rotate, is closed and opened again at once), the others stay up.
        reconnects = collector.health.reconnects_total
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({"DOGEUSDT"}))
        await until(lambda: venue.depth_symbols == {"DOGEUSDT"})
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("DOGEUSDT", {}))
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == NOT_BOOKS | {"depth-1"}
        assert collector.health.parse_errors == {}

    for symbol in top:
        depths = await depths_once_a_second(redis_client, VENUE, symbol)
        for d in depths:  # the simulated 15 levels reach about 0.7 % of mid
            assert [d.exact(side, 0.5) for side in ("bid", "ask")] == [True, True], symbol
            assert [d.exact(side, 2.0) for side in ("bid", "ask")] == [False, False], symbol
            assert 0 < d.bid_usd_0p5 <= d.bid_usd_1 == d.bid_usd_2
        if symbol.startswith("BTC"):  # in the long cascade: thinner
            assert depths[-1].bid_usd_0p5 < 0.85 * depths[0].bid_usd_0p5, symbol
    await only_ranked_books_stored(
        redis_client, VENUE, "DOGEUSDT", set(SYMBOLS) - set(top) - {"DOGEUSDT"}
    )
