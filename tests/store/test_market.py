"""The whole-market reader: what :mod:`service.store.reader` gives, in one script call per
chunk of instruments, every chunk in one round trip; what did not change is not decoded
again (the same objects come back), what changed is; unusable values and keys of the wrong
type are skipped and counted; an instrument new to the set is read at once, one that is
gone is forgotten."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from waits import Turns

from service.config import StoreSettings
from service.events import FundingRate, Kind, MarkPrice
from service.scores import Pressure, State
from service.scores import encode as encode_pressure
from service.store import keys, market, poison, reader
from service.store.client import is_cluster
from service.store.stored import StoredEvents
from service.store.writer import write_batch


def _now() -> int:
    return time.time_ns() // 1_000_000


def _mark(venue: str, symbol: str, price: float) -> MarkPrice:
    now = _now()
    return MarkPrice(venue=venue, symbol=symbol, base=symbol[:3], ts_ms=now, recv_ms=now,
                     mark_price=price, index_price=None)  # fmt: skip


def _funding(venue: str, symbol: str) -> FundingRate:
    now = _now()
    return FundingRate(venue=venue, symbol=symbol, base=symbol[:3], ts_ms=now, recv_ms=now,
                       funding_rate=0.0001, interval_h=8.0, funding_rate_1h=0.0000125,
                       next_funding_ms=None)  # fmt: skip


def _score(venue: str, symbol: str, score: float) -> bytes:
    now = _now()
    return encode_pressure(
        Pressure(venue=venue, symbol=symbol, asset=symbol[:3], score=score, state=State.CALM,
                 side=None, updated_ms=now, since_ms=now, forced_share=None, data_quality=1.0,
                 features={})
    )  # fmt: skip


PAIRS = [(v, f"{a}USDT") for v in ("binance_usdm", "bybit") for a in ("BTC", "ETH", "SOL")]


async def _seed(client: aioredis.Redis) -> None:
    events = [e for v, s in PAIRS for e in (_mark(v, s, 10.0), _funding(v, s))]
    await write_batch(client, events, StoreSettings(), _now())
    for i, (v, s) in enumerate(PAIRS):
        await client.set(keys.pressure(v, s), _score(v, s, float(i)))


async def test_it_reads_what_the_per_instrument_reader_reads(
    redis_client: aioredis.Redis,
) -> None:
    await _seed(redis_client)
    pairs, latest, scores = await market.MarketReader(redis_client).read()
    assert pairs == await reader.instruments(redis_client) == sorted(PAIRS)
    assert latest == await reader.latest(redis_client, pairs)
    assert scores == await reader.pressures(redis_client, pairs)


async def test_chunks_of_instruments_read_the_same(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(redis_client)
    whole = await market.MarketReader(redis_client).read()
    monkeypatch.setattr(market, "CHUNK", 4)  # 6 instruments: two calls
    assert await market.MarketReader(redis_client).read() == whole


async def test_a_long_read_lets_the_event_loop_run_and_reads_the_same(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a slice shorter than one instrument's processing, the read pauses between
    instruments: another task runs meanwhile, and the answer is the one read in one go."""
    await _seed(redis_client)
    whole = await market.MarketReader(redis_client).read()
    monkeypatch.setattr(market, "SLICE_S", 0.0)
    async with Turns() as turns:
        assert await market.MarketReader(redis_client).read() == whole
    assert turns.count >= len(PAIRS)  # a turn per instrument, besides the call's awaits


async def test_only_what_changed_is_decoded_again(redis_client: aioredis.Redis) -> None:
    await _seed(redis_client)
    r = market.MarketReader(redis_client)
    _, before, scores_before = await r.read()
    await write_batch(redis_client, [_mark("bybit", "ETHUSDT", 11.0)], StoreSettings(), _now())
    await redis_client.set(keys.pressure("bybit", "SOLUSDT"), _score("bybit", "SOLUSDT", 99.0))
    _, after, scores_after = await r.read()
    for pair in PAIRS:
        if pair == ("bybit", "ETHUSDT"):
            mark = after[pair][Kind.MARK]
            assert isinstance(mark, MarkPrice)
            assert mark.mark_price == 11.0
            assert after[pair][Kind.FUNDING] is before[pair][Kind.FUNDING]  # that field kept
        else:
            assert after[pair] is before[pair]
        if pair == ("bybit", "SOLUSDT"):
            assert scores_after[pair].score == 99.0
        else:
            assert scores_after[pair] is scores_before[pair]


