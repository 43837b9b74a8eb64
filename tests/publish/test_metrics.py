"""``/metrics``: the collector's families and values, cardinality folding, promtool's lint."""

from __future__ import annotations

import asyncio
import platform
import shutil
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from publish_support import (
    MemorySource,
    book_depth,
    book_top,
    funding,
    mark,
    open_interest,
    pressure,
    snapshot,
)
from waits import Turns

from service.config import MetricsSettings, Settings
from service.events import Side
from service.publish.api import create_app
from service.publish.api.routes import metrics as metrics_route
from service.publish.build import VERSION
from service.publish.metrics import SPECS, MetricsCollector
from service.scores import State

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


ETH_VOLUME = {"volume_1m_buy_usd": 4.2e6, "volume_1m_sell_usd": 6.9e6, "volume_z": -2.4}


def _source() -> MemorySource:
    src = MemorySource(
        snapshots=[
            snapshot(
                "binance_usdm",
                last_message_ms=1_700_000_000_250,
                last_event_ms=None,
                delay_ms=1_250,
                liquidation_delay_ms=40,
            ),
            snapshot("bybit", connected=False, parse_errors={"bad_json": 2, "unknown": 1}),
        ],
        scores=[
            pressure("binance_usdm", "BTCUSDT", 72.5, State.CASCADE, data_quality=0.5),
            pressure("binance_usdm", "DOGEUSDT", 10.0, features={"volume_1m_buy_usd": 1.0}),
            pressure("binance_usdm", "ETHUSDT", 5.0, features=ETH_VOLUME),
        ],
        totals={
            ("binance_usdm", "BTCUSDT", Side.LONG): (3, 3000.0),
            ("binance_usdm", "ETHUSDT", Side.LONG): (2, 500.0),
            ("binance_usdm", "DOGEUSDT", Side.LONG): (5, 50.0),
            ("binance_usdm", "SOLUSDT", Side.SHORT): (1, 10.0),
        },
        stats={
            "written_events": 1234,
            "written_batches": 56,
            "write_failures": 1,
            "pending": 7,
            "oldest_pending_s": 2.5,
        },
    )
    src.add(
        funding("binance_usdm", "BTCUSDT", 0.0001, 8.0, next_ms=1_700_000_028_800_000),
        open_interest("binance_usdm", "BTCUSDT", 8e9, price=100_000.0),
        mark("binance_usdm", "BTCUSDT", 100_000.0, 99_990.0),
        book_top("binance_usdm", "BTCUSDT", 99_999.0, 100_001.0, bid_base=2.0, ask_base=0.5),
        open_interest("binance_usdm", "ETHUSDT", 2e9, price=2000.0),
        open_interest("binance_usdm", "SOLUSDT", 1e9, price=100.0),
        open_interest("binance_usdm", "DOGEUSDT", 1e8, price=0.1),
        mark("binance_usdm", "DOGEUSDT", 0.1),
    )
    return src


@pytest.fixture
def source() -> MemorySource:
    return _source()


@pytest.fixture
def registry(source: MemorySource) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=3)))
    return registry


