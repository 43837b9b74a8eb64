"""The Binance simulators' liquidity streams: the diff book's update ids chain as the venue's
(``pu`` is the previous ``u``, the REST snapshot's ``lastUpdateId`` the last ``u`` sent), its
spread widens and its levels thin with the market's quote, and the live servers route
``bookTicker`` and ``depth`` to ``/public`` only (USDⓈ-M) while serving the REST snapshot."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx
from websockets.asyncio.client import connect

from service.simulate.market import Quote
from service.venues.binance.simulator import book_wire
from service.venues.binance.simulator.coinm import BinanceCoinmSimulator
from service.venues.binance.simulator.usdm import BinanceUsdmSimulator
from service.venues.binance.simulator.usdm_wire import Contract

BTC = Contract("BTCUSDT", 2, 3, pair="BTCUSDT")
BTC_INVERSE = Contract("BTCUSD_PERP", 1, 0, contract_size=100.0, pair="BTCUSD")
CALM = Quote("BTCUSDT", "BTC", 60_000.0, 60_000.0, 0.0001, 80_000.0)


def test_diffs_chain_and_the_snapshot_names_the_last_one() -> None:
    book = book_wire.DiffBook(BTC)
    book.update(CALM)
    first = book.snapshot(1000, 0)
    moved = replace(CALM, mark=60_030.0)
    pu, bids, asks = book.update(moved) or (0, [], [])
    diff = book.diff(pu, bids, asks, 500)
    assert diff["pu"] == first["lastUpdateId"]
    assert diff["U"] == diff["pu"] + 1
    assert diff["u"] == diff["pu"] + len(bids) + len(asks)
    assert book.snapshot(1000, 0)["lastUpdateId"] == diff["u"]
    assert book.update(moved) is None  # a quiet market sends nothing
    book.skip()
    pu2, *_ = book.update(replace(CALM, mark=60_100.0)) or (0,)
    assert pu2 == diff["u"] + 1  # a skipped update: the next diff's pu leaves one out


def test_the_cascade_widens_the_spread_and_thins_every_level() -> None:
    calm = book_wire.DiffBook(BTC)
    calm.update(CALM)
    thin = book_wire.DiffBook(BTC)
    thin.update(replace(CALM, spread_bp=CALM.spread_bp * 8, depth=0.3))
    a, b = calm.snapshot(1000, 0), thin.snapshot(1000, 0)
    assert len(a["bids"]) == len(a["asks"]) == book_wire.LEVELS
    assert float(a["bids"][0][1]) == 80_000.0 * book_wire.LEVEL_SIZE_OF_OI
    assert float(b["bids"][0][1]) == 80_000.0 * book_wire.LEVEL_SIZE_OF_OI * 0.3
    spread = [float(x["asks"][0][0]) - float(x["bids"][0][0]) for x in (a, b)]
    assert spread[1] > 4 * spread[0]
    reach = (60_000.0 - float(a["bids"][-1][0])) / 60_000.0 * 100
    assert reach > 2.0  # the 2 % band is covered


def test_coinm_levels_and_trades_are_whole_contracts_with_the_pair() -> None:
    book = book_wire.DiffBook(BTC_INVERSE)
    q = replace(CALM, symbol="BTCUSD_PERP")
    book.update(q)
    snap = book.snapshot(5, 0)
    assert (snap["symbol"], snap["pair"], len(snap["bids"])) == ("BTCUSD_PERP", "BTCUSD", 5)
    usd = 80_000.0 * 60_000.0 * book_wire.LEVEL_SIZE_OF_OI
    assert snap["bids"][0][1] == str(round(float(f"{usd / 100.0:.2g}")))  # two digits
    top = book_wire.book_ticker(q, BTC_INVERSE, 1, 0)
    assert (top["ps"], top["B"]) == ("BTCUSD", snap["bids"][0][1])
    trades = book_wire.agg_trades(q, BTC_INVERSE, 1000, [], 7)
    assert [t["a"] for t in trades] == [7, 8]
    assert [t["m"] for t in trades] == [False, True]  # a taker buy at the ask, a sell at the bid
    assert all(t["q"].isdigit() for t in trades)


async def test_usdm_routes_book_streams_to_public_and_serves_the_snapshot() -> None:
    async with BinanceUsdmSimulator(seed=3, time_scale=4.0, start_s=22) as sim:
        base = sim.ws_base_url.removesuffix("/market")
        streams = ["!bookTicker", "btcusdt@depth@500ms", "btcusdt@aggTrade"]
        sub = json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1})
        async with (
            connect(f"{base}/public/stream") as public,
            connect(f"{base}/market/stream") as market,
        ):
            for ws in (public, market):
                await ws.send(sub)
            got: dict[str, set[str]] = {"public": set(), "market": set()}

            async def read(name: str, ws: object) -> None:
                try:
                    async with asyncio.timeout(2.5):
                        while True:
                            frame = json.loads(await ws.recv())  # type: ignore[attr-defined]
                            if "stream" in frame:
                                got[name].add(frame["data"]["e"])
                except TimeoutError:
                    return

            await asyncio.gather(read("public", public), read("market", market))
        assert got == {"public": {"bookTicker", "depthUpdate"}, "market": {"aggTrade"}}
        async with httpx.AsyncClient(base_url=sim.rest_base_url) as http:
            r = await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 1000})
            bad = await http.get("/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 7})
        body = r.json()
        assert set(body) == {"lastUpdateId", "E", "T", "bids", "asks"}
        assert body["lastUpdateId"] == sim.depth_books["BTCUSDT"].u
        assert r.headers["X-MBX-USED-WEIGHT-1M"] == "20"
        assert bad.status_code == 400


async def test_coinm_serves_book_streams_on_its_one_base() -> None:
    async with BinanceCoinmSimulator(seed=3, time_scale=4.0, start_s=22) as sim:
        async with connect(
            f"{sim.ws_base_url}/ws/btcusd_perp@depth@100ms/btcusd_perp@bookTicker"
        ) as ws:
            seen: set[str] = set()
            async with asyncio.timeout(5):
                while seen != {"bookTicker", "depthUpdate"}:
                    seen.add(json.loads(await ws.recv())["e"])
        async with httpx.AsyncClient(base_url=sim.rest_base_url) as http:
            r = await http.get("/dapi/v1/depth", params={"symbol": "BTCUSD_PERP", "limit": 50})
        assert r.json()["pair"] == "BTCUSD"
        assert len(r.json()["bids"]) == 50
