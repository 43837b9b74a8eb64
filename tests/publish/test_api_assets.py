"""``GET /v1/assets`` and ``GET /v1/assets/{asset}``: BTC summed across venues and contracts."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis
from publish_support import (
    book_depth,
    book_top,
    funding,
    liquidation,
    now_ms,
    open_interest,
    pressure,
    snapshot,
    store_events,
    store_health,
    store_pressure,
)

from service.events import Side


async def _btc_on_three_venues(redis: aioredis.Redis) -> None:
    now = now_ms()
    await store_health(
        redis,
        snapshot("binance_usdm"),
        snapshot("bybit"),
        snapshot("okx", connected=False, last_message_ms=now - 600_000),  # stale
    )
    await store_events(
        redis,
        [
            open_interest("binance_usdm", "BTCUSDT", 6e9),
            funding("binance_usdm", "BTCUSDT", 0.0008, interval_h=8.0),  # 1e-4 per hour
            open_interest("bybit", "BTCUSD", 2e9),  # an inverse contract, already in USD
            funding("bybit", "BTCUSD", 0.0002, interval_h=1.0),  # 2e-4 per hour
            book_top("bybit", "BTCUSD", 99_999.0, 100_001.0, bid_base=2.0, ask_base=1.0),
            open_interest("okx", "BTCUSDT", 5e9),
            funding("okx", "BTCUSDT", 0.01, interval_h=8.0),
            open_interest("binance_usdm", "ETHUSDT", 3e9),
            liquidation("binance_usdm", "BTCUSDT", price=100_000, quantity=2, sampled=True),
            liquidation("bybit", "BTCUSD", side=Side.SHORT, price=100_000, quantity=0.5),
            liquidation("bybit", "BTCUSD", price=100_000, quantity=1),
            liquidation("okx", "BTCUSDT", price=100_000, quantity=3, sampled=True),
        ],
    )


async def test_btc_sums_fresh_venues_and_weights_funding_by_open_interest(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await _btc_on_three_venues(redis)
    r = await client.get("/v1/assets/btc")
    assert r.status_code == 200
    btc = r.json()
    assert btc["asset"] == "BTC"
    assert btc["venues"] == ["binance_usdm", "bybit", "okx"]
    assert btc["stale_venues"] == ["okx"]
    assert btc["oi_usd"] == pytest.approx(6e9 + 2e9)  # okx is stale: not summed at an old value
    assert btc["funding_rate_1h"] == pytest.approx((1e-4 * 6e9 + 2e-4 * 2e9) / 8e9)
    assert btc["funding_rate_annualized"] == pytest.approx(btc["funding_rate_1h"] * 8760)
    # Liquidations within the window are counted from every venue, stale ones included.
    assert btc["liq_long_usd"] == pytest.approx(200_000 + 100_000 + 300_000)
    assert btc["liq_short_usd"] == pytest.approx(50_000)
    assert btc["liq_count"] == 4
    assert btc["sampled_venues"] == ["binance_usdm", "okx"]
    assert [i["symbol"] for i in btc["instruments"]] == ["BTCUSDT", "BTCUSDT", "BTCUSD"]
    bybit = btc["instruments"][2]  # its ticker carries the book; Binance's and OKX's do not
    assert bybit["spread_bp"] == pytest.approx(2 / 100_000 * 1e4)
    assert bybit["book_top_usd"] == pytest.approx(2 * 99_999 + 100_001)
    assert btc["instruments"][0]["spread_bp"] is None


async def test_assets_list_largest_open_interest_first_and_unknown_asset_is_404(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await _btc_on_three_venues(redis)
    items = (await client.get("/v1/assets")).json()["items"]
    assert [a["asset"] for a in items] == ["BTC", "ETH"]
    r = await client.get("/v1/assets/DOGE")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("window", ["59", "86401", "soon"])
async def test_a_window_out_of_range_is_a_422_naming_it(
    client: httpx.AsyncClient, window: str
) -> None:
    r = await client.get("/v1/assets", params={"window_s": window})
    assert r.status_code == 422
    assert r.json()["errors"][0]["name"] == "window_s"


async def test_asset_instruments_carry_depth_within_1pct_and_fragility(
    client: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    await _btc_on_three_venues(redis)
    # Bybit's BTCUSD book: 3e6 within 0.5 % of mid on each side, twice that within 1 %,
    # its levels reaching 2.5 % (complete); Binance's book is not followed
    await store_events(redis, [book_depth("bybit", "BTCUSD", 100_000.0, 3e6, reach_pct=2.5)])
    thin = {"depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "fragile": 1.0}
    await store_pressure(
        redis,
        pressure("bybit", "BTCUSD", 55.0, asset="BTC", features=thin),
        pressure("binance_usdm", "BTCUSDT", 20.0, features={"fragile": 0.0}),
        pressure("binance_usdm", "ETHUSDT", 20.0, features={"fragile": 1.0}),
    )
    for path in ("/v1/assets/btc", "/v1/assets/btc?window_s=600"):  # kept and read anew
        btc = (await client.get(path)).json()
        by = {(i["venue"], i["symbol"]): i for i in btc["instruments"]}
        bybit = by[("bybit", "BTCUSD")]
        assert {k: v for k, v in bybit.items() if "1pct" in k or k == "fragile"} == {
            "depth_1pct_usd": 2 * 3e6 + 2 * 3e6, "depth_1pct_exact": True,
            "depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "fragile": True,
        }, path  # fmt: skip
        binance = by[("binance_usdm", "BTCUSDT")]
        assert (binance["depth_1pct_usd"], binance["fragile"]) == (None, False)
        assert by[("okx", "BTCUSDT")]["fragile"] is None  # no score
        assert btc["fragile_instruments"] == 1  # ETH's fragile instrument is not BTC's
    items = {a["asset"]: a for a in (await client.get("/v1/assets")).json()["items"]}
    assert (items["BTC"]["fragile_instruments"], items["ETH"]["fragile_instruments"]) == (1, 1)
