"""Stress polling inside a venue's published request limits (service/collect/stress_poll.py),
against the Binance USDⓈ-M, Bybit, OKX and Gate simulators' REST on loopback, on a virtual clock
that the poller, its budget and the simulator share: fifteen virtual minutes run in about a
second.

Each simulator counts every request against limits of its own (the venue's, scaled down to
the share given to the poller) and answers the venue's rate-limit error past them (Binance
429 ``-1003``, Bybit 403 ``access too frequent``, OKX 429 ``50011``, Gate 429
``TOO_MANY_REQUESTS``): a poller that
overspends is caught by the server, not by the budget checking itself."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest

from service.collect.stress_poll import RequestBudget, StressPoller
from service.collect.stress_run import PLANS
from service.config import StressSettings
from service.events import AdlRisk, Basis, InsuranceFund, Positioning, StressEvent
from service.simulate.asgi_server import AsgiServer
from service.simulate.market import Market
from service.simulate.scenario import DEFAULT_SCENARIO, get_scenario
from service.venues._stress import Limit, StressRequest, units_per_window
from service.venues.base import Instrument
from service.venues.binance import stress
from service.venues.binance.simulator import usdm_wire
from service.venues.binance.simulator.usdm_rest import BinanceFuturesRest
from service.venues.bybit import stress as bybit_stress
from service.venues.bybit.simulator import wire as bybit_wire
from service.venues.bybit.simulator.rest import BybitRest
from service.venues.bybit.venue import VENUE as BYBIT
from service.venues.gateio import stress as gate_stress
from service.venues.gateio.instruments import VENUE as GATEIO
from service.venues.gateio.simulator import wire as gate_wire
from service.venues.gateio.simulator.rest import GateRest
from service.venues.okx import stress as okx_stress
from service.venues.okx.instruments import VENUE as OKX
from service.venues.okx.simulator import wire as okx_wire
from service.venues.okx.simulator.rest import OkxRest
from service.venues.okx.simulator.server import OKX_SPECS

VENUE = "binance_usdm"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT",
           "LTCUSDT", "LINKUSDT", "DOTUSDT")  # fmt: skip
SHARE = {stress.WEIGHT.name: 0.25, stress.FUTURES_DATA.name: 0.02}
"""A quarter of the weight (600 a minute) and 2 % of the futures/data limit (20 per 5 min):
less than the plan asks for at its nominal cadence, so the budget must slow it down."""
RUN_S = 900


class VirtualClock:
    """Integer milliseconds; ``sleep`` advances them (rounded up, so a wait is never short)."""

    def __init__(self, start_ms: int = 1_760_000_000_000) -> None:
        self.ms = start_ms
        self.start_ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return (self.ms - self.start_ms) / 1000

    async def sleep(self, seconds: float) -> None:
        self.ms += max(1, math.ceil(seconds * 1000))


def _capacity(limit: Limit, share: float) -> int:
    return math.floor(limit.capacity * share)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def simulator(clock: VirtualClock) -> AsyncIterator[tuple[BinanceFuturesRest, str]]:
    info_text = usdm_wire.load_exchange_info()
    contracts = usdm_wire.contracts(json.loads(info_text), SYMBOLS, ())
    market = Market(get_scenario(DEFAULT_SCENARIO), symbols=SYMBOLS)
    rest = BinanceFuturesRest(
        market, contracts, info_text, clock=clock.now_ms,
        weight_limit=_capacity(stress.WEIGHT, SHARE["weight"]),
        futures_data_limit=_capacity(stress.FUTURES_DATA, SHARE["futures_data"]),
    )  # fmt: skip
    server = AsgiServer(rest.app)
    port = await server.start()
    try:
        yield rest, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


def _markets() -> dict[str, Instrument]:
    return {
        s: Instrument(venue=VENUE, symbol=s, base=s.removesuffix("USDT"), quote="USDT", linear=True)
        for s in SYMBOLS
    }


async def _run(
    rest_url: str, clock: VirtualClock, shares: dict[str, float]
) -> tuple[StressPoller, RequestBudget, list[StressEvent]]:
    markets = _markets()
    plan = stress.plan(VENUE, markets, SYMBOLS)
    budget = RequestBudget(stress.LIMITS, shares, clock=clock.monotonic, sleep=clock.sleep)
    events: list[StressEvent] = []
    async with httpx.AsyncClient() as client:
        poller = StressPoller(
            VENUE, rest_url, plan, budget, client, events.extend, now_ms=clock.now_ms
        )
        while clock.monotonic() < RUN_S:
            await poller.run_due()
            next_due = min(poller._due)
            await clock.sleep(max(next_due - clock.monotonic(), 0.001))
    return poller, budget, events


async def test_polling_stays_inside_the_published_limits_and_parses_every_endpoint(
    simulator: tuple[BinanceFuturesRest, str], clock: VirtualClock
) -> None:
    rest, url = simulator
    plan = stress.plan(VENUE, _markets(), SYMBOLS)
    cap = _capacity(stress.FUTURES_DATA, SHARE["futures_data"])
    assert units_per_window(plan, stress.FUTURES_DATA) > cap  # the budget has work to do

    poller, budget, events = await _run(url, clock, SHARE)

    assert rest.rejected == 0
    assert poller.failures == Counter()
    assert not poller.stats.errors
    assert budget.waited_s > 0
    # The server saw the futures/data share used window after window (its own sliding count
    # never passed it: no 429), and no more on average than one share per window.
    data_calls = sum(n for p, n in rest.paths.items() if p.startswith("/futures/data/"))
    elapsed_windows = clock.monotonic() / stress.FUTURES_DATA.window_s
    assert data_calls > 2 * cap
    assert data_calls <= cap * (elapsed_windows + 1)
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds[AdlRisk.__name__] >= len(SYMBOLS)
    assert kinds[InsuranceFund.__name__] >= 1
    assert kinds[Positioning.__name__] > 0
    assert kinds[Basis.__name__] > 0
    basis = [e for e in events if isinstance(e, Basis)]
    assert all(e.index_price > 0 and e.annualized_rate is None for e in basis)


async def test_a_budget_above_the_share_is_refused_by_the_server(
    simulator: tuple[BinanceFuturesRest, str], clock: VirtualClock
) -> None:
    """The control: the same plan given twice the share the server allows gets 429s."""
    rest, url = simulator
    doubled = {name: share * 2 for name, share in SHARE.items()}
    poller, _, _ = await _run(url, clock, doubled)
    assert rest.rejected > 0
    assert poller.failures["http_429"] == rest.rejected


async def test_the_budget_paces_to_the_window_and_refuses_an_impossible_charge(
    clock: VirtualClock,
) -> None:
    limit = Limit("req", 10, 60.0)
    budget = RequestBudget([limit], clock=clock.monotonic, sleep=clock.sleep)
    times = []
    for _ in range(35):
        await budget.take([("req", 1)])
        times.append(clock.monotonic())
        assert budget.used("req") <= 10
    # Every 60 s window holds at most 10 calls; 35 calls need three full windows of waiting.
    assert all(sum(1 for t in times if s <= t < s + 60) <= 10 for s in times)
    assert times[-1] >= 180
    with pytest.raises(ValueError, match="never fits"):
        budget.wait_s([("req", 11)])
    with pytest.raises(ValueError, match="unknown limits"):
        RequestBudget([limit], {"weight": 0.5})


# -- Bybit, OKX and Gate: the runtime's default plans against their simulators ------------


@dataclass(frozen=True)
class Case:
    """One venue's test: its published limits, the shares given to the poller (the server
    enforces each limit scaled to its share), the status its server refuses with."""

    venue: str
    limits: tuple[Limit, ...]
    shares: dict[str, float]
    refused_status: int
    markets: dict[str, Instrument]


def _bybit_markets() -> dict[str, Instrument]:
    return {
        s.symbol: Instrument(venue=BYBIT, symbol=s.symbol, base=s.base,
                             quote="USDT" if s.symbol.endswith("USDT") else "USD",
                             linear=s.symbol.endswith("USDT"))
        for s in bybit_wire.BYBIT_SPECS
    }  # fmt: skip


def _okx_markets() -> dict[str, Instrument]:
    return {
        s.symbol: Instrument(venue=OKX, symbol=s.symbol, base=s.base,
                             quote=s.symbol.split("-")[1], linear="-USDT-" in s.symbol)
        for s in OKX_SPECS
    }  # fmt: skip


def _gate_markets() -> dict[str, Instrument]:
    return {
        s.symbol: Instrument(venue=GATEIO, symbol=s.symbol, base=s.base,
                             quote=s.symbol.split("_")[1], linear=s.symbol.endswith("_USDT"))
        for s in gate_wire.GATE_SPECS
    }  # fmt: skip


DEFAULT_SHARE = StressSettings().limit_share
CASES = {
    # The default share (150 requests per 5 s) is far above what six symbols ask for: the
    # test gives 1 % (6 per 5 s), less than the plan's opening round of 8 calls.
    BYBIT: Case(BYBIT, bybit_stress.LIMITS, {"ip": 0.01}, 403, _bybit_markets()),
    # The default share already binds: 2 insurance calls per 2 s for 4 families, 1 call of
    # each rubik statistic per 2 s for 2 currencies.
    OKX: Case(OKX, okx_stress.LIMITS, dict.fromkeys(("insurance_fund", "long_short",
              "taker_volume"), DEFAULT_SHARE), 429, _okx_markets()),
    # 1 % of 200 per 10 s: 2, less than the opening round of 5 contracts.
    GATEIO: Case(GATEIO, gate_stress.LIMITS, {"contract_stats": 0.01}, 429, _gate_markets()),
}  # fmt: skip


@asynccontextmanager
async def _venue_simulator(
    case: Case, clock: VirtualClock, shares: dict[str, float]
) -> AsyncIterator[tuple[BybitRest | OkxRest | GateRest, str]]:
    """The venue's REST app on loopback, its limits scaled to ``shares``."""
    cap = {lim.name: _capacity(lim, shares[lim.name]) for lim in case.limits}
    rest: BybitRest | OkxRest | GateRest
    if case.venue == GATEIO:
        market = Market(get_scenario(DEFAULT_SCENARIO), specs=gate_wire.GATE_SPECS)
        listings = {s: gate_wire.load_contracts(s) for s in gate_wire.SETTLES}
        contracts = {s: c for s, c in gate_wire.contracts(listings).items() if s in case.markets}
        rest = GateRest(
            listings, market=market, contracts=contracts, clock=clock.now_ms,
            stats_limit=cap["contract_stats"],
        )  # fmt: skip
    elif case.venue == BYBIT:
        market = Market(get_scenario(DEFAULT_SCENARIO), specs=bybit_wire.BYBIT_SPECS)
        listings = {c: bybit_wire.load_instruments(c) for c in bybit_wire.CATEGORIES}
        contracts = {s: c for s, c in bybit_wire.contracts(listings).items() if s in case.markets}
        rest = BybitRest(
            listings, market=market, contracts=contracts, clock=clock.now_ms, ip_limit=cap["ip"]
        )
    else:
        market = Market(get_scenario(DEFAULT_SCENARIO), specs=OKX_SPECS)
        listing = okx_wire.load_instruments()
        contracts = okx_wire.contracts(json.loads(listing), market.symbols, ())
        rest = OkxRest(
            listing, market=market, contracts=contracts, clock=clock.now_ms,
            insurance_limit=cap["insurance_fund"], long_short_limit=cap["long_short"],
            taker_limit=cap["taker_volume"],
        )  # fmt: skip
    server = AsgiServer(rest.app)
    port = await server.start()
    try:
        yield rest, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


