"""The Hyperliquid simulator's liquidity channels over real websockets, read by our real parser:
the service's ``bbo`` and ``trades`` on the public connection and its ``l2Book`` (4 significant
figures) on the depth connection are acked, every ``l2Book`` push is a whole 20-level book on
the aggregated grid, the parser gets tops, volume and a depth a second from them; a deleveraging
quote widens the spread and thins every level."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from simkit import collect, session
from websockets.asyncio.client import connect

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth, BookTop, Volume
from service.simulate.market import Quote
from service.venues._volume import Volumes
from service.venues.hyperliquid.simulator import book_wire
from service.venues.hyperliquid.simulator.server import HyperliquidSimulator
from service.venues.hyperliquid.simulator.wire import HL_SYMBOLS
from service.venues.hyperliquid.venue import Hyperliquid, HyperliquidParser, parse_meta

pytestmark = pytest.mark.integration

VENUE = "hyperliquid"


@pytest.fixture
async def sim() -> AsyncIterator[HyperliquidSimulator]:
    """The default scenario, 10x faster, already in the long cascade."""
    async with HyperliquidSimulator(seed=5, time_scale=10.0, start_s=22) as s:
        yield s


def _sub(**subscription: Any) -> str:
    return json.dumps({"method": "subscribe", "subscription": subscription})


async def test_the_service_connections_get_tops_trades_and_whole_books(
    sim: HyperliquidSimulator,
) -> None:
    markets = {i.symbol: i for i in parse_meta(sim.rest.meta)}
    settings = VenueSettings(
        ws_url=sim.ws_base_url, symbols=list(HL_SYMBOLS), depth=DepthSettings(top_n=2)
    )
    venue = Hyperliquid(settings)
    venue.depth_symbols = frozenset({"BTC", "SOL"})
    public, _, depth = venue.connections(markets)
    parser = HyperliquidParser(VENUE, markets, set(HL_SYMBOLS))
    parser.volumes = Volumes(VENUE)
    parser.state_every_ms = 0  # every top, the last one kept
    frames = await session(public, 2.6)
    now = int(time.time() * 1000)
    events = [e for f in frames for e in parser.parse(f, now)]
    events += parser.flush_volumes(now)
    tops = {e.symbol: e for e in events if isinstance(e, BookTop)}
    assert set(tops) == set(HL_SYMBOLS)
    for coin, t in tops.items():
        assert t.bid_price < t.ask_price
        assert (t.bid_price + t.ask_price) / 2 == pytest.approx(sim.mark(coin), rel=0.01)
        assert t.bid_base > 0
    volumes = [e for e in events if isinstance(e, Volume)]
    assert {v.symbol for v in volumes} == set(HL_SYMBOLS)

    frames = await session(depth, 2.6)
    acks = [json.loads(f) for f in frames if "subscriptionResponse" in f]
    assert [a["data"]["subscription"] for a in acks] == [
        {"type": "l2Book", "coin": "BTC", "nSigFigs": 4},
        {"type": "l2Book", "coin": "SOL", "nSigFigs": 4},
    ]
    books = [json.loads(f)["data"] for f in frames if '"l2Book"' in f and "levels" in f]
    btc = [b for b in books if b["coin"] == "BTC"]
    assert len(btc) >= 5  # one at subscription, then every 0.5 s
    for b in btc:
        bids, asks = ([float(x["px"]) for x in side] for side in b["levels"])
        assert len(bids) == len(asks) == 20
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert bids[0] < asks[0]
        assert all(p % 10 == 0 for p in bids + asks)  # 4 figures of ~60,000: 10 USD apart
        assert bids[0] - bids[-1] == asks[-1] - asks[0] == 19 * 10
    events = [e for f in frames for e in parser.parse(f, now)]
    assert not parser.stats.errors
    depths = [e for e in events if isinstance(e, BookDepth) and e.symbol == "BTC"]
    assert 2 <= len(depths) <= 4  # at most one a second (2.6 s of pushes)
    d = depths[-1]
    assert d.mid == pytest.approx(sim.mark("BTC"), rel=0.01)
    # 20 levels 10 USD apart: 0.32 % of mid beyond the half spread, every band a lower bound
    assert d.bid_reach_pct < 0.5
    assert not d.exact("bid", 0.5)
    assert not d.exact("ask", 0.5)
    assert any(isinstance(e, BookDepth) and e.symbol == "SOL" for e in events)


async def test_book_precisions_are_checked_and_unsubscribe_stops_the_book(
    sim: HyperliquidSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_sub(type="l2Book", coin="BTC", nSigFigs=7))
        await ws.send(_sub(type="l2Book", coin="BTC", nSigFigs=5, mantissa=2))
        await ws.send(_sub(type="bbo", coin="NOPE"))
        refused = [json.loads(f) for f in await collect(ws, 0.4)]
        assert [f["channel"] for f in refused] == ["error"] * 3
        await ws.send(_sub(type="l2Book", coin="ETH"))  # full precision: the venue's ticks
        first = [json.loads(f) for f in await collect(ws, 1.2)]
        pushes = [f["data"] for f in first if f["channel"] == "l2Book"]
        assert len(pushes) >= 2
        bids = [float(x["px"]) for x in pushes[-1]["levels"][0]]
        assert bids[0] - bids[1] == pytest.approx(0.1)  # ETH at 3,000: 5 figures
        unsub = {"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "ETH"}}
        await ws.send(json.dumps(unsub))
        later = [json.loads(f) for f in await collect(ws, 1.2)]
    end = later.index(next(f for f in later if f["channel"] == "subscriptionResponse"))
    assert not [f for f in later[end + 1 :] if f["channel"] == "l2Book"]


def test_a_deleveraging_quote_widens_the_spread_and_thins_every_level() -> None:
    calm = Quote("BTC", "BTC", 60_000.0, 60_000.0, 0.0001, 25_000.0, 1.0, 1.0)
    stressed = Quote("BTC", "BTC", 60_000.0, 60_000.0, 0.0001, 25_000.0, 8.0, 0.3)
    tops = [book_wire.bbo_levels(q, 5) for q in (calm, stressed)]
    spreads = [float(ask) - float(bid) for bid, ask, _ in tops]
    assert spreads[1] > 4 * spreads[0]
    books = [book_wire.WholeBook("BTC", 5, 4).levels(q) for q in (calm, stressed)]
    calm_bids, thin_bids = books[0][0], books[1][0]
    width_bp = 10 / 60_000 * 10_000  # one 4-figure level of 60,000: 10 USD
    assert float(calm_bids[0][1]) == pytest.approx(
        25_000 * book_wire.SIZE_OF_OI_PER_BP * width_bp, rel=1e-4
    )
    assert float(thin_bids[0][1]) == pytest.approx(0.3 * float(calm_bids[0][1]), rel=1e-3)
    assert float(thin_bids[0][0]) <= float(calm_bids[0][0])


def test_prices_and_levels_follow_the_venues_grid() -> None:
    assert book_wire.tick(60_000.0, 5) == 1.0  # an integer price is always allowed
    assert book_wire.tick(3_000.0, 4) == pytest.approx(0.1)  # 5 significant figures
    assert book_wire.tick(0.01, 0) == pytest.approx(1e-6)  # kPEPE: at most 6 decimals
    assert book_wire.bucket(60_000.0, 5, 4) == 10.0
    assert book_wire.bucket(150.0, 2, 4) == pytest.approx(0.1)
    assert book_wire.bucket(60_000.0, 5, None) == 1.0
