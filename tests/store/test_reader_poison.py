"""Readers against poisoned entries: the good ones are read, the others skipped and counted;
the detector's hand-off keeps a batch's good events; a page cut short by the refill budget
still skips nothing; the checks' inline fast path answers what the named checks answer."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from service.events import (
    BookDepth,
    BookTop,
    FundingRate,
    Kind,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
    encode,
)
from service.scores import Pressure, State
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


def _events_at_the_edges() -> list[Any]:
    """Every kind of event with each checked value in and out of range (negative, NaN,
    ``None`` where allowed, times before 1970 and after 9999)."""
    good = {"venue": "okx", "symbol": "BTC-USDT-SWAP", "base": "BTC", "ts_ms": NOW, "recv_ms": NOW}
    kinds: list[tuple[type[Any], dict[str, Any]]] = [
        (MarkPrice, {"mark_price": 1.0, "index_price": 1.0}),
        (BookTop, {"bid_price": 1.0, "ask_price": 1.1, "bid_base": 2.0, "ask_base": 3.0,
                   "bid_usd": 2.0, "ask_usd": 3.3, "spread_bp": 950.0}),
        (FundingRate, {"funding_rate": -1e-4, "interval_h": 8.0, "funding_rate_1h": -1.25e-5,
                       "next_funding_ms": NOW}),
        (OpenInterest, {"oi_contracts": 1.0, "oi_base": 1.0, "oi_usd": 1.0}),
        (Liquidation, {"side": Side.LONG, "price": 1.0, "quantity": 1.0, "quantity_base": 1.0,
                       "notional_usd": 1.0, "sampled": False}),
        (Volume, {"taker_buy_base": 1.0, "taker_buy_usd": 2.0, "taker_sell_base": 0.5,
                  "taker_sell_usd": 1.0, "trades": 3}),
        (BookDepth, {"mid": 2.0, "bid_usd_0p5": 1.0, "bid_usd_1": 2.0, "bid_usd_2": 3.0,
                     "ask_usd_0p5": 1.0, "ask_usd_1": 2.0, "ask_usd_2": 3.0,
                     "bid_reach_pct": 5.0, "ask_reach_pct": 5.0}),
    ]  # fmt: skip
    out: list[Any] = []
    for cls, fields in kinds:
        values = {**good, **fields}
        out.append(cls(**values))
        for name, value in values.items():
            if isinstance(value, float):
                tries: list[Any] = [-1.0, -0.0, math.nan, math.inf]
            elif name.endswith("_ms"):
                tries = [-1, 0, poison.MAX_TS_MS, poison.MAX_TS_MS + 1]
            else:
                continue
            if name in ("index_price", "next_funding_ms"):
                tries.append(None)
            out += [cls(**{**values, name: t}) for t in tries]
    return out


@pytest.mark.parametrize("event", _events_at_the_edges(), ids=repr)
def test_the_inline_checks_answer_what_the_named_checks_answer(
    event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = poison.event_problem(event)
    monkeypatch.setattr(poison, "_all_usable", lambda _e: False)
    assert fast == poison.event_problem(event)


@pytest.mark.parametrize(
    ("score", "updated_ms", "since_ms"),
    [(50.0, NOW, NOW), (0.0, 0, 0), (100.0, NOW, NOW), (-0.1, NOW, NOW), (100.1, NOW, NOW),
     (math.nan, NOW, NOW), (50.0, -1, NOW), (50.0, NOW, poison.MAX_TS_MS + 1)],
)  # fmt: skip
def test_a_scores_inline_check_answers_what_the_named_checks_answer(
    score: float, updated_ms: int, since_ms: int
) -> None:
    p = Pressure(venue="okx", symbol="BTC-USDT-SWAP", asset="BTC", score=score,
                 state=State.CALM, side=None, updated_ms=updated_ms, since_ms=since_ms,
                 forced_share=None, data_quality=1.0, features={})  # fmt: skip
    named = poison._score_problem(score) or poison._time_problem(
        updated_ms=updated_ms, since_ms=since_ms
    )
    assert poison.pressure_problem(p) == named
