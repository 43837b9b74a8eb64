"""The Bitget simulator's v2 ``books15`` over real websockets, read by our real parser: the
service's depth connection is acked in v2's words, every push is a whole 15-level book, the
depth comes once a second with the 0.5 % band complete and the wider ones flagged, and the
book thins with the market's depth multiplier."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from simkit import collect, session
from websockets.asyncio.client import connect

from service.config import VenueSettings
from service.events import BookDepth
from service.simulate.market import Quote
from service.venues.base import Instrument
from service.venues.bitget.instruments import parse_contracts
from service.venues.bitget.simulator import book_wire, wire
from service.venues.bitget.simulator.server import BitgetSimulator
from service.venues.bitget.venue import Bitget, BitgetParser

pytestmark = pytest.mark.integration

VENUE = "bitget"
BOOK = {"instType": "USDT-FUTURES", "channel": "books15", "instId": "BTCUSDT"}


def _markets() -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for pt in wire.PRODUCT_TYPES:
        out.update((i.symbol, i) for i in parse_contracts(wire.load_contracts(pt), pt))
    return out


@pytest.fixture
async def sim() -> AsyncIterator[BitgetSimulator]:
    """The default scenario, 10x faster, already in the long cascade."""
    async with BitgetSimulator(seed=5, time_scale=10.0, start_s=22) as s:
        yield s


async def test_the_service_depth_connection_gets_whole_books_and_a_depth_a_second(
    sim: BitgetSimulator,
) -> None:
    markets = _markets()
    venue = Bitget(VenueSettings(ws_url=sim.ws_base_url, symbols=["BTCUSDT", "ETHUSD"]))
    venue.depth_symbols = frozenset({"BTCUSDT", "ETHUSD"})
    (conn,) = [c for c in venue.connections(markets) if c.name.startswith("depth")]
    assert conn.url.endswith("/v2/ws/public")
    frames = await session(conn, 2.6)
    acks = [json.loads(f) for f in frames if '"event"' in f]
    assert [a["arg"] for a in acks] == [
        BOOK,
        {"instType": "COIN-FUTURES", "channel": "books15", "instId": "ETHUSD"},
    ]
    pushes = [json.loads(f) for f in frames if '"action"' in f]
    btc = [p for p in pushes if p["arg"] == BOOK]
    assert len(btc) >= 12  # one at subscription, then every 150 ms
    for p in btc:
        (row,) = p["data"]
        assert p["action"] == "snapshot"
        assert len(row["bids"]) == len(row["asks"]) == 15
        bids, asks = [float(x) for x, _ in row["bids"]], [float(x) for x, _ in row["asks"]]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert bids[0] < asks[0]
    parser = BitgetParser(VENUE, markets, {"BTCUSDT", "ETHUSD"})
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    depths = [e for e in events if isinstance(e, BookDepth) and e.symbol == "BTCUSDT"]
    assert 2 <= len(depths) <= 4  # at most one a second (2.6 s of pushes)
    d = depths[-1]
    assert d.mid == pytest.approx(sim.mark("BTCUSDT"), rel=0.01)
    # 15 levels 5 bp apart: about 0.7 % of mid; the 1 and 2 % bands are lower bounds.
    assert d.exact("bid", 0.5)
    assert d.exact("ask", 0.5)
    assert not d.exact("bid", 1.0)
    assert not d.exact("ask", 1.0)
    assert 0 < d.bid_usd_0p5 < d.bid_usd_1 == d.bid_usd_2
    assert any(isinstance(e, BookDepth) and e.symbol == "ETHUSD" for e in events)


async def test_books_are_served_on_the_v2_endpoint_only_and_unsubscribe_stops_them(
    sim: BitgetSimulator,
) -> None:
    v2 = sim.ws_base_url.replace("/v3/ws/public", "/v2/ws/public")
    async with connect(sim.ws_base_url) as ws:  # v3: no books15
        await ws.send(json.dumps({"op": "subscribe", "args": [BOOK]}))
        (error,) = [json.loads(f) for f in await collect(ws, 0.5)]
    assert (error["event"], error["code"]) == ("error", "30001")
    async with connect(v2) as ws:
        ticker = {"instType": "USDT-FUTURES", "channel": "ticker", "instId": "BTCUSDT"}
        await ws.send(json.dumps({"op": "subscribe", "args": [ticker, BOOK]}))
        first = [json.loads(f) for f in await collect(ws, 0.5)]
        assert first[0]["event"] == "error"  # v2 here serves the books alone
        assert first[1] == {"event": "subscribe", "arg": BOOK, "connId": first[1]["connId"]}
        assert sum(1 for f in first if f.get("action") == "snapshot") >= 2
        await ws.send(json.dumps({"op": "unsubscribe", "args": [BOOK]}))
        later = [json.loads(f) for f in await collect(ws, 0.6)]
    unsub = later.index(next(f for f in later if f.get("event") == "unsubscribe"))
    assert not [f for f in later[unsub + 1 :] if "action" in f]


def test_a_book_thins_with_the_market_depth() -> None:
    contract = wire.Contract("BTCUSDT", "usdt-futures", 1, 0.1, 0.001, 8.0)
    calm = Quote("BTCUSDT", "BTC", 60_000.0, 60_000.0, 0.0001, 40_000.0, 1.0, 1.0)
    thin = Quote("BTCUSDT", "BTC", 60_000.0, 60_000.0, 0.0001, 40_000.0, 1.0, 0.3)
    (calm_bids, _), (thin_bids, _) = (book_wire.levels(q, contract, 15) for q in (calm, thin))
    assert [p for p, _ in calm_bids] == [p for p, _ in thin_bids]
    assert float(calm_bids[0][1]) == pytest.approx(40_000.0 * book_wire.LEVEL_SIZE_OF_OI)
    assert float(thin_bids[0][1]) == pytest.approx(0.3 * float(calm_bids[0][1]))
    step = float(calm_bids[0][0]) - float(calm_bids[1][0])
    assert step == pytest.approx(60_000.0 * book_wire.LEVEL_STEP_BP / 10_000)
