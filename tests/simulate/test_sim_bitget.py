"""The Bitget simulator over real websockets and HTTP on loopback, read by our real venue code."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from simkit import assert_aborted, collect, listed_markets, refused_status, session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.clock import MarketClock
from service.simulate.market import LiquidationPrint, Market
from service.simulate.scenario import get_scenario
from service.venues.base import Instrument
from service.venues.bitget.instruments import parse_contracts
from service.venues.bitget.simulator import wire
from service.venues.bitget.simulator.server import BitgetSimulator
from service.venues.bitget.venue import Bitget, BitgetParser

pytestmark = pytest.mark.integration

VENUE = "bitget"
SYMBOLS = list(wire.BITGET_SYMBOLS)
LIQ_USDT = {"instType": "usdt-futures", "topic": "liquidation"}


def _markets() -> dict[str, Instrument]:
    """Every perpetual of the fixture listings, as the service builds them."""
    out: dict[str, Instrument] = {}
    for pt in wire.PRODUCT_TYPES:
        out.update((i.symbol, i) for i in parse_contracts(wire.load_contracts(pt), pt))
    return out


@pytest.fixture
async def sim() -> AsyncIterator[BitgetSimulator]:
    """The default scenario, 10x faster, already in the long cascade; tickers every 100 ms."""
    async with BitgetSimulator(seed=5, time_scale=10.0, start_s=22, push_interval_s=0.1) as s:
        yield s


def _ticker(symbol: str, inst_type: str = "usdt-futures") -> dict[str, str]:
    return {"instType": inst_type, "topic": "ticker", "symbol": symbol}


async def _until_closed(ws: ClientConnection) -> None:
    while True:
        await asyncio.wait_for(ws.recv(), 2.0)


async def _subscribe(ws: ClientConnection, *args: dict[str, str], op: str = "subscribe") -> None:
    await ws.send(json.dumps({"op": op, "args": list(args)}))


async def test_the_service_subscription_is_acked_per_arg_and_every_push_parses(
    sim: BitgetSimulator,
) -> None:
    markets = _markets()
    venue = Bitget(VenueSettings(ws_url=sim.ws_base_url, symbols=SYMBOLS))
    conns = venue.connections(markets)
    frames = [f for fs in await asyncio.gather(*(session(c, 1.5) for c in conns)) for f in fs]
    acks = [json.loads(f) for f in frames if '"event"' in f]
    # a liquidation topic per instType, a ticker and a publicTrade each
    assert len(acks) == 2 + 2 * len(SYMBOLS)
    assert all(a["event"] == "subscribe" and a["connId"] for a in acks)
    parser = BitgetParser(VENUE, markets, set(SYMBOLS))
    parser.state_every_ms = 0
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    for symbol in SYMBOLS:
        mine = [e for e in events if e.symbol == symbol]
        mark = next(e for e in reversed(mine) if isinstance(e, MarkPrice))
        oi = next(e for e in reversed(mine) if isinstance(e, OpenInterest))
        funding = next(e for e in reversed(mine) if isinstance(e, FundingRate))
        assert mark.mark_price == pytest.approx(sim.mark(symbol), rel=0.01)
        assert oi.oi_base == pytest.approx(sim.oi_base(symbol), rel=0.01)  # base coin, both types
        assert oi.oi_usd == pytest.approx(oi.oi_base * mark.mark_price)
        assert funding.interval_h == (4.0 if symbol == "DOGEUSDT" else 8.0)
        assert funding.next_funding_ms is not None
        assert funding.next_funding_ms % int(funding.interval_h * 3_600_000) == 0
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert liqs
    assert all(x.sampled and x.side is Side.LONG for x in liqs if x.base == "BTC")  # the cascade


async def test_a_liquidations_connection_gets_its_ack_then_liquidation_pushes_only(
    sim: BitgetSimulator,
) -> None:
    """The quiet lane (``usdt-futures-liquidations``): served with nothing but its topic."""
    markets = _markets()
    venue = Bitget(VenueSettings(ws_url=sim.ws_base_url, symbols=SYMBOLS))
    (quiet,) = [c for c in venue.connections(markets) if c.name == "usdt-futures-liquidations"]
    ack, *pushes = [json.loads(f) for f in await session(quiet, 2.5)]
    assert ack == {"event": "subscribe", "arg": LIQ_USDT, "connId": ack["connId"]}
    assert pushes  # the fixture is in the long cascade: a sample every second
    assert all(p["arg"] == LIQ_USDT and p["action"] == "update" for p in pushes)
    parser = BitgetParser(VENUE, markets, set(SYMBOLS))
    liqs = [e for p in pushes for e in parser.parse(json.dumps(p), 0)]
    assert not parser.stats.errors
    assert liqs
    assert all(isinstance(x, Liquidation) and x.symbol.endswith("USDT") for x in liqs)


async def test_ping_is_answered_with_a_text_pong(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await ws.send("ping")
        assert await ws.recv() == "pong"


async def test_tickers_send_a_snapshot_then_updates_of_every_field(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _subscribe(ws, _ticker("BTCUSDT"))
        frames = [json.loads(f) for f in await collect(ws, 0.6)]
    ack, snapshot, *updates = frames
    assert ack == {"event": "subscribe", "arg": _ticker("BTCUSDT"), "connId": ack["connId"]}
    assert snapshot["action"] == "snapshot"
    assert len(updates) >= 3
    assert all(u["action"] == "update" for u in updates)
    assert all(set(u["data"][0]) == set(snapshot["data"][0]) for u in updates)
    times = [u["ts"] for u in updates]
    assert all(t % 100 == 0 for t in times)  # on the 100 ms grid
    assert all(b > a for a, b in itertools.pairwise(times))


async def test_liquidations_are_a_per_second_sample_of_the_largest_of_each_side(
    sim: BitgetSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _subscribe(ws, LIQ_USDT, {"instType": "coin-futures", "topic": "liquidation"})
        frames = [json.loads(f) for f in await collect(ws, 3.2)]
    pushes = [f for f in frames if f.get("action") == "update"]
    assert len(pushes) >= 2
    for push in pushes:
        assert push["ts"] % 1000 == 0  # once a second
        per = Counter((r["symbol"], r["side"]) for r in push["data"])
        assert max(per.values()) == 1  # at most one long and one short per symbol
    assert len(sim.pushed) < len(sim.prints)  # a sample, never the whole market
    rows = {(r["symbol"], r["ts"]): r for push in pushes for r in push["data"]}
    for p in sim.pushed:
        if (row := rows.get((p.symbol, str(p.ts_ms)))) is None:
            continue
        assert row == sim.row(p)
        size = float(row["amount"]) / float(row["price"])
        step = sim.contracts[p.symbol].qty_step
        assert size == pytest.approx(round(p.qty_base / step) * step)  # quote value of the size
        assert row["side"] == ("buy" if p.side is Side.LONG else "sell")  # the position side


def test_the_sample_keeps_the_largest_long_and_short_of_each_symbol() -> None:
    def p(symbol: str, side: Side, qty: float, ts: int) -> LiquidationPrint:
        return LiquidationPrint(symbol, symbol[:3], side, qty, 100.0, 99.0, ts)

    second = [
        p("BTCUSDT", Side.LONG, 1.0, 5),
        p("BTCUSDT", Side.LONG, 3.0, 9),
        p("BTCUSDT", Side.SHORT, 0.5, 2),
        p("ETHUSDT", Side.LONG, 2.0, 1),
        p("BTCUSDT", Side.LONG, 2.0, 3),
    ]
    kept = wire.sample(second)
    assert [(x.symbol, x.side, x.qty_base) for x in kept] == [
        ("ETHUSDT", Side.LONG, 2.0),
        ("BTCUSDT", Side.SHORT, 0.5),
        ("BTCUSDT", Side.LONG, 3.0),
    ]  # in time order


async def test_refused_args_get_errors_and_the_rest_is_subscribed(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _subscribe(ws, _ticker("NOPEUSDT"), _ticker("BTCUSD"), _ticker("XRPUSDT"))
        replies = [json.loads(f) for f in await collect(ws, 0.3)]
    errors = [r for r in replies if r.get("event") == "error"]
    acks = [r["arg"] for r in replies if r.get("event") == "subscribe"]
    assert [e["code"] for e in errors] == ["30001", "30001"]  # unknown, and a coin symbol
    assert acks == [_ticker("XRPUSDT")]  # listed, not simulated: acked, never pushed
    assert not [r for r in replies if "action" in r]


@pytest.mark.parametrize(
    "request_text", ["not json", '{"op":"subscribe"}', '{"op":"login","args":[]}', "[1]"]
)
async def test_bad_requests_are_answered_with_errors(
    sim: BitgetSimulator, request_text: str
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await ws.send(request_text)
        reply = json.loads(await ws.recv())
    assert reply["event"] == "error"
    assert reply["code"] == "30003"


async def test_unsubscribe_stops_the_topic(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _subscribe(ws, _ticker("ETHUSDT"))
        assert await collect(ws, 0.3)
        await _subscribe(ws, _ticker("ETHUSDT"), op="unsubscribe")
        await collect(ws, 0.15)  # the ack and what was in flight
        assert await collect(ws, 0.4) == []


async def test_more_than_10_messages_a_second_close_the_connection(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        for _ in range(11):
            await ws.send("ping")
        with pytest.raises(ConnectionClosed):
            await _until_closed(ws)
        assert ws.close_code == wire.TOO_MANY_MESSAGES[0]


async def test_a_connection_without_pings_is_closed() -> None:
    async with BitgetSimulator(ping_timeout_s=0.4) as sim, connect(sim.ws_base_url) as ws:
        await _subscribe(ws, _ticker("BTCUSDT"))
        with pytest.raises(ConnectionClosed):
            await _until_closed(ws)
        assert (ws.close_code, ws.close_reason) == wire.NO_PING


async def test_unknown_path_is_refused(sim: BitgetSimulator) -> None:
    # (/v2/ws/public is served: the order books, see test_sim_bitget_books.py)
    assert await refused_status(sim.ws_base_url.replace("/v3/", "/v1/")) == 404


async def test_drop_connections_cuts_without_a_close_frame(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as a, connect(sim.ws_base_url) as b:
        assert sim.clients == 2
        assert await sim.drop_connections() == 2
        await assert_aborted(a, b)
    assert sim.clients == 0


async def test_stall_sends_no_data_but_answers_pings(sim: BitgetSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _subscribe(ws, _ticker("BTCUSDT"), LIQ_USDT)
        assert await collect(ws, 0.3)
        sim.stall(0.8)
        await collect(ws, 0.1)  # a frame may have been in flight
        await ws.send("ping")
        assert await collect(ws, 0.5) == ["pong"]
        assert len(await collect(ws, 0.6)) >= 2  # and back


async def test_a_shared_clock_serves_the_symbols_bitget_lists() -> None:
    market = Market(get_scenario("calm"), symbols=["BTCUSDT", "BNBUSDT"], seed=1)
    clock = MarketClock(market, time_scale=5.0)
    clock.start()
    try:
        async with BitgetSimulator(clock=clock) as sim:
            assert list(sim.contracts) == ["BTCUSDT", "BNBUSDT"]  # both in the 2022 listing
            async with connect(sim.ws_base_url) as ws:
                await _subscribe(ws, _ticker("BNBUSDT"))
                _, snapshot = [json.loads(f) for f in await collect(ws, 0.15)][:2]
            mark = float(snapshot["data"][0]["markPrice"])
            assert mark == pytest.approx(market.mark("BNBUSDT"), rel=0.001)
    finally:
        await clock.stop()


# -- REST ----------------------------------------------------------------------------------------


async def test_contracts_by_product_type_and_the_errors_ccxt_maps(sim: BitgetSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_base_url, timeout=5.0) as http:
        coin = await http.get(
            "/api/v2/mix/market/contracts", params={"productType": "COIN-FUTURES"}
        )
        one = await http.get(
            "/api/v2/mix/market/contracts",
            params={"productType": "USDT-FUTURES", "symbol": "ETHUSDT"},
        )
        missing = await http.get("/api/v2/mix/market/contracts")
        bad = await http.get("/api/v2/mix/market/contracts", params={"productType": "SPOT"})
        time = (await http.get("/api/v2/public/time")).json()
    assert coin.status_code == 200
    body: dict[str, Any] = coin.json()
    assert body["code"] == "00000"
    assert [r["symbol"] for r in body["data"]] == [
        r["symbol"] for r in wire.load_contracts("COIN-FUTURES")["data"]
    ]
    assert [r["symbol"] for r in one.json()["data"]] == ["ETHUSDT"]
    assert (missing.status_code, missing.json()["code"]) == (400, "40019")
    assert (bad.status_code, bad.json()["code"]) == (400, "40017")
    assert int(time["data"]["serverTime"]) == pytest.approx(time["requestTime"], abs=5)


async def test_the_venue_loads_both_product_types_through_ccxt(sim: BitgetSimulator) -> None:
    markets = await listed_markets(Bitget, sim)
    assert markets == _markets()
    assert set(SYMBOLS) <= set(markets)
    assert {"LUNAUSDT", "BTCUSDZ25"}.isdisjoint(markets)  # off, and a delivery contract
    assert sim.rest.requests == [
        "/api/v2/mix/market/contracts?productType=USDT-FUTURES",
        "/api/v2/mix/market/contracts?productType=COIN-FUTURES",
    ]


async def test_list_only_simulated_lists_the_simulated_symbols() -> None:
    async with BitgetSimulator(list_only_simulated=True) as sim:
        markets = await listed_markets(Bitget, sim)
    assert sorted(markets) == sorted(SYMBOLS)
