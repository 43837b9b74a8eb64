"""The conformance suite: every registered venue, and the example venue registered only in the
tests, through the same live checks against its own simulator, over real websockets and HTTP,
writing to the real Redis.

For each venue:
- **the simulator and the parser agree on every channel**: marks, funding and open interest
  land for every simulated instrument at the values the simulated market holds, and every
  liquidation lands once, under the identity the simulator's own encoder gives it
  (:meth:`~service.simulate.server.VenueServer.wire_ids`), on the liquidated position's side,
  at its USD value;
- **a reconnect in the middle of a liquidation burst** (a network cut, no close frame) loses
  none of the liquidations the venue sent after the collector was back, and stores nothing
  twice, whatever the venue re-sends on subscribe;
- **rotation** (make-before-break) hands over without a reconnect, a loss or a duplicate;
- **the watchdog** reconnects a feed whose data stops while its socket stays open, even when
  the venue keeps answering pings.

A venue gets all of this by registering its :class:`~service.venues.spec.VenueSpec`. What is
particular to one venue (its units, heartbeats, re-sends) stays in its own
``test_<venue>_live.py``. The capture and hostile-frame checks are parametrized over the
registry too (``tests/venues/test_captures.py``, ``tests/venues/test_fuzz_parsers.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from harness import running, settings_for, stored, stored_liquidations, until
from venues.example_venue import SPEC as EXAMPLE
from waits import eventually
from wire_ids import Id, assert_stored_once, canonical, sent_ids, stored_id

from service.events import FundingRate, Kind, Liquidation, MarkPrice, OpenInterest, Side
from service.simulate.market import LiquidationPrint
from service.simulate.scenario import DEFAULT_SCENARIO, Regime, Scenario, get_scenario
from service.simulate.server import VenueServer
from service.store import keys
from service.venues import SPECS
from service.venues.base import Connection, Instrument, Venue
from service.venues.spec import VenueSpec

pytestmark = pytest.mark.integration

HELD_CASCADE = Scenario(
    "held_cascade",
    "The default scenario's long cascade, held for ten minutes of scenario time.",
    tuple(
        replace(p, duration_s=600.0)
        for p in get_scenario(DEFAULT_SCENARIO).phases
        if p.label.regime is Regime.CASCADE
    ),
    loop=False,
)
"""What the simulators play: a liquidation burst that outlasts every test here however slow
the machine. (The default scenario's burst lasts 40 s, 13 s of a test's time: a reconnect
mid-burst on a busy machine once ended after it.)"""
CASCADE_START_S = 1.0
"""Where the simulators start: one second into the burst."""
TIME_SCALE = 3.0
"""Three times real speed."""
SETTLE_S = 0.6
"""How long a new connection takes to subscribe, with margin."""
ARRIVAL_S = 10.0
"""How long the tests wait for what a simulator sent to reach Redis through the collector
(the collector keeps running meanwhile): a liquidation still missing then is lost."""


@pytest.fixture(params=[*SPECS, EXAMPLE], ids=lambda s: s.id)
def spec(request: pytest.FixtureRequest) -> VenueSpec:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def sim(spec: VenueSpec) -> AsyncIterator[Any]:
    cls: Any = spec.simulator
    server: VenueServer[Any] = cls(
        HELD_CASCADE,
        seed=3,
        time_scale=TIME_SCALE,
        start_s=CASCADE_START_S,
        list_only_simulated=True,
        **cls.FAST,
    )
    async with server:
        yield server


def venue_of(spec: VenueSpec, sim: Any, venue_class: type[Venue] | None = None) -> Venue:
    """The venue's collector side pointed at ``sim``: every instrument it lists, open interest
    polled as often as the venue allows."""
    cls = venue_class or spec.venue
    return cls(settings_for(sim, "all", oi_poll_weight_per_minute=2400))  # type: ignore[arg-type]


def all_open(collector: Any) -> bool:
    """Every connection the venue asks for is open: with order books, once the first depth
    ranking chose its set (:data:`~service.collect.collector.FIRST_RANK_S` after the start)."""
    venue = collector.venue
    if venue.depth_levels and not venue.depth_symbols:
        return False
    return set(collector._open) == {c.name for c in venue.connections(collector.markets)}


def in_the_burst(sim: Any) -> bool:
    return bool(sim.market.now.phase.label.regime is Regime.CASCADE)


async def liquidation_ids(client: aioredis.Redis, venue: str, symbols: Any) -> list[Id]:
    return [stored_id(x) for x in await stored_liquidations(client, venue, symbols)]


async def arrived(client: aioredis.Redis, venue: str, symbols: Any, expected: set[Id]) -> None:
    """Wait (up to :data:`ARRIVAL_S`) until every identity in ``expected`` is stored; the
    assertions after say what is missing."""
    deadline = time.monotonic() + ARRIVAL_S
    while not expected <= set(await liquidation_ids(client, venue, symbols)):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.1)


async def test_the_simulator_and_the_parser_agree_on_every_channel(
    spec: VenueSpec, sim: Any, redis_client: aioredis.Redis
) -> None:
    symbols = list(sim.market.symbols)

    async def every_channel_landed() -> bool:
        for symbol in symbols:
            for kind in (Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST):
                if not await redis_client.exists(keys.events(spec.id, symbol, kind)):
                    return False
        return True

    async with running(venue_of(spec, sim), redis_client) as collector:
        await until(lambda: collector.ready.is_set() and collector.health.connected)
        await asyncio.sleep(SETTLE_S)  # every connection subscribed
        live_from = len(sim.pushed)  # what was re-sent on subscribe came before this
        await eventually(every_channel_landed)
        # The market and the last of each channel stored, at one moment (both move fast in
        # a cascade): the stored value is at most a push (or a venue's re-report) behind.
        quotes = {s: sim.market.quote(s) for s in symbols}
        last = {
            (s, k): (await stored(redis_client, spec.id, s, k))[-1]
            for s in symbols
            for k in (Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST)
        }
        await until(lambda: len(sim.pushed) >= live_from + 10)
        end = len(sim.pushed)
        await arrived(redis_client, spec.id, symbols, set(sent_ids(sim, live_from, end)))
        health = collector.health
        assert health.connected
        assert health.parse_errors == {}
        assert health.events_invalid == {}
        assert health.instruments == len(symbols)
        markets: Mapping[str, Instrument] = collector.markets

    for symbol in symbols:
        q = quotes[symbol]
        mark = last[(symbol, Kind.MARK)]
        assert isinstance(mark, MarkPrice)
        assert mark.mark_price == pytest.approx(q.mark, rel=0.01), symbol
        funding = last[(symbol, Kind.FUNDING)]
        assert isinstance(funding, FundingRate)
        assert funding.funding_rate_1h == pytest.approx(funding.funding_rate / funding.interval_h)
        # Per hour as the market has it; loose (funding moves fastest in a cascade, and a
        # venue may re-report it only on change), tight enough for a wrong interval or unit.
        assert funding.funding_rate_1h == pytest.approx(q.funding_rate_8h / 8, rel=0.5, abs=2e-6), (
            symbol
        )
        oi = last[(symbol, Kind.OPEN_INTEREST)]
        assert isinstance(oi, OpenInterest)
        assert oi.oi_base == pytest.approx(q.oi_base, rel=0.03), symbol
        assert oi.oi_usd == pytest.approx(q.oi_base * q.mark, rel=0.04), symbol

    got = await stored_liquidations(redis_client, spec.id, symbols)
    ids = [stored_id(x) for x in got]
    assert_stored_once(ids, sent_ids(sim))
    assert set(sent_ids(sim, live_from, end)) <= set(ids), "a liquidation sent live was lost"
    prints: dict[Id, LiquidationPrint] = {
        canonical(i): p for p in sim.pushed[live_from:] for i in sim.wire_ids(p)
    }
    checked = 0
    for liq in got:
        p = prints.get(stored_id(liq))
        if p is None:
            continue  # sent before the collector subscribed (a re-send: what was left of it)
        checked += 1
        assert_sized(liq, p, markets[liq.symbol], closes_both=len(sim.wire_ids(p)) > 1)
    assert checked >= 10


def assert_sized(
    liq: Liquidation, p: LiquidationPrint, inst: Instrument, *, closes_both: bool
) -> None:
    """``liq`` is the position ``p`` closed (either side when the trade that carried it closed
    two, as Deribit's ``MT`` trades do), valued in USD as the market valued it, to within one
    contract (a venue that counts in whole contracts rounds the print to them)."""
    assert liq.side in ({Side.LONG, Side.SHORT} if closes_both else {p.side})
    # 5 %: BitMEX's quanto contracts are paid at the XBT price of the moment.
    contract_usd = inst.contract_size * (liq.price if inst.linear else 1.0)
    assert abs(liq.notional_usd - p.notional_usd) <= max(0.05 * p.notional_usd, contract_usd), (
        liq,
        p,
    )
    assert liq.price == pytest.approx(p.price, rel=0.02)


async def test_a_reconnect_mid_burst_loses_nothing_the_venue_delivers_and_doubles_nothing(
    spec: VenueSpec, sim: Any, redis_client: aioredis.Redis
) -> None:
    symbols = list(sim.market.symbols)
    # A venue that re-sends on subscribe: back in 0.6 s, so that it sends some while away.
    away = {"backoff_initial_s": 0.6, "backoff_max_s": 1.0} if sim.RESENDS_ON_SUBSCRIBE else {}
    async with running(venue_of(spec, sim), redis_client, **away) as collector:
        await until(lambda: collector.health.connected and len(sim.pushed) >= 8)
        await until(lambda: all_open(collector))  # a venue's depth connection: from its ranking
        n, cut = sim.clients, len(sim.pushed)
        resent_from = len(sim.resent) if sim.RESENDS_ON_SUBSCRIBE else 0
        assert in_the_burst(sim)
        assert await sim.drop_connections() == n  # a network cut: no close frame
        await until(lambda: collector.health.reconnects_total >= n and collector.health.connected)
        await until(lambda: sim.clients == n)
        await asyncio.sleep(SETTLE_S)  # every connection subscribed again
        back = len(sim.pushed)  # from here on, every push goes to the new connections
        await until(lambda: len(sim.pushed) >= back + 10)
        end = len(sim.pushed)
        assert in_the_burst(sim)  # still in the burst
        await arrived(redis_client, spec.id, symbols, set(sent_ids(sim, back, end)))
        assert sim.connections_total == 2 * n
        assert collector.health.parse_errors == {}

    ids = await liquidation_ids(redis_client, spec.id, symbols)
    assert_stored_once(ids, sent_ids(sim))
    lost = set(sent_ids(sim, back, end)) - set(ids)
    assert not lost, f"{len(lost)} liquidations sent after the reconnect were lost"
    if sim.RESENDS_ON_SUBSCRIBE:  # some of what it sent while the collector was away came back
        again = {canonical(i) for p in sim.resent[resent_from:] for i in sim.wire_ids(p)}
        assert again & set(sent_ids(sim, cut, back))
        lost = again - set(ids)
        assert not lost, f"{len(lost)} liquidations the venue re-sent were lost"


async def test_rotation_hands_over_without_a_reconnect_a_loss_or_a_duplicate(
    spec: VenueSpec, sim: Any, redis_client: aioredis.Redis
) -> None:
    symbols = list(sim.market.symbols)
    if not spec.venue.rotates:  # (Hyperliquid: the overlap would double its subscriptions)
        async with running(venue_of(spec, sim), redis_client, max_connection_age_s=1.0) as c:
            await until(lambda: c.health.connected)
            n = sim.connections_total
            await asyncio.sleep(3.0)  # three times the age
            assert (sim.connections_total, c.health.reconnects_total) == (n, 0)
        return
    async with running(venue_of(spec, sim), redis_client, max_connection_age_s=1.0) as collector:
        await until(lambda: collector.health.connected)
        await asyncio.sleep(SETTLE_S)
        n, start = sim.clients, len(sim.pushed)
        await until(lambda: sim.connections_total >= 3 * n, within=15)
        end = len(sim.pushed)
        await arrived(redis_client, spec.id, symbols, set(sent_ids(sim, start, end)))
        assert collector.health.reconnects_total == 0  # rotations are not reconnects
        assert collector.health.connected
        # What the overlap dropped is counted where the health snapshot reads it (exported
        # as deleverage_feed_duplicates_total): the deduplicator's and the parsers' counts.
        assert collector.dedup.counts is collector.health.duplicates
        assert collector.parser is not None
        assert collector.parser.stats.duplicates is collector.health.duplicates

    ids = await liquidation_ids(redis_client, spec.id, symbols)
    assert_stored_once(ids, sent_ids(sim))
    lost = set(sent_ids(sim, start, end)) - set(ids)
    assert not lost, f"{len(lost)} liquidations lost across a rotation"
    for symbol in symbols:  # both connections got the overlap; each mark is stored once
        marks = [m.ts_ms for m in await stored(redis_client, spec.id, symbol, Kind.MARK)]
        assert marks == sorted(set(marks)), symbol
        # ...and none was lost in a handover: one at least every second (sampled ones).
        assert max(b - a for a, b in itertools.pairwise(marks)) <= 1500, symbol


def eager_pinger(spec: VenueSpec) -> type[Venue]:
    """The venue's collector side pinging every 0.2 s: pongs come back more often than the
    watchdog's window, as a venue's pings do in production (20 s against 30 s)."""

    def connections(self: Venue, markets: Mapping[str, Instrument]) -> list[Connection]:
        return [replace(c, ping_interval_s=0.2) for c in spec.venue.connections(self, markets)]

    return type(f"Eager{spec.venue.__name__}", (spec.venue,), {"connections": connections})


async def test_the_watchdog_reconnects_a_stalled_feed_that_still_answers_pings(
    spec: VenueSpec, sim: Any, redis_client: aioredis.Redis
) -> None:
    venue = venue_of(spec, sim, eager_pinger(spec))
    async with running(venue, redis_client, watchdog_s=1.0) as collector:
        await until(lambda: collector.health.connected and collector.health.messages_total > 20)
        assert collector.health.reconnects_total == 0
        sim.stall(4.0)  # the socket stays open and answers pings; only data stops
        await until(lambda: collector.health.reconnects_total >= 1, within=4)
        assert "no data" in (collector.health.last_error or "")
        await until(lambda: not sim.stalled and collector.health.connected, within=10)
        before = collector.health.messages_total
        await until(lambda: collector.health.messages_total > before + 20)
