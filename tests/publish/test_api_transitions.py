"""``GET /v1/transitions``: instrument, asset and market transitions, newest first."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from publish_support import PROBLEM

from service.events import Side
from service.publish.api.params import rfc3339
from service.scores import ANY, Scope, State, Transition, encode
from service.store import keys

T0 = 1_760_000_000_000


def transition(
    venue: str, symbol: str, asset: str, to: State, t_s: int, scope: Scope = Scope.INSTRUMENT,
    side: Side | None = Side.LONG,
) -> Transition:  # fmt: skip
    return Transition(
        venue=venue, symbol=symbol, asset=asset, from_state=State.CALM, to_state=to,
        side=side, score=66.0, ts_ms=T0 + t_s * 1000, reasons=[f"reason {t_s}"], scope=scope,
        forced_share=0.4, data_quality=1.0, features={"evidence_liq": 2.5},
    )  # fmt: skip


INSTRUMENTS = [
    transition("binance_usdm", "BTCUSDT", "BTC", State.CASCADE, 1),
    transition("bybit", "BTCUSDT", "BTC", State.UNWINDING, 2),
    transition("okx", "ETH-USDT-SWAP", "ETH", State.BUILDING, 3, side=Side.SHORT),
    transition("binance_usdm", "ETHUSDT", "ETH", State.UNWINDING, 4),
]
ASSETS = [transition(ANY, ANY, "BTC", State.CASCADE, 5, Scope.ASSET)]
MARKET = [transition(ANY, ANY, ANY, State.UNWINDING, 6, Scope.MARKET)]


@pytest.fixture(autouse=True)
async def _stored(redis: aioredis.Redis) -> None:
    for t in [*INSTRUMENTS, *ASSETS, *MARKET]:
        await redis.xadd(keys.transitions(t.scope.value), {"e": encode(t)}, id=f"{t.ts_ms}-0")


def _symbols(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [f"{t['venue']}/{t['symbol']}" for t in r.json()["items"]]


async def test_instrument_transitions_newest_first_with_every_field(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/transitions")
    assert _symbols(r) == [
        "binance_usdm/ETHUSDT", "okx/ETH-USDT-SWAP", "bybit/BTCUSDT", "binance_usdm/BTCUSDT",
    ]  # fmt: skip
    last = r.json()["items"][-1]
    assert last == {
        "id": f"{T0 + 1000}-0", "scope": "instrument", "venue": "binance_usdm",
        "symbol": "BTCUSDT", "asset": "BTC", "from_state": "calm", "to_state": "cascade",
        "side": "long", "score": 66.0, "ts": rfc3339(T0 + 1000), "forced_share": 0.4,
        "data_quality": 1.0, "features": {"evidence_liq": 2.5}, "reasons": ["reason 1"],
    }  # fmt: skip
    assert r.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("venue=bybit", ["bybit/BTCUSDT"]),
        ("asset=eth", ["binance_usdm/ETHUSDT", "okx/ETH-USDT-SWAP"]),
        ("symbol=BTCUSDT", ["bybit/BTCUSDT", "binance_usdm/BTCUSDT"]),
        (f"since={T0 + 2000}&until={T0 + 3000}", ["okx/ETH-USDT-SWAP", "bybit/BTCUSDT"]),
        (f"until={rfc3339(T0 + 1000)}", ["binance_usdm/BTCUSDT"]),
        ("asset=DOGE", []),
    ],
)
async def test_instrument_transitions_filters(
    client: httpx.AsyncClient, query: str, expected: list[str]
) -> None:
    assert _symbols(await client.get(f"/v1/transitions?{query}")) == expected


async def test_pages_follow_the_cursor_without_repeats(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/v1/transitions", params=params)).json()
        seen += [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"{T0 + s * 1000}-0" for s in (4, 3, 2, 1)]


async def test_asset_and_market_scopes_read_their_own_streams(client: httpx.AsyncClient) -> None:
    assets = (await client.get("/v1/transitions?scope=asset")).json()["items"]
    assert [(t["scope"], t["asset"], t["to_state"]) for t in assets] == [
        ("asset", "BTC", "cascade")
    ]
    assert (await client.get("/v1/transitions?scope=asset&asset=ETH")).json()["items"] == []
    market = (await client.get("/v1/transitions?scope=market")).json()["items"]
    assert [(t["scope"], t["venue"], t["asset"]) for t in market] == [("market", "*", "*")]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("scope=galaxy", "scope"),
        ("scope=asset&venue=okx", "venue"),
        ("scope=market&asset=BTC", "asset"),
        ("cursor=not-a-cursor", "cursor"),
        (f"since={T0 + 5000}&until={T0}", "until"),
        ("since=yesterday", "since"),
    ],
)
async def test_bad_parameters_are_422_problems_naming_them(
    client: httpx.AsyncClient, query: str, param: str
) -> None:
    r = await client.get(f"/v1/transitions?{query}")
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert [e["name"] for e in r.json()["errors"]] == [param]


async def test_an_old_transition_without_the_new_fields_still_reads(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    old = (
        b'{"venue":"bybit","symbol":"SOLUSDT","asset":"SOL","from_state":"unwinding",'
        b'"to_state":"calm","side":null,"score":12.0,"ts_ms":1760000009000,"reasons":[]}'
    )
    await redis.xadd(keys.TRANSITIONS, {"e": old}, id=f"{T0 + 9000}-0")
    first = (await client.get("/v1/transitions?limit=1")).json()["items"][0]
    assert (first["symbol"], first["scope"], first["features"]) == ("SOLUSDT", "instrument", {})