async def test_poison_is_skipped_and_counted_and_gone_instruments_forgotten(
    redis_client: aioredis.Redis,
) -> None:
    await _seed(redis_client)
    await redis_client.hset(keys.latest("bybit", "BTCUSDT"), "mark", b"{not json")
    await redis_client.delete(keys.pressure("bybit", "ETHUSDT"))
    await redis_client.rpush(keys.pressure("bybit", "ETHUSDT"), b"a list")
    await redis_client.sadd(keys.INSTRUMENTS, keys.instrument_id("okx", "XRPUSDT"))
    await redis_client.set(keys.latest("okx", "XRPUSDT"), b"a string")
    before = poison.counts()
    r = market.MarketReader(redis_client)
    pairs, latest, scores = await r.read()
    after = poison.counts()
    for what_reason in (("mark", "undecodable"), ("latest", "wrong_type"),
                        ("pressure", "wrong_type")):  # fmt: skip
        assert after[what_reason] == before.get(what_reason, 0) + 1, what_reason
    assert Kind.MARK not in latest[("bybit", "BTCUSDT")]
    assert Kind.FUNDING in latest[("bybit", "BTCUSDT")]
    assert ("bybit", "ETHUSDT") not in scores
    assert latest[("okx", "XRPUSDT")] == {}
    await redis_client.srem(keys.INSTRUMENTS, keys.instrument_id("okx", "XRPUSDT"))
    pairs, latest, _ = await r.read()
    assert ("okx", "XRPUSDT") not in pairs
    assert ("okx", "XRPUSDT") not in latest


