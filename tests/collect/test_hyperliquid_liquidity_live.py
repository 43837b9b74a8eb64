"""The collector's liquidity events against the Hyperliquid simulator, writing to the real Redis:
top of book (``bbo``) and traded volume (``trades``) for every coin on the ``public``
connection; the top N by open interest get an ``l2Book`` on a connection of their own
(``depth-1``), their depth stored once a second with the bands 20 aggregated levels do not
reach flagged, thinning through the simulated cascade; a crossed push is counted and the next
one heals the book without a reconnect; a new set reconnects that connection only."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, top_by_open_interest, until

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import BookDepth, BookTop, Kind, Volume
from service.venues.hyperliquid.simulator.server import HyperliquidSimulator
from service.venues.hyperliquid.simulator.wire import HL_SYMBOLS
from service.venues.hyperliquid.venue import Hyperliquid

pytestmark = pytest.mark.integration

VENUE = "hyperliquid"
SYMBOLS = list(HL_SYMBOLS)


async def test_books_tops_and_volume_of_the_top_n_land_once_a_second(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        HyperliquidSimulator(seed=3, time_scale=4.0, start_s=22, list_only_simulated=True) as sim,
        running(Hyperliquid(settings_for(sim, SYMBOLS, depth=depth)), redis_client) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols))
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == set(top)
        await until(lambda: set(collector._open) == {"public", "liquidations", "depth-1"})
        await asyncio.sleep(6.0)
        assert collector.health.parse_errors == {}
        assert venue.depth_symbols == set(top)  # the ranking holds: no churn
        # A crossed push: counted and dropped, the next push reports again, no reconnect.
        reconnects = collector.health.reconnects_total
        coin = sorted(top)[0]
        crossed_ms = collector.latest[coin][Kind.BOOK_DEPTH].ts_ms
        sim.cross_book(coin)
        await until(lambda: collector.health.parse_errors.get("orderbook_crossed") == 1)
        await until(lambda: collector.latest[coin][Kind.BOOK_DEPTH].ts_ms > crossed_ms + 1000)
        assert collector.health.reconnects_total == reconnects
        # Another ranking: the depth connection rotates to it (or, on a venue that does not
        # rotate, is closed and opened again at once), the others stay up.
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({"DOGE"}))
        await until(lambda: venue.depth_symbols == {"DOGE"})
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("DOGE", {}))
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        assert set(collector._open) == {"public", "liquidations", "depth-1"}
        assert collector.health.parse_errors == {"orderbook_crossed": 1}

    for symbol in top:
        depths = await stored(redis_client, VENUE, symbol, Kind.BOOK_DEPTH)
        assert len(depths) >= 5, symbol
        assert all(isinstance(d, BookDepth) for d in depths)
        times = [d.ts_ms for d in depths]  # pushes every 0.5 s, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        for d in depths:  # 20 levels of 4 figures: 0.33 % (BTC), 0.67 % (ETH) of mid
            assert [d.exact(side, 2.0) for side in ("bid", "ask")] == [False, False], symbol
            assert 0 < d.bid_usd_0p5 <= d.bid_usd_1 <= d.bid_usd_2
            assert 0 < d.ask_usd_0p5 <= d.ask_usd_1 <= d.ask_usd_2
        if symbol == "BTC":  # in the long cascade: thinner
            assert depths[-1].bid_usd_0p5 < 0.85 * depths[0].bid_usd_0p5, symbol
    assert await stored(redis_client, VENUE, "DOGE", Kind.BOOK_DEPTH)  # the new set's
    assert await stored(redis_client, VENUE, "SOL", Kind.BOOK_DEPTH) == []

    for symbol in SYMBOLS:  # every coin: top of book and traded volume
        tops = await stored(redis_client, VENUE, symbol, Kind.BOOK_TOP)
        assert len(tops) >= 3, symbol
        for t in tops:
            assert isinstance(t, BookTop)
            assert 0 < t.bid_price < t.ask_price
            assert t.bid_usd == pytest.approx(t.bid_base * t.bid_price)  # sizes in coin
            mid = (t.bid_price + t.ask_price) / 2
            assert t.spread_bp == pytest.approx((t.ask_price - t.bid_price) / mid * 1e4)
        volumes = await stored(redis_client, VENUE, symbol, Kind.VOLUME)
        assert len(volumes) >= 3, symbol
        for v in volumes:
            assert isinstance(v, Volume)
            assert v.trades > 0
            mark = sim.market.spec(symbol).price
            for base, usd in (
                (v.taker_buy_base, v.taker_buy_usd),
                (v.taker_sell_base, v.taker_sell_usd),
            ):
                assert base == usd == 0 or 0.5 * mark < usd / base < 1.5 * mark  # coin x price
            assert v.taker_buy_base + v.taker_sell_base > 0
        seconds = [v.ts_ms for v in volumes]
        assert all(b > a for a, b in itertools.pairwise(seconds))  # one event per second
