"""The Deribit simulator over a real websocket and HTTP on loopback, read by our real venue code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from simkit import collect, listed_markets, read_until_closed, refused_status, session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.clock import MarketClock
from service.simulate.market import DEFAULT_SPECS, Market
from service.simulate.scenario import get_scenario
from service.venues.deribit.simulator import wire
from service.venues.deribit.simulator.server import HEARTBEAT_CLOSE, DeribitSimulator
from service.venues.deribit.venue import Deribit, DeribitParser, pings

pytestmark = pytest.mark.integration

SYMBOLS = list(wire.DERIBIT_SYMBOLS)
INVERSE = ("BTC-PERPETUAL", "ETH-PERPETUAL")


@pytest.fixture
async def sim() -> AsyncIterator[DeribitSimulator]:
    """Already in the long cascade, 10x faster."""
    async with DeribitSimulator(seed=7, time_scale=10.0, start_s=20) as s:
        yield s


def _request(req_id: Any, method: str, **params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})


async def _call(ws: ClientConnection, req_id: Any, method: str, **params: Any) -> dict[str, Any]:
    """Send a request; its answer (notifications that come first are skipped)."""
    await ws.send(_request(req_id, method, **params))
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 2.0))
        if "id" in msg or "error" in msg:
            return msg


async def test_the_service_subscription_is_answered_and_every_push_parses(
    sim: DeribitSimulator,
) -> None:
    markets = await listed_markets(Deribit, sim)
    venue = Deribit(VenueSettings(ws_url=sim.ws_base_url, symbols=SYMBOLS))
    public, trades = venue.connections(markets)
    tickers, prints = await asyncio.gather(session(public, 1.5), session(trades, 1.5))
    for kind, got in (("ticker", tickers), ("trades", prints)):  # each only its own channels
        answers = [json.loads(f) for f in got if '"id"' in f]
        assert [a["id"] for a in answers] == [1, 2]
        assert answers[0]["result"] == "ok"  # set_heartbeat
        assert sorted(answers[1]["result"]) == sorted(f"{kind}.{s}.100ms" for s in SYMBOLS)
        assert all({"usIn", "usOut", "usDiff", "testnet"} <= set(a) for a in answers)
        notified = {json.loads(f)["params"]["channel"] for f in got if '"subscription"' in f}
        assert {c.split(".")[0] for c in notified} == {kind}
    frames = tickers + prints
    parser = DeribitParser("deribit", markets, set(SYMBOLS))
    parser.state_every_ms = 0  # every ticker
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    marks = {e.symbol: e for e in events if isinstance(e, MarkPrice)}
    ois = {e.symbol: e for e in events if isinstance(e, OpenInterest)}
    funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
    assert set(marks) == set(ois) == set(funding) == set(SYMBOLS)
    for s in SYMBOLS:
        assert marks[s].mark_price == pytest.approx(sim.mark(s), rel=0.01)
        assert ois[s].oi_base == pytest.approx(sim.oi_base(s), rel=0.01)
        assert funding[s].interval_h == 8.0
        assert funding[s].funding_rate == pytest.approx(
            sim.market.quote(s).funding_rate_8h, abs=1e-5
        )
    for s in INVERSE:  # whole USD contracts (10 USD on BTC, 1 USD on ETH)
        assert ois[s].oi_usd == ois[s].oi_contracts
        assert ois[s].oi_usd % (10 if s.startswith("BTC") else 1) == 0
    btc = ois["BTC_USDC-PERPETUAL"]  # coin, valued at the mark
    assert btc.oi_usd == pytest.approx(btc.oi_base * marks["BTC_USDC-PERPETUAL"].mark_price)
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert liqs  # the cascade
    expected = {
        (row["instrument_name"], f"{row['trade_id']}:{side.value}")
        for p, row in sim.sent
        for side in wire.liquidated_sides(p)
    }
    assert {(e.symbol, e.event_id) for e in liqs} <= expected
    assert all(not e.sampled for e in liqs)


async def test_load_markets_asks_once_for_every_currencys_futures(sim: DeribitSimulator) -> None:
    markets = await listed_markets(Deribit, sim)
    assert sim.rest.requests == [
        "/api/v2/public/get_instruments?currency=any&kind=future&expired=false"
    ]
    assert len(markets) == 19  # the recorded perpetuals; no dated future
    assert not markets["BTC-PERPETUAL"].linear
    assert markets["ETH_USDC-PERPETUAL"].linear


async def test_list_only_simulated_lists_the_four_perpetuals() -> None:
    async with DeribitSimulator(list_only_simulated=True) as sim:
        assert set(await listed_markets(Deribit, sim)) == set(SYMBOLS)


@pytest.mark.parametrize(
    ("query", "status", "count"),
    [
        ("currency=BTC&kind=future", 200, 8),
        ("currency=USDC", 200, 16),
        ("currency=any&kind=option", 200, 0),
        ("currency=any&expired=true", 200, 0),
        ("kind=future", 400, None),
        ("currency=DOGE", 400, None),
        ("currency=BTC&kind=perp", 400, None),
    ],
)
async def test_get_instruments_filters_like_the_venue(
    sim: DeribitSimulator, query: str, status: int, count: int | None
) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_base_url) as http:
        r = await http.get(f"/api/v2/public/get_instruments?{query}")
    assert r.status_code == status
    body = r.json()
    if count is None:
        assert body["error"]["code"] == -32602
    else:
        assert len(body["result"]) == count


async def test_unknown_rest_methods_are_not_found(sim: DeribitSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.rest_base_url) as http:
        r = await http.get("/api/v2/public/get_nothing")
        t = await http.get("/api/v2/public/get_time")
    assert (r.status_code, r.json()["error"]["code"]) == (400, -32601)
    assert isinstance(t.json()["result"], int)


async def test_liquidations_are_flagged_trades_with_ordinary_trades_between() -> None:
    async with (
        DeribitSimulator(seed=2, time_scale=10.0, start_s=20) as sim,
        connect(sim.ws_base_url) as ws,
    ):
        channels = [f"trades.{s}.100ms" for s in SYMBOLS]
        assert (await _call(ws, 5, "public/subscribe", channels=channels))["result"] == channels
        frames = [json.loads(f) for f in await collect(ws, 2.0)]
    rows = [t for f in frames for t in f["params"]["data"]]
    liquidations = [t for t in rows if "liquidation" in t]
    assert {t["liquidation"] for t in liquidations} == {"T", "M", "MT"}
    pushes = [f for f in frames if any("liquidation" in t for t in f["params"]["data"])]
    tape = [f for f in frames if f not in pushes]  # the calm tape, every second
    assert tape
    assert all(len(f["params"]["data"]) == 2 for f in tape)  # a taker buy and a taker sell
    assert {t["direction"] for f in tape for t in f["params"]["data"]} == {"buy", "sell"}
    # one ordinary trade per push of liquidations
    assert len(rows) - len(liquidations) == len(pushes) + 2 * len(tape)
    by_id = {row["trade_id"]: (p, row) for p, row in sim.sent}
    for t in liquidations:
        p, row = by_id[t["trade_id"]]
        assert t == row
        c = sim.contracts[p.symbol]
        # the liquidated position's order: a sell for a long; the taker's unless M
        order_sells = p.side is Side.LONG
        assert (t["direction"] == "sell") is (
            order_sells if t["liquidation"] != "M" else not order_sells
        )
        if c.linear:
            assert t["amount"] == pytest.approx(p.qty_base, abs=c.contract_size)
        else:
            assert t["amount"] % c.contract_size == 0
            assert t["amount"] == pytest.approx(p.qty_base * p.price, abs=c.contract_size)


async def test_requests_are_answered_with_their_id_and_json_rpc_errors(
    sim: DeribitSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        assert (await _call(ws, "t", "public/test"))["result"] == {"version": wire.VERSION}
        assert isinstance((await _call(ws, 8, "public/get_time"))["result"], int)
        bad = await _call(ws, 9, "public/set_heartbeat", interval=5)
        assert (bad["id"], bad["error"]["code"]) == (9, -32602)
        assert (await _call(ws, 10, "public/nope"))["error"]["code"] == -32601
        raw = await _call(ws, 11, "public/subscribe", channels=["ticker.BTC-PERPETUAL.raw"])
        assert raw["error"]["code"] == 13778
        mixed = [
            "ticker.NOPE-PERPETUAL.100ms",
            "perpetual.BTC-PERPETUAL.100ms",  # a venue's channel the simulator does not serve
            "trades.ETH-PERPETUAL.agg2",
        ]
        assert (await _call(ws, 12, "public/subscribe", channels=mixed))["result"] == mixed[2:]
        gone = await _call(ws, 13, "public/unsubscribe", channels=[*mixed[2:], "ticker.X.100ms"])
        assert gone["result"] == mixed[2:]
        await ws.send("{oops")
        assert json.loads(await ws.recv())["error"]["code"] == -32700
        await ws.send('{"jsonrpc":"2.0","method":"public/test"}')  # no id
        assert json.loads(await ws.recv())["error"]["code"] == -32600


async def test_more_than_ten_subscribes_at_once_are_refused(sim: DeribitSimulator) -> None:
    channel = ["ticker.BTC-PERPETUAL.100ms"]
    async with connect(sim.ws_base_url) as ws:
        for i in range(10):
            assert "result" in await _call(ws, i, "public/subscribe", channels=channel)
        assert (await _call(ws, 10, "public/subscribe", channels=channel))["error"]["code"] == 10028
        await asyncio.sleep(0.35)  # ~3.3 a second come back
        assert "result" in await _call(ws, 11, "public/subscribe", channels=channel)


async def test_an_unanswered_test_request_closes_the_connection() -> None:
    async with DeribitSimulator(heartbeat_scale=40.0) as sim, connect(sim.ws_base_url) as ws:
        assert (await _call(ws, 1, "public/set_heartbeat", interval=10))["result"] == "ok"
        frames = [json.loads(f) for f in await collect(ws, 0.4)]  # 10 s / 40 = 0.25 s
        assert {"params": {"type": "heartbeat"}, "method": "heartbeat", "jsonrpc": "2.0"} in frames
        assert frames[-1] == {
            "params": {"type": "test_request"},
            "method": "heartbeat",
            "jsonrpc": "2.0",
        }
        with pytest.raises(ConnectionClosed):
            await read_until_closed(ws)
    assert (ws.close_code, ws.close_reason) == HEARTBEAT_CLOSE
    assert sim.heartbeat_closes == 1


async def test_a_public_test_every_few_beats_keeps_the_connection() -> None:
    async with DeribitSimulator(heartbeat_scale=40.0) as sim, connect(sim.ws_base_url) as ws:
        await _call(ws, 1, "public/set_heartbeat", interval=10)
        ping = pings()
        for _ in range(8):  # 1.2 s: almost 5 heartbeat intervals, a ping every 0.6 interval
            await ws.send(ping())
            await collect(ws, 0.15)
        assert sim.heartbeat_closes == 0
        assert sim.reused_request_ids == 0
        assert (await _call(ws, 2, "public/disable_heartbeat"))["result"] == "ok"
        await asyncio.sleep(0.6)  # off: nothing to answer any more
        assert (await _call(ws, 3, "public/test"))["result"]
    assert sim.heartbeat_closes == 0


async def test_unknown_path_is_refused(sim: DeribitSimulator) -> None:
    assert await refused_status(sim.ws_base_url.replace("/v2", "/v1")) == 404


async def test_drop_connections_cuts_without_a_close_frame(sim: DeribitSimulator) -> None:
    async with connect(sim.ws_base_url) as a:
        assert sim.clients == 1
        assert await sim.drop_connections() == 1
        with pytest.raises(ConnectionClosedError):
            await a.recv()
        assert a.close_code == 1006


async def test_stall_pushes_nothing_but_still_answers(sim: DeribitSimulator) -> None:
    async with connect(sim.ws_base_url) as ws:
        await _call(ws, 1, "public/subscribe", channels=["ticker.ETH-PERPETUAL.100ms"])
        assert len(await collect(ws, 0.4)) >= 3
        sim.stall(0.8)
        await collect(ws, 0.05)  # a frame may have been in flight
        await ws.send(pings()())
        (answer,) = await collect(ws, 0.5)
        assert json.loads(answer)["id"] == "heartbeat-1"
        assert len(await collect(ws, 0.6)) >= 2  # and back


async def test_a_shared_clock_serves_the_deribit_perpetuals_of_a_bigger_market() -> None:
    market = Market(get_scenario("calm"), specs=DEFAULT_SPECS + wire.DERIBIT_SPECS)
    assert set(DeribitSimulator(clock=MarketClock(market)).contracts) == set(SYMBOLS)
    with pytest.raises(ValueError, match="Deribit perpetual"):
        DeribitSimulator(clock=MarketClock(Market(get_scenario("calm"))))
