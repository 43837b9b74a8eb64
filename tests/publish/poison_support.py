"""A Redis as a long-running service leaves it: realistic data written the way the service
writes it, and poisoned entries beside it (raw ``XADD``/``HSET``/``SET`` on the keys of
``service/store/keys.py``) of every kind a reader must survive: undecodable JSON, a null
price (what a venue's ``NaN`` became), impossible values, another instrument's event, bytes
that are not UTF-8, and keys of the wrong Redis type."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from publish_support import (
    funding,
    index_liquidation,
    liquidation,
    mark,
    now_ms,
    open_interest,
    pressure,
    snapshot,
    store_events,
    store_health,
    store_pressure,
)

from service.alerts.model import Alert, Change, EventKind
from service.alerts.model import encode as encode_alert
from service.events import Event, Kind, Liquidation, MarkPrice, Side, encode
from service.scores import ANY, Pressure, Scope, State, Transition
from service.scores import encode as encode_detector
from service.store import keys

GOOD_INSTRUMENTS = [
    ("binance_usdm", "BTCUSDT"),
    ("binance_usdm", "ETHUSDT"),
    ("bybit", "BTCUSDT"),
    ("bybit", "ETHUSDT"),
]
PRICE = {"BTC": 91_000.0, "ETH": 3_000.0}
ALERT_ID = "0123456789abcdef-1795491796123"


@dataclass
class Seeded:
    """What a correct reader serves from the seeded Redis."""

    liquidations: list[Liquidation] = field(default_factory=list)
    marks: list[MarkPrice] = field(default_factory=list)
    scores: list[Pressure] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)


def _asset(symbol: str) -> str:
    return symbol.removesuffix("USDT")


def null_price_liquidation(venue: str, symbol: str) -> bytes:
    """A liquidation as the collector stored a venue's ``"p": "NaN"``: ``price`` null."""
    raw = json.loads(encode(liquidation(venue, symbol, price=1.0)))
    raw["price"] = None
    return json.dumps(raw).encode()


async def seed_realistic(client: aioredis.Redis) -> Seeded:
    seeded = Seeded()
    for batch in range(3):
        events: list[Event] = []
        for venue, symbol in GOOD_INSTRUMENTS:
            price = PRICE[_asset(symbol)] + batch
            liq = liquidation(
                venue,
                symbol,
                price=price,
                quantity=0.5 + batch,
                side=Side.LONG if batch % 2 else Side.SHORT,
            )
            events.append(liq)
            seeded.liquidations.append(liq)
            if batch == 2:
                events += [
                    funding(venue, symbol, 0.0001),
                    open_interest(venue, symbol, 1e9, price=price),
                    mark(venue, symbol, price, price + 1),
                ]
        await store_events(client, events)
        if batch == 0:  # poison between the batches: stream ids interleave
            await _poison_liquidations(client)
    seeded.marks = [
        mark(v, s, PRICE[_asset(s)] + 2, PRICE[_asset(s)] + 3) for v, s in GOOD_INSTRUMENTS
    ]
    await store_health(client, snapshot("binance_usdm"), snapshot("bybit"))
    seeded.scores = [
        pressure(venue, symbol, 10.0 * (i + 1), State.BUILDING)
        for i, (venue, symbol) in enumerate(GOOD_INSTRUMENTS)
    ]
    await store_pressure(client, *seeded.scores)
    now = now_ms()
    seeded.transitions = [
        Transition(
            venue=venue,
            symbol=symbol,
            asset=_asset(symbol),
            from_state=State.CALM,
            to_state=State.BUILDING,
            side=Side.LONG,
            score=40.0 + i,
            ts_ms=now - 1000 + i,
            reasons=["OI +2% in 5m"],
            scope=Scope.INSTRUMENT,
            forced_share=None,
            data_quality=1.0,
            features={"oi_change_base_pct": 2.0},
        )
        for i, (venue, symbol) in enumerate(GOOD_INSTRUMENTS)
    ]
    for t in seeded.transitions:
        await client.xadd(keys.TRANSITIONS, {"e": encode_detector(t)})
    for scope, asset in ((Scope.ASSET, "BTC"), (Scope.MARKET, ANY)):
        t = Transition(
            venue=ANY,
            symbol=ANY,
            asset=asset,
            from_state=State.CALM,
            to_state=State.UNWINDING,
            side=Side.LONG,
            score=61.0,
            ts_ms=now,
            scope=scope,
        )
        await client.xadd(keys.transitions(scope.value), {"e": encode_detector(t)})
    alert = Alert(
        id=ALERT_ID,
        fingerprint=ALERT_ID[:16],
        rule="cascade",
        scope="asset",
        key="BTC",
        venue=None,
        symbol=None,
        asset="BTC",
        state=State.CASCADE,
        peak_state=State.CASCADE,
        side=Side.LONG,
        score=91.5,
        reasons=["longs liquidated"],
        opened_ms=now - 60_000,
        updated_ms=now,
        receivers=["ops"],
        changes=[
            Change(kind=EventKind.OPENED, ts_ms=now - 60_000, state=State.CASCADE, score=91.5)
        ],
    )
    await client.set(keys.alert(alert.id), encode_alert(alert))
    await client.zadd(keys.ALERTS_INDEX, {alert.id: alert.opened_ms})
    await client.sadd(keys.RECEIVERS, "ops")
    await client.hset(
        keys.receiver("ops"),
        mapping={
            "kind": "generic",
            "host": "hooks.example",
            "status": "active",
            "delivered_total": "3",
            "failures_total": "1",
            "dropped_total": "0",
            "last_delivered_ms": str(now),
        },
    )
    return seeded


