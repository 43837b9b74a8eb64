"""Hostile input: cursors the API did not issue, oversized queries, and the OpenAPI examples,
which must all be accepted as they are documented."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from publish_support import PROBLEM, liquidation, store_events

from service.publish.api.limits import MAX_QUERY_BYTES, MAX_QUERY_PARAMS
from service.publish.api.params import MAX_CURSOR_CHARS, MAX_NAME_CHARS

LIQUIDATION_CURSOR = "1795491796123-0~binance_usdm|BTCUSDT"
TRANSITION_CURSOR = "1795491796123-0"
BAD_CURSORS = [
    "",
    " ",
    "garbage",
    "0",
    "0-0",
    "-1-0",
    "1--1",
    "+1-0",
    " 1-0",
    "1-0 ",
    "1.5-0",
    "1e3-0",
    "١٢-0",  # Arabic-Indic digits: int() takes them, Redis does not
    "18446744073709551616-0",  # 2**64
    "1-18446744073709551616",
    "9" * 300,
    "1795491796123",  # a bare millisecond: the API always issues <ms>-<seq>
]


async def _refused(client: httpx.AsyncClient, path: str, name: str, **params: str) -> None:
    r = await client.get(path, params=params)
    assert r.status_code == 422, f"{params}: {r.status_code} {r.text}"
    assert r.headers["content-type"] == PROBLEM
    assert [e["name"] for e in r.json()["errors"]] == [name], r.json()


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_transitions_refuse_a_cursor_they_did_not_issue(
    client: httpx.AsyncClient, cursor: str
) -> None:
    await _refused(client, "/v1/transitions", "cursor", cursor=cursor)


@pytest.mark.parametrize(
    "cursor",
    [
        *(f"{c}~bybit|ETHUSDT" for c in BAD_CURSORS if c != "9" * 300),
        "9" * 300,
        TRANSITION_CURSOR,  # the other endpoint's kind
        f"{TRANSITION_CURSOR}~",
        f"{TRANSITION_CURSOR}~bybit",
        f"{TRANSITION_CURSOR}~|ETHUSDT",
        f"{TRANSITION_CURSOR}~bybit|",
    ],
)
async def test_liquidations_refuse_a_cursor_they_did_not_issue(
    client: httpx.AsyncClient, redis: aioredis.Redis, cursor: str
) -> None:
    await store_events(redis, [liquidation("bybit", "ETHUSDT")])
    await _refused(client, "/v1/liquidations", "cursor", cursor=cursor)


async def test_each_endpoint_refuses_the_others_cursor(client: httpx.AsyncClient) -> None:
    await _refused(client, "/v1/transitions", "cursor", cursor=LIQUIDATION_CURSOR)
    await _refused(client, "/v1/liquidations", "cursor", cursor=TRANSITION_CURSOR)


@pytest.mark.parametrize(
    ("path", "cursor"),
    [("/v1/transitions", TRANSITION_CURSOR), ("/v1/transitions", "0-1"),
     ("/v1/liquidations", LIQUIDATION_CURSOR), ("/v1/liquidations", "0-1~bybit|ETHUSDT"),
     ("/v1/liquidations", "18446744073709551615-18446744073709551615~a|b")],
)  # fmt: skip
async def test_cursors_of_the_right_shape_are_accepted(
    client: httpx.AsyncClient, redis: aioredis.Redis, path: str, cursor: str
) -> None:
    await store_events(redis, [liquidation("bybit", "ETHUSDT")])
    r = await client.get(path, params={"cursor": cursor})
    assert r.status_code == 200, r.text


async def test_times_before_1970_are_refused(client: httpx.AsyncClient) -> None:
    for path in ("/v1/liquidations", "/v1/transitions", "/v1/alerts"):
        await _refused(client, path, "since", since="1969-12-31T23:59:59.999Z")
    await _refused(client, "/v1/liquidations", "until", until="0001-01-01T00:00:00+14:00")


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/liquidations?venue=bybit&venue=okx", "venue"),
        ("/v1/pressure?asset=BTC&limit=1&asset=ETH", "asset"),
        ("/v1/transitions?" + "&".join(f"p{i}=1" for i in range(MAX_QUERY_PARAMS + 1)), "query"),
        ("/v1/liquidations?symbol=" + "A" * MAX_QUERY_BYTES, "query"),
        ("/v1/liquidations?symbol=" + "A" * 65, "symbol"),
        ("/v1/funding?venue=" + "v" * 65, "venue"),
        ("/v1/pressure?asset=" + "B" * 65, "asset"),
        ("/v1/mark?limit=" + "9" * 400, "limit"),
        ("/v1/assets/" + "B" * 65, "asset"),
        ("/v1/pressure/" + "v" * 65 + "/BTCUSDT", "venue"),
        ("/v1/pressure/bybit/" + "S" * 65, "symbol"),
    ],
)
async def test_oversized_queries_are_422_problems(
    client: httpx.AsyncClient, url: str, name: str
) -> None:
    r = await client.get(url)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert [e["name"] for e in body["errors"]] == [name]
    assert body["errors"][0]["detail"]


async def test_the_query_caps_leave_room_for_every_parameter_at_its_longest(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    widest = max(
        sum(1 for p in op.get("parameters", []) if p["in"] == "query")
        for path in app.openapi()["paths"].values()
        for op in path.values()
    )
    assert widest <= MAX_QUERY_PARAMS
    top = "18446744073709551615-18446744073709551615"
    name = "x" * MAX_NAME_CHARS
    common = {"venue": name, "symbol": name, "limit": "50",
              "since": "2026-11-24T03:43:16.123456+14:00", "until": "999999999999999"}  # fmt: skip
    r = await client.get(
        "/v1/transitions", params={**common, "scope": "instrument", "asset": name, "cursor": top}
    )
    assert r.status_code == 200, r.text
    cursor = f"{top}~{'v' * 100}|{'s' * (MAX_CURSOR_CHARS - len(top) - 102)}"
    assert len(cursor) == MAX_CURSOR_CHARS
    r = await client.get("/v1/liquidations", params={**common, "cursor": cursor})
    assert r.status_code == 200, r.text


def _examples(param: dict[str, Any]) -> list[Any]:
    found = list(param.get("schema", {}).get("examples", []))
    found += [v["value"] for v in param.get("examples", {}).values()]
    return found + ([param["example"]] if "example" in param else [])


async def test_every_parameter_example_is_accepted(
    app: FastAPI, client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await store_events(redis, [liquidation("binance_usdm", "BTCUSDT")])
    doc = app.openapi()
    sent = 0
    for path, operations in doc["paths"].items():
        if path == "/v1/stream":
            continue  # it never ends: tests/publish/test_stream.py sends its examples
        for method, op in operations.items():
            params = op.get("parameters", [])
            path_values = {p["name"]: _examples(p)[0] for p in params if p["in"] == "path"}
            for p in params:
                for example in _examples(p):
                    jsonschema.validate(example, {**p["schema"], "components": doc["components"]})
                    values = {**path_values, p["name"]: example}
                    url = path.format(**values)
                    query = {p["name"]: example} if p["in"] == "query" else {}
                    r = await client.request(method, url, params=query)
                    assert r.status_code != 422, f"{method} {url} {query}: {r.text}"
                    assert r.status_code < 500, f"{method} {url} {query}: {r.text}"
                    sent += 1
    assert sent >= 25


def test_every_schema_example_validates(app: FastAPI) -> None:
    doc = app.openapi()
    components = doc["components"]
    checked = 0

    def walk(schema: Any, where: str) -> None:
        nonlocal checked
        if isinstance(schema, dict):
            for example in (
                schema.get("examples", []) if isinstance(schema.get("examples"), list) else []
            ):
                jsonschema.validate(example, {**schema, "components": components})
                checked += 1
            for key, value in schema.items():
                walk(value, f"{where}/{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                walk(value, f"{where}[{i}]")

    walk(components["schemas"], "components/schemas")
    walk(doc["paths"], "paths")
    assert checked > 100
