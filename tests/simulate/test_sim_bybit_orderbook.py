"""The Bybit simulator's ``orderbook.{depth}.{symbol}`` over real websockets, read by our real
parser: a snapshot then deltas in sequence, a gap it can be made to skip, and a book that
thins with the market's depth multiplier."""

from __future__ import annotations

import json

import pytest
from simkit import bybit_instruments, collect
from websockets.asyncio.client import connect

from service.config import VenueSettings
from service.events import BookDepth
from service.simulate.market import Quote
from service.venues.base import Instrument
from service.venues.bybit.simulator import wire
from service.venues.bybit.simulator.book_wire import DepthBook
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.bybit.venue import Bybit, BybitParser

pytestmark = pytest.mark.integration

VENUE = "bybit"
TOPIC = "orderbook.200.BTCUSDT"


def _subscribe(*topics: str, op: str = "subscribe") -> str:
    return json.dumps({"req_id": "t", "op": op, "args": list(topics)})


async def test_a_snapshot_then_deltas_in_sequence_give_depth_once_a_second(
    bybit_sim: BybitSimulator,
) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        await ws.send(_subscribe(TOPIC))
        frames = [json.loads(f) for f in await collect(ws, 2.5)]
    ack, snapshot, *deltas = frames
    assert ack["success"] is True
    assert (snapshot["topic"], snapshot["type"]) == (TOPIC, "snapshot")
    assert len(snapshot["data"]["b"]) == len(snapshot["data"]["a"]) == 200
    bids = [float(p) for p, _ in snapshot["data"]["b"]]
    assert bids == sorted(bids, reverse=True)  # best first
    assert deltas, "the cascade moves the book"
    us = [snapshot["data"]["u"]] + [d["data"]["u"] for d in deltas]
    assert us == list(range(us[0], us[0] + len(us)))  # u: a sequence
    parser = BybitParser(VENUE, bybit_instruments(), None)
    depths = [e for f in frames for e in parser.parse(json.dumps(f), 0)]
    assert not parser.stats.errors
    assert 2 <= len(depths) <= 4  # at most one a second (2.5 s of frames)
    d = depths[-1]
    assert isinstance(d, BookDepth)
    assert d.mid == pytest.approx(bybit_sim.mark("BTCUSDT"), rel=0.01)
    assert all(d.exact(side, 2.0) for side in ("bid", "ask"))  # 200 levels, 1.5 bp apart
    assert 0 < d.bid_usd_0p5 < d.bid_usd_1 < d.bid_usd_2


async def test_a_skipped_update_is_a_gap_and_the_resubscription_heals_it(
    bybit_sim: BybitSimulator,
) -> None:
    parser = BybitParser(VENUE, bybit_instruments(), None)
    venue = Bybit(VenueSettings())
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        await ws.send(_subscribe(TOPIC))
        for f in await collect(ws, 0.5):
            parser.parse(f, 0)
        bybit_sim.book_gap("BTCUSDT")
        for f in await collect(ws, 1.0):
            parser.parse(f, 0)
        assert parser.stats.errors["orderbook_gap"] == 1
        assert parser.resync == {"BTCUSDT"}
        for message in venue.resubscribe(sorted(parser.resync)):
            await ws.send(message)
        parser.resync.clear()
        frames = await collect(ws, 1.0)
    snapshots = [f for f in frames if '"type":"snapshot"' in f]
    assert len(snapshots) == 1
    depths = [e for f in frames for e in parser.parse(f, 0)]
    assert depths  # the new snapshot's book reports (a second after the last report at most)
    assert parser.stats.errors["orderbook_gap"] == 1  # and no more gaps after it


def test_the_book_thins_with_the_depth_multiplier_and_moves_only_what_changed() -> None:
    contract = wire.Contract("BTCUSDT", "linear", 0.1, 2, 3, 8.0)
    calm = Quote("BTCUSDT", "BTC", 90_000.0, 90_000.0, 0.0001, 50_000.0, spread_bp=0.5)
    book = DepthBook(contract, 200)
    first = book.update(calm)
    assert first is not None
    assert len(first[0]) == len(first[1]) == 200
    assert book.update(calm) is None  # the same quote: no delta, u unchanged
    assert book.u == 1
    thin = Quote("BTCUSDT", "BTC", 90_000.0, 90_000.0, 0.0001, 50_000.0, spread_bp=2.0, depth=0.4)
    assert book.update(thin) is not None
    markets = {"BTCUSDT": Instrument(VENUE, "BTCUSDT", "BTC", "USDT", linear=True)}
    parser = BybitParser(VENUE, markets, None)
    fresh = DepthBook(contract, 200)
    fresh.update(calm)
    calm_depth = parser.parse(fresh.snapshot(1_700_000_000_000), 0)
    fresh.update(thin)
    thin_depth = parser.parse(fresh.snapshot(1_700_000_001_000), 0)
    (c,), (t,) = calm_depth, thin_depth
    assert isinstance(c, BookDepth)
    assert isinstance(t, BookDepth)
    assert t.bid_usd_1 == pytest.approx(c.bid_usd_1 * 0.4, rel=0.05)  # sizes to two digits
