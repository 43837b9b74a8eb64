"""The Bybit, OKX and Gate simulators' stress endpoints: their bodies follow the scenario (in
``long_unwind`` the insurance pools drain through the cascade and the unwind, and Bybit's ADL
alert of the affected assets rises to ``HIGH`` in the cascade, ``MEDIUM`` in the unwind), the
service's own parsers read every body without a drop, and each venue's rate-limit error has
the venue's shape (Bybit: HTTP 403 ``access too frequent``; OKX: HTTP 429 code ``50011``;
Gate: HTTP 429 label ``TOO_MANY_REQUESTS``).

Over HTTP on loopback: the REST apps served by uvicorn, and the simulators as the benches and
the demo start them (default settings: no stress path answers 404)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from service.events import AdlLevel, AdlRisk, InsuranceFund, Positioning, StressEvent
from service.simulate.asgi_server import AsgiServer
from service.simulate.market import Market
from service.simulate.scenario import SCENARIOS
from service.simulate.stress import drained_share
from service.venues.base import Instrument, ParseStats
from service.venues.bybit import stress as bybit_stress
from service.venues.bybit.simulator import stress_wire as bybit_sw
from service.venues.bybit.simulator import wire as bybit_wire
from service.venues.bybit.simulator.rest import BybitRest
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.gateio import stress as gate_stress
from service.venues.gateio.simulator import wire as gate_wire
from service.venues.gateio.simulator.rest import GateRest
from service.venues.gateio.simulator.server import GateSimulator
from service.venues.okx import stress as okx_stress
from service.venues.okx.simulator import stress_wire as okx_sw
from service.venues.okx.simulator import wire as okx_wire
from service.venues.okx.simulator.rest import OkxRest
from service.venues.okx.simulator.server import OKX_SPECS, OkxSimulator

pytestmark = pytest.mark.integration

SCENARIO = SCENARIOS[
    "long_unwind"
]  # calm 20 s, cascade 40 s (BTC, ETH), unwind 60 s, recovery 40 s
NOW_MS = 1_760_000_000_000


def _bybit_markets() -> dict[str, Instrument]:
    return {
        s.symbol: Instrument(venue="bybit", symbol=s.symbol, base=s.base,
                             quote="USDT" if s.symbol.endswith("USDT") else "USD",
                             linear=s.symbol.endswith("USDT"))
        for s in bybit_wire.BYBIT_SPECS
    }  # fmt: skip


def _bybit_rest(market: Market, *, ip_limit: int = 600) -> BybitRest:
    listings = {c: bybit_wire.load_instruments(c) for c in bybit_wire.CATEGORIES}
    contracts = {s: c for s, c in bybit_wire.contracts(listings).items() if s in market.symbols}
    return BybitRest(
        listings, market=market, contracts=contracts, clock=lambda: NOW_MS, ip_limit=ip_limit
    )


def _okx_rest(market: Market, **limits: int) -> OkxRest:
    listing = okx_wire.load_instruments()
    contracts = okx_wire.contracts(json.loads(listing), market.symbols, ())
    return OkxRest(listing, market=market, contracts=contracts, clock=lambda: NOW_MS, **limits)


def _gate_markets() -> dict[str, Instrument]:
    return {
        s.symbol: Instrument(venue="gateio", symbol=s.symbol, base=s.base,
                             quote=s.symbol.split("_")[1], linear=s.symbol.endswith("_USDT"))
        for s in gate_wire.GATE_SPECS
    }  # fmt: skip


def _gate_rest(market: Market, *, stats_limit: int = 200) -> GateRest:
    listings = {s: gate_wire.load_contracts(s) for s in gate_wire.SETTLES}
    contracts = {s: c for s, c in gate_wire.contracts(listings).items() if s in market.symbols}
    return GateRest(
        listings, market=market, contracts=contracts, clock=lambda: NOW_MS,
        stats_limit=stats_limit,
    )  # fmt: skip


@pytest.fixture
async def served() -> AsyncIterator[list[AsgiServer]]:
    servers: list[AsgiServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def _url(servers: list[AsgiServer], rest: BybitRest | OkxRest | GateRest) -> str:
    server = AsgiServer(rest.app)
    servers.append(server)
    return f"http://127.0.0.1:{await server.start()}"


@pytest.mark.parametrize(
    ("t_s", "btc_level", "drained"),
    [
        (10.0, AdlLevel.LOW, 0.0),  # calm
        (50.0, AdlLevel.HIGH, 0.006 * 30),  # 30 s into the cascade of BTC and ETH
        (80.0, AdlLevel.MEDIUM, 0.006 * 40 + 0.001 * 20),  # 20 s into the unwind
        (140.0, AdlLevel.LOW, 0.30 - 0.0075 * 20),  # 20 s into the recovery
    ],
)
async def test_bybit_alerts_and_pools_follow_the_phases(
    served: list[AsgiServer], t_s: float, btc_level: AdlLevel, drained: float
) -> None:
    market = Market(SCENARIO, specs=bybit_wire.BYBIT_SPECS)
    market.step(t_s)
    assert drained_share(SCENARIO, market.now) == pytest.approx(drained)
    url = await _url(served, _bybit_rest(market))
    markets, stats = _bybit_markets(), ParseStats()
    async with httpx.AsyncClient(base_url=url) as client:
        alerts = bybit_stress.parse_adl_alert(
            (await client.get(bybit_stress.ADL_ALERT_PATH)).content, markets, NOW_MS, stats
        )
        pools = bybit_stress.parse_insurance(
            (await client.get(bybit_stress.INSURANCE_PATH)).content, markets, NOW_MS, stats
        )
    assert not stats.errors
    assert stats.filtered == 0
    levels = {e.symbol: e.level for e in alerts if isinstance(e, AdlRisk)}
    assert levels == {
        "BTCUSDT": btc_level, "ETHUSDT": btc_level, "BTCUSD": btc_level, "ETHUSD": btc_level,
        "SOLUSDT": AdlLevel.LOW, "DOGEUSDT": AdlLevel.LOW,
    }  # fmt: skip
    funds = {e.asset: e for e in pools if isinstance(e, InsuranceFund)}
    assert set(funds) == {"USDT", "BTC", "ETH"}
    usdt = funds["USDT"]
    assert usdt.balance == pytest.approx(bybit_sw.POOL_USD * (1 - drained), rel=1e-9)
    assert usdt.balance_usd == pytest.approx(usdt.balance)
    assert usdt.symbols == ("BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT")
    btc = funds["BTC"]  # the inverse pool: in coin, valued at the mark
    assert btc.balance == pytest.approx(bybit_sw.POOL_USD / 60_000.0 * (1 - drained), rel=1e-9)
    assert btc.balance_usd == pytest.approx(btc.balance * market.quote("BTCUSD").mark, rel=1e-6)
    assert all(e.pool_balance is not None for e in alerts if isinstance(e, AdlRisk))


async def test_okx_fund_drains_and_the_statistics_parse(served: list[AsgiServer]) -> None:
    market = Market(SCENARIO, specs=OKX_SPECS)
    market.step(50.0)  # 30 s into the cascade
    url = await _url(served, _okx_rest(market))
    stats = ParseStats()
    events: list[StressEvent] = []
    async with httpx.AsyncClient(base_url=url) as client:
        for family in ("BTC-USDT", "ETH-USDT", "BTC-USD", "ETH-USD"):
            q = {"instType": "SWAP", "instFamily": family, "limit": "1"}
            body = (await client.get(okx_stress.INSURANCE_PATH, params=q)).content
            events += okx_stress.parse_insurance_fund(body, NOW_MS, stats)
        for ccy in ("BTC", "ETH"):
            q = {"ccy": ccy, "period": "5m"}
            body = (await client.get(okx_stress.LONG_SHORT_PATH, params=q)).content
            events += okx_stress.parse_long_short_ratio(body, ccy, NOW_MS, stats, 300)
            q["instType"] = "CONTRACTS"
            body = (await client.get(okx_stress.TAKER_PATH, params=q)).content
            events += okx_stress.parse_taker_volume(body, ccy, NOW_MS, stats, 300)
        unknown = await client.get(okx_stress.LONG_SHORT_PATH, params={"ccy": "XYZ"})
        other_family = await client.get(
            okx_stress.INSURANCE_PATH, params={"instType": "SWAP", "instFamily": "SOL-USDT"}
        )
    assert not stats.errors
    funds = {e.pool: e for e in events if isinstance(e, InsuranceFund)}
    assert set(funds) == {"SWAP:BTC-USDT", "SWAP:ETH-USDT", "SWAP:BTC-USD", "SWAP:ETH-USD"}
    left = okx_sw.FUND_USD * (1 - 0.006 * 30)
    assert all(f.balance_usd == pytest.approx(left, rel=1e-9) for f in funds.values())
    assert funds["SWAP:BTC-USDT"].asset == "USDT"
    assert funds["SWAP:BTC-USDT"].balance == pytest.approx(left, rel=1e-9)
    assert funds["SWAP:BTC-USD"].asset == "BTC"
    mark = market.quote("BTC-USD-SWAP").mark
    assert funds["SWAP:BTC-USD"].balance == pytest.approx(left / mark, rel=1e-6)
    ratios = [e for e in events if isinstance(e, Positioning)]
    assert len(ratios) == 4
    assert all(e.long_share == 0.5 for e in ratios)
    assert all(e.ts_ms == NOW_MS - NOW_MS % 300_000 - 300_000 for e in ratios)
    assert (unknown.status_code, unknown.json()["code"]) == (400, "51000")
    assert (other_family.status_code, other_family.json()["data"]) == (200, [])


async def test_each_venue_answers_its_own_rate_limit_error(served: list[AsgiServer]) -> None:
    bybit = _bybit_rest(Market(SCENARIO, specs=bybit_wire.BYBIT_SPECS), ip_limit=3)
    okx = _okx_rest(Market(SCENARIO, specs=OKX_SPECS), taker_limit=2)
    bybit_url, okx_url = await _url(served, bybit), await _url(served, okx)
    async with httpx.AsyncClient() as client:
        # Bybit: every path counts against the one IP limit, the stress ones too.
        answers = [await client.get(bybit_url + "/v5/market/time") for _ in range(2)]
        answers += [await client.get(bybit_url + bybit_stress.ADL_ALERT_PATH) for _ in range(2)]
        q = {"ccy": "BTC", "instType": "CONTRACTS"}
        okx_answers = [
            await client.get(okx_url + okx_stress.TAKER_PATH, params=q) for _ in range(3)
        ]
        other = await client.get(okx_url + okx_stress.LONG_SHORT_PATH, params={"ccy": "BTC"})
    assert [r.status_code for r in answers] == [200, 200, 200, 403]
    assert answers[-1].text == "access too frequent"
    assert bybit.refused == 1
    assert [r.status_code for r in okx_answers] == [200, 200, 429]
    assert okx_answers[-1].json() == {"msg": "Too Many Requests", "code": "50011"}
    assert other.status_code == 200  # OKX's limits are per endpoint
    assert okx.refused == 1


async def test_gate_contract_stats_parse_and_its_limit_answers_429(
    served: list[AsgiServer],
) -> None:
    market = Market(SCENARIO, specs=gate_wire.GATE_SPECS)
    rest = _gate_rest(market, stats_limit=6)  # the plan's 5 calls and one more
    url = await _url(served, rest)
    markets, stats = _gate_markets(), ParseStats()
    plan = gate_stress.plan(markets, sorted(markets))
    assert {r.path for r in plan} == {
        "/api/v4/futures/usdt/contract_stats", "/api/v4/futures/btc/contract_stats",
    }  # fmt: skip
    events: list[StressEvent] = []
    async with httpx.AsyncClient(base_url=url) as client:
        for req in plan:
            body = (await client.get(req.path, params=dict(req.params))).content
            events += req.parse(body, NOW_MS, stats)
        usdt = "/api/v4/futures/usdt/contract_stats"
        rows = (await client.get(usdt, params={"contract": "BTC_USDT"})).json()
        over = await client.get(plan[0].path, params=dict(plan[0].params))
    assert not stats.errors
    assert len(events) == 4 * len(markets)  # four ratios per contract
    assert all(isinstance(e, Positioning) and e.long_share == 0.5 for e in events)
    last = NOW_MS // 1000 - NOW_MS // 1000 % 300 - 300
    assert {e.ts_ms for e in events} == {last * 1000}
    assert len(rows) == 30
    assert [r["time"] for r in rows[-2:]] == [last - 300, last]  # oldest first
    assert rows[-1]["open_interest"] == round(market.quote("BTC_USDT").oi_base / 0.0001)
    assert over.status_code == 429
    assert over.json()["label"] == "TOO_MANY_REQUESTS"
    assert rest.refused == 1


async def test_the_simulators_serve_every_stress_path_with_default_settings() -> None:
    """What the runtime's default plans call, against the simulators as benches start them:
    no 404, no venue error, every body parsed."""
    stats = ParseStats()
    async with BybitSimulator() as bybit, httpx.AsyncClient() as client:
        markets = _bybit_markets()
        plan = bybit_stress.plan(markets, sorted(bybit.contracts))
        for req in plan:
            r = await client.get(bybit.rest_base_url + req.path, params=dict(req.params))
            assert r.status_code == 200, req.path
            assert req.parse(r.content, NOW_MS, stats), req.path
    async with OkxSimulator() as okx, httpx.AsyncClient() as client:
        families = [("SWAP", c.family) for c in okx.contracts.values()]
        plan = okx_stress.plan(families, ["BTC", "ETH"])
        for req in plan:
            r = await client.get(okx.rest_base_url + req.path, params=dict(req.params))
            assert r.status_code == 200, req.path
            assert req.parse(r.content, NOW_MS, stats), req.path
    async with GateSimulator() as gate, httpx.AsyncClient() as client:
        markets = _gate_markets()
        plan = gate_stress.plan(markets, sorted(gate.contracts))
        for req in plan:
            r = await client.get(gate.rest_base_url + req.path, params=dict(req.params))
            assert r.status_code == 200, req.path
            assert req.parse(r.content, NOW_MS, stats), req.path
    assert not stats.errors
    assert stats.filtered == 0
