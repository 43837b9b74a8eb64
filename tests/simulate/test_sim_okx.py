"""The OKX simulator over a real websocket and HTTP on loopback, read by our real venue code."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

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
from service.simulate.market import DEFAULT_SPECS, LiquidationPrint, Market
from service.simulate.scenario import get_scenario
from service.venues.base import Instrument, now_ms
from service.venues.okx.simulator.server import OKX_SPECS, OKX_SYMBOLS, OkxSimulator
from service.venues.okx.venue import Okx, OkxParser, instrument

pytestmark = pytest.mark.integration

LIQUIDATIONS = {"channel": "liquidation-orders", "instType": "SWAP"}


@pytest.fixture
async def okx_sim() -> AsyncIterator[OkxSimulator]:
    """Already in the long cascade, 10x faster; marks every 100 ms, OI every 300 ms."""
    async with OkxSimulator(
        seed=7,
        time_scale=10.0,
        start_s=20,
        push_interval_s=0.1,
        oi_interval_s=0.3,
        funding_interval_s=0.5,
    ) as s:
        yield s


def _markets(sim: OkxSimulator) -> dict[str, Instrument]:
    """The listing the simulator serves, as the service reads it."""
    rows = json.loads(sim.rest.listing)["data"]
    return {r["instId"]: inst for r in rows if (inst := instrument(r)) is not None}


def _subscribe(*args: dict[str, str], req_id: str | None = None) -> str:
    return json.dumps({"op": "subscribe", "args": list(args)} | ({"id": req_id} if req_id else {}))


def _identity(inst_id: str, d: dict[str, str]) -> tuple[Any, ...]:
    """A liquidation as the wire identifies it (what a re-send repeats)."""
    return (inst_id, int(d["ts"]), d["side"], d["posSide"], float(d["sz"]), float(d["bkPx"]))


def _liq_identity(liq: Liquidation) -> tuple[str, str]:
    return (liq.symbol, liq.event_id)


def _liquidations(parser: OkxParser, frame: dict[str, Any]) -> list[Liquidation]:
    return [e for e in parser.parse(json.dumps(frame), 0) if isinstance(e, Liquidation)]


async def test_the_service_subscription_is_acked_per_arg_and_every_push_parses(
    okx_sim: OkxSimulator,
) -> None:
    sim = okx_sim
    markets = _markets(sim)
    venue = Okx(VenueSettings(ws_url=sim.ws_base_url, symbols=list(OKX_SYMBOLS)))
    conn, liquidations = venue.connections(markets)
    frames, liquidation_frames = await asyncio.gather(
        session(conn, 2.2), session(liquidations, 2.2)
    )
    acks = [json.loads(f) for f in frames if '"event"' in f]
    per_swap = ("mark-price", "open-interest", "funding-rate", "tickers", "trades")
    assert len(acks) == len(per_swap) * len(OKX_SYMBOLS)
    assert all("liquidation-orders" not in f for f in frames)  # on its own connection
    (ack,) = (json.loads(f) for f in liquidation_frames if '"event"' in f)
    assert (ack["event"], ack["arg"]) == ("subscribe", LIQUIDATIONS)
    frames += liquidation_frames
    assert all(a["event"] == "subscribe" and a["id"] == "1" and a["connId"] for a in acks)
    parser = venue.new_parser(markets, set(OKX_SYMBOLS))  # with traded volume
    recv = now_ms()  # after every frame (a print ahead of it is dropped)
    events = [e for f in frames for e in parser.parse(f, recv)]
    events += parser.flush_volumes(recv)
    assert not parser.stats.errors
    tops = {e.symbol: e for e in events if isinstance(e, BookTop)}
    assert set(tops) == set(OKX_SYMBOLS)  # on subscription, then on change
    for sym, top in tops.items():
        assert top.bid_price < top.ask_price
        assert top.ask_price == pytest.approx(sim.mark(sym), rel=0.01)
        assert min(top.bid_usd, top.ask_usd) > 0
    volumes = {e.symbol for e in events if isinstance(e, Volume)}
    assert volumes == set(OKX_SYMBOLS)  # the calm tape, every second
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert {m.symbol for m in marks} == set(OKX_SYMBOLS)
    for sym in OKX_SYMBOLS:
        last = next(m for m in reversed(marks) if m.symbol == sym)
        assert last.mark_price == pytest.approx(sim.mark(sym), rel=0.01)
    funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
    assert funding["ETH-USD-SWAP"].interval_h == 4.0  # the simulated 4 h swap
    assert funding["BTC-USDT-SWAP"].interval_h == 8.0
    assert all(f.next_funding_ms and f.next_funding_ms > f.ts_ms for f in funding.values())
    ois = {e.symbol: e for e in events if isinstance(e, OpenInterest)}
    assert set(ois) == set(OKX_SYMBOLS)
    for sym, oi in ois.items():
        assert oi.oi_base == pytest.approx(sim.oi_base(sym), rel=0.01)
    assert ois["BTC-USD-SWAP"].oi_usd == pytest.approx(ois["BTC-USD-SWAP"].oi_contracts * 100)
    btc = ois["BTC-USDT-SWAP"]
    assert btc.oi_contracts == pytest.approx(btc.oi_base / 0.01)
    assert btc.oi_usd == pytest.approx(btc.oi_base * sim.mark("BTC-USDT-SWAP"), rel=0.01)
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert liqs  # the cascade
    assert all(e.side is Side.LONG and e.sampled for e in liqs if e.base == "BTC")
    sent = {(p.symbol, sim.detail(p)["ts"], sim.detail(p)["sz"]) for p in sim.pushed}
    assert {(e.symbol, str(e.ts_ms), str(int(e.quantity))) for e in liqs} <= sent


async def test_load_markets_asks_only_for_the_swap_listing(okx_sim: OkxSimulator) -> None:
    markets = await listed_markets(Okx, okx_sim)
    assert okx_sim.rest.requests == ["/api/v5/public/instruments?instType=SWAP"]
    assert len(markets) == 166  # the recorded listing
    assert markets["BTC-USD-SWAP"].contract_size == 100.0
    assert not markets["BTC-USD-SWAP"].linear
    assert markets["ETH-USDT-SWAP"].contract_size == 0.1
    assert markets["ETH-USDT-SWAP"].linear
    assert markets["ETH-USDT-SWAP"].base == "ETH"


async def test_a_liquidations_subscription_first_gets_a_burst_of_recent_ones() -> None:
    async with (
        OkxSimulator(seed=1, time_scale=10.0, start_s=20, burst_size=15) as sim,
        connect(sim.ws_base_url) as early,
    ):
        await early.send(_subscribe(LIQUIDATIONS))
        live_frames = asyncio.create_task(collect(early, 2.0))
        await until(lambda: len(sim.pushed) >= 40)
        before, bursts = list(sim.pushed), sim.bursts
        async with connect(sim.ws_base_url) as late:
            await late.send(_subscribe(LIQUIDATIONS, req_id="7"))
            ack = await recv_json(late)
            burst = await recv_json(late)
            await late.send(_subscribe(LIQUIDATIONS))  # again: acked; no new subscription
            while "event" not in (again := await recv_json(late)):
                assert again["arg"] == LIQUIDATIONS  # a live push came first
            assert again["event"] == "subscribe"
        live = [json.loads(f) for f in await live_frames if '"data"' in f]
    assert ack == {"id": "7", "event": "subscribe", "arg": LIQUIDATIONS, "connId": ack["connId"]}
    assert burst["arg"] == LIQUIDATIONS
    got = [_identity(e["instId"], d) for e in burst["data"] for d in e["details"]]
    recent = sim.replayed[-15:]
    assert len(got) == 15
    assert sorted(got) == sorted(_identity(p.symbol, sim.detail(p)) for p in recent)
    assert recent == list(reversed(before[-15:]))  # the last ones pushed, newest first
    assert sim.bursts == bursts + 1
    # The early connection saw them live: the burst re-sends them, with the same identity.
    seen_live = {_identity(e["instId"], d) for f in live for e in f["data"] for d in e["details"]}
    assert set(got) <= seen_live
    parser = OkxParser("okx", _markets(sim), None)
    by_wire = {_liq_identity(x) for f in live for x in _liquidations(parser, f)}
    resent = {_liq_identity(x) for x in _liquidations(parser, burst)}
    assert resent <= by_wire


async def test_liquidations_are_a_sample_sent_in_batches_out_of_order(
    okx_sim: OkxSimulator,
) -> None:
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(_subscribe(LIQUIDATIONS))
        frames = [json.loads(f) for f in await collect(ws, 1.0)][1:]  # the ack
    details = [(e["instId"], d) for f in frames for e in f["data"] for d in e["details"]]
    assert {i for i, _ in details} == set(OKX_SYMBOLS)
    assert {d["posSide"] for _, d in details} == {"long", "net"}  # hedge and net accounts
    assert {d["side"] for _, d in details} == {"sell"}  # longs closed by sells
    out_of_order = [
        f
        for f in frames[1:]
        for e in f["data"]
        if [int(d["ts"]) for d in e["details"]] != sorted(int(d["ts"]) for d in e["details"])
    ]
    assert out_of_order
    ours = [p for p in okx_sim.prints if p.symbol in OKX_SYMBOLS]
    assert set(okx_sim.pushed) <= set(ours)
    assert 0.3 * len(ours) < len(okx_sim.pushed) < 0.7 * len(ours)  # keeps about half


def _contracts_of(p: LiquidationPrint, sim: OkxSimulator) -> int:
    return int(sim.detail(p)["sz"])


async def test_contract_sizes_follow_ct_val(okx_sim: OkxSimulator) -> None:
    await until(lambda: len(okx_sim.pushed) >= 20)
    for p in okx_sim.pushed:
        n = _contracts_of(p, okx_sim)
        if p.symbol == "BTC-USDT-SWAP":
            assert n == round(p.qty_base / 0.01)
        elif p.symbol == "BTC-USD-SWAP":
            assert n == max(1, round(p.qty_base * p.price / 100))


async def test_text_ping_gets_text_pong(okx_sim: OkxSimulator) -> None:
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 1.0) == "pong"


async def test_idle_connections_are_closed_with_4004() -> None:
    """Nothing subscribed: closed even if it pings. Subscribed but pushed nothing: closed
    unless it pings (each pong counts as a push)."""

    async def ping_until_closed(ws: ClientConnection, seconds: float) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in range(int(seconds / 0.15)):
                await ws.send("ping")
                await asyncio.sleep(0.15)

    async with OkxSimulator(idle_timeout_s=0.5, funding_interval_s=60.0) as sim:
        funding = {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}
        async with (
            connect(sim.ws_base_url) as never_subscribed,
            connect(sim.ws_base_url) as quiet,
            connect(sim.ws_base_url) as kept,
        ):
            for ws in (quiet, kept):
                await ws.send(_subscribe(funding))
                assert (await recv_json(ws))["event"] == "subscribe"
                assert "data" in await recv_json(ws)  # the snapshot; the next: in a minute
            await asyncio.gather(
                ping_until_closed(never_subscribed, 1.5), ping_until_closed(kept, 1.5)
            )
            for ws in (never_subscribed, quiet):
                with pytest.raises(ConnectionClosed):
                    await read_until_closed(ws)
                assert ws.close_code == 4004
                assert ws.close_reason == "No data received in 30s"
            await kept.send("ping")
            assert "pong" in await collect(kept, 0.3)  # still open


async def test_a_calm_liquidations_connection_is_kept_open_by_its_pings_alone() -> None:
    """The venue's quiet lane (``liquidations``: ``liquidation-orders`` alone) in a market
    that pushes it nothing: its pongs keep it open, as the docs' keep-alive says; without
    pings the venue's idle cut closes it (4004)."""
    venue = Okx(VenueSettings())
    (conn,) = (c for c in venue.connections({}) if c.quiet)
    async with OkxSimulator("calm", idle_timeout_s=0.5, liquidation_sample=0.0) as sim:
        async with connect(sim.ws_base_url) as pinged, connect(sim.ws_base_url) as silent:
            for ws in (pinged, silent):
                (request,) = conn.subscribe
                await ws.send(request)
                assert (await recv_json(ws))["event"] == "subscribe"
            frames: list[str] = []
            for _ in range(10):  # 1.5 s: three idle cuts
                await pinged.send(conn.ping or "")
                frames += await collect(pinged, 0.15)
            assert set(frames) == {"pong"}  # nothing pushed: only the pongs
            with pytest.raises(ConnectionClosed):
                await read_until_closed(silent)
            assert silent.close_code == 4004
            await pinged.send("ping")
            assert "pong" in await collect(pinged, 0.3)  # still open
        assert not sim.pushed


