"""Collector shards as they run: ``deleverage run --only collect --shard I/N`` processes against
the Bybit and OKX simulators on loopback, writing to the real Redis.

Two shards store exactly what one unsharded collector stores, and never the same instrument;
a shard killed (SIGKILL) in the middle of a liquidation burst and restarted loses nothing the
simulators sent after it reconnected and stores nothing twice, its dedup state being Redis's.
Bybit subscribes per symbol (a shard subscribes to its own); OKX's liquidations come on one
channel for every swap (each shard keeps its own) and are re-sent in a burst on subscribe
(what the restarted shard had stored already is dropped by the store)."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import yaml
from procs_support import ServiceProcesses, free_port
from prometheus_client.parser import text_string_to_metric_families

from service.events import Kind, Liquidation, decode, decode_many
from service.health import HealthSnapshot, decode_snapshot
from service.shard import owner
from service.simulate.market import LiquidationPrint
from service.store import keys, reader
from service.store.stress import HANDOFF_BATCH
from service.venues.bybit.simulator import wire as bybit_wire
from service.venues.bybit.simulator.server import BybitSimulator
from service.venues.okx.simulator.server import OkxSimulator

pytestmark = pytest.mark.integration

STRESS_BATCH = HANDOFF_BATCH.encode()

OTHER_REDIS_URL = os.environ.get("DELEVERAGE_TEST_DETECT_REDIS_URL", "redis://127.0.0.1:6379/11")
"""Where the unsharded collector writes, beside the shards' database."""
STARTUP_S = 40.0
Identity = tuple[str, str, str]
"""(venue, symbol, the liquidation's event_id)."""


@pytest.fixture
async def sims() -> AsyncIterator[tuple[BybitSimulator, OkxSimulator]]:
    # In the long cascade (20 s to 60 s of the scenario), 1.5x faster: ~25 s of burst. OKX's
    # burst on subscribe re-sends the last 1,000 liquidations: more than a restart's worth.
    async with (
        BybitSimulator(seed=3, time_scale=1.5, start_s=20, list_only_simulated=True) as bybit,
        OkxSimulator(
            seed=3, time_scale=1.5, start_s=20, push_interval_s=0.1, oi_interval_s=0.3,
            funding_interval_s=0.5, burst_size=1000, list_only_simulated=True,
        ) as okx,
    ):  # fmt: skip
        yield bybit, okx


