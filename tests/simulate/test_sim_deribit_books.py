"""The Deribit simulator's ``book.{instrument}.100ms`` over a real websocket, read by our real
parser: the whole book (every level ``new``), then ``change`` notifications chained by
``prev_change_id`` whose ``new``/``change``/``delete`` rows keep the parser's book equal to the
simulator's, a skipped ``change_id`` it can be made to send and the resubscription that heals
it, and books in USD (inverse) and coin (linear) that value alike."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from simkit import collect, listed_markets
from websockets.asyncio.client import connect

from service.config import VenueSettings
from service.events import BookDepth
from service.simulate.market import Quote
from service.venues.base import Instrument
from service.venues.deribit.simulator import wire
from service.venues.deribit.simulator.book_wire import LEVELS, DepthBook
from service.venues.deribit.simulator.server import DeribitSimulator
from service.venues.deribit.venue import Deribit, DeribitParser

pytestmark = pytest.mark.integration

VENUE = "deribit"
CHANNEL = "book.BTC-PERPETUAL.100ms"


@pytest.fixture
async def sim() -> AsyncIterator[DeribitSimulator]:
    """In the long cascade, 10x faster; books every 100 ms."""
    async with DeribitSimulator(seed=7, time_scale=10.0, start_s=20) as s:
        yield s


def _subscribe(req_id: int, *channels: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": req_id, "method": "public/subscribe",
                       "params": {"channels": list(channels)}})  # fmt: skip


def _data(frames: list[str]) -> list[dict[str, Any]]:
    return [m["params"]["data"] for f in frames if "params" in (m := json.loads(f))]


async def test_a_snapshot_then_chained_changes_keep_the_parsers_book_the_simulators(
    sim: DeribitSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_subscribe(1, CHANNEL))
        frames = await collect(ws, 2.5)
    assert json.loads(frames[0])["result"] == [CHANNEL]
    snapshot, *changes = _data(frames)
    assert snapshot["type"] == "snapshot"
    assert "prev_change_id" not in snapshot
    assert len(snapshot["bids"]) == len(snapshot["asks"]) == LEVELS
    assert {r[0] for r in snapshot["bids"] + snapshot["asks"]} == {"new"}
    bids = [p for _, p, _ in snapshot["bids"]]
    assert bids == sorted(bids, reverse=True)  # best first
    assert changes, "the cascade moves the book"
    chain = [snapshot, *changes]
    assert all(b["prev_change_id"] == a["change_id"] for a, b in itertools.pairwise(chain))
    actions = {r[0] for c in changes for r in c["bids"] + c["asks"]}
    assert actions <= {"new", "change", "delete"}
    assert "delete" in actions  # the best prices moved
    assert all(r[2] == 0 for c in changes for r in c["bids"] + c["asks"] if r[0] == "delete")
    parser = DeribitParser(VENUE, await listed_markets(Deribit, sim), None)
    depths = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    assert 2 <= len(depths) <= 4  # at most one a second (2.5 s of frames)
    d = depths[-1]
    assert isinstance(d, BookDepth)
    assert d.mid == pytest.approx(sim.mark("BTC-PERPETUAL"), rel=0.01)
    assert all(d.exact(side, 2.0) for side in ("bid", "ask"))  # 200 levels, 1.5 bp apart
    # The parser's book is the simulator's, level for level (every delete and new applied).
    grid = sim.depth_books["BTC-PERPETUAL"].grid
    assert grid is not None
    book = parser.books["BTC-PERPETUAL"]
    assert book.bids == {float(p): float(q) for p, q in grid.bids.items()}
    assert book.asks == {float(p): float(q) for p, q in grid.asks.items()}


async def test_a_skipped_change_id_is_a_gap_and_the_resubscription_heals_it(
    sim: DeribitSimulator,
) -> None:
    parser = DeribitParser(VENUE, await listed_markets(Deribit, sim), None)
    venue = Deribit(VenueSettings())
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_subscribe(1, CHANNEL))
        for f in await collect(ws, 0.5):
            parser.parse(f, 0)
        sim.book_gap("BTC-PERPETUAL")
        for f in await collect(ws, 1.0):
            parser.parse(f, 0)
        assert parser.stats.errors["orderbook_gap"] == 1
        assert parser.resync == {"BTC-PERPETUAL"}
        for message in venue.resubscribe(sorted(parser.resync)):
            await ws.send(message)
        parser.resync.clear()
        frames = await collect(ws, 1.5)
    assert [d["type"] for d in _data(frames)].count("snapshot") == 1
    depths = [e for f in frames for e in parser.parse(f, 0)]
    assert depths  # the new snapshot's book reports
    errors = parser.stats.errors  # and the changes between the gap and it: unsynced
    assert set(errors) <= {"orderbook_gap", "orderbook_delta_before_snapshot"}
    assert errors["orderbook_gap"] == 1  # the new snapshot's book follows
    assert sim.reused_request_ids == 0


def test_inverse_usd_and_linear_coin_books_value_alike() -> None:
    """The same market as USD amounts (10 USD steps) and as coin amounts (0.001 BTC steps):
    the same USD a band, to the steps' rounding."""
    q = Quote("BTC-PERPETUAL", "BTC", 60_000.0, 60_000.0, 0.0001, 18_000.0, spread_bp=0.5)
    inverse = wire.Contract("BTC-PERPETUAL", "BTC", False, 10.0, 0.5)
    linear = wire.Contract("BTC_USDC-PERPETUAL", "BTC", True, 0.001, 1.0)
    insts = {
        c.name: Instrument(VENUE, c.name, "BTC", "USD", c.linear, 1.0) for c in (inverse, linear)
    }
    parser = DeribitParser(VENUE, insts, None)
    out: list[BookDepth] = []
    for contract in (inverse, linear):
        book = DepthBook(contract)
        book.update(q)
        (d,) = parser.parse(book.snapshot(f"book.{contract.name}.100ms", 1_700_000_000_000), 0)
        assert isinstance(d, BookDepth)
        out.append(d)
    inv, lin = out
    assert lin.bid_usd_1 == pytest.approx(inv.bid_usd_1, rel=0.02)
    assert lin.ask_usd_2 == pytest.approx(inv.ask_usd_2, rel=0.02)
    assert not parser.stats.errors
