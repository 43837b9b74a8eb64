"""The Gate futures simulator over real websockets and HTTP on loopback, read by our real
venue code."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from simkit import assert_aborted, collect, listed_markets, refused_status, session
from websockets.asyncio.client import ClientConnection, connect

from service.config import VenueSettings
from service.events import (
    BookTop,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
)
from service.simulate.clock import MarketClock
from service.simulate.market import Market
from service.simulate.scenario import get_scenario
from service.venues._volume import Volumes
from service.venues.base import Instrument, now_ms
from service.venues.gateio.instruments import parse_contracts
from service.venues.gateio.simulator import wire
from service.venues.gateio.simulator.server import GateSimulator
from service.venues.gateio.venue import Gate, GateParser

pytestmark = pytest.mark.integration

VENUE = "gateio"
SYMBOLS = list(wire.GATE_SYMBOLS)


def _markets() -> dict[str, Instrument]:
    """The contracts of the served lists, as the service builds them."""
    out: dict[str, Instrument] = {}
    for settle in wire.SETTLES:
        out.update((c.symbol, c) for c in parse_contracts(wire.load_contracts(settle), settle))
    return out


@pytest.fixture
async def sim() -> AsyncIterator[GateSimulator]:
    """The default scenario, 10x faster, already in the long cascade; tickers every 200 ms."""
    async with GateSimulator(seed=5, time_scale=10.0, start_s=22, push_interval_s=0.2) as s:
        yield s


def _request(channel: str, payload: list[str], event: str = "subscribe") -> str:
    return json.dumps({"time": 1, "channel": channel, "event": event, "payload": payload})


async def _updates(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    frames = [json.loads(f) for f in await collect(ws, seconds)]
    return [f for f in frames if f.get("event") == "update"]


async def _answer(ws: ClientConnection) -> dict[str, Any]:
    """The next answer to a request: the updates of a book already subscribed keep coming
    (every 100 ms) and may arrive before it."""
    async with asyncio.timeout(5):
        while (frame := json.loads(await ws.recv())).get("event") == "update":
            pass
    return frame


async def test_the_service_subscription_is_acked_and_every_push_parses(
    sim: GateSimulator,
) -> None:
    markets = _markets()
    venue = Gate(VenueSettings(ws_url=sim.ws_base_url, symbols=SYMBOLS))
    conns = venue.connections(markets)
    names = ["usdt-1", "usdt-liquidations", "btc-1", "btc-liquidations"]
    assert [c.name for c in conns] == names
    received = await asyncio.gather(*(session(c, 1.5) for c in conns))
    sessions = dict(zip(names, received, strict=True))
    frames = [f for fs in sessions.values() for f in fs]
    acks = [json.loads(f) for f in frames if '"subscribe"' in f]
    assert len(acks) == 8  # liquidations, tickers, book tickers and trades, per settlement
    for name, got in sessions.items():  # the liquidations alone on their quiet connection
        channels = {json.loads(f)["channel"] for f in got}
        quiet = name.endswith("-liquidations")
        assert (channels == {wire.LIQUIDATES}) if quiet else (wire.LIQUIDATES not in channels)
    assert any(wire.LIQUIDATES in f and '"update"' in f for f in sessions["usdt-liquidations"])
    assert all(a["result"] == {"status": "success"} for a in acks)
    parser = GateParser(VENUE, markets, set(SYMBOLS))
    parser.state_every_ms = 0
    parser.volumes = Volumes(VENUE)
    recv = now_ms()  # after every frame (a print ahead of it is dropped)
    events = [e for f in frames for e in parser.parse(f, recv)]
    events += parser.flush_volumes(recv)
    assert not parser.stats.errors
    for symbol in SYMBOLS:
        mine = [e for e in events if e.symbol == symbol]
        top = next(e for e in reversed(mine) if isinstance(e, BookTop))
        assert top.bid_price < sim.mark(symbol) * 1.01 < top.ask_price * 1.02
        assert any(isinstance(e, Volume) and e.trades >= 2 for e in mine)
        mark = next(e for e in reversed(mine) if isinstance(e, MarkPrice))
        oi = next(e for e in reversed(mine) if isinstance(e, OpenInterest))
        funding = next(e for e in reversed(mine) if isinstance(e, FundingRate))
        assert mark.mark_price == pytest.approx(sim.mark(symbol), rel=0.01)
        assert oi.oi_base == pytest.approx(sim.oi_base(symbol), rel=0.01)
        assert funding.interval_h == (4.0 if symbol == "DOGE_USDT" else 8.0)
        assert funding.next_funding_ms is not None
        assert funding.next_funding_ms % int(funding.interval_h * 3_600_000) == 0
        assert 0 < funding.next_funding_ms - funding.ts_ms <= funding.interval_h * 3_600_000
    btc_usd = next(e for e in events if isinstance(e, OpenInterest) and e.symbol == "BTC_USD")
    assert btc_usd.oi_usd == btc_usd.oi_contracts  # 1 USD contracts
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert liqs
    assert not any(x.sampled for x in liqs)  # the current format is complete
    assert all(x.side is Side.LONG for x in liqs if x.base == "BTC")  # the long cascade


async def test_the_current_format_sends_every_liquidation_in_batches_of_at_most_20(
    sim: GateSimulator,
) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.LIQUIDATES, ["!all"]))
        start = len(sim.prints)
        pushes = await _updates(ws, 2.5)
        # What the simulator made so far, less what waits for its next flush, was sent: the
        # frames already on their way are read next. (Not by timestamps: under load the
        # clock may make a print stamped before the last flush only after it.)
        end, unsent = len(sim.prints), {id(p) for p in sim.unsent()}
        pushes += await _updates(ws, 0.5)
    rows = [r for p in pushes for r in p["result"]]
    assert all(len(p["result"]) <= wire.BATCH_MAX for p in pushes)
    assert all(len({r["contract"] for r in p["result"]}) == 1 for p in pushes)
    assert all(r["time"] > 10**12 and isinstance(r["size"], int) for r in rows)  # ms, integer
    usdt = {s for s, c in sim.contracts.items() if c.settle == "usdt"}
    sent = {(r["contract"], r["time"], r["size"]) for r in rows}
    # Every liquidation of the USDT contracts made in the window and flushed was sent.
    made = [p for p in sim.prints[start:end] if p.symbol in usdt]
    middle = [p for p in made if id(p) not in unsent]
    assert len(middle) > 40
    assert len(made) - len(middle) <= len(made) // 2  # one flush interval's worth waits
    for p in middle:
        row = sim.row(p)
        assert (row["contract"], row["time"], row["size"]) in sent
        assert (row["size"] < 0) is (p.side is Side.LONG)  # a sell closes a long


async def test_the_legacy_format_is_one_a_second_per_contract_in_seconds() -> None:
    async with (
        GateSimulator(seed=5, time_scale=10.0, start_s=22, liquidation_format="legacy") as sim,
        connect(f"{sim.ws_base_url}/usdt") as ws,
    ):
        await ws.send(_request(wire.LIQUIDATES, ["BTC_USDT", "ETH_USDT"]))
        pushes = await _updates(ws, 2.5)
        assert len(sim.pushed) < len(sim.prints) / 5  # most are never sent
    assert pushes
    for push in pushes:
        assert len(push["result"]) == 1
        assert push["result"][0]["time"] < 10**11  # seconds
    parser = GateParser(VENUE, _markets(), None)
    liqs = [e for p in pushes for e in parser.parse(json.dumps(p), 0)]
    assert liqs
    assert all(isinstance(x, Liquidation) and x.sampled for x in liqs)
    assert {x.symbol for x in liqs} <= {"BTC_USDT", "ETH_USDT"}


async def test_the_size_header_makes_sizes_text(sim: GateSimulator) -> None:
    headers = {"X-Gate-Size-Decimal": "1"}
    async with connect(f"{sim.ws_base_url}/btc", additional_headers=headers) as ws:
        await ws.send(_request(wire.LIQUIDATES, ["!all"]))
        pushes = await _updates(ws, 1.5)
    rows = [r for p in pushes for r in p["result"]]
    assert rows
    assert all(isinstance(r["size"], str) and r["contract"] == "BTC_USD" for r in rows)


async def test_ping_is_answered_with_a_pong(sim: GateSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send('{"time":1,"channel":"futures.ping"}')
        pong = json.loads(await ws.recv())
    assert (pong["channel"], pong["event"], pong["result"]) == ("futures.pong", "", None)
    assert pong["time_ms"] // 1000 == pong["time"]


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        (_request(wire.TICKERS, ["BTC_USDT", "NOPE_USDT"]), 2),
        (_request(wire.TICKERS, ["BTC_USD"]), 2),  # a BTC-settled contract on /usdt
        (_request("futures.nope", ["BTC_USDT"]), 2),
        (_request(wire.TICKERS, ["BTC_USDT"], event="patch"), 1),
        ("not json", 1),
        ("[]", 1),
    ],
)
async def test_bad_requests_are_refused(sim: GateSimulator, request_text: str, code: int) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(request_text)
        reply = json.loads(await ws.recv())
        assert reply["error"]["code"] == code
        assert reply["result"] == {"status": "fail"}
        assert await _updates(ws, 0.5) == []  # nothing was subscribed


async def test_unsubscribe_stops_the_tickers(sim: GateSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.TICKERS, ["ETH_USDT"]))
        assert await _updates(ws, 0.5)
        await ws.send(_request(wire.TICKERS, ["ETH_USDT"], event="unsubscribe"))
        await collect(ws, 0.1)
        assert await _updates(ws, 0.5) == []


async def test_a_book_is_whole_on_subscription_then_updates_chain_their_ids(
    sim: GateSimulator,
) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.BOOK, ["ob.BTC_USDT.400", "ob.NOPE_USDT.400"]))
        ack = json.loads(await ws.recv())
        assert ack["result"] == {"status": "success"}  # the venue acks an unserved stream too
        books = [f["result"] for f in await _updates(ws, 1.0)]
        await ws.send(_request(wire.BOOK, ["ob.BTC_USDT.400"]))  # once per connection
        refused = await _answer(ws)
        assert refused["error"] == {"code": 2, "message": "Alert sub ob.BTC_USDT.400"}
    assert {b["s"] for b in books} == {"ob.BTC_USDT.400"}
    full, *updates = books
    assert full["full"] is True
    assert len(full["b"]) == len(full["a"]) == 400
    bids = [float(p) for p, _ in full["b"]]
    asks = [float(p) for p, _ in full["a"]]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    assert (bids[0] - bids[-1]) / bids[0] > 0.02  # 400 levels reach past 2 % of mid
    last = full["u"]
    for update in updates:
        assert "full" not in update
        assert update["U"] == last + 1
        last = update["u"]


async def test_a_skipped_update_is_a_gap_and_a_resubscription_sends_a_whole_book(
    sim: GateSimulator,
) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.BOOK, ["ob.ETH_USDT.50"]))
        seen = [f["result"] for f in await _updates(ws, 0.5)]
        sim.book_gap("ETH_USDT")
        seen += [f["result"] for f in await _updates(ws, 1.0)]
        await ws.send(_request(wire.BOOK, ["ob.ETH_USDT.50"], event="unsubscribe"))
        # updates of the old subscription already in flight arrive before its answer
        assert (await _answer(ws))["event"] == "unsubscribe"
        await ws.send(_request(wire.BOOK, ["ob.ETH_USDT.50"]))
        after = [f["result"] for f in await _updates(ws, 0.5)]
    assert seen[0]["full"] is True
    gaps = [(a["u"], b["U"]) for a, b in itertools.pairwise(seen) if b["U"] != a["u"] + 1]
    assert len(gaps) == 1
    assert gaps[0][1] == gaps[0][0] + 2  # one update skipped
    assert after[0]["full"] is True
    assert len(after[0]["b"]) == 50


async def test_book_tickers_and_trades_are_in_contracts_signed_by_the_taker(
    sim: GateSimulator,
) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.BOOK_TICKER, ["BTC_USDT"]))
        await ws.send(_request(wire.TRADES, ["BTC_USDT"]))
        frames = await _updates(ws, 1.5)
    tops = [f["result"] for f in frames if f["channel"] == wire.BOOK_TICKER]
    trades = [r for f in frames if f["channel"] == wire.TRADES for r in f["result"]]
    assert tops
    assert all(float(t["b"]) < float(t["a"]) for t in tops)
    assert all(isinstance(t["B"], int | float) and t["B"] > 0 for t in tops)
    mark = sim.mark("BTC_USDT")
    assert all(abs(float(t["b"]) / mark - 1) < 0.01 for t in tops)
    assert trades
    assert all(isinstance(t["size"], int) and t["size"] != 0 for t in trades)  # no header
    ids = [t["id"] for t in trades]
    assert len(ids) == len(set(ids))
    assert {t["size"] > 0 for t in trades} == {True, False}  # the tape has both sides


async def test_unknown_path_is_refused(sim: GateSimulator) -> None:
    assert await refused_status(f"{sim.ws_base_url}/usd1") == 404


async def test_drop_connections_cuts_without_a_close_frame(sim: GateSimulator) -> None:
    base = sim.ws_base_url
    async with connect(f"{base}/usdt") as a, connect(f"{base}/btc") as b:
        assert await sim.drop_connections() == 2
        await assert_aborted(a, b)
    assert sim.clients == 0


async def test_stall_sends_no_data_but_answers_pings(sim: GateSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/usdt") as ws:
        await ws.send(_request(wire.TICKERS, ["BTC_USDT"]))
        await ws.send(_request(wire.LIQUIDATES, ["!all"]))
        assert await _updates(ws, 0.5)
        sim.stall(0.8)
        await collect(ws, 0.1)  # a frame may have been in flight
        await ws.send('{"time":1,"channel":"futures.ping"}')
        assert [json.loads(f)["channel"] for f in await collect(ws, 0.5)] == ["futures.pong"]
        assert len(await _updates(ws, 0.8)) >= 2  # and back


async def test_a_shared_clock_serves_the_contracts_gate_lists() -> None:
    market = Market(get_scenario("calm"), symbols=["BTCUSDT"], seed=1)
    clock = MarketClock(market, time_scale=5.0)
    clock.start()
    try:
        async with GateSimulator(clock=clock) as sim:
            assert sim.contracts == {}  # Binance's names are not Gate's
    finally:
        await clock.stop()


# -- REST ----------------------------------------------------------------------------------------


async def test_contract_lists_by_settlement(sim: GateSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_base_url, timeout=5.0) as http:
        usdt = await http.get("/api/v4/futures/usdt/contracts")
        one = await http.get("/api/v4/futures/btc/contracts/BTC_USD")
        missing = await http.get("/api/v4/futures/btc/contracts/BTC_USDT")
        bad = await http.get("/api/v4/futures/usd2/contracts")
    assert usdt.status_code == 200
    body = usdt.json()
    assert len(body) == 302
    doge = next(r for r in body if r["name"] == "DOGE_USDT")
    assert doge["funding_interval"] == 14400  # the simulated 4 h contract
    assert one.json()["type"] == "inverse"
    assert (missing.status_code, missing.json()["label"]) == (404, "CONTRACT_NOT_FOUND")
    assert (bad.status_code, bad.json()["label"]) == (400, "INVALID_PARAM_VALUE")


async def test_the_venue_loads_both_settlements_through_ccxt(sim: GateSimulator) -> None:
    markets = await listed_markets(Gate, sim)
    assert markets == _markets()
    assert len(markets) == 303  # 302 USDT contracts and BTC_USD (not the quanto ETH_USD)
    assert sim.rest.requests == [
        "/api/v4/futures/usdt/contracts",
        "/api/v4/futures/btc/contracts",
    ]


async def test_list_only_simulated_lists_the_simulated_contracts() -> None:
    async with GateSimulator(list_only_simulated=True) as sim:
        markets = await listed_markets(Gate, sim)
    assert sorted(markets) == sorted(SYMBOLS)