@pytest.fixture
async def other_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(OTHER_REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def _config(
    path: Path,
    redis_url: str,
    sims: tuple[BybitSimulator, OkxSimulator],
    api_port: int = 0,
    depth: bool = True,
) -> Path:
    """``depth``: False turns the venues' order book connections off (``top_n: 0``)."""
    bybit, okx = sims
    off = {} if depth else {"depth": {"top_n": 0}}
    path.write_text(yaml.safe_dump({
        "redis_url": redis_url,
        "api": {"host": "127.0.0.1", "port": api_port},
        "log_level": "warning",
        "venues": {
            "binance_usdm": {"enabled": False},
            "bybit": {"ws_url": bybit.ws_base_url, "rest_url": bybit.rest_base_url} | off,
            "okx": {"ws_url": okx.ws_base_url, "rest_url": okx.rest_base_url} | off,
        },
        "collect": {"watchdog_s": 5.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.2},
    }))  # fmt: skip
    return path


class Collectors(ServiceProcesses):
    """``deleverage run --only collect`` processes, each logging to a file of its own."""

    def __init__(self, logs: Path) -> None:
        super().__init__("collect", logs)


@pytest.fixture
def collectors(tmp_path: Path) -> Iterator[Collectors]:
    procs = Collectors(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


async def _until(
    cond: Callable[[], Any], collectors: Collectors, within_s: float = 20.0, what: str = ""
) -> None:
    deadline = time.monotonic() + within_s
    while True:
        collectors.check_alive()
        result = cond()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not in {within_s} s: {what}")
        await asyncio.sleep(0.05)


async def _healthy(client: aioredis.Redis, shards: list[str]) -> bool:
    """Both venues connected, with a message in the last second, merged from ``shards``."""
    snapshots: dict[str, HealthSnapshot] = await reader.health_snapshots(client)
    now = time.time_ns() // 1_000_000
    return all(
        (s := snapshots.get(v)) is not None and s.connected and s.shards == shards
        and s.last_message_ms is not None and now - s.last_message_ms < 1000
        for v in ("bybit", "okx")
    )  # fmt: skip


def bybit_identity(sim: BybitSimulator, p: LiquidationPrint) -> Identity:
    row = bybit_wire.liquidation_row(p, sim.contracts[p.symbol])
    return "bybit", p.symbol, f"{row['T']}:{row['S']}:{row['v']}:{row['p']}"


def okx_identity(sim: OkxSimulator, p: LiquidationPrint) -> Identity:
    d = sim.detail(p)
    size, price = float(d["sz"]), float(d["bkPx"])  # as the parser reads them
    return "okx", p.symbol, f"{d['ts']}:{d['side']}:{d['posSide']}:{size}:{price}"


def _instruments(sims: tuple[BybitSimulator, OkxSimulator]) -> list[tuple[str, str]]:
    bybit, okx = sims
    return [("bybit", s) for s in bybit.contracts] + [("okx", s) for s in okx.contracts]


async def _liquidations(
    client: aioredis.Redis, instruments: list[tuple[str, str]]
) -> tuple[Counter[Identity], Counter[Identity]]:
    """How many times each liquidation is in its instrument's stream, and in the hand-off."""
    streams: Counter[Identity] = Counter()
    for venue, symbol in instruments:
        for _, fields in await client.xrange(keys.events(venue, symbol, Kind.LIQUIDATION)):
            ev = decode(fields[b"e"])
            assert isinstance(ev, Liquidation)
            streams[(venue, symbol, ev.event_id)] += 1
    handoff: Counter[Identity] = Counter()
    for venue in ("bybit", "okx"):
        for _, fields in await client.xrange(keys.handoff(venue)):
            if fields[b"b"] == STRESS_BATCH:
                continue  # the stress writer's (Bybit's ADL alerts), not a collector's
            handoff.update(
                (e.venue, e.symbol, e.event_id)
                for e in decode_many(fields[b"e"])
                if isinstance(e, Liquidation)
            )
    return streams, handoff


async def _writers(client: aioredis.Redis) -> dict[str, set[tuple[str, str]]]:
    """The instruments in each writer's hand-off entries (a writer: one process's batch ids;
    the stress writer's entries are left out)."""
    out: dict[str, set[tuple[str, str]]] = {}
    for venue in ("bybit", "okx"):
        for _, fields in await client.xrange(keys.handoff(venue)):
            if fields[b"b"] == STRESS_BATCH:
                continue
            writer = fields[b"b"].decode().rsplit("-", 1)[0]
            out.setdefault(writer, set()).update(
                (e.venue, e.symbol) for e in decode_many(fields[b"e"])
            )
    return out


async def _kinds(client: aioredis.Redis, instruments: list[tuple[str, str]]) -> set[Any]:
    """(venue, symbol, kind) of every stream that holds something. Not book depth: each shard
    follows the books of its own top N by open interest (docs/venues.md), from 5 s after it
    starts, so which books and since when differ from one collector's by design."""
    found = set()
    for venue, symbol in instruments:
        for kind in Kind:
            if kind is Kind.BOOK_DEPTH:
                continue
            if await client.xlen(keys.events(venue, symbol, kind)):
                found.add((venue, symbol, kind))
    return found


async def test_two_shards_store_exactly_what_one_collector_stores(
    sims: tuple[BybitSimulator, OkxSimulator],
    collectors: Collectors,
    redis_client: aioredis.Redis,
    redis_url: str,
    other_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    bybit, okx = sims
    instruments = _instruments(sims)
    sharded = _config(tmp_path / "sharded.yaml", redis_url, sims)
    port = free_port()
    collectors.start("0/2", sharded, "0/2")
    collectors.start("1/2", _config(tmp_path / "api.yaml", redis_url, sims, port), "1/2", api=True)
    collectors.start("whole", _config(tmp_path / "whole.yaml", OTHER_REDIS_URL, sims))
    await _until(lambda: _healthy(redis_client, ["0/2", "1/2"]), collectors, STARTUP_S, "shards")
    await _until(lambda: _healthy(other_client, []), collectors, STARTUP_S, "unsharded")
    await asyncio.sleep(1.0)  # every subscription has been answered
    start = {"bybit": len(bybit.pushed), "okx": len(okx.pushed)}
    await _until(
        lambda: len(bybit.pushed) >= start["bybit"] + 60 and len(okx.pushed) >= start["okx"] + 60,
        collectors, 30.0, "liquidations",
    )  # fmt: skip
    end = {"bybit": len(bybit.pushed), "okx": len(okx.pushed)}
    await asyncio.sleep(1.5)  # what was pushed by ``end`` reaches Redis
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as http:
        metrics = (await http.get("/metrics")).text
        venues = {v["venue"]: v for v in (await http.get("/v1/venues")).json()["items"]}
        ready = await http.get("/readyz")
    collectors.stop_all()  # SIGTERM: each writes what it holds

    sent = {bybit_identity(bybit, p) for p in bybit.pushed[start["bybit"] : end["bybit"]]}
    sent |= {okx_identity(okx, p) for p in okx.pushed[start["okx"] : end["okx"]]}
    streams, handoff = await _liquidations(redis_client, instruments)
    whole_streams, whole_handoff = await _liquidations(other_client, instruments)
    # each liquidation sent while all ran is stored once by the shards, as by one collector
    assert sent <= set(streams), f"{len(sent - set(streams))} lost by the shards"
    assert sent <= set(whole_streams), f"{len(sent - set(whole_streams))} lost by one collector"
    for counts in (streams, handoff, whole_streams, whole_handoff):
        assert set(counts.values()) == {1}, "a liquidation stored twice"
    assert set(handoff) == set(streams)
    # the same instruments, with the same kinds of data (marks, funding, OI, liquidations)
    listed: Any = await redis_client.smembers(keys.INSTRUMENTS)
    whole_listed: Any = await other_client.smembers(keys.INSTRUMENTS)
    assert listed == whole_listed == {keys.instrument_id(*i).encode() for i in instruments}
    assert await _kinds(redis_client, instruments) == await _kinds(other_client, instruments)
    # two writers, each of its own shard's instruments only
    writers = await _writers(redis_client)
    assert len(writers) == 2
    for written in writers.values():
        (shard,) = {owner(venue, symbol, 2) for venue, symbol in written}
        assert written == {i for i in instruments if owner(*i, 2) == shard}
    # each shard's own health, merged by the readers
    fields: Any = await redis_client.hgetall(keys.shard_health("bybit"))
    assert set(fields) == {b"0/2", b"1/2"}
    snapshots = await reader.health_snapshots(redis_client)
    assert snapshots["bybit"].subscribed_symbols == len(bybit.contracts)
    assert snapshots["okx"].subscribed_symbols == len(okx.contracts)
    # a shard's process serves the merged health, and its own metrics saying its shard
    assert ready.status_code == 200, [c for c in ready.json()["checks"] if not c["ok"]]
    for venue in ("bybit", "okx"):
        assert venues[venue]["shards"] == ["0/2", "1/2"]
        assert venues[venue]["fresh"] is True
    assert 'deleverage_collect_shard_info{shard="1/2"} 1.0' in metrics
    own = {s for v, s in instruments if owner(v, s, 2) == 1}
    funded = {
        sample.labels["symbol"]
        for family in text_string_to_metric_families(metrics)
        if family.name == "deleverage_funding_rate"
        for sample in family.samples
    }
    assert funded
    assert funded <= own


async def test_a_shard_killed_mid_burst_and_restarted_loses_and_doubles_nothing(
    sims: tuple[BybitSimulator, OkxSimulator],
    collectors: Collectors,
    redis_client: aioredis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    bybit, okx = sims
    instruments = _instruments(sims)
    # Without the order books: each shard opens its depth connections once its first ranking
    # is in (5 s after its start) and changes them with the ranking, so the simulators' count
    # of connections, which tells when the restarted shard is back, would not come back to
    # the count before the kill (seen: 1 run in 8 under load).
    config = _config(tmp_path / "sharded.yaml", redis_url, sims, depth=False)
    collectors.start("0/2", config, "0/2")
    collectors.start("1/2", config, "1/2")
    await _until(lambda: _healthy(redis_client, ["0/2", "1/2"]), collectors, STARTUP_S, "shards")
    first = {"bybit": len(bybit.pushed), "okx": len(okx.pushed)}
    await _until(
        lambda: len(bybit.pushed) >= first["bybit"] + 30 and len(okx.pushed) >= first["okx"] + 30,
        collectors, 30.0, "a burst",
    )  # fmt: skip
    bybit_clients, okx_clients = bybit.clients, okx.clients
    assert bybit.market.now.phase.name == "long_cascade"

    collectors.kill("0/2")  # SIGKILL: what it had not written yet is gone with it
    await _until(
        lambda: bybit.clients < bybit_clients and okx.clients < okx_clients, collectors, 5.0,
        "the simulators saw the connections go",
    )  # fmt: skip
    down = len(bybit.pushed)  # from here, bybit pushes only to live connections
    before: Any = await redis_client.hget(keys.shard_health("okx"), "0/2")
    stored_before, _ = await _liquidations(redis_client, instruments)
    bursts, replayed = okx.bursts, len(okx.replayed)
    await asyncio.sleep(1.0)  # the burst goes on without it
    restarted = time.monotonic()
    collectors.start("0/2", config, "0/2")
    await _until(
        lambda: bybit.clients == bybit_clients and okx.bursts > bursts, collectors, STARTUP_S,
        "the restarted shard subscribed",
    )  # fmt: skip
    back_s = time.monotonic() - restarted
    okx_back = len(okx.pushed)  # from here, OKX pushes to both shards again
    resent = okx.replayed[replayed:]
    await _until(
        lambda: len(okx.pushed) >= okx_back + 40 and len(bybit.pushed) >= down + 60,
        collectors, 30.0, "more of the burst",
    )  # fmt: skip
    end = {"bybit": len(bybit.pushed), "okx": len(okx.pushed)}
    assert bybit.market.now.phase.name == "long_cascade"
    await asyncio.sleep(1.5)
    after: Any = await redis_client.hget(keys.shard_health("okx"), "0/2")
    collectors.stop_all()

    streams, handoff = await _liquidations(redis_client, instruments)
    # nothing twice: in the instruments' streams and in the detector's hand-off
    assert set(streams.values()) == {1}, "a liquidation stored twice"
    assert set(handoff.values()) == {1}, "a liquidation handed off twice"
    assert set(handoff) == set(streams)
    # nor a state stored again: the restarted shard took the newest stored ones as seen
    for venue, symbol in instruments:
        for kind in (Kind.MARK, Kind.FUNDING, Kind.OPEN_INTEREST):
            rows = await redis_client.xrange(keys.events(venue, symbol, kind))
            times = [decode(fields[b"e"]).ts_ms for _, fields in rows]
            assert len(times) == len(set(times)), f"{venue} {symbol} {kind}: a state twice"
    # nothing lost that was sent after the restarted shard reconnected (Bybit: every push
    # after the kill went to a live subscriber; OKX: every push once it subscribed again)
    sent = {bybit_identity(bybit, p) for p in bybit.pushed[down : end["bybit"]]}
    sent |= {okx_identity(okx, p) for p in okx.pushed[okx_back : end["okx"]]}
    mine = {i for i in sent if owner(i[0], i[1], 2) == 0}
    assert len(mine) >= 20, "the restarted shard received too little to tell"
    assert not sent - set(streams), f"{len(sent - set(streams))} sent after the restart lost"
    # the shard that stayed lost nothing of its own at all
    theirs = {okx_identity(okx, p) for p in okx.pushed[first["okx"] : end["okx"]]}
    theirs |= {bybit_identity(bybit, p) for p in bybit.pushed[first["bybit"] : end["bybit"]]}
    theirs = {i for i in theirs if owner(i[0], i[1], 2) == 1}
    assert not theirs - set(streams)
    # OKX re-sent what the killed shard had stored: Redis's identities dropped it
    resent_mine = {i for p in resent if owner("okx", p.symbol, 2) == 0
                   for i in [okx_identity(okx, p)]}  # fmt: skip
    assert resent_mine & set(stored_before), "the burst re-sent nothing already stored"
    print(
        f"restarted shard subscribed {back_s:.2f} s after its start; "
        f"{len(mine)} of its liquidations sent after that, all stored once; "
        f"{len(resent_mine & set(stored_before))} re-sent by OKX already stored: dropped"
    )
    # its health is its own: written again by the restarted shard, not by the other one
    assert before is not None
    assert after is not None
    assert decode_snapshot(after).updated_ms > decode_snapshot(before).updated_ms
    assert decode_snapshot(after).shard == "0/2"
