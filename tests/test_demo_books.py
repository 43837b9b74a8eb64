"""The demo's closing figures show what its deleveraging did to each venue's liquidity: per
venue one followed book (BTC's where it has one), its spread and its depth within 1 % of mid
at the start and at their worst, read back from the real Redis."""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis

from service.demo import books
from service.events import BookDepth, BookTop, Event, Kind
from service.store import keys, reader

T0 = 1_760_000_000_000


def _top(venue: str, symbol: str, i: int, bid: float, ask: float) -> BookTop:
    mid = (bid + ask) / 2
    return BookTop(venue=venue, symbol=symbol, base=symbol[:3], ts_ms=T0 + i * 1000,
                   recv_ms=T0 + i * 1000, bid_price=bid, ask_price=ask, bid_base=1.0,
                   ask_base=1.0, bid_usd=bid, ask_usd=ask,
                   spread_bp=(ask - bid) / mid * 1e4)  # fmt: skip


def _depth(venue: str, symbol: str, i: int, bid_1: float, ask_1: float) -> BookDepth:
    return BookDepth(venue=venue, symbol=symbol, base=symbol[:3], ts_ms=T0 + i * 1000,
                     recv_ms=T0 + i * 1000, mid=100.0, bid_usd_0p5=bid_1 / 2, bid_usd_1=bid_1,
                     bid_usd_2=2 * bid_1, ask_usd_0p5=ask_1 / 2, ask_usd_1=ask_1,
                     ask_usd_2=2 * ask_1, bid_reach_pct=3.0, ask_reach_pct=3.0)  # fmt: skip


async def _store(client: aioredis.Redis, events: list[Event]) -> None:
    for e in events:
        kind = Kind.BOOK_TOP if isinstance(e, BookTop) else Kind.BOOK_DEPTH
        await client.xadd(keys.events(e.venue, e.symbol, kind), {b"e": msgspec.json.encode(e)})


async def test_each_venue_shows_its_btc_book_at_the_start_and_at_its_worst(
    redis_client: aioredis.Redis,
) -> None:
    await _store(redis_client, [
        # bybit: BTC (3 books) is chosen over ETH, whose stream is longer
        _top("bybit", "BTCUSDT", 0, 99.99, 100.01),
        _top("bybit", "BTCUSDT", 1, 99.95, 100.05),
        _top("bybit", "BTCUSDT", 2, 99.97, 100.03),
        _depth("bybit", "BTCUSDT", 0, 1_000_000.0, 900_000.0),
        _depth("bybit", "BTCUSDT", 1, 400_000.0, 500_000.0),
        _depth("bybit", "BTCUSDT", 2, 600_000.0, 600_000.0),
        *(_depth("bybit", "ETHUSDT", i, 1.0, 1.0) for i in range(5)),
        # okx: no BTC book followed: its longest one; no top of book stored for it
        _depth("okx", "SOL-USDT-SWAP", 0, 50_000.0, 50_000.0),
        _depth("okx", "SOL-USDT-SWAP", 1, 30_000.0, 20_000.0),
        _depth("okx", "DOGE-USDT-SWAP", 0, 7.0, 7.0),
        # deribit: a top of book but no book followed: not shown
        _top("deribit", "BTC-PERPETUAL", 0, 99.0, 101.0),
    ])  # fmt: skip
    pairs = [("bybit", "BTCUSDT"), ("bybit", "ETHUSDT"), ("okx", "SOL-USDT-SWAP"),
             ("okx", "DOGE-USDT-SWAP"), ("deribit", "BTC-PERPETUAL")]  # fmt: skip
    lengths = await reader.stream_lengths(
        redis_client, [(v, s, k) for v, s in pairs for k in (Kind.BOOK_TOP, Kind.BOOK_DEPTH)]
    )

    out = await books(redis_client, lengths)

    assert out == {
        "bybit": {
            "symbol": "BTCUSDT",
            "spread_bp": {"start": round(0.02 / 100 * 1e4, 2), "widest": round(0.1 / 100 * 1e4, 2)},
            "depth_1pct_usd": {"start": 1_900_000, "thinnest": 900_000},
        },
        "okx": {
            "symbol": "SOL-USDT-SWAP",
            "spread_bp": None,
            "depth_1pct_usd": {"start": 100_000, "thinnest": 50_000},
        },
    }