@pytest.fixture
async def metrics_client(
    settings: Settings, redis: aioredis.Redis, registry: CollectorRegistry
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, redis=redis, metrics_registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def _samples(text: str) -> tuple[dict[str, str], Samples]:
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_metrics_carry_the_expected_values(metrics_client: httpx.AsyncClient) -> None:
    r = await metrics_client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    types, s = _samples(r.text)
    b, btc = {"venue": "binance_usdm"}, {"venue": "binance_usdm", "symbol": "BTCUSDT"}
    assert _value(s, "deleverage_feed_connected", **b) == 1
    assert _value(s, "deleverage_feed_connected", venue="bybit") == 0
    assert _value(s, "deleverage_feed_messages_total", **b) == 1000
    assert _value(s, "deleverage_feed_events_total", **b) == 500
    assert _value(s, "deleverage_feed_reconnects_total", **b) == 2
    assert _value(s, "deleverage_feed_parse_errors_total", venue="bybit", reason="unknown") == 1
    assert _value(s, "deleverage_feed_last_message_timestamp_seconds", **b) == 1_700_000_000.25
    assert _value(s, "deleverage_feed_last_event_timestamp_seconds", **b) is None
    assert _value(s, "deleverage_feed_delay_seconds", **b, channel="state") == 1.25
    assert _value(s, "deleverage_feed_delay_seconds", **b, channel="liquidation") == 0.04
    assert _value(s, "deleverage_feed_delay_seconds", venue="bybit", channel="state") is None
    assert _value(s, "deleverage_feed_oi_polls_total", **b) == 40
    assert _value(s, "deleverage_feed_oi_poll_failures_total", **b) == 1
    assert _value(s, "deleverage_feed_instruments", **b) == 300
    assert _value(s, "deleverage_funding_rate", **btc) == 0.0001
    assert _value(s, "deleverage_funding_rate_per_hour", **btc) == 0.0000125
    assert _value(s, "deleverage_funding_interval_seconds", **btc) == 28_800
    assert _value(s, "deleverage_funding_next_timestamp_seconds", **btc) == 1_700_000_028_800
    assert _value(s, "deleverage_open_interest_usd", **btc) == 8e9
    assert _value(s, "deleverage_open_interest_base", **btc) == 80_000
    assert _value(s, "deleverage_mark_price", **btc) == 100_000
    assert _value(s, "deleverage_index_price", **btc) == 99_990
    assert _value(s, "deleverage_book_spread_ratio", **btc) == pytest.approx(2 / 100_000)
    assert _value(s, "deleverage_book_top_usd", **btc, side="bid") == 199_998
    assert _value(s, "deleverage_book_top_usd", **btc, side="ask") == 50_000.5
    eth = {"venue": "binance_usdm", "symbol": "ETHUSDT"}
    assert _value(s, "deleverage_volume_1m_usd", **eth, side="buy") == 4.2e6
    assert _value(s, "deleverage_volume_1m_usd", **eth, side="sell") == 6.9e6
    assert _value(s, "deleverage_volume_1m_usd", **btc, side="buy") is None  # no volume figure
    doge = {"venue": "binance_usdm", "symbol": "DOGEUSDT"}  # 4th by OI of a top 3: folded
    assert _value(s, "deleverage_volume_1m_usd", **doge, side="buy") is None
    assert _value(s, "deleverage_pressure_score", **btc) == 72.5
    assert _value(s, "deleverage_pressure_data_quality_ratio", **btc) == 0.5
    for state in State:
        expected = 1 if state == State.CASCADE else 0
        assert _value(s, "deleverage_pressure_state", **btc, state=state.value) == expected
    assert _value(s, "deleverage_liquidations_total", **btc, side="long") == 3
    assert _value(s, "deleverage_liquidated_notional_usd_total", **btc, side="long") == 3000
    assert _value(s, "deleverage_store_events_written_total") == 1234
    assert _value(s, "deleverage_store_batches_written_total") == 56
    assert _value(s, "deleverage_store_write_failures_total") == 1
    assert _value(s, "deleverage_store_pending_events") == 7
    assert _value(s, "deleverage_store_oldest_pending_seconds") == 2.5
    assert (
        _value(s, "deleverage_build_info", version=VERSION, python=platform.python_version()) == 1
    )
    assert types["deleverage_liquidations"] == "counter"
    assert types["deleverage_pressure_score"] == "gauge"


async def test_symbols_beyond_the_top_by_open_interest_fold_into_other(
    metrics_client: httpx.AsyncClient,
) -> None:
    _, s = _samples((await metrics_client.get("/metrics")).text)
    # Top 3 by OI USD: BTC, ETH, SOL. DOGE's counters go to "other"; its gauges are omitted.
    symbols = {dict(labels).get("symbol") for (_, labels) in s}
    assert "DOGEUSDT" not in symbols
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "other"} <= symbols
    other = {"venue": "binance_usdm", "symbol": "other"}
    assert _value(s, "deleverage_liquidations_total", **other, side="long") == 5
    assert _value(s, "deleverage_liquidated_notional_usd_total", **other, side="long") == 50
    assert _value(s, "deleverage_liquidations_total", **other, side="short") == 0
    assert _value(s, "deleverage_liquidations_total", venue="binance_usdm",
                  symbol="SOLUSDT", side="short") == 1  # fmt: skip


