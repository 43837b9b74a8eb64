"""The Hyperliquid simulator over a real websocket and HTTP on loopback, read by our real venue
code (and by ccxt, for the ``/info`` bodies it asks)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from simkit import (
    assert_aborted,
    collect,
    listed_markets,
    read_until_closed,
    recv_json,
    refused_status,
    session,
    until,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.clock import MarketClock
from service.simulate.market import DEFAULT_SPECS, Market
from service.simulate.scenario import get_scenario
from service.venues.ccxt_markets import ccxt_client
from service.venues.hyperliquid.simulator.server import HyperliquidSimulator
from service.venues.hyperliquid.simulator.wire import HL_SPECS, HL_SYMBOLS, LIQUIDATORS
from service.venues.hyperliquid.venue import Hyperliquid, HyperliquidParser, parse_meta

pytestmark = pytest.mark.integration

VAULT = LIQUIDATORS[0]


@pytest.fixture
async def hl_sim() -> AsyncIterator[HyperliquidSimulator]:
    """Already in the long cascade, 10x faster; contexts every 100 ms, half the prints
    backstops."""
    async with HyperliquidSimulator(
        seed=7, time_scale=10.0, start_s=20, push_interval_s=0.1, backstop_share=0.5
    ) as s:
        yield s


def _sub(kind: str, method: str = "subscribe", **key: str) -> str:
    return json.dumps({"method": method, "subscription": {"type": kind, **key}})


def _markets(sim: HyperliquidSimulator) -> dict[str, Any]:
    return {i.symbol: i for i in parse_meta(sim.rest.meta)}


async def test_the_service_subscription_is_acked_and_every_push_parses(
    hl_sim: HyperliquidSimulator,
) -> None:
    sim = hl_sim
    markets = _markets(sim)
    venue = Hyperliquid(VenueSettings(ws_url=sim.ws_base_url, symbols=list(HL_SYMBOLS)))
    public, liquidations = venue.connections(markets)
    busy, quiet = await asyncio.gather(session(public, 1.5), session(liquidations, 1.5))
    for conn, got in ((public, busy), (liquidations, quiet)):
        parsed = [json.loads(f) for f in got]
        acks = [f for f in parsed if f["channel"] == "subscriptionResponse"]
        assert len(acks) == len(conn.subscribe)  # four coins, three channels each; five vaults
    channels = {json.loads(f)["channel"] for f in quiet}
    assert channels == {"subscriptionResponse", "userFills"}  # the vaults' fills alone
    assert not any('"userFills"' in f for f in busy)
    parsed = [json.loads(f) for f in quiet]
    snapshots = [f for f in parsed if f["channel"] == "userFills" and "isSnapshot" in f["data"]]
    assert len(snapshots) == 5
    frames = busy + quiet
    parser = HyperliquidParser("hyperliquid", markets, set(HL_SYMBOLS))
    parser.state_every_ms = 0
    events = [e for f in frames for e in parser.parse(f, int(time.time() * 1000))]
    assert not parser.stats.errors
    marks = {e.symbol: e for e in events if isinstance(e, MarkPrice)}
    assert set(marks) == set(HL_SYMBOLS)
    for coin, m in marks.items():
        assert m.mark_price == pytest.approx(sim.mark(coin), rel=0.01)
        assert m.index_price is not None
    funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
    for coin, f in funding.items():
        assert f.interval_h == 1.0
        assert f.funding_rate_1h == pytest.approx(
            sim.market.quote(coin).funding_rate_8h / 8, abs=2e-6
        )
    ois = {e.symbol: e for e in events if isinstance(e, OpenInterest)}
    for coin, oi in ois.items():
        assert oi.oi_base == pytest.approx(sim.oi_base(coin), rel=0.01)
        assert oi.oi_usd == pytest.approx(oi.oi_base * marks[coin].mark_price, rel=0.01)
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert liqs
    assert all(e.side is Side.LONG and e.sampled for e in liqs if e.base == "BTC")
    sent = {(p.symbol, str(sim.fill_of(p)["tid"])) for p in sim.pushed}
    assert {(e.symbol, e.event_id) for e in liqs} <= sent
    assert parser.stats.filtered >= len(liqs)  # each takeover's unwind: the vault's own trade


async def test_only_backstops_reach_the_vaults_fills(hl_sim: HyperliquidSimulator) -> None:
    sim = hl_sim
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_sub("userFills", user=VAULT))
        frames = [json.loads(f) for f in await collect(ws, 1.5)]
    fills = [f for m in frames if m["channel"] == "userFills" for f in m["data"]["fills"]]
    takeovers = [f for f in fills if "liquidation" in f]
    unwinds = [f for f in fills if "liquidation" not in f]
    assert takeovers
    assert len(unwinds) == len(takeovers)
    assert {f["liquidation"]["method"] for f in takeovers} == {"backstop"}
    btc = [f for f in takeovers if f["coin"] == "BTC"]
    assert btc
    assert {f["side"] for f in btc} == {"B"}
    assert {f["side"] for f in unwinds if f["coin"] == "BTC"} == {"A"}  # and sells them out
    ours = [p for p in sim.prints if p.symbol in HL_SYMBOLS]
    assert set(sim.pushed) <= set(ours)
    assert 0.3 * len(ours) < len(sim.pushed) < 0.7 * len(ours)  # market liquidations unseen
    for p in sim.pushed:
        f = sim.fill_of(p)
        assert float(f["sz"]) == pytest.approx(p.qty_base)
        assert f["side"] == ("B" if p.side is Side.LONG else "A")


async def test_a_user_fills_subscription_first_gets_a_snapshot_newest_first() -> None:
    async with (
        HyperliquidSimulator(
            seed=1,
            time_scale=10.0,
            start_s=20,
            backstop_share=1.0,
            liquidators=(VAULT,),
            snapshot_size=30,
        ) as sim,
        connect(sim.ws_base_url) as early,
    ):
        await early.send(_sub("userFills", user=VAULT))
        live_frames = asyncio.create_task(collect(early, 2.0))
        await until(lambda: len(sim.pushed) >= 40)
        async with connect(sim.ws_base_url) as late:
            await late.send(_sub("userFills", user=VAULT.upper().replace("0X", "0x")))
            ack = await recv_json(late)
            snapshot = await recv_json(late)
        live = [json.loads(f) for f in await live_frames]
    assert ack["channel"] == "subscriptionResponse"
    assert snapshot["channel"] == "userFills"
    assert snapshot["data"]["isSnapshot"] is True
    rows = snapshot["data"]["fills"]
    assert len(rows) == 30
    assert [r["tid"] for r in rows] == sorted((r["tid"] for r in rows), reverse=True)
    seen_live = {r["tid"] for m in live if m["channel"] == "userFills" for r in m["data"]["fills"]}
    assert {r["tid"] for r in rows} <= seen_live
    assert sim.snapshots == 2
    assert len(sim.replayed) == 15
    markets = _markets(sim)
    parser = HyperliquidParser("hyperliquid", markets, None)
    now = int(time.time() * 1000)
    live_ids = {e.event_id for m in live for e in parser.parse(json.dumps(m), now)}
    again = parser.parse(json.dumps(snapshot), now)
    assert len(again) == 15
    assert {e.event_id for e in again} <= live_ids


async def test_load_markets_asks_only_for_meta(hl_sim: HyperliquidSimulator) -> None:
    markets = await listed_markets(Hyperliquid, hl_sim)
    assert hl_sim.rest.requests == ["meta"]
    assert len(markets) == 15  # sixteen listed, one delisted
    assert "MATIC" not in markets
    assert markets["kPEPE"].base == "kPEPE"
    assert markets["BTC"].funding_interval_h == 1.0


async def test_ccxt_reads_the_markets_and_their_contexts(hl_sim: HyperliquidSimulator) -> None:
    client = ccxt_client("hyperliquid", Hyperliquid.ccxt_hosts, hl_sim.rest_base_url)
    client.options["fetchMarkets"] = {"types": ["swap"]}
    try:
        markets = await client.fetch_markets()
    finally:
        await client.close()
    assert hl_sim.rest.requests == ["metaAndAssetCtxs"]
    by_name = {m["baseName"]: m for m in markets}
    assert len(by_name) == 16
    assert by_name["MATIC"]["active"] is False
    assert by_name["BTC"]["symbol"] == "BTC/USDC:USDC"
    assert float(by_name["BTC"]["info"]["markPx"]) == pytest.approx(hl_sim.mark("BTC"), rel=0.01)


async def test_info_refuses_what_it_cannot_read(hl_sim: HyperliquidSimulator) -> None:
    client = ccxt_client("hyperliquid", Hyperliquid.ccxt_hosts, hl_sim.rest_base_url)
    try:
        with pytest.raises(Exception, match="422"):
            await client.publicPostInfo({"type": "spotMeta"})
    finally:
        await client.close()
    assert hl_sim.rest.requests == ["spotMeta"]


async def test_ping_gets_pong(hl_sim: HyperliquidSimulator) -> None:
    async with connect(hl_sim.ws_base_url) as ws:
        await ws.send('{"method":"ping"}')
        assert await asyncio.wait_for(ws.recv(), 1.0) == '{"channel":"pong"}'


@pytest.mark.parametrize(
    ("request_text", "text"),
    [
        ("{oops", "Error parsing JSON into valid websocket request: {oops"),
        ('{"method":"subscrib","subscription":{"type":"trades"}}', "Error parsing JSON"),
        (_sub("activeAssetCtx", coin="NOPE"), "Invalid subscription"),
        (_sub("activeAssetCtx", coin="MATIC"), "Invalid subscription"),  # delisted
        (_sub("userFills", user="0x123"), "Invalid subscription"),
        (_sub("candle", coin="BTC", interval="1m"), "Invalid subscription"),
        (_sub("activeAssetCtx", method="unsubscribe", coin="BTC"), "Already unsubscribed"),
    ],
)
async def test_bad_requests_are_answered_on_the_error_channel(
    hl_sim: HyperliquidSimulator, request_text: str, text: str
) -> None:
    async with connect(hl_sim.ws_base_url) as ws:
        await ws.send(request_text)
        answer = await recv_json(ws)
    assert answer["channel"] == "error"
    assert answer["data"].startswith(text)
    parser = HyperliquidParser("hyperliquid", {}, None)
    assert parser.parse(json.dumps(answer), 0) == []
    assert parser.stats.errors == {"venue_error": 1}


async def test_a_second_subscribe_is_refused_and_unsubscribe_stops_the_pushes(
    hl_sim: HyperliquidSimulator,
) -> None:
    async with connect(hl_sim.ws_base_url) as ws:
        await ws.send(_sub("activeAssetCtx", coin="ETH"))
        assert (await recv_json(ws))["channel"] == "subscriptionResponse"
        assert (await recv_json(ws))["data"]["coin"] == "ETH"  # the current context at once
        await ws.send(_sub("activeAssetCtx", coin="ETH"))
        while (answer := await recv_json(ws))["channel"] == "activeAssetCtx":
            pass
        assert answer == {
            "channel": "error",
            "data": 'Already subscribed: {"type":"activeAssetCtx","coin":"ETH"}',
        }
        await ws.send(_sub("activeAssetCtx", method="unsubscribe", coin="ETH"))
        while (answer := await recv_json(ws))["channel"] == "activeAssetCtx":
            pass
        assert answer["data"]["method"] == "unsubscribe"
        assert await collect(ws, 0.4) == []


async def test_unknown_path_is_refused(hl_sim: HyperliquidSimulator) -> None:
    assert await refused_status(hl_sim.ws_base_url.replace("/ws", "/nope")) == 404


async def test_drop_connections_cuts_without_a_close_frame(hl_sim: HyperliquidSimulator) -> None:
    async with connect(hl_sim.ws_base_url) as a, connect(hl_sim.ws_base_url) as b:
        assert hl_sim.clients == 2
        assert await hl_sim.drop_connections() == 2
        await assert_aborted(a, b)
    assert hl_sim.connections_total == 2


async def test_an_idle_connection_is_closed_and_a_pinged_one_lives() -> None:
    """The venue closes a connection it has sent nothing to for 60 s (here 0.5 s): a vault's
    fills alone (none here: no backstops) would not keep it open, its pongs do."""
    async with (
        HyperliquidSimulator(idle_close_s=0.5, backstop_share=0.0) as sim,
        connect(sim.ws_base_url) as silent,
        connect(sim.ws_base_url) as pinged,
    ):
        for ws in (silent, pinged):
            await ws.send(_sub("userFills", user=VAULT))  # an ack and an empty snapshot
        for _ in range(8):  # 1.6 s
            await pinged.send('{"method":"ping"}')
            while (await recv_json(pinged))["channel"] != "pong":
                pass  # the ack and the snapshot first
            await asyncio.sleep(0.2)
        with pytest.raises(ConnectionClosedOK):
            await read_until_closed(silent)
        assert (silent.close_code, silent.close_reason) == (1000, "idle")
        assert pinged.close_code is None
        assert sim.idle_closes == 1


async def test_stall_keeps_the_connection_but_pushes_nothing(
    hl_sim: HyperliquidSimulator,
) -> None:
    async with connect(hl_sim.ws_base_url) as ws:
        await ws.send(_sub("activeAssetCtx", coin="SOL"))
        await ws.send(_sub("userFills", user=VAULT))
        assert len(await collect(ws, 0.4)) >= 3
        pushed = len(hl_sim.pushed)
        hl_sim.stall(0.8)
        await collect(ws, 0.05)  # a frame may have been in flight
        await ws.send('{"method":"ping"}')
        assert await collect(ws, 0.5) == ['{"channel":"pong"}']
        assert len(hl_sim.pushed) == pushed  # fills wait...
        back = [json.loads(f) for f in await collect(ws, 0.6)]
    assert any(f["channel"] == "activeAssetCtx" for f in back)
    assert len(hl_sim.pushed) > pushed  # ...and are sent afterwards


async def test_a_shared_clock_serves_the_listed_coins_of_a_bigger_market() -> None:
    market = Market(get_scenario("calm"), specs=DEFAULT_SPECS + HL_SPECS)
    assert set(HyperliquidSimulator(clock=MarketClock(market)).coins) == set(HL_SYMBOLS)
    with pytest.raises(ValueError, match="listed Hyperliquid coin"):
        HyperliquidSimulator(clock=MarketClock(Market(get_scenario("calm"))))


async def test_list_only_simulated_lists_the_four_coins() -> None:
    async with HyperliquidSimulator(list_only_simulated=True) as sim:
        markets = await listed_markets(Hyperliquid, sim)
    assert set(markets) == set(HL_SYMBOLS)