def _default_plan(case: Case) -> list[StressRequest]:
    """The plan the runtime builds with the default settings (``stress_run.PLANS``)."""
    return PLANS[case.venue].plan(case.venue, case.markets, sorted(case.markets), StressSettings())


async def _run_plan(
    case: Case, rest_url: str, clock: VirtualClock, shares: dict[str, float]
) -> tuple[StressPoller, RequestBudget, list[StressEvent]]:
    budget = RequestBudget(case.limits, shares, clock=clock.monotonic, sleep=clock.sleep)
    events: list[StressEvent] = []
    async with httpx.AsyncClient() as client:
        poller = StressPoller(
            case.venue, rest_url, _default_plan(case), budget, client, events.extend,
            now_ms=clock.now_ms,
        )  # fmt: skip
        while clock.monotonic() < RUN_S:
            await poller.run_due()
            await clock.sleep(max(min(poller._due) - clock.monotonic(), 0.001))
    return poller, budget, events


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_the_default_plan_stays_inside_the_venue_limits_and_parses(
    venue: str, clock: VirtualClock
) -> None:
    case = CASES[venue]
    plan = _default_plan(case)
    for lim in case.limits:  # at its nominal cadence the plan fits the default share
        assert units_per_window(plan, lim) <= _capacity(lim, DEFAULT_SHARE)
    async with _venue_simulator(case, clock, case.shares) as (rest, url):
        poller, budget, events = await _run_plan(case, url, clock, case.shares)
    assert rest.refused == 0
    assert poller.failures == Counter()
    assert not poller.stats.errors
    assert poller.stats.filtered == 0
    assert budget.waited_s > 0  # the opening round did not fit the share: it was paced
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds[Positioning.__name__] >= 2 * (RUN_S // 300)
    if venue != GATEIO:  # Gate publishes statistics only
        assert kinds[InsuranceFund.__name__] >= 2 * (RUN_S // 300)
    if venue == BYBIT:
        assert kinds[AdlRisk.__name__] >= len(case.markets) * (RUN_S // 60)


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_a_poller_given_more_than_the_share_is_refused_by_the_venue(
    venue: str, clock: VirtualClock
) -> None:
    """The control: twice the share the server allows gets the venue's rate-limit errors."""
    case = CASES[venue]
    doubled = {name: share * 2 for name, share in case.shares.items()}
    async with _venue_simulator(case, clock, case.shares) as (rest, url):
        poller, _, _ = await _run_plan(case, url, clock, doubled)
    assert rest.refused > 0
    assert poller.failures == Counter({f"http_{case.refused_status}": rest.refused})


@asynccontextmanager
async def _closing_on_reuse(
    body: bytes, close_every_reuse: bool
) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback HTTP/1.1 server answering ``body`` with keep-alive, which closes a kept-alive
    connection without an answer when a second request comes on it (a server's idle timeout
    meeting the client's reuse); with ``close_every_reuse`` it also drops every request of
    the connections it opens after that. Yields its URL and the requests answered per
    connection."""
    answered: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index, dropping = len(answered), close_every_reuse and bool(answered)
        answered.append(0)
        try:
            while (await reader.readuntil(b"\r\n\r\n")) and not dropping:
                if answered[index] == 1:
                    break  # the reused connection: closed, no answer
                answered[index] += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", answered
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("close_every_reuse", [False, True], ids=["once", "always"])
async def test_a_connection_closed_without_an_answer_is_sent_again_once(
    clock: VirtualClock, close_every_reuse: bool
) -> None:
    """The demo's log once read ``stress poll failed /v5/market/adlAlert:
    RemoteProtocolError``: the simulator's uvicorn closes a connection idle for 5 s, httpx
    keeps one for 5 s, and a poll that reuses it as it closes gets no answer. The call is sent
    again once, on a new connection; a venue that closes that one too is a failure."""
    plan = stress.plan(VENUE, _markets(), SYMBOLS)[:1]
    budget = RequestBudget(stress.LIMITS, SHARE, clock=clock.monotonic, sleep=clock.sleep)
    body = b'{"code": 0}'
    async with (
        _closing_on_reuse(body, close_every_reuse) as (url, answered),
        httpx.AsyncClient() as client,
    ):
        poller = StressPoller(VENUE, url, plan, budget, client, lambda _: None)
        await poller._call(plan[0])  # a new connection, kept alive
        assert answered == [1]
        assert poller.failures == Counter()
        await poller._call(plan[0])  # reuses it: closed without an answer
    assert poller.polls == 2
    assert poller.resent == 1
    if close_every_reuse:
        assert answered == [1, 0]
        assert poller.failures == Counter({"network": 1})
    else:
        assert answered == [1, 1]  # answered on a new connection
        assert poller.failures == Counter()