def test_an_allowlist_overrides_the_top_n(source: MemorySource) -> None:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(symbols=["DOGEUSDT"])))
    get = registry.get_sample_value
    doge = {"venue": "binance_usdm", "symbol": "DOGEUSDT"}
    assert get("deleverage_pressure_score", doge) == 10
    assert get("deleverage_pressure_score", {"venue": "binance_usdm", "symbol": "BTCUSDT"}) is None
    assert get("deleverage_open_interest_usd", doge) == 1e8
    other = {"venue": "binance_usdm", "symbol": "other", "side": "long"}
    assert get("deleverage_liquidations_total", other) == 3 + 2
    assert get("deleverage_liquidations_total", {**doge, "side": "long"}) == 5


def test_book_depth_is_exported_by_side_and_band_for_the_selected_symbols(
    source: MemorySource,
) -> None:
    source.add(book_depth("binance_usdm", "BTCUSDT", 100_000.0, 2e6, reach_pct=0.8))
    source.add(book_depth("binance_usdm", "SOLUSDT", 100.0, 1e5, reach_pct=3.0))
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=1)))
    get = registry.get_sample_value
    btc = {"venue": "binance_usdm", "symbol": "BTCUSDT"}
    for side in ("bid", "ask"):
        assert get("deleverage_book_depth_usd", {**btc, "side": side, "band": "0.005"}) == 2e6
        assert get("deleverage_book_depth_usd", {**btc, "side": side, "band": "0.01"}) == 4e6
        assert get("deleverage_book_depth_usd", {**btc, "side": side, "band": "0.02"}) == 6e6
        assert get("deleverage_book_depth_reach_ratio", {**btc, "side": side}) == 0.008
    sol = {"venue": "binance_usdm", "symbol": "SOLUSDT", "side": "bid"}
    assert get("deleverage_book_depth_reach_ratio", sol) is None  # not selected: no series


def test_fragility_and_the_depth_change_are_exported_for_the_selected_symbols(
    source: MemorySource,
) -> None:
    """``fragile`` (0/1) and the 15-minute change of the depth within 1 % (in %, as a ratio)
    for the selected symbols; per asset, the instruments called fragile, selected or not."""
    thin = {"depth_1pct_change_pct": -45.0, "depth_1pct_z": -7.2, "fragile": 1.0}
    source.scores = [
        pressure("binance_usdm", "BTCUSDT", 40.0, State.BUILDING, features=thin),
        pressure("binance_usdm", "ETHUSDT", 5.0, features={"fragile": 0.0}),
        pressure("binance_usdm", "DOGEUSDT", 5.0, features={"fragile": 1.0}),  # not selected
        pressure("bybit", "BTCUSD", 5.0, features={"fragile": 1.0}),  # no events: not selected
    ]
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=2)))
    get = registry.get_sample_value
    btc = {"venue": "binance_usdm", "symbol": "BTCUSDT"}
    eth = {"venue": "binance_usdm", "symbol": "ETHUSDT"}
    assert get("deleverage_pressure_fragile", btc) == 1.0
    assert get("deleverage_pressure_fragile", eth) == 0.0
    assert get("deleverage_pressure_depth_change_ratio", btc) == pytest.approx(-0.45)
    assert get("deleverage_pressure_depth_change_ratio", eth) is None  # no depth followed
    doge = {"venue": "binance_usdm", "symbol": "DOGEUSDT"}
    assert get("deleverage_pressure_fragile", doge) is None  # beyond the top 2 by OI
    # BTC: Binance's BTCUSDT and Bybit's BTCUSD (counted though without series of its own)
    assert get("deleverage_asset_fragile_instruments", {"asset": "BTC"}) == 2
    assert get("deleverage_asset_fragile_instruments", {"asset": "ETH"}) == 0  # a series at 0
    assert get("deleverage_asset_fragile_instruments", {"asset": "DOGE"}) == 1
    assert get("deleverage_asset_fragile_instruments", {"asset": "SOL"}) == 0


