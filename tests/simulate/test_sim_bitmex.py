"""The BitMEX simulator over a real websocket and HTTP on loopback, read by our real venue code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from simkit import (
    collect,
    listed_markets,
    read_until_closed,
    recv_json,
    refused_status,
    session,
    until,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.clock import MarketClock
from service.simulate.market import DEFAULT_SPECS, Market
from service.simulate.scenario import get_scenario
from service.venues.base import Instrument
from service.venues.bitmex.simulator import wire
from service.venues.bitmex.simulator.server import BitmexSimulator
from service.venues.bitmex.venue import Bitmex, BitmexParser, instrument

pytestmark = pytest.mark.integration

SYMBOLS = wire.BITMEX_SYMBOLS


@pytest.fixture
async def sim() -> AsyncIterator[BitmexSimulator]:
    """Already in the long cascade, 10x faster; instruments every 100 ms."""
    async with BitmexSimulator(seed=7, time_scale=10.0, start_s=20, push_interval_s=0.1) as s:
        yield s


def _markets(sim: BitmexSimulator) -> dict[str, Instrument]:
    """The listing the simulator serves, as the service reads it."""
    return {r["symbol"]: i for r in sim.rest.listing if (i := instrument(r)) is not None}


def _subscribe(*args: str, op: str = "subscribe") -> str:
    return json.dumps({"op": op, "args": list(args)})


async def test_the_service_subscription_is_acked_per_topic_and_every_push_parses(
    sim: BitmexSimulator,
) -> None:
    markets = _markets(sim)
    venue = Bitmex(VenueSettings(ws_url=sim.ws_base_url, symbols=list(SYMBOLS)))
    (conn,) = venue.connections(markets)
    frames = await session(conn, 1.5)
    welcome = json.loads(frames[0])
    assert welcome["info"] == "Welcome to the BitMEX Realtime API."
    acks = [json.loads(f) for f in frames if '"success"' in f]
    sent = [a for r in conn.subscribe for a in json.loads(r)["args"]]
    assert [a["subscribe"] for a in acks] == sent
    parser = BitmexParser("bitmex", markets, set(SYMBOLS))
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    for sym in SYMBOLS:
        mark = next(e for e in reversed(events) if isinstance(e, MarkPrice) and e.symbol == sym)
        assert mark.mark_price == pytest.approx(sim.mark(sym), rel=0.01)
        assert mark.index_price is not None
        oi = next(e for e in reversed(events) if isinstance(e, OpenInterest) and e.symbol == sym)
        assert oi.oi_base == pytest.approx(sim.oi_base(sym), rel=0.01)
        assert oi.oi_usd == pytest.approx(sim.oi_base(sym) * sim.mark(sym), rel=0.02)
        f = next(e for e in events if isinstance(e, FundingRate) and e.symbol == sym)
        assert f.interval_h == 8.0
        assert f.next_funding_ms is not None
        assert datetime.fromtimestamp(f.next_funding_ms / 1000, UTC).hour in (4, 12, 20)
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert {e.symbol for e in liqs} == set(SYMBOLS)  # the cascade, on every contract
    assert all(e.side is Side.LONG and not e.sampled for e in liqs)
    orders = {sim.order(p).order_id: sim.order(p) for p in sim.placed}
    for e in liqs:
        order = orders[e.event_id]
        assert (e.quantity, e.price) == (order.contracts, order.price)
        if e.symbol == "XBTUSD":  # 1 USD a contract
            assert e.notional_usd == order.contracts
        elif e.symbol == "XBTUSDT":  # 1e-6 XBT a contract
            assert e.notional_usd == pytest.approx(order.contracts * 1e-6 * order.price)
        else:  # ETHUSD: 100 XBt per USD of price, at the XBT price then (it moves)
            usd = order.contracts * 100e-8 * order.price * sim.xbt_usd()
            assert e.notional_usd == pytest.approx(usd, rel=0.05)


async def test_contracts_are_usd_quanto_xbt_or_millionths_of_a_coin(sim: BitmexSimulator) -> None:
    await until(lambda: {p.symbol for p in sim.placed} == set(SYMBOLS))
    xbt = sim.xbt_usd()
    for p in sim.placed:
        n = sim.order(p).contracts
        if p.symbol == "XBTUSD":  # 1 USD
            assert n == max(1, round(p.qty_base * p.price))
        elif p.symbol == "ETHUSD":  # 100 XBt per USD of price
            assert n == pytest.approx(p.qty_base / (100e-8 * xbt), rel=0.05, abs=1)
        else:  # XBTUSDT: 1e-6 XBT
            assert n == round(p.qty_base / 1e-6)
        assert sim.order(p).side == "Sell"  # the long cascade: sells close longs


async def test_an_order_is_inserted_filled_in_part_then_deleted_and_partials_resend_it() -> None:
    async with (
        BitmexSimulator(
            seed=1, time_scale=10.0, start_s=20, fill_after_s=0.3, order_life_s=0.8
        ) as sim,
        connect(sim.ws_base_url) as ws,
    ):
        await recv_json(ws)  # the welcome
        await ws.send(_subscribe("liquidation:XBTUSD"))
        assert (await recv_json(ws))["subscribe"] == "liquidation:XBTUSD"
        assert (await recv_json(ws))["action"] == "partial"
        frames = [json.loads(f) for f in await collect(ws, 1.5)]
        await until(lambda: any(o.leaves_qty < o.contracts for o in sim.open_orders))
        replayed = len(sim.replayed)
        async with connect(sim.ws_base_url) as late:
            await recv_json(late)
            await late.send(_subscribe("liquidation:XBTUSD"))
            await recv_json(late)
            partial = await recv_json(late)
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for f in frames:
        assert f["table"] == "liquidation"
        for row in f["data"]:
            rows.setdefault(row["orderID"], []).append((f["action"], row))
    whole = [r for r in rows.values() if r[0][0] == "insert" and r[-1][0] == "delete"]
    assert whole
    for life in whole:
        actions = [a for a, _ in life]
        assert actions in (["insert", "update", "delete"], ["insert", "delete"])
        insert = life[0][1]
        assert set(insert) == {"orderID", "symbol", "side", "price", "leavesQty"}
        if len(life) == 3:
            assert 0 < life[1][1]["leavesQty"] < insert["leavesQty"]
        assert set(life[-1][1]) == {"orderID", "symbol"}
    assert partial["filter"] == {"symbol": "XBTUSD"}
    assert partial["keys"] == ["orderID"]
    resent = {r["orderID"]: r["leavesQty"] for r in partial["data"]}
    assert resent
    assert resent == {o.order_id: o.leaves_qty for o in sim.replayed[replayed:]}
    assert any(o.leaves_qty < o.contracts for o in sim.replayed[replayed:])


async def test_load_markets_asks_only_for_the_active_instruments(sim: BitmexSimulator) -> None:
    markets = await listed_markets(Bitmex, sim)
    assert sim.rest.requests == ["/api/v1/instrument/active"]
    perpetuals = {r["symbol"] for r in sim.rest.listing if r["typ"] == "FFWCSX"}
    assert set(markets) == perpetuals - {"XBTEUR"}
    assert len(markets) == 23
    async with BitmexSimulator(list_only_simulated=True) as only:
        venue = Bitmex(VenueSettings(rest_url=only.rest_base_url))
        try:
            assert set(await venue.load_markets(5.0)) == set(SYMBOLS)
        finally:
            await venue.close()


async def test_load_markets_failures_are_errors_the_collector_retries() -> None:
    venue = Bitmex(VenueSettings(rest_url="http://127.0.0.1:9"))  # nothing listens there
    try:
        with pytest.raises(ConnectionError):
            await venue.load_markets(2.0)
    finally:
        await venue.close()


async def test_a_listed_symbol_not_simulated_gets_its_recorded_row(sim: BitmexSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await recv_json(ws)
        await ws.send(_subscribe("instrument:LTCUSD", "liquidation:LTCUSD"))
        frames = [json.loads(f) for f in await collect(ws, 0.5)]
    partials = [f for f in frames if f.get("action") == "partial"]
    assert [p["table"] for p in partials] == ["instrument", "liquidation"]
    (row,) = partials[0]["data"]
    assert row == next(r for r in sim.rest.listing if r["symbol"] == "LTCUSD")
    assert partials[1]["data"] == []
    assert not [f for f in frames if f.get("action") == "update"]


async def test_text_ping_gets_text_pong(sim: BitmexSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await recv_json(ws)
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 1.0) == "pong"


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        ("{oops", "Unrecognized request"),
        ('{"op":"subscribe"}', "Unrecognized request"),
        ('{"op":"subscrib","args":["instrument"]}', "Unknown op: subscrib"),
        ('{"op":"subscribe","args":["orderBook10:XBTUSD"]}', "Unknown table: orderBook10"),
        ('{"op":"subscribe","args":["instrument:NOPE"]}', "Unknown or expired symbol: NOPE"),
    ],
)
async def test_bad_requests_are_answered_with_bitmex_error_frames(
    sim: BitmexSimulator, request_text: str, error: str
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await recv_json(ws)
        await ws.send(request_text)
        answer = await recv_json(ws)
    assert answer["status"] == 400
    assert answer["error"].startswith(error)
    parser = BitmexParser("bitmex", {}, None)
    assert parser.parse(json.dumps(answer), 0) == []
    assert parser.stats.errors == {"venue_error": 1}


async def test_subscribing_twice_is_refused_and_unsubscribing_is_acked(
    sim: BitmexSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await recv_json(ws)
        await ws.send(_subscribe("instrument:XBTUSD"))
        await recv_json(ws)
        assert (await recv_json(ws))["action"] == "partial"
        await ws.send(_subscribe("instrument:XBTUSD"))
        while "error" not in (answer := await recv_json(ws)):
            assert answer["action"] == "update"
        assert "already subscribed to this topic: instrument:XBTUSD" in answer["error"]
        await ws.send(_subscribe("instrument:XBTUSD", op="unsubscribe"))
        while "success" not in (answer := await recv_json(ws)):
            pass
        assert answer["unsubscribe"] == "instrument:XBTUSD"
        await collect(ws, 0.1)  # a push may have been in flight
        assert await collect(ws, 0.4) == []


async def test_unknown_path_is_refused(sim: BitmexSimulator) -> None:
    assert await refused_status(sim.ws_base_url.replace("/realtime", "/nope")) == 404


async def test_drop_connections_cuts_without_a_close_frame(sim: BitmexSimulator) -> None:
    async with connect(sim.ws_base_url) as a, connect(sim.ws_base_url) as b:
        await until(lambda: sim.clients == 2)
        assert await sim.drop_connections() == 2
        assert sim.clients == 0
        for ws in (a, b):
            with pytest.raises(ConnectionClosedError):
                await read_until_closed(ws)
            assert ws.close_code == 1006


async def test_stall_keeps_the_connection_but_pushes_nothing(sim: BitmexSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await recv_json(ws)
        await ws.send(_subscribe("instrument:XBTUSD", "liquidation"))
        assert len(await collect(ws, 0.4)) >= 5
        placed = len(sim.placed)
        sim.stall(0.8)
        await collect(ws, 0.05)  # a frame may have been in flight
        await ws.send("ping")
        assert await collect(ws, 0.5) == ["pong"]
        assert len(sim.placed) == placed  # the orders wait
        assert len(await collect(ws, 0.6)) >= 2  # and back
    assert len(sim.placed) > placed


async def test_a_shared_clock_serves_the_bitmex_perpetuals_of_a_bigger_market() -> None:
    """Of Binance's symbols, those BitMEX also lists (as quanto contracts) are served."""
    market = Market(get_scenario("calm"), specs=DEFAULT_SPECS + wire.BITMEX_SPECS)
    listed = {r["symbol"] for r in wire.load_listing() if r["typ"] == "FFWCSX"}
    served = set(BitmexSimulator(clock=MarketClock(market)).contracts)
    assert served == set(SYMBOLS) | (listed & {s.symbol for s in DEFAULT_SPECS})
    assert {"SOLUSDT", "LINKUSDT"} < served
    with pytest.raises(ValueError, match="BitMEX perpetual"):
        BitmexSimulator(clock=MarketClock(Market(get_scenario("calm"), symbols=["BTCUSDT"])))
