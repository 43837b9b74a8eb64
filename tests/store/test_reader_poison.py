"""Readers against poisoned entries: the good ones are read, the others skipped and counted;
the detector's hand-off keeps a batch's good events; a page cut short by the refill budget
still skips nothing."""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from structlog.testing import capture_logs

from service.events import Kind, Liquidation, Side, encode
from service.store import keys, pages, poison, reader

NOW = 1_800_000_000_000


def _liq(symbol: str, price: float, venue: str = "binance_usdm") -> Liquidation:
    return Liquidation(
        venue=venue, symbol=symbol, base="BTC", ts_ms=NOW, recv_ms=NOW, side=Side.LONG,
        price=price, quantity=1.0, quantity_base=1.0, notional_usd=price, sampled=False,
    )  # fmt: skip


def _null_price(symbol: str) -> bytes:
    raw = json.loads(encode(_liq(symbol, 1.0)))
    raw["price"] = None
    return json.dumps(raw).encode()


async def test_a_refill_budget_shortens_pages_but_never_skips(
    redis_client: aioredis.Redis,
) -> None:
    # Good entries separated by long runs of poison, on one of two instruments.
    good: list[float] = []
    ms = NOW
    for run in range(4):
        for i in range(3):
            ms += 1
            price = float(run * 10 + i + 1)
            good.append(price)
            await redis_client.xadd(
                keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION),
                {"e": encode(_liq("BTCUSDT", price))}, id=f"{ms}-0",
            )  # fmt: skip
        for _ in range(25):
            ms += 1
            await redis_client.xadd(
                keys.events("binance_usdm", "BTCUSDT", Kind.LIQUIDATION),
                {"e": _null_price("BTCUSDT")}, id=f"{ms}-0",
            )  # fmt: skip
    await redis_client.xadd(
        keys.events("bybit", "ETHUSDT", Kind.LIQUIDATION),
        {"e": encode(_liq("ETHUSDT", 1000.0, venue="bybit"))}, id=f"{NOW}-0",
    )  # fmt: skip
    pairs = [("binance_usdm", "BTCUSDT"), ("bybit", "ETHUSDT")]
    before = poison.counts().get(("liquidation", "undecodable"), 0)
    seen: list[float] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(100):
        page = await pages.liquidations(
            redis_client, pairs, since_ms=None, until_ms=None, limit=2, cursor=cursor,
            max_refill=5,
        )  # fmt: skip
        seen += [e.price for e in page.items]
        sizes.append(len(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [*sorted(good, reverse=True), 1000.0]
    assert 0 in sizes[:-1], "the budget should have cut some page short"
    assert poison.counts()[("liquidation", "undecodable")] >= before + 100


async def test_the_handoff_keeps_a_batchs_good_events(redis_client: aioredis.Redis) -> None:
    good = _liq("BTCUSDT", 10.0)
    batch = b"[" + encode(good) + b"," + _null_price("BTCUSDT") + b"]"
    await redis_client.xadd(keys.handoff("binance_usdm"), {"e": batch}, id="1-0")
    await redis_client.xadd(keys.handoff("binance_usdm"), {"e": b"garbage"}, id="2-0")
    await redis_client.xadd(keys.handoff("binance_usdm"), {"e": encode([good])}, id="3-0")
    await redis_client.set(keys.handoff("okx"), b"a string, not a stream")
    before = poison.counts()
    got = await reader.read_handoff(redis_client, {"binance_usdm": "0-0", "okx": "0-0"}, 10)
    assert got == [
        ("binance_usdm", "1-0", [good]),
        ("binance_usdm", "2-0", []),
        ("binance_usdm", "3-0", [good]),
    ]
    after = poison.counts()
    for what_reason, n in ((("handoff", "undecodable"), 2), (("handoff", "wrong_type"), 1)):
        assert after[what_reason] == before.get(what_reason, 0) + n


async def test_latest_keeps_the_usable_kinds(redis_client: aioredis.Redis) -> None:
    key = keys.latest("binance_usdm", "BTCUSDT")
    good = _liq("BTCUSDT", 5.0)
    await redis_client.hset(key, mapping={
        "liquidation": encode(good), "mark": _null_price("BTCUSDT"), "funding": encode(good),
        "bogus": b"{}", b"\xff": b"{}",
    })  # fmt: skip
    await redis_client.set(keys.latest("okx", "X"), b"a string")
    got = await reader.latest(redis_client, [("binance_usdm", "BTCUSDT"), ("okx", "X")])
    assert got == {("binance_usdm", "BTCUSDT"): {Kind.LIQUIDATION: good}, ("okx", "X"): {}}


def test_each_kind_is_logged_once_and_always_counted() -> None:
    counter = poison.PoisonCounter()
    with capture_logs() as logs:
        for _ in range(3):
            counter.record("pressure", poison.Reason.UNDECODABLE, "k1", b"{not json")
        counter.record("pressure", poison.Reason.INVALID, "k2", "score 250.0 is outside 0-100")
    assert counter.counts() == {("pressure", "undecodable"): 3, ("pressure", "invalid"): 1}
    assert [(e["what"], e["reason"], e["key"]) for e in logs] == [
        ("pressure", "undecodable", "k1"),
        ("pressure", "invalid", "k2"),
    ]
    assert all(e["log_level"] == "warning" for e in logs)