def test_other_stays_monotonic_when_the_selection_changes(source: MemorySource) -> None:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=1)))
    scrape = registry.get_sample_value  # every call is a scrape
    other = {"venue": "binance_usdm", "symbol": "other", "side": "long"}
    eth = {"venue": "binance_usdm", "symbol": "ETHUSDT", "side": "long"}
    btc = {"venue": "binance_usdm", "symbol": "BTCUSDT", "side": "long"}
    assert scrape("deleverage_liquidations_total", other) == 2 + 5  # ETH and DOGE folded
    assert scrape("deleverage_liquidations_total", btc) == 3
    # ETH's open interest overtakes BTC's by more than the swap factor; both liquidate more.
    source.add(open_interest("binance_usdm", "ETHUSDT", 1.1e10, price=2000.0))
    source.totals[("binance_usdm", "ETHUSDT", Side.LONG)] = (4, 800.0)
    source.totals[("binance_usdm", "BTCUSDT", Side.LONG)] = (6, 3300.0)
    assert scrape("deleverage_liquidations_total", eth) == 4
    assert scrape("deleverage_liquidations_total", btc) is None
    # "other" keeps ETH's 4 and DOGE's 5, and gains BTC's 3 that its own series never showed.
    assert scrape("deleverage_liquidations_total", other) == 4 + 5 + 3
    assert scrape("deleverage_liquidated_notional_usd_total", other) == 800 + 50 + 300
    # BTC back on top: "other" keeps BTC's new one, ETH's own series had all of ETH's.
    source.add(open_interest("binance_usdm", "BTCUSDT", 2e10, price=100_000.0))
    source.totals[("binance_usdm", "BTCUSDT", Side.LONG)] = (7, 3400.0)
    assert scrape("deleverage_liquidations_total", btc) == 7
    assert scrape("deleverage_liquidations_total", other) == 13
    assert scrape("deleverage_liquidations_total", other) == 13  # nothing new, nothing moves


def test_the_top_n_does_not_flap_near_the_cut(source: MemorySource) -> None:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=1)))
    btc = {"venue": "binance_usdm", "symbol": "BTCUSDT"}
    eth = {"venue": "binance_usdm", "symbol": "ETHUSDT"}
    assert registry.get_sample_value("deleverage_open_interest_usd", btc) == 8e9
    source.add(open_interest("binance_usdm", "ETHUSDT", 9e9, price=2000.0))  # ahead, not by 25 %
    assert registry.get_sample_value("deleverage_open_interest_usd", btc) == 8e9
    assert registry.get_sample_value("deleverage_open_interest_usd", eth) is None
    source.add(open_interest("binance_usdm", "ETHUSDT", 1e10 + 1, price=2000.0))
    assert registry.get_sample_value("deleverage_open_interest_usd", btc) is None
    assert registry.get_sample_value("deleverage_open_interest_usd", eth) == 1e10 + 1


def test_registration_does_not_read_the_source() -> None:
    class Exploding(MemorySource):
        def health(self) -> list:  # type: ignore[type-arg]
            raise AssertionError("read at registration")

    registry = CollectorRegistry()
    registry.register(MetricsCollector(Exploding(), MetricsSettings()))


def test_every_metric_name_follows_the_conventions() -> None:
    for spec in SPECS:
        assert spec.name.startswith("deleverage_")
        assert spec.name.endswith("_total") == (spec.type == "counter"), spec.name
        assert "type" not in spec.labels


async def test_openmetrics_is_served_when_asked_for(metrics_client: httpx.AsyncClient) -> None:
    r = await metrics_client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.endswith("# EOF\n")


