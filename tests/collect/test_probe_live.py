"""``deleverage check-venues`` against the simulators on loopback: every venue passes as it is,
and each kind of protocol drift, played by a simulator, fails with a message that names the
venue, the channel and what differed."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from procs_support import free_port

from service.collect.probe import VenueCheck, check_venue, check_venues, connect_error
from service.config import VenueSettings
from service.simulate.drift import ProtocolDrift
from service.simulate.runner import VenueSimulator
from service.simulate.scenario import SCENARIOS
from service.venues import REGISTRY, SHAPES, SIMULATORS

pytestmark = pytest.mark.integration

TIMEOUT_S = 4.0


def _settings(sim: VenueSimulator, **extra: object) -> VenueSettings:
    return VenueSettings(ws_url=sim.ws_base_url, rest_url=sim.rest_base_url, **extra)


async def _started(name: str, seed: int = 0, drift: ProtocolDrift | None = None) -> VenueSimulator:
    sim = SIMULATORS[name](SCENARIOS["long_unwind"], seed, 1.0)
    sim.drift = drift
    return await sim.start()


@pytest.fixture
async def sims() -> AsyncIterator[dict[str, VenueSimulator]]:
    started: dict[str, VenueSimulator] = {}
    try:
        for i, name in enumerate(SIMULATORS):
            started[name] = await _started(name, i)
        yield started
    finally:
        for sim in started.values():
            await sim.stop()


def _channel(result: VenueCheck, name: str) -> tuple[str, list[str]]:
    (c,) = [c for c in result.channels if c.channel == name]
    return c.verdict, c.problems


async def test_every_venue_passes_against_its_simulator(sims: dict[str, VenueSimulator]) -> None:
    results = await check_venues({n: _settings(s) for n, s in sims.items()}, timeout_s=TIMEOUT_S)
    assert [r.venue for r in results] == sorted(REGISTRY)
    for r in results:
        assert r.verdict != "fail", (r.venue, r.problems, [c.problems for c in r.channels])
        assert r.instruments
        assert r.symbols
        shape = SHAPES[r.venue]
        expected = {c.name for c in shape.channels if not c.rest or REGISTRY[r.venue](
            VenueSettings()).oi_over_rest}  # fmt: skip
        assert {c.channel for c in r.channels} == expected, r.venue
        for c in r.channels:
            assert c.connected is True, (r.venue, c.channel)
            assert c.fields.missing == {}, (r.venue, c.channel)
            assert c.fields.unknown == {}, (r.venue, c.channel, c.fields.unknown)
            if c.periodic:  # a first frame in time, read into events by the parser
                assert c.first_frame_s is not None, (r.venue, c.channel)
                assert c.first_frame_s < TIMEOUT_S
                assert c.events > 0, (r.venue, c.channel)
            if not c.rest:
                assert c.acknowledged is True, (r.venue, c.channel)
            assert c.verdict in ("ok", "warn")  # warn: a liquidation channel stayed quiet
            assert all(w.startswith(f"{r.venue} {c.channel}: ") for w in c.warnings)
    assert {n for r in results for n in r.notes if "retired" in n} == {
        f"retired: {REGISTRY['bitmex'].retired}"
    }


async def test_a_retired_port_fails_with_connection_refused() -> None:
    sim = await _started("okx")
    try:
        port = free_port()  # nothing listens there (and not ephemeral: see free_port)
        settings = _settings(sim).model_copy(
            update={"ws_url": f"ws://127.0.0.1:{port}/ws/v5/public"}
        )
        result = await check_venue("okx", settings, timeout_s=TIMEOUT_S)
    finally:
        await sim.stop()
    assert result.verdict == "fail"
    assert result.instruments  # the REST listing still answers: only the websocket moved
    verdict, problems = _channel(result, "mark-price")
    assert verdict == "fail"
    assert problems == [
        f"okx mark-price: connection refused at ws://127.0.0.1:{port}/ws/v5/public: nothing "
        "listens there (a retired port or host?)"
    ]
    assert all(c.connected is False for c in result.channels)


async def test_a_renamed_channel_fails_refused_or_silent() -> None:
    """Bybit refuses a topic it does not serve; Binance acknowledges it and sends nothing."""
    bybit = await _started("bybit", drift=ProtocolDrift(retire_channel="tickers"))
    binance = await _started("binance_usdm", drift=ProtocolDrift(retire_channel="markPrice"))
    try:
        results = await check_venues(
            {"bybit": _settings(bybit), "binance_usdm": _settings(binance)}, timeout_s=TIMEOUT_S
        )
    finally:
        await bybit.stop()
        await binance.stop()
    by = {r.venue: r for r in results}
    verdict, problems = _channel(by["bybit"], "tickers")
    assert verdict == "fail"
    assert problems[0].startswith("bybit tickers: the subscription was refused: Invalid symbol")
    verdict, problems = _channel(by["binance_usdm"], "markPrice")
    assert verdict == "fail"
    assert problems == [
        f"binance_usdm markPrice: no frame within {TIMEOUT_S:g} s (documented: every 1 s (@1s))"
    ]


async def test_a_renamed_field_fails_as_missing_and_names_the_new_one() -> None:
    renamed = ProtocolDrift(rename_field=("total_size", "open_interest"))
    sim = await _started("gateio", drift=renamed)
    try:
        result = await check_venue("gateio", _settings(sim), timeout_s=TIMEOUT_S)
    finally:
        await sim.stop()
    verdict, problems = _channel(result, "futures.tickers")
    assert verdict == "fail"
    (problem,) = problems
    assert problem.startswith(
        "gateio futures.tickers: fields the parser needs are missing: total_size ("
    )
    assert "; fields it does not know: open_interest (" in problem
    (tickers,) = [c for c in result.channels if c.channel == "futures.tickers"]
    assert tickers.fields.missing == {"total_size": tickers.fields.rows}
    assert _channel(result, "futures.public_liquidates")[0] != "fail"


async def test_a_silent_channel_fails_while_the_others_pass() -> None:
    silence = ProtocolDrift(silence=r'^\{"arg":\{"channel":"open-interest"')
    sim = await _started("okx", drift=silence)
    try:
        result = await check_venue("okx", _settings(sim), timeout_s=TIMEOUT_S)
    finally:
        await sim.stop()
    verdict, problems = _channel(result, "open-interest")
    assert verdict == "fail"
    assert problems == [
        f"okx open-interest: no frame within {TIMEOUT_S:g} s "
        "(documented: every 3 s when it changes)"
    ]
    (oi,) = [c for c in result.channels if c.channel == "open-interest"]
    assert oi.acknowledged is True  # subscribed, and then nothing
    assert _channel(result, "mark-price") == ("ok", [])
    assert _channel(result, "funding-rate") == ("ok", [])


def test_connection_errors_read_as_operators_need_them() -> None:
    url = "wss://ws.okx.com:8443/ws/v5/public"
    assert "connection refused" in connect_error(ConnectionRefusedError(111, "x"), url)
    assert "does not resolve" in connect_error(socket.gaierror(-2, "Name unknown"), url)
    assert "in time" in connect_error(TimeoutError(), url)
