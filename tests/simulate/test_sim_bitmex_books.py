"""The BitMEX simulator's ``orderBookL2``, ``quote`` and ``trade`` tables over real websockets,
read by our real parser: rows with the fields of BitMEX's real ones (2026-02-22 and
cryptofeed's 2021 recording), a partial then rows whose ids hold together, a gap it can be
made to show, and a book that thins and widens with the market."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from simkit import collect
from websockets.asyncio.client import connect

from service.events import BookDepth, BookTop, Volume
from service.venues._volume import Volumes
from service.venues.base import Instrument, now_ms
from service.venues.bitmex.simulator.book_wire import L2Book
from service.venues.bitmex.simulator.server import BitmexSimulator
from service.venues.bitmex.venue import BitmexParser, instrument

pytestmark = pytest.mark.integration

VENUE = "bitmex"
REAL_L2_KEYS = {"symbol", "id", "side", "size", "price", "timestamp", "transactTime"}
"""The fields of a real ``orderBookL2`` update (2026-02-22; a delete has no ``size``)."""
REAL_QUOTE_KEYS = {"timestamp", "symbol", "bidSize", "bidPrice", "askPrice", "askSize"}
REAL_TRADE_KEYS = {
    "timestamp", "symbol", "side", "size", "price", "tickDirection", "trdMatchID", "grossValue",
    "homeNotional", "foreignNotional",
}  # fmt: skip
"""cryptofeed's 2021 recording."""


@pytest.fixture
async def sim() -> AsyncIterator[BitmexSimulator]:
    """In the long cascade, 5x faster."""
    async with BitmexSimulator(seed=3, time_scale=5.0, start_s=22) as s:
        yield s


def _markets(sim: BitmexSimulator) -> dict[str, Instrument]:
    return {r["symbol"]: i for r in sim.rest.listing if (i := instrument(r)) is not None}


def _subscribe(*args: str, op: str = "subscribe") -> str:
    return json.dumps({"op": op, "args": list(args)})


def _tables(frames: list[str], table: str) -> list[dict[str, Any]]:
    return [m for f in frames if (m := json.loads(f)).get("table") == table]


async def test_a_partial_then_rows_whose_ids_hold_together_give_depth(
    sim: BitmexSimulator,
) -> None:
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_subscribe("orderBookL2:XBTUSD"))
        frames = await collect(ws, 2.5)
    partial, *rows = _tables(frames, "orderBookL2")
    assert partial["action"] == "partial"
    assert partial["keys"] == ["symbol", "id", "side"]
    levels = partial["data"]
    assert isinstance(levels, list)
    assert len(levels) == 2 * 150
    assert all(set(r) == REAL_L2_KEYS for r in levels)
    assert len({r["id"] for r in levels}) == len(levels)
    assert rows, "the cascade moves the book"
    for m in rows:
        assert m["action"] in ("insert", "update", "delete")
        data = m["data"]
        assert isinstance(data, list)
        want = REAL_L2_KEYS - {"size"} if m["action"] == "delete" else REAL_L2_KEYS
        assert all(set(r) == want for r in data)
    parser = BitmexParser(VENUE, _markets(sim), None)
    depths = [e for f in frames for e in parser.parse(f, 0)]
    assert not parser.stats.errors
    assert 2 <= len(depths) <= 4  # at most one a second (2.5 s of frames)
    d = depths[-1]
    assert isinstance(d, BookDepth)
    assert d.mid == pytest.approx(sim.mark("XBTUSD"), rel=0.01)
    assert all(d.exact(side, 2.0) for side in ("bid", "ask"))  # 150 levels, 2 bp apart
    assert 0 < d.bid_usd_0p5 < d.bid_usd_1 < d.bid_usd_2