async def _poison_liquidations(client: aioredis.Redis) -> None:
    key = keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION)
    other = encode(liquidation("bybit", "ETHUSDT", price=5.0))
    negative = json.loads(encode(liquidation("binance_usdm", "BTCUSDT", price=7.0)))
    negative["quantity"] = -3.0
    for fields in (
        {"e": null_price_liquidation("binance_usdm", "BTCUSDT")},
        {"e": b"{not json"},
        {"x": b"no e field"},
        {"e": json.dumps(negative).encode()},
        {"e": encode(funding("binance_usdm", "BTCUSDT", 0.01))},
        {"e": other},
        {"e": b"\xff\xfe"},
        {"e": b'{"type":"liquidation","venue":"binance_usdm","symbol":"BTCUSDT"}'},
    ):
        sid = await client.xadd(key, fields)  # type: ignore[arg-type]
        await index_liquidation(client, "binance_usdm", "BTCUSDT", sid)


async def seed_poison(client: aioredis.Redis) -> None:
    """Poisoned entries of every kind (the liquidation streams get theirs from
    :func:`seed_realistic`, between its batches)."""
    # The case: a latest hash holding a null-price liquidation spoiled every request
    # that read it (/v1/assets/ETH included).
    latest = keys.latest("binance_usdm", "BTCUSDT")
    await client.hset(latest, "liquidation", null_price_liquidation("binance_usdm", "BTCUSDT"))
    await client.hset(latest, "bogus", b"{}")
    far = json.loads(encode(funding("bybit", "ETHUSDT", 0.0001)))
    far["ts_ms"] = 10**17  # year 3 million: no RFC 3339 for it
    await client.hset(keys.latest("bybit", "ETHUSDT"), "funding", json.dumps(far))
    await client.hset(
        keys.latest("binance_usdm", "ETHUSDT"),
        "open_interest",
        encode(mark("binance_usdm", "ETHUSDT", 1.0)),
    )  # a mark: wrong field
    # An instrument whose keys all have the wrong Redis type.
    await client.sadd(keys.INSTRUMENTS, keys.instrument_id("okx", "XRPUSDT"))
    await client.set(keys.latest("okx", "XRPUSDT"), b"a string")
    await client.hset(keys.events("okx", "XRPUSDT", Kind.LIQUIDATION), "a", "hash")
    await index_liquidation(client, "okx", "XRPUSDT", f"{now_ms()}-0")
    await client.rpush(keys.pressure("okx", "XRPUSDT"), b"a list")
    await client.sadd(keys.INSTRUMENTS, "no-separator", b"\xff|\xfe")
    # A pressure score out of range, and another instrument's score.
    await client.set(
        keys.pressure("bybit", "SOLUSDT"), encode_detector(pressure("bybit", "SOLUSDT", 250.0))
    )
    await client.set(
        keys.pressure("binance_usdm", "SOLUSDT"), encode_detector(pressure("okx", "SOLUSDT", 20.0))
    )
    await client.sadd(keys.INSTRUMENTS, "bybit|SOLUSDT", "binance_usdm|SOLUSDT")
    # Venues: garbage health, a health key of the wrong type, a name that is not UTF-8.
    await client.sadd(keys.VENUES, "gateio", "bitget", b"\xff")
    await client.set(keys.health("gateio"), b"{garbage")
    await client.hset(keys.health("bitget"), "snapshot", b"{}")
    # Transitions: garbage, no field, a score out of range, a time before 1970.
    bad = json.loads(
        encode_detector(
            Transition(
                venue="bybit",
                symbol="BTCUSDT",
                asset="BTC",
                from_state=State.CALM,
                to_state=State.CASCADE,
                side=None,
                score=500.0,
                ts_ms=now_ms(),
            )
        )
    )
    for fields in (
        {"e": b"garbage"},
        {"x": b"1"},
        {"e": json.dumps(bad)},
        {"e": json.dumps({**bad, "score": 50.0, "ts_ms": -5})},
    ):
        await client.xadd(keys.TRANSITIONS, fields)  # type: ignore[arg-type]
    # Alerts: garbage, a key of the wrong type, an unknown scope; receivers likewise.
    now = now_ms()
    await client.set(keys.alert("badbadbadbadbad0-1"), b"{garbage")
    await client.hset(keys.alert("badbadbadbadbad1-2"), "a", "b")
    weird = json.loads(await client.get(keys.alert(ALERT_ID)) or b"{}")
    weird.update(id="badbadbadbadbad2-3", scope="weird")
    await client.set(keys.alert("badbadbadbadbad2-3"), json.dumps(weird))
    await client.zadd(
        keys.ALERTS_INDEX,
        {
            "badbadbadbadbad0-1": now,
            "badbadbadbadbad1-2": now,
            "badbadbadbadbad2-3": now,
            b"\xff\xfe": now,
        },
    )
    await client.sadd(keys.RECEIVERS, "broken", "wrongtype", b"\xff")
    await client.hset(keys.receiver("broken"), mapping={"delivered_total": "abc"})
    await client.set(keys.receiver("wrongtype"), b"a string")
