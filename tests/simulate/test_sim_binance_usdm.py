"""The Binance USDⓈ-M simulator over a real websocket on loopback, read by our real parser."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest
from simkit import VENUE, assert_aborted, collect, instruments, refused_status
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, Side
from service.simulate.market import DEFAULT_SYMBOLS
from service.simulate.runner import run_forever
from service.simulate.scenario import Drift, Label, Phase, Regime, Scenario
from service.venues import SIMULATORS
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.usdm import BinanceUsdm, BinanceUsdmParser

pytestmark = pytest.mark.integration

ACK = '{"result":null,"id":1}'


def _subscribe() -> str:
    """Exactly what the service sends after connecting."""
    [msg] = BinanceUsdm(VenueSettings()).connections({})[0].subscribe
    return msg


async def test_service_subscription_is_acked_and_every_frame_parses(
    sim: BinanceUsdmSimulator,
) -> None:
    market, liquidations = BinanceUsdm(VenueSettings(ws_url=sim.ws_base_url)).connections({})[:2]
    async with connect(market.url) as ws:  # both connections' streams on one socket here
        for conn in (market, liquidations):
            await ws.send(conn.subscribe[0])
            assert await ws.recv() == ACK
        frames = await collect(ws, 1.0)
    parser = BinanceUsdmParser(VENUE, instruments(), None)
    events = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    assert all(json.loads(f)["stream"] in ("!markPrice@arr@1s", "!forceOrder@arr") for f in frames)
    marks = [e for e in events if isinstance(e, MarkPrice)]
    assert {m.symbol for m in marks} == set(DEFAULT_SYMBOLS)
    assert len(marks) >= 8 * len(DEFAULT_SYMBOLS)  # every 100 ms for ~1 s
    last_btc = next(m for m in reversed(marks) if m.symbol == "BTCUSDT")
    assert last_btc.mark_price == pytest.approx(sim.mark("BTCUSDT"), rel=0.005)
    funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
    assert funding["DOGEUSDT"].interval_h == 4.0
    assert funding["DOGEUSDT"].next_funding_ms % (4 * 3_600_000) == 0
    assert funding["BTCUSDT"].next_funding_ms % (8 * 3_600_000) == 0
    liqs = [e for e in events if isinstance(e, Liquidation)]
    btc_liqs = [e for e in liqs if e.symbol == "BTCUSDT"]
    assert btc_liqs  # the fixture starts in the long cascade
    assert all(e.side is Side.LONG and e.sampled for e in btc_liqs)
    pushed = {(p.symbol, p.ts_ms) for p in sim.pushed}
    assert {(e.symbol, e.ts_ms) for e in liqs} <= pushed
    assert len(sim.prints) > len(sim.pushed)  # the throttle hides most of the cascade


async def test_force_orders_never_two_per_symbol_within_a_second() -> None:
    burst = Drift(liq_rate_per_s=60.0, liq_median_usd=50_000, liq_side=Side.LONG)
    scenario = Scenario(
        "burst",
        "",
        (
            Phase(
                "burst",
                60,
                Label(Regime.CASCADE, Side.LONG, ("BTC", "ETH")),
                {"BTC": burst, "ETH": burst},
            ),
        ),
    )
    async with (
        BinanceUsdmSimulator(scenario, symbols=["BTCUSDT", "ETHUSDT"], push_interval_s=5) as sim,
        connect(f"{sim.ws_base_url}/stream?streams=!forceOrder@arr/btcusdt@forceOrder") as ws,
    ):
        frames = [json.loads(f) for f in await collect(ws, 1.4)]
    seen: dict[tuple[str, str], list[int]] = defaultdict(list)
    for f in frames:
        seen[(f["stream"], f["data"]["o"]["s"])].append(f["data"]["E"])
    assert set(seen) == {
        ("!forceOrder@arr", "BTCUSDT"),
        ("!forceOrder@arr", "ETHUSDT"),
        ("btcusdt@forceOrder", "BTCUSDT"),
    }
    for times in seen.values():
        assert len(times) >= 2
        assert all(b - a >= 1000 for a, b in itertools.pairwise(times))
    btc_prints = [p for p in sim.prints if p.symbol == "BTCUSDT"]
    assert len(btc_prints) > 20 * len(seen[("!forceOrder@arr", "BTCUSDT")])  # 60/s vs 1/s
    assert all(p in sim.prints for p in sim.pushed)


async def test_raw_path_delivers_bare_events_of_the_streams_in_the_path(
    sim: BinanceUsdmSimulator,
) -> None:
    async with connect(f"{sim.ws_base_url}/ws/ethusdt@markPrice@1s") as ws:
        frames = [json.loads(f) for f in await collect(ws, 0.5)]
    assert len(frames) >= 3
    assert all(f["e"] == "markPriceUpdate" and f["s"] == "ETHUSDT" for f in frames)
    assert all(f["E"] % 100 == 0 for f in frames)  # event times on the push grid


async def test_three_second_streams_push_a_third_as_often(sim: BinanceUsdmSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/ws") as ws:
        await ws.send(
            '{"method":"SUBSCRIBE","params":["!markPrice@arr","btcusdt@markPrice@1s"],"id":1}'
        )
        assert await ws.recv() == ACK
        frames = [json.loads(f) for f in await collect(ws, 1.0)]
    arrays = [f for f in frames if isinstance(f, list)]
    singles = [f for f in frames if isinstance(f, dict)]
    assert arrays
    assert len(singles) >= 2.5 * len(arrays)


async def test_unrouted_paths_accept_but_never_deliver(sim: BinanceUsdmSimulator) -> None:
    async with (
        connect(f"{sim.ws_base_url.removesuffix('/market')}/stream") as bare,
        connect(f"{sim.ws_base_url.removesuffix('/market')}/ws/btcusdt@markPrice@1s") as raw,
        connect(f"{sim.ws_base_url}/stream") as routed,
    ):
        for ws in (bare, routed):
            await ws.send(_subscribe())
            assert await ws.recv() == ACK
        got_bare, got_raw, got_routed = await asyncio.gather(
            collect(bare, 0.5), collect(raw, 0.5), collect(routed, 0.5)
        )
    assert got_bare == []
    assert got_raw == []
    assert len(got_routed) >= 3


async def test_unknown_path_is_refused(sim: BinanceUsdmSimulator) -> None:
    assert await refused_status(f"{sim.ws_base_url}/nope") == 404


async def test_bad_requests_are_answered_with_error_frames(sim: BinanceUsdmSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/ws") as ws:
        await ws.send("{oops")
        assert json.loads(await ws.recv())["error"]["code"] == 3
        await ws.send('{"method":"SUBSCRIB","params":["!forceOrder@arr"],"id":2}')
        answer = json.loads(await ws.recv())
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":3}')
        listed = await ws.recv()
    assert answer["id"] == 2
    assert answer["error"]["code"] == 2
    assert "unknown variant `SUBSCRIB`" in answer["error"]["msg"]
    assert listed == '{"result":[],"id":3}'


async def test_drop_connections_cuts_without_a_close_frame(sim: BinanceUsdmSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/stream") as a, connect(f"{sim.ws_base_url}/ws") as b:
        assert sim.clients == 2
        assert await sim.drop_connections() == 2
        assert sim.clients == 0
        await assert_aborted(a, b)
    async with connect(f"{sim.ws_base_url}/stream?streams=!markPrice@arr@1s") as again:
        assert json.loads(await again.recv())["stream"] == "!markPrice@arr@1s"
    assert sim.connections_total == 3


async def test_stall_keeps_the_connection_but_sends_nothing(sim: BinanceUsdmSimulator) -> None:
    async with connect(f"{sim.ws_base_url}/stream?streams=!markPrice@arr@1s") as ws:
        assert await collect(ws, 0.3)
        sim.stall(0.8)
        await asyncio.sleep(0.05)  # a frame may have been in flight
        await collect(ws, 0.05)
        assert await collect(ws, 0.5) == []
        await asyncio.wait_for(await ws.ping(), 1.0)  # still alive
        assert sim.clients == 1
        assert len(await collect(ws, 0.6)) >= 2  # and back


async def test_server_sends_ping_frames() -> None:
    pings: list[Frame] = []
    async with (
        BinanceUsdmSimulator(push_interval_s=10, ping_interval_s=0.1) as sim,
        connect(f"{sim.ws_base_url}/ws", ping_interval=None) as ws,
    ):
        process = ws.process_event

        def spy(event: Event) -> None:
            if isinstance(event, Frame) and event.opcode is Opcode.PING:
                pings.append(event)
            process(event)

        ws.process_event = spy  # type: ignore[method-assign]
        await asyncio.sleep(0.35)
        assert ws.state is State.OPEN  # the library answered them
    assert len(pings) >= 2


async def test_replay_sends_recorded_frames_as_they_are(captures: Path) -> None:
    path = captures / "binance_usdm.jsonl"
    raws = [json.loads(line)["raw"] for line in path.read_text().splitlines()]
    replayable = {r for r in raws if '"markPriceUpdate"' in r or '"forceOrder"' in r}
    async with (
        BinanceUsdmSimulator(replay_file=path, replay_only=True, push_interval_s=0.02) as sim,
        connect(f"{sim.ws_base_url}/stream?streams=!markPrice@arr@1s/!forceOrder@arr") as ws,
    ):
        frames = await collect(ws, 0.6)
    assert set(frames) == replayable  # only those, byte for byte, and all of them


async def test_run_forever_serves_until_cancelled() -> None:
    task = asyncio.create_task(run_forever(SIMULATORS, scenario="calm", time_scale=5.0))
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
