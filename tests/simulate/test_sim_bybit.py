"""The Bybit v5 simulator over real websockets and HTTP on loopback, read by our real parser."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import httpx
import pytest
from simkit import (
    assert_aborted,
    bybit_instruments,
    collect,
    listed_markets,
    refused_status,
    session,
)
from websockets.asyncio.client import ClientConnection, connect

from service.config import VenueSettings
from service.events import AdlLevel, AdlRisk, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.clock import MarketClock
from service.simulate.market import Market
from service.simulate.scenario import Drift, Label, Phase, Regime, Scenario, get_scenario
from service.venues.bybit import venue as venue_module
from service.venues.bybit.simulator import wire
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.bybit.venue import Bybit, BybitParser

pytestmark = pytest.mark.integration

VENUE = "bybit"
LINEAR = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
INVERSE = ["BTCUSD", "ETHUSD"]


async def _subscribe(ws: ClientConnection, *topics: str, req_id: str = "t1") -> dict[str, Any]:
    await ws.send(json.dumps({"req_id": req_id, "op": "subscribe", "args": list(topics)}))
    ack: dict[str, Any] = json.loads(await ws.recv())
    return ack


async def test_the_service_subscription_is_acked_and_every_frame_parses(
    bybit_sim: BybitSimulator,
) -> None:
    markets = bybit_instruments()
    conns = {
        c.name: c for c in Bybit(VenueSettings(ws_url=bybit_sim.ws_base_url)).connections(markets)
    }
    linear, quiet = conns["linear-1"], conns["linear-liquidations-1"]
    frames, quiet_frames = await asyncio.gather(session(linear, 1.2), session(quiet, 1.2))
    acks = [json.loads(f) for f in frames if '"op":"subscribe"' in f]
    assert len(acks) == len(linear.subscribe)
    for ack, sent in zip(acks, linear.subscribe, strict=True):
        # The documented linear/inverse shape, key order included.
        assert list(ack) == ["success", "ret_msg", "conn_id", "req_id", "op"]
        assert ack["success"] is True
        assert ack["ret_msg"] == ""
        assert ack["req_id"] == json.loads(sent)["req_id"]
    assert len({a["conn_id"] for a in acks}) == 1
    parser = BybitParser(VENUE, markets, None)
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert {m.symbol for m in marks} == set(LINEAR)  # listed-only symbols send nothing
    last_btc = next(m for m in reversed(marks) if m.symbol == "BTCUSDT")
    assert last_btc.mark_price == pytest.approx(bybit_sim.mark("BTCUSDT"), rel=0.005)
    assert not any(isinstance(e, Liquidation) for e in events)  # on the quiet lane
    # The quiet lane: its acks, then liquidation batches only.
    quiet_acks = [json.loads(f) for f in quiet_frames if '"op":"subscribe"' in f]
    assert len(quiet_acks) == len(quiet.subscribe)
    assert all(a["success"] is True for a in quiet_acks)
    pushes = [json.loads(f) for f in quiet_frames if '"op":"subscribe"' not in f]
    assert pushes
    assert all(p["topic"].startswith("allLiquidation.") for p in pushes)
    quiet_events = [e for f in quiet_frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    liqs = [e for e in quiet_events if isinstance(e, Liquidation) and e.symbol == "BTCUSDT"]
    assert liqs  # the fixture starts in the long cascade
    assert all(e.side is Side.LONG and not e.sampled for e in liqs)


async def test_ping_is_answered_with_a_pong(bybit_sim: BybitSimulator) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/inverse") as ws:
        ack = await _subscribe(ws, "allLiquidation.XRPUSD")
        await ws.send('{"req_id":"100001","op":"ping"}')
        pong = json.loads(await ws.recv())
    assert pong == {
        "success": True,
        "ret_msg": "pong",
        "conn_id": ack["conn_id"],
        "req_id": "100001",
        "op": "ping",
    }


async def test_tickers_send_a_snapshot_then_deltas_of_what_changed(
    bybit_sim: BybitSimulator,
) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        assert (await _subscribe(ws, "tickers.BTCUSDT"))["success"] is True
        frames = [json.loads(f) for f in await collect(ws, 1.0, at_least=8)]
    snapshot, *deltas = frames
    assert snapshot["topic"] == "tickers.BTCUSDT"
    assert snapshot["type"] == "snapshot"
    assert list(snapshot) == ["topic", "type", "data", "cs", "ts"]
    fields = snapshot["data"]
    for key in ("markPrice", "indexPrice", "openInterest", "singleOpenInterest", "fundingRate",
                "nextFundingTime"):  # fmt: skip
        assert key in fields
    assert fields["fundingIntervalHour"] == "8"
    # Since 2026-06-11: openInterest counts both sides, singleOpenInterest one side.
    single, mark = float(fields["singleOpenInterest"]), float(fields["markPrice"])
    assert float(fields["openInterest"]) == pytest.approx(2 * single, rel=1e-6)
    assert single == pytest.approx(bybit_sim.oi_base("BTCUSDT"), rel=0.01)
    assert float(fields["openInterestValue"]) == pytest.approx(2 * single * mark, rel=1e-6)
    assert float(fields["singleOpenInterestValue"]) == pytest.approx(single * mark, rel=1e-6)
    assert len(deltas) >= 7  # every 100 ms: ~1 s (longer when late ticks were skipped)
    state = dict(fields)
    for d in deltas:
        assert d["type"] == "delta"
        assert d["ts"] % 100 == 0  # on the push grid
        data = d["data"]
        assert next(iter(data)) == "symbol"
        changed = {k: v for k, v in data.items() if k != "symbol"}
        assert changed
        assert set(changed) <= set(fields)
        assert all(state[k] != v for k, v in changed.items())  # only what changed
        state.update(changed)
    assert all(a["ts"] < b["ts"] and a["cs"] < b["cs"] for a, b in itertools.pairwise(frames))
    assert float(state["markPrice"]) == pytest.approx(bybit_sim.mark("BTCUSDT"), rel=0.005)


async def test_liquidations_are_batched_every_500_ms_and_complete() -> None:
    burst = Drift(liq_rate_per_s=40.0, liq_median_usd=20_000, liq_side=Side.SHORT)
    scenario = Scenario(
        "burst",
        "",
        (Phase("burst", 60, Label(Regime.CASCADE, Side.SHORT, ("BTC",)), {"BTC": burst}),),
    )
    async with (
        BybitSimulator(scenario, symbols=["BTCUSDT", "ETHUSDT"]) as sim,
        connect(f"{sim.ws_base_url}/linear") as ws,
    ):
        await _subscribe(ws, "allLiquidation.BTCUSDT")
        frames = [json.loads(f) for f in await collect(ws, 2.3)]
        # What the simulator has pushed by now; a batch pushed as the window closed is still
        # on its way, and is read next (the next batch is 500 ms away).
        pushed = list(sim.pushed)
        later = [json.loads(f) for f in await collect(ws, 0.3)]
    assert all(f["topic"] == "allLiquidation.BTCUSDT" and f["type"] == "snapshot" for f in frames)
    assert len(frames) >= 4
    assert all(b["ts"] - a["ts"] >= 400 for a, b in itertools.pairwise(frames))
    rows = [r for f in frames for r in f["data"]]
    assert max(len(f["data"]) for f in frames) >= 5  # batches, not one per frame
    assert all(r["S"] == "Sell" for r in rows)  # shorts liquidated: Sell, the position side
    first, last = rows[0]["T"], rows[-1]["T"]
    contract = sim.contracts["BTCUSDT"]
    expected = [
        wire.liquidation_row(p, contract)
        for p in sim.prints
        if p.symbol == "BTCUSDT" and first <= p.ts_ms <= last
    ]
    assert rows == expected  # every liquidation in between, none throttled
    received = rows + [r for f in later for r in f["data"]]
    assert [wire.liquidation_row(p, contract) for p in pushed] == received[: len(pushed)]


async def test_inverse_sizes_are_usd_contracts(bybit_sim: BybitSimulator) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/inverse") as ws:
        await _subscribe(ws, "tickers.BTCUSD", "allLiquidation.BTCUSD")
        frames = [json.loads(f) for f in await collect(ws, 1.2)]
    snapshot = frames[0]["data"]
    oi, mark = snapshot["singleOpenInterest"], float(snapshot["markPrice"])
    assert oi.isdigit()  # whole USD contracts
    assert snapshot["openInterest"].isdigit()
    assert int(snapshot["openInterest"]) == 2 * int(oi)  # both sides
    assert float(snapshot["singleOpenInterestValue"]) == pytest.approx(int(oi) / mark, rel=1e-5)
    latest = dict(snapshot)
    for f in frames[1:]:
        if f["topic"] == "tickers.BTCUSD":
            latest.update(f["data"])
    usd_now = bybit_sim.oi_base("BTCUSD") * bybit_sim.mark("BTCUSD")
    assert int(latest["singleOpenInterest"]) == pytest.approx(usd_now, rel=0.005)
    rows = [r for f in frames if f["topic"].startswith("allLiquidation") for r in f["data"]]
    assert rows
    assert all(r["v"].isdigit() and r["S"] == "Buy" for r in rows)
    parser = BybitParser(VENUE, bybit_instruments(), None)
    events = [e for f in frames for e in parser.parse(json.dumps(f), 0)]
    ois = [e for e in events if isinstance(e, OpenInterest)]
    assert ois[0].oi_usd == int(oi)
    liqs = [e for e in events if isinstance(e, Liquidation)]
    assert [x.notional_usd for x in liqs] == [float(r["v"]) for r in rows]


async def test_refused_topics_are_named_and_the_rest_is_subscribed(
    bybit_sim: BybitSimulator,
) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        ack = await _subscribe(ws, "tickers.NOPEUSDT", "tickers.BTCUSD", "tickers.ETHUSDT")
        snapshot = json.loads(await ws.recv())
        again = await _subscribe(ws, "tickers.XRPUSDT", req_id="t2")  # listed, not simulated
        frames = [json.loads(f) for f in await collect(ws, 0.4)]
    assert ack["success"] is False
    assert ack["op"] == "subscribe"
    assert "NOPEUSDT" in ack["ret_msg"]
    assert "BTCUSD" in ack["ret_msg"]  # an inverse symbol on the linear path
    parser = BybitParser(VENUE, bybit_instruments(), None)
    parser.parse(json.dumps(ack), 0)
    assert parser.stats.errors == {"subscribe_failed": 1}
    assert snapshot["topic"] == "tickers.ETHUSDT"
    assert again["success"] is True
    assert {f["topic"] for f in frames} == {"tickers.ETHUSDT"}


async def test_bad_requests_are_answered_with_failures(bybit_sim: BybitSimulator) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        answers = []
        for text in ("{oops", '{"op":"subscribe","args":"tickers.BTCUSDT"}', '{"op":"jump"}'):
            await ws.send(text)
            answers.append(json.loads(await ws.recv()))
        too_long = [f"tickers.{'X' * 40}{i}" for i in range(600)]
        answers.append(await _subscribe(ws, *too_long))
    assert [a["success"] for a in answers] == [False] * 4
    assert "21000" in answers[-1]["ret_msg"]


async def test_unsubscribe_stops_the_topic(bybit_sim: BybitSimulator) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        await _subscribe(ws, "tickers.BTCUSDT")
        await ws.send('{"req_id":"u","op":"unsubscribe","args":["tickers.BTCUSDT"]}')
        frames = [json.loads(f) for f in await collect(ws, 0.6)]
    ack = next(f for f in frames if f.get("op") == "unsubscribe")
    assert ack["success"] is True
    assert all("topic" not in f for f in frames[frames.index(ack) + 1 :])


async def test_unknown_path_is_refused(bybit_sim: BybitSimulator) -> None:
    assert await refused_status(f"{bybit_sim.ws_base_url}/spot") == 404


async def test_drop_connections_cuts_without_a_close_frame(bybit_sim: BybitSimulator) -> None:
    base = bybit_sim.ws_base_url
    async with connect(f"{base}/linear") as a, connect(f"{base}/inverse") as b:
        assert bybit_sim.clients == 2
        assert await bybit_sim.drop_connections() == 2
        assert bybit_sim.clients == 0
        await assert_aborted(a, b)
    async with connect(f"{base}/linear") as again:
        assert (await _subscribe(again, "tickers.SOLUSDT"))["success"] is True
        assert json.loads(await again.recv())["type"] == "snapshot"
    assert bybit_sim.connections_total == 3


async def test_stall_sends_no_data_but_answers_pings(bybit_sim: BybitSimulator) -> None:
    async with connect(f"{bybit_sim.ws_base_url}/linear") as ws:
        await _subscribe(ws, "tickers.BTCUSDT", "allLiquidation.BTCUSDT")
        assert await collect(ws, 0.3)
        bybit_sim.stall(0.8)
        await asyncio.sleep(0.05)
        await collect(ws, 0.05)  # a frame may have been in flight
        await ws.send('{"op":"ping"}')
        assert [json.loads(f)["op"] for f in await collect(ws, 0.5)] == ["ping"]
        assert len(await collect(ws, 0.6)) >= 2  # and back


async def test_a_shared_clock_serves_the_symbols_bybit_lists() -> None:
    market = Market(get_scenario("calm"), symbols=["BTCUSDT", "BNBUSDT"], seed=1)
    clock = MarketClock(market, time_scale=5.0)
    clock.start()
    try:
        async with BybitSimulator(clock=clock) as sim:
            assert list(sim.contracts) == ["BTCUSDT"]  # BNBUSDT: not in Bybit's list
            async with connect(f"{sim.ws_base_url}/linear") as ws:
                await _subscribe(ws, "tickers.BTCUSDT")
                snapshot = json.loads(await ws.recv())
            assert float(snapshot["data"]["markPrice"]) == pytest.approx(
                market.mark("BTCUSDT"), rel=0.001
            )
    finally:
        await clock.stop()


# -- REST ----------------------------------------------------------------------------------------


async def test_instruments_info_pages_with_a_cursor(bybit_sim: BybitSimulator) -> None:
    async with httpx.AsyncClient(base_url=bybit_sim.rest_base_url, timeout=5.0) as http:
        pages, cursor = [], None
        while cursor != "":
            params = {"category": "linear", "limit": "3"} | ({"cursor": cursor} if cursor else {})
            body = (await http.get("/v5/market/instruments-info", params=params)).json()
            assert body["retCode"] == 0
            pages.append([r["symbol"] for r in body["result"]["list"]])
            cursor = body["result"]["nextPageCursor"]
        prelaunch = (
            await http.get(
                "/v5/market/instruments-info", params={"category": "linear", "status": "PreLaunch"}
            )
        ).json()
        bad = (await http.get("/v5/market/instruments-info", params={"category": "spot"})).json()
        time = (await http.get("/v5/market/time")).json()
    listed = wire.load_instruments("linear")["result"]["list"]
    trading = [r["symbol"] for r in listed if r["status"] == "Trading"]
    assert [s for page in pages for s in page] == trading
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r["symbol"] for r in prelaunch["result"]["list"]] == ["BIOUSDT"]
    assert bad["retCode"] == 10001
    assert int(time["result"]["timeNano"]) // 1_000_000 == pytest.approx(time["time"], abs=5)


async def test_the_venue_loads_the_perpetuals_through_ccxt_following_cursors(
    bybit_sim: BybitSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(venue_module, "PAGE_LIMIT", 2)  # several pages per category
    markets = await listed_markets(Bybit, bybit_sim)
    assert markets == bybit_instruments()
    assert set(LINEAR + INVERSE) <= set(markets)
    assert {"BTC-26DEC25", "BTCUSDZ25", "BIOUSDT"}.isdisjoint(markets)  # futures, pre-market
    assert markets["DOGEUSDT"].funding_interval_h == 4.0
    assert bybit_sim.rest.requests >= 6  # 5 linear pages of 2 and 2 inverse ones


async def test_list_only_simulated_lists_the_simulated_symbols() -> None:
    async with BybitSimulator(list_only_simulated=True) as sim:
        markets = await listed_markets(Bybit, sim)
    assert sorted(markets) == sorted(LINEAR + INVERSE)


async def test_adl_alerts_are_pushed_every_second_and_say_active_while_adl_runs() -> None:
    """``adlAlert.USDT`` on the linear path, ``adlAlert.inverse`` on the inverse one: every
    simulated symbol each second; BTC's contracts past their trigger while the scenario
    auto-deleverages BTC, ETH's not."""
    adl = Scenario(
        "adl", "BTC auto-deleveraged.",
        (Phase("adl", 600.0, Label(Regime.CASCADE, Side.LONG, ("BTC",)),
               {"BTC": Drift(price_pct_per_min=-1.0, oi_pct_per_min=-1.0, adl=True)}),),
    )  # fmt: skip
    markets = bybit_instruments()
    async with BybitSimulator(adl, seed=3) as sim:
        got: dict[str, list[str]] = {}
        for path, topic in (("linear", "adlAlert.USDT"), ("inverse", "adlAlert.inverse")):
            async with connect(f"{sim.ws_base_url}/{path}") as ws:
                ack = await _subscribe(ws, topic)
                assert ack["success"] is True
                got[topic] = await collect(ws, 2.3)
    for topic, frames in got.items():
        docs = [json.loads(f) for f in frames]
        assert len(docs) >= 2  # every second
        assert all(d["topic"] == topic and d["type"] == "snapshot" for d in docs)
        times = [d["ts"] for d in docs]
        assert all(b - a == 1000 for a, b in itertools.pairwise(times))
        parser = BybitParser(VENUE, markets, None)
        for f in frames:
            assert parser.parse(f, 0) == []
        assert not parser.stats.errors
        levels = {e.symbol: e.level for e in parser.take_stress() if isinstance(e, AdlRisk)}
        simulated = LINEAR if topic.endswith("USDT") else INVERSE
        assert set(levels) == set(simulated)
        assert {s for s, lv in levels.items() if lv is AdlLevel.ACTIVE} == {
            s for s in simulated if s.startswith("BTC")
        }