async def test_a_read_is_one_round_trip_and_an_instrument_new_to_the_set_is_read_at_once(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(redis_client)
    r = market.MarketReader(redis_client)
    await r.read()
    await write_batch(redis_client, [_mark("okx", "XRPUSDT", 2.0)], StoreSettings(), _now())
    pairs, latest, scores = await r.read()  # the set changed: a second round trip for it
    mark = latest[("okx", "XRPUSDT")][Kind.MARK]
    assert isinstance(mark, MarkPrice)
    assert mark.mark_price == 2.0
    assert (pairs, latest, scores) == await market.MarketReader(redis_client).read()
    pipelines = 0
    pipeline = redis_client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(redis_client, "pipeline", counted)
    monkeypatch.setattr(market, "CHUNK", 4)  # 7 instruments: two script calls
    assert await r.read() == (pairs, latest, scores)
    if not is_cluster(redis_client):  # (on a cluster: a pipeline per chunk)
        assert pipelines == 1


def test_key_parts_make_the_keys() -> None:
    member = keys.instrument_id("bybit", "BTCUSDT")
    prefix, suffix = keys.latest_key_parts()
    assert prefix + member + suffix == keys.latest("bybit", "BTCUSDT")
    prefix, suffix = keys.pressure_key_parts()
    assert prefix + member + suffix == keys.pressure("bybit", "BTCUSDT")
    for kind in Kind:
        prefix, suffix = keys.events_key_parts(kind)
        assert prefix + member + suffix == keys.events("bybit", "BTCUSDT", kind)
    prefix, suffix = keys.liquidation_ids_key_parts()
    assert prefix + member + suffix == keys.liquidation_ids("bybit", "BTCUSDT")
    prefix, suffix = keys.last_batch_key_parts()
    assert prefix + member + suffix == keys.last_batch("bybit", "BTCUSDT")


async def test_what_its_own_writer_stored_is_taken_not_decoded(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read in the process whose writer stored the values takes that writer's events for
    the same bytes: the same answers as a reader without them, with none of those decoded."""
    mine = StoredEvents()
    events = [e for v, s in PAIRS for e in (_mark(v, s, 10.0), _funding(v, s))]
    await write_batch(redis_client, events, StoreSettings(), _now(), stored=mine)
    plain = await market.MarketReader(redis_client).read()
    decoded: list[bytes] = []
    decode = market.MarketReader._decode_event
    monkeypatch.setattr(market.MarketReader, "_decode_event",
                        staticmethod(lambda *a: decoded.append(a[2]) or decode(*a)))  # fmt: skip
    pairs, latest, scores = await market.MarketReader(redis_client, mine).read()
    assert (pairs, latest, scores) == plain
    assert decoded == []
    assert mine.taken == len(events)
    for event in events:
        assert any(e is event for e in latest[(event.venue, event.symbol)].values())


async def test_bytes_its_writer_did_not_store_are_decoded(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's newer value, and a value the reader would refuse (never noted), are
    decoded and checked as before; the rest is still taken."""
    mine = StoredEvents()
    events = [_mark(v, s, 10.0) for v, s in PAIRS]
    bad = _mark("bybit", "BTCUSDT", -1.0)  # a negative price: unusable
    await write_batch(redis_client, [*events, bad], StoreSettings(), _now(), stored=mine)
    assert mine.noted == len(events)
    other = _mark("binance_usdm", "ETHUSDT", 12.0)
    await write_batch(redis_client, [other], StoreSettings(), _now())  # another writer
    decoded: list[bytes] = []
    decode = market.MarketReader._decode_event
    monkeypatch.setattr(market.MarketReader, "_decode_event",
                        staticmethod(lambda *a: decoded.append(a[2]) or decode(*a)))  # fmt: skip
    before = poison.counts()
    _, latest, _ = await market.MarketReader(redis_client, mine).read()
    assert poison.counts()[("mark", "invalid")] == before.get(("mark", "invalid"), 0) + 1
    assert Kind.MARK not in latest[("bybit", "BTCUSDT")]
    assert latest[("binance_usdm", "ETHUSDT")][Kind.MARK] == other
    assert latest[("binance_usdm", "ETHUSDT")][Kind.MARK] is not other  # decoded
    assert len(decoded) == 2
    for event in events:
        if (event.venue, event.symbol) not in {("bybit", "BTCUSDT"), ("binance_usdm", "ETHUSDT")}:
            assert latest[(event.venue, event.symbol)][Kind.MARK] is event


def test_liquidations_are_kept_by_position_until_taken_and_within_their_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Noted under their positions (only usable ones), each taken once; what no one takes
    leaves once it is LIQUIDATIONS_KEPT_MS older than the newest noted, or past the count."""
    from service.events import Liquidation, Side
    from service.store import stored as stored_module

    def liquidation(price: float) -> Liquidation:
        ms = _now()
        return Liquidation(
            venue="bybit", symbol="BTCUSDT", base="BTC", ts_ms=ms, recv_ms=ms, side=Side.LONG,
            price=price, quantity=1.0, quantity_base=1.0, notional_usd=price, sampled=False,
        )  # fmt: skip

    def at(ms: int, n: int) -> bytes:
        return keys.liquidation_position(ms, n, "bybit|BTCUSDT").encode()

    mine = StoredEvents()
    liq = liquidation(100.0)
    bad = liquidation(-1.0)
    mine.note_liquidations([(at(1_000, 0), liq), (at(1_000, 1), bad), (at(2_000, 0), liq)])
    assert mine.liquidations_noted == 2
    assert list(mine.liquidations) == [at(1_000, 0).decode(), at(2_000, 0).decode()]
    assert mine.take_liquidation(at(1_000, 1).decode()) is None  # unusable: read from Redis
    assert mine.take_liquidation(at(1_000, 0).decode()) is liq
    assert mine.take_liquidation(at(1_000, 0).decode()) is None  # once
    assert mine.liquidations_taken == 1
    kept_ms = stored_module.LIQUIDATIONS_KEPT_MS
    mine.note_liquidations([(at(2_000 + kept_ms, 0), liq)])  # 2,000 is just within
    assert len(mine.liquidations) == 2
    mine.note_liquidations([(at(2_001 + kept_ms, 0), liq)])
    assert at(2_000, 0).decode() not in mine.liquidations
    monkeypatch.setattr(stored_module, "MAX_LIQUIDATIONS", 3)
    mine.note_liquidations([(at(2_002 + kept_ms, n), liq) for n in range(5)])
    assert list(mine.liquidations) == [at(2_002 + kept_ms, n).decode() for n in (2, 3, 4)]
