"""The collector's order book depth against the Gate simulator (``futures.obu``), writing to the
real Redis: the top N by open interest get a book on a connection of their own per settlement,
a new set reconnects those connections only, the depth thins through the simulated cascade,
and a gap is counted and healed by resubscribing on the depth connection."""

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
    top_by_open_interest,
    until,
)

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import BookDepth, Kind
from service.venues.gateio.simulator.server import GateSimulator
from service.venues.gateio.simulator.wire import GATE_SYMBOLS
from service.venues.gateio.venue import Gate

pytestmark = pytest.mark.integration

VENUE = "gateio"
SYMBOLS = list(GATE_SYMBOLS)
BUSY = {"usdt-1", "usdt-liquidations", "btc-1", "btc-liquidations"}
"""The connections other than the books': the tickers' shards and the liquidations'."""


async def test_the_top_n_by_open_interest_get_books_that_thin_through_the_cascade(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        GateSimulator(seed=3, time_scale=5.0, start_s=14, list_only_simulated=True) as sim,
        running(Gate(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: sim.market.elapsed_s >= 50, within=30)
        assert collector.health.parse_errors == {}
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # Another ranking: the depth connections rotate to it, the others stay up.
        reconnects = collector.health.reconnects_total
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({"DOGE_USDT"}))
        await until(lambda: venue.depth_symbols == {"DOGE_USDT"})
        await until(lambda: set(collector._open) == {*BUSY, "usdt-depth"})
        await asyncio.sleep(1.5)
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == {*BUSY, "usdt-depth"}

    for symbol in top:
        depths = await depths_once_a_second(redis_client, VENUE, symbol)
        first, last = depths[0], depths[-1]
        assert first.exact("bid", 2.0)  # 400 simulated levels reach 3 % of mid
        assert first.exact("ask", 2.0)
        if symbol.startswith("BTC"):  # in the long cascade: thinner
            assert last.bid_usd_1 < 0.7 * first.bid_usd_1, symbol
    await only_ranked_books_stored(
        redis_client, VENUE, "DOGE_USDT", set(SYMBOLS) - set(top) - {"DOGE_USDT"}
    )


async def test_the_inverse_contract_has_its_book_on_the_btc_path(
    redis_client: aioredis.Redis,
) -> None:
    """``BTC_USD`` (1 USD contracts) on ``btc-depth``: its depth is in USD as sent."""
    depth = DepthSettings(symbols=["BTC_USD", "BTC_USDT"])
    async with (
        GateSimulator(seed=3, time_scale=5.0, start_s=0, list_only_simulated=True) as sim,
        running(Gate(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("BTC_USD", {}))
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("BTC_USDT", {}))
        assert set(collector._open) == {*BUSY, "usdt-depth", "btc-depth"}
        assert collector.health.parse_errors == {}
        inverse = collector.latest["BTC_USD"][Kind.BOOK_DEPTH]
        linear = collector.latest["BTC_USDT"][Kind.BOOK_DEPTH]
        oi_usd = {s: sim.oi_base(s) * sim.mark(s) for s in ("BTC_USD", "BTC_USDT")}
    assert isinstance(inverse, BookDepth)
    assert isinstance(linear, BookDepth)
    # Each level holds 0.0004 of the open interest; the 2 % band holds ~2 / 0.0075 levels a
    # side: the same share of the open interest on both paths, whatever the contract's unit.
    for event, symbol in ((inverse, "BTC_USD"), (linear, "BTC_USDT")):
        share = event.bid_usd_2 / oi_usd[symbol]
        assert 0.0004 * 200 < share < 0.0004 * 300, symbol


async def test_a_gap_is_counted_and_the_book_resubscribed_on_its_connection(
    redis_client: aioredis.Redis,
) -> None:
    depth = DepthSettings(symbols=["BTC_USDT"])  # a list: no ranking, a book at once
    async with (
        GateSimulator(seed=3, time_scale=5.0, start_s=22, list_only_simulated=True) as sim,
        running(Gate(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        await a_book_gap_heals(collector, sim, "BTC_USDT")
        assert set(collector._open) == {*BUSY, "usdt-depth"}