@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("{oops", "60012"),
        ('{"op":"subscribe","argss":[{"channel":"funding-rate"}]}', "60012"),
        ('{"op":"subscrib","args":[{"channel":"mark-price","instId":"BTC-USDT-SWAP"}]}', "60019"),
        (
            '{"id":"9","op":"subscribe","args":[{"channel":"candle1s","instId":"BTC-USDT-SWAP"}]}',
            "60018",
        ),
        ('{"op":"subscribe","args":[{"channel":"mark-price","instId":"NOPE-USDT-SWAP"}]}', "60018"),
        ('{"op":"subscribe","args":[{"channel":"liquidation-orders","instType":"ANY"}]}', "60018"),
    ],
)
async def test_bad_requests_are_answered_with_okx_error_frames(
    okx_sim: OkxSimulator, request_text: str, code: str
) -> None:
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(request_text)
        answer = await recv_json(ws)
    assert answer["event"] == "error"
    assert answer["code"] == code
    assert answer["connId"]
    if '"id":"9"' in request_text:
        assert answer["id"] == "9"
        assert "candle1s" in answer["msg"]
    parser = OkxParser("okx", {}, None)
    assert parser.parse(json.dumps(answer), 0) == []
    assert parser.stats.errors == {"venue_error": 1}


async def test_past_480_requests_an_hour_the_venue_refuses() -> None:
    mark = {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}
    async with OkxSimulator(max_ops_per_hour=3) as sim, connect(sim.ws_base_url) as ws:
        for _ in range(3):
            await ws.send(json.dumps({"op": "unsubscribe", "args": [mark]}))
            assert (await recv_json(ws))["event"] == "unsubscribe"
        await ws.send(_subscribe(mark))
        answer = await recv_json(ws)
    assert answer["code"] == "60014"


