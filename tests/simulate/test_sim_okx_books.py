"""The OKX simulator's ``books`` over a real websocket, read by our real parser: a snapshot
then updates chained by ``prevSeqId`` with a correct checksum, a skipped ``seqId`` it can be
made to send, and books in contracts that value the same for linear and inverse swaps."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator

import pytest
from simkit import collect
from websockets.asyncio.client import connect

from service.config import VenueSettings
from service.events import BookDepth
from service.simulate.market import Quote
from service.venues.base import Instrument
from service.venues.okx.book import OkxBook
from service.venues.okx.simulator import wire
from service.venues.okx.simulator.book_wire import DepthBook
from service.venues.okx.simulator.server import OkxSimulator
from service.venues.okx.venue import Okx, OkxParser, instrument

pytestmark = pytest.mark.integration

VENUE = "okx"


@pytest.fixture
async def okx_sim() -> AsyncIterator[OkxSimulator]:
    """In the long cascade, 10x faster; books every 100 ms."""
    async with OkxSimulator(seed=7, time_scale=10.0, start_s=20) as s:
        yield s


def _markets(sim: OkxSimulator) -> dict[str, Instrument]:
    rows = json.loads(sim.rest.listing)["data"]
    return {r["instId"]: inst for r in rows if (inst := instrument(r)) is not None}


def _subscribe(*inst_ids: str) -> str:
    return json.dumps({"op": "subscribe", "args": [{"channel": "books", "instId": i}
                                                    for i in inst_ids]})  # fmt: skip


async def test_a_snapshot_then_chained_updates_with_their_checksums_give_depth(
    okx_sim: OkxSimulator,
) -> None:
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(_subscribe("BTC-USDT-SWAP"))
        frames = [json.loads(f) for f in await collect(ws, 2.5)]
    ack, snapshot, *updates = frames
    assert ack["event"] == "subscribe"
    assert snapshot["action"] == "snapshot"
    row = snapshot["data"][0]
    assert len(row["bids"]) == len(row["asks"]) == 400
    assert row["prevSeqId"] == -1
    bids = [float(p) for p, *_ in row["bids"]]
    assert bids == sorted(bids, reverse=True)  # best first
    assert updates, "the cascade moves the book"
    chain = [row] + [u["data"][0] for u in updates]
    assert all(b["prevSeqId"] == a["seqId"] for a, b in itertools.pairwise(chain))
    assert all(r["checksum"] != 0 for r in chain)  # the real one: checked by the parser
    parser = OkxParser(VENUE, _markets(okx_sim), None)
    depths = [e for f in frames for e in parser.parse(json.dumps(f), 0)]
    assert not parser.stats.errors  # every checksum matched
    assert 2 <= len(depths) <= 4  # at most one a second (2.5 s of frames)
    d = depths[-1]
    assert isinstance(d, BookDepth)
    assert d.mid == pytest.approx(okx_sim.mark("BTC-USDT-SWAP"), rel=0.01)
    assert all(d.exact(side, 2.0) for side in ("bid", "ask"))  # 400 levels, 1.5 bp apart
    assert 0 < d.bid_usd_0p5 < d.bid_usd_1 < d.bid_usd_2


async def test_a_skipped_seq_id_is_a_gap_and_the_resubscription_heals_it(
    okx_sim: OkxSimulator,
) -> None:
    parser = OkxParser(VENUE, _markets(okx_sim), None)
    venue = Okx(VenueSettings())
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(_subscribe("BTC-USDT-SWAP"))
        for f in await collect(ws, 0.5):
            parser.parse(f, 0)
        okx_sim.book_gap("BTC-USDT-SWAP")
        for f in await collect(ws, 1.0):
            parser.parse(f, 0)
        assert parser.stats.errors["orderbook_gap"] == 1
        assert parser.resync == {"BTC-USDT-SWAP"}
        for message in venue.resubscribe(sorted(parser.resync)):
            await ws.send(message)
        parser.resync.clear()
        frames = await collect(ws, 1.5)
    snapshots = [f for f in frames if '"action":"snapshot"' in f]
    assert len(snapshots) == 1
    depths = [e for f in frames for e in parser.parse(f, 0)]
    assert depths  # the new snapshot's book reports
    errors = parser.stats.errors  # and the updates between the gap and it: unsynced
    assert set(errors) == {"orderbook_gap", "orderbook_delta_before_snapshot"}
    assert errors["orderbook_gap"] == 1  # the new snapshot's book follows


def test_linear_and_inverse_books_in_contracts_value_alike() -> None:
    """The same market as 0.01 BTC contracts and as 100 USD contracts: the same USD a band
    (to the whole contracts' rounding)."""
    q = Quote("BTC-USDT-SWAP", "BTC", 60_000.0, 60_000.0, 0.0001, 25_000.0, spread_bp=0.5)
    linear = wire.Contract("BTC-USDT-SWAP", "BTC-USDT", True, 0.01, 1)
    inverse = wire.Contract("BTC-USD-SWAP", "BTC-USD", False, 100.0, 1)
    insts = {
        "BTC-USDT-SWAP": Instrument(VENUE, "BTC-USDT-SWAP", "BTC", "USDT", True, 0.01),
        "BTC-USD-SWAP": Instrument(VENUE, "BTC-USD-SWAP", "BTC", "USD", False, 100.0),
    }
    parser = OkxParser(VENUE, insts, None)
    out: list[BookDepth] = []
    for contract in (linear, inverse):
        book = DepthBook(contract)
        book.update(q)
        (d,) = parser.parse(book.snapshot(1_700_000_000_000), 0)
        assert isinstance(d, BookDepth)
        out.append(d)
    lin, inv = out
    assert lin.bid_usd_1 == pytest.approx(inv.bid_usd_1, rel=0.02)
    assert lin.ask_usd_2 == pytest.approx(inv.ask_usd_2, rel=0.02)
    assert not parser.stats.errors


def test_the_simulator_checksum_is_the_parsers() -> None:
    q = Quote("ETH-USD-SWAP", "ETH", 3_000.0, 3_000.0, 0.0001, 150_000.0, spread_bp=1.0)
    book = DepthBook(wire.Contract("ETH-USD-SWAP", "ETH-USD", False, 10.0, 2))
    book.update(q)
    row = json.loads(book.snapshot(1))["data"][0]
    ours = OkxBook(0)
    ours.apply_rows(row["bids"], row["asks"])
    assert ours.checksum() == row["checksum"] == book.checksum()
    assert DepthBook(book.contract, checksums=False).checksum() == 0