async def test_no_registry_no_metrics_route(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 404


async def test_promtool_finds_no_problem(metrics_client: httpx.AsyncClient) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (apt-get install prometheus)")
    text = (await metrics_client.get("/metrics")).text
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
    )
    output, _ = await asyncio.wait_for(proc.communicate(text.encode()), timeout=30)
    assert (proc.returncode, output.decode()) == (0, "")


def test_the_asset_view_sums_venues_and_weights_funding() -> None:
    src = MemorySource(
        snapshots=[snapshot("binance_usdm"), snapshot("bybit")],
        totals={
            ("binance_usdm", "BTCUSDT", Side.LONG): (3, 3000.0),
            ("bybit", "BTCUSD", Side.LONG): (1, 1000.0),
            ("bybit", "BTCUSD", Side.SHORT): (2, 500.0),
        },
    )
    src.add(
        open_interest("binance_usdm", "BTCUSDT", 6e9),
        funding("binance_usdm", "BTCUSDT", 0.0008, 8.0),
        open_interest("bybit", "BTCUSD", 2e9),
        funding("bybit", "BTCUSD", 0.0002, 1.0),
    )
    registry = CollectorRegistry()
    registry.register(MetricsCollector(src, MetricsSettings()))
    assert registry.get_sample_value("deleverage_asset_open_interest_usd", {"asset": "BTC"}) == 8e9
    assert registry.get_sample_value(
        "deleverage_asset_funding_rate_per_hour", {"asset": "BTC"}
    ) == pytest.approx((1e-4 * 6e9 + 2e-4 * 2e9) / 8e9)
    long_total = registry.get_sample_value(
        "deleverage_asset_liquidated_notional_usd_total", {"asset": "BTC", "side": "long"}
    )
    assert long_total == 4000.0
    assert registry.get_sample_value("deleverage_asset_stale_venues", {"asset": "BTC"}) == 0


def _fresh_registry(source: MemorySource) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings(max_symbols_per_venue=3)))
    return registry


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
async def test_a_render_in_slices_is_the_exposition_in_one_go(
    source: MemorySource, monkeypatch: pytest.MonkeyPatch, accept: str
) -> None:
    """A slice shorter than anything: a pause after every metric, the other tasks run
    meanwhile, and the bytes are the encoder's (one ``# EOF`` at the end in OpenMetrics)."""
    encoder, _ = choose_encoder(accept)
    whole = encoder(_fresh_registry(source))
    monkeypatch.setattr(metrics_route, "SLICE_S", 0.0)
    async with Turns() as turns:
        sliced = await metrics_route.render(_fresh_registry(source), encoder)
    assert sliced == whole
    assert turns.count >= len(SPECS)
    assert sliced.count(b"# EOF") == (1 if accept else 0)


def test_each_family_is_complete_when_it_is_yielded(source: MemorySource) -> None:
    """The collector yields a family once what fills it is built: none gains a sample after
    it was handed out (a render pauses between two)."""
    collector = MetricsCollector(source, MetricsSettings(max_symbols_per_venue=3))
    seen = [(m, len(m.samples)) for m in collector.collect()]
    assert [(m.name, n) for m, n in seen] == [(m.name, len(m.samples)) for m, _ in seen]
    assert sum(n for _, n in seen) > len(SPECS)  # (the families hold samples)


async def test_scrapes_during_a_render_share_it(
    settings: Settings, redis: aioredis.Redis, source: MemorySource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five scrapes at once while the render pauses after every metric: one render, its
    bytes to each."""
    monkeypatch.setattr(metrics_route, "SLICE_S", 0.0)
    api = settings.api.model_copy(update={"snapshot_s": 60.0})
    settings = settings.model_copy(update={"api": api})
    collector = MetricsCollector(source, MetricsSettings(max_symbols_per_venue=3))
    collects = 0

    class Counting(Collector):
        def collect(self) -> Iterator[Metric]:
            nonlocal collects
            collects += 1
            yield from collector.collect()

    registry = CollectorRegistry()
    registry.register(Counting())
    app = create_app(settings, redis=redis, metrics_registry=registry)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            answers = await asyncio.gather(*(c.get("/metrics") for _ in range(5)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert collects == 1