async def test_a_request_over_64_kb_closes_the_connection(okx_sim: OkxSimulator) -> None:
    args = [{"channel": "mark-price", "instId": f"COIN{n}-USDT-SWAP"} for n in range(1500)]
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(_subscribe(*args))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2.0)
    assert ws.close_code == 1009


async def test_unknown_path_is_refused(okx_sim: OkxSimulator) -> None:
    assert await refused_status(okx_sim.ws_base_url.replace("/public", "/nope")) == 404


async def test_drop_connections_cuts_without_a_close_frame(okx_sim: OkxSimulator) -> None:
    async with connect(okx_sim.ws_base_url) as a, connect(okx_sim.ws_base_url) as b:
        assert okx_sim.clients == 2
        assert await okx_sim.drop_connections() == 2
        assert okx_sim.clients == 0
        await assert_aborted(a, b)
    assert okx_sim.connections_total == 2


async def test_stall_keeps_the_connection_but_pushes_nothing(okx_sim: OkxSimulator) -> None:
    mark = {"channel": "mark-price", "instId": "ETH-USDT-SWAP"}
    async with connect(okx_sim.ws_base_url) as ws:
        await ws.send(_subscribe(mark))
        assert len(await collect(ws, 0.4)) >= 3
        okx_sim.stall(0.8)
        await collect(ws, 0.05)  # a frame may have been in flight
        await ws.send("ping")
        assert await collect(ws, 0.5) == ["pong"]
        assert len(await collect(ws, 0.6)) >= 2  # and back


async def test_a_shared_clock_serves_the_okx_swaps_of_a_bigger_market() -> None:
    market = Market(get_scenario("calm"), specs=DEFAULT_SPECS + OKX_SPECS)
    clock = MarketClock(market)
    assert set(OkxSimulator(clock=clock).contracts) == set(OKX_SYMBOLS)
    with pytest.raises(ValueError, match="OKX swap"):
        OkxSimulator(clock=MarketClock(Market(get_scenario("calm"))))


async def test_list_only_simulated_lists_the_four_swaps() -> None:
    async with OkxSimulator(list_only_simulated=True) as sim:
        markets = await listed_markets(Okx, sim)
    assert set(markets) == set(OKX_SYMBOLS)