async def test_renamed_levels_are_a_gap_and_a_new_partial_heals_it(sim: BitmexSimulator) -> None:
    parser = BitmexParser(VENUE, _markets(sim), None)
    async with connect(sim.ws_base_url) as ws:
        await ws.send(_subscribe("orderBookL2:XBTUSD"))
        for f in await collect(ws, 1.0):
            parser.parse(f, 0)
        assert not parser.stats.errors
        sim.book_gap("XBTUSD")
        for f in await collect(ws, 1.5):
            parser.parse(f, 1)
        assert parser.stats.errors["orderbook_gap"] == 1
        assert parser.resync == {"XBTUSD"}
        await ws.send(_subscribe("orderBookL2:XBTUSD", op="unsubscribe"))
        await ws.send(_subscribe("orderBookL2:XBTUSD"))
        healed = await collect(ws, 2.5)
    before = dict(parser.stats.errors)
    depths = [e for f in healed for e in parser.parse(f, 10_000)]
    assert depths, "the new partial's book reports again"
    assert parser.stats.errors["orderbook_gap"] == 1
    assert set(parser.stats.errors) <= set(before) | {"orderbook_delta_before_snapshot"}


async def test_quotes_and_prints_have_the_real_fields_and_parse(sim: BitmexSimulator) -> None:
    markets = _markets(sim)
    symbols = ("XBTUSD", "ETHUSD", "XBTUSDT")
    async with connect(sim.ws_base_url) as ws:
        args = [f"{t}:{s}" for t in ("instrument", "quote", "trade") for s in symbols]
        await ws.send(_subscribe(*args))
        frames = await collect(ws, 2.5)
    quotes = [r for m in _tables(frames, "quote") for r in m["data"]]
    trades = [r for m in _tables(frames, "trade") if m["action"] == "insert" for r in m["data"]]
    assert {q["symbol"] for q in quotes} == set(symbols)
    assert all(set(q) == REAL_QUOTE_KEYS for q in quotes)
    assert {t["symbol"] for t in trades} == set(symbols)
    assert all(set(t) == REAL_TRADE_KEYS for t in trades)
    assert len({t["trdMatchID"] for t in trades}) == len(trades)
    parser = BitmexParser(VENUE, markets, None)
    parser.volumes = Volumes(VENUE)
    recv = now_ms()  # after every frame (a print ahead of it is dropped)
    events = [e for f in frames for e in parser.parse(f, recv)] + parser.flush_volumes(recv)
    assert not parser.stats.errors
    for symbol in symbols:
        top = next(e for e in events if isinstance(e, BookTop) and e.symbol == symbol)
        assert (top.bid_price + top.ask_price) / 2 == pytest.approx(sim.mark(symbol), rel=0.01)
        vol = [e for e in events if isinstance(e, Volume) and e.symbol == symbol]
        usd = sum(v.taker_buy_usd + v.taker_sell_usd for v in vol)
        base = sum(v.taker_buy_base + v.taker_sell_base for v in vol)
        assert usd / base == pytest.approx(sim.mark(symbol), rel=0.02)  # valued at the price


def test_the_book_thins_and_widens_with_the_market(sim: BitmexSimulator) -> None:
    """Pure: the same quote, calm then unwinding (spread x 4, depth x 0.3)."""
    contract = sim.contracts["XBTUSD"]
    calm = sim.market.quote("XBTUSD")
    calm = dataclasses.replace(calm, spread_bp=1.0, depth=1.0)
    book = L2Book(contract)
    book.update(calm, 60_000.0, 1_000)
    calm_top = book.quote
    assert calm_top is not None
    stressed = dataclasses.replace(calm, spread_bp=4.0, depth=0.3)
    changed = book.update(stressed, 60_000.0, 2_000)
    assert changed is not None
    assert set(changed) <= {"delete", "update", "insert"}
    top = book.quote
    assert top is not None
    assert top["askPrice"] - top["bidPrice"] > calm_top["askPrice"] - calm_top["bidPrice"]
    assert top["bidSize"] < 0.5 * calm_top["bidSize"]
    assert all(r["size"] == top["bidSize"] for r in book.rows(2_000))
