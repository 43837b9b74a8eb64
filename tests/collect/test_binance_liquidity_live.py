"""The collector's liquidity channels on Binance USDⓈ-M and COIN-M against their simulators,
writing to the real Redis: the top N by open interest get a diff depth connection of their
own, kept against REST snapshots, their depth stored once a second and thinning through the
simulated cascade; a gap in a book's ``pu`` chain is counted and healed by a new snapshot
without a reconnect; every symbol's top of book (``!bookTicker``) and traded volume
(``aggTrade``) are stored."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis
from harness import (
    a_book_gap_heals,
    running,
    settings_for,
    stored,
    top_by_open_interest,
    until,
)

from service.collect import collector as collector_module
from service.config import DepthSettings
from service.events import BookDepth, BookTop, Kind, Volume
from service.venues.binance.coinm import BinanceCoinm
from service.venues.binance.simulator.coinm import COINM_SYMBOLS, BinanceCoinmSimulator
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.usdm import BinanceUsdm

pytestmark = pytest.mark.integration

USDM_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]


async def test_usdm_books_of_the_top_n_are_stored_once_a_second_and_heal_a_gap(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=2, rerank_s=1.0)
    async with (
        BinanceUsdmSimulator(seed=3, time_scale=4.0, start_s=22, list_only_simulated=True) as sim,
        running(
            BinanceUsdm(
                settings_for(sim, USDM_SYMBOLS, depth=depth, oi_poll_weight_per_minute=2400)
            ),
            redis_client,
        ) as collector,
    ):
        venue = collector.venue
        await until(lambda: len(venue.depth_symbols) == 2, within=20)
        top = top_by_open_interest(collector, 2)
        assert venue.depth_symbols == top
        await until(
            lambda: (
                set(collector._open) == {"market", "liquidations", "book-top", "trades-1", "depth"}
            )
        )
        btc = "BTCUSDT"
        assert btc in top
        gap_ms = await a_book_gap_heals(collector, sim, btc)
        assert collector.health.rest_failures == {}
        await asyncio.sleep(3.0)
        # Another ranking: the depth connection rotates to it (or, on a venue that does not
        # rotate, is closed and opened again at once), the others stay up.
        reconnects = collector.health.reconnects_total
        monkeypatch.setattr(collector_module, "rank", lambda *_: frozenset({"DOGEUSDT"}))
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get("DOGEUSDT", {}), within=20)
        assert collector.health.reconnects_total == reconnects  # resubscribed: not a reconnect
        # USDⓈ-M's !bookTicker pushes every 5 s (venue time): wait for a later top of BTC
        first_ms = collector.latest[btc][Kind.BOOK_TOP].ts_ms
        await until(lambda: collector.latest[btc][Kind.BOOK_TOP].ts_ms >= first_ms + 5000)
        errors = dict(collector.health.parse_errors)
    assert errors == {"orderbook_gap": 1}

    for symbol in top:
        depths = await stored(redis_client, "binance_usdm", symbol, Kind.BOOK_DEPTH)
        assert len(depths) >= 4, symbol
        assert all(isinstance(d, BookDepth) for d in depths)
        times = [d.ts_ms for d in depths]  # diffs every 500 ms, reported once a second
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
        for d in depths:  # the simulated 200 levels reach about 3 % of mid
            assert [d.exact(side, 2.0) for side in ("bid", "ask")] == [True, True], symbol
            assert 0 < d.bid_usd_0p5 < d.bid_usd_1 < d.bid_usd_2
    btc_depths = await stored(redis_client, "binance_usdm", btc, Kind.BOOK_DEPTH)
    assert any(d.ts_ms > gap_ms + 1000 for d in btc_depths)  # it follows again
    assert btc_depths[-1].bid_usd_1 < 0.85 * btc_depths[0].bid_usd_1  # the cascade thins it
    assert await stored(redis_client, "binance_usdm", "DOGEUSDT", Kind.BOOK_DEPTH)
    for symbol in USDM_SYMBOLS:
        tops = await stored(redis_client, "binance_usdm", symbol, Kind.BOOK_TOP)
        assert tops, symbol
        assert all(isinstance(t, BookTop) for t in tops), symbol
        assert all(b.ts_ms - a.ts_ms >= 1000 for a, b in itertools.pairwise(tops)), symbol
        assert all(t.bid_price < t.ask_price and t.bid_usd > 0 for t in tops), symbol
        volumes = await stored(redis_client, "binance_usdm", symbol, Kind.VOLUME)
        assert volumes, symbol
        assert all(isinstance(v, Volume) for v in volumes), symbol
        assert sum(v.taker_buy_usd for v in volumes) > 0, symbol  # the calm tape: both
        assert sum(v.taker_sell_usd for v in volumes) > 0, symbol
        assert all(b.ts_ms > a.ts_ms for a, b in itertools.pairwise(volumes)), symbol
    btc_tops = await stored(redis_client, "binance_usdm", btc, Kind.BOOK_TOP)
    assert btc_tops[-1].spread_bp > btc_tops[0].spread_bp  # the cascade widens it


async def test_coinm_books_tops_and_volume_are_valued_in_contracts(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(collector_module, "FIRST_RANK_S", 0.2)
    depth = DepthSettings(top_n=1, rerank_s=1.0)
    symbols = list(COINM_SYMBOLS)
    async with (
        BinanceCoinmSimulator(seed=3, time_scale=4.0, start_s=22, list_only_simulated=True) as sim,
        running(
            BinanceCoinm(settings_for(sim, symbols, depth=depth, oi_poll_weight_per_minute=2400)),
            redis_client,
        ) as collector,
    ):
        venue = collector.venue
        await until(lambda: bool(venue.depth_symbols), within=20)
        (book,) = venue.depth_symbols
        await until(lambda: Kind.BOOK_DEPTH in collector.latest.get(book, {}), within=20)
        await until(lambda: all(Kind.VOLUME in collector.latest.get(s, {}) for s in symbols))
        await until(lambda: all(Kind.BOOK_TOP in collector.latest.get(s, {}) for s in symbols))
        quote = {s: sim.market.quote(s) for s in symbols}
        errors = dict(collector.health.parse_errors)
    assert errors == {}
    for symbol in symbols:
        (top,) = (await stored(redis_client, "binance_coinm", symbol, Kind.BOOK_TOP))[-1:]
        size = sim.contracts[symbol].contract_size
        # Whole contracts of contractSize USD at each side: USD a multiple of the size.
        assert top.bid_usd % size == pytest.approx(0.0, abs=1e-6), symbol
        assert top.bid_base == pytest.approx(top.bid_usd / top.bid_price), symbol
        assert top.bid_price < quote[symbol].mark * 1.05
    depths = await stored(redis_client, "binance_coinm", book, Kind.BOOK_DEPTH)
    assert depths
    assert all(d.bid_usd_0p5 > 0 and d.ask_usd_0p5 > 0 for d in depths)
