"""The metrics added for the dashboards: the side and the score's features of each instrument,
and the instrument → asset join. Values from a snapshot, as at a scrape."""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from service.config import MetricsSettings
from service.events import Event, Kind, OpenInterest, Side
from service.health import HealthSnapshot
from service.publish.metrics import MetricsCollector
from service.scores import Pressure, State


class Source:
    def __init__(self, pressures: list[Pressure], latest: dict[tuple[str, str], dict[Kind, Event]]):
        self._pressures, self._latest = pressures, latest

    def health(self) -> list[HealthSnapshot]:
        return []

    def pressures(self) -> list[Pressure]:
        return self._pressures

    def latest(self) -> Mapping[tuple[str, str], Mapping[Kind, Event]]:
        return self._latest

    def liquidation_totals(self) -> Mapping[tuple[str, str, Side], tuple[int, float]]:
        return {}

    def sink_stats(self) -> Mapping[str, float]:
        return {}


def _pressure(symbol: str, state: State, side: Side | None, **features: float | None) -> Pressure:
    now = int(time.time() * 1000)
    return Pressure(
        venue="bybit", symbol=symbol, asset=symbol.removesuffix("USDT"), score=60.0,
        state=state, side=side, updated_ms=now, since_ms=now, forced_share=None,
        data_quality=1.0, features=dict(features),
    )  # fmt: skip


def _oi(symbol: str, oi_usd: float) -> dict[Kind, Event]:
    now = int(time.time() * 1000)
    oi = OpenInterest(
        venue="bybit", symbol=symbol, base=symbol.removesuffix("USDT"), ts_ms=now, recv_ms=now,
        oi_contracts=1.0, oi_base=1.0, oi_usd=oi_usd,
    )  # fmt: skip
    return {Kind.OPEN_INTEREST: oi}


def _registry(source: Source) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(MetricsCollector(source, MetricsSettings()))
    return registry


def test_side_features_and_asset_join_are_exported_in_ratios() -> None:
    registry = _registry(
        Source(
            [
                _pressure(
                    "BTCUSDT",
                    State.CASCADE,
                    Side.LONG,
                    oi_change_base_pct=-3.0,
                    liq_bp_of_oi=25.0,
                    forced_share=0.8,
                    mark_return_pct=-2.0,
                ),
                _pressure("ETHUSDT", State.CALM, None, oi_change_base_pct=0.5, forced_share=None),
            ],
            {("bybit", "BTCUSDT"): _oi("BTCUSDT", 1e9), ("bybit", "ETHUSDT"): _oi("ETHUSDT", 5e8)},
        )
    )
    btc = {"venue": "bybit", "symbol": "BTCUSDT"}
    eth = {"venue": "bybit", "symbol": "ETHUSDT"}
    value = registry.get_sample_value
    assert value("deleverage_pressure_side", btc | {"side": "long"}) == 1
    assert value("deleverage_pressure_side", btc | {"side": "short"}) == 0
    assert value("deleverage_pressure_side", eth | {"side": "long"}) == 0
    assert value("deleverage_pressure_side", eth | {"side": "short"}) == 0
    assert value("deleverage_pressure_open_interest_change_ratio", btc) == -0.03
    assert value("deleverage_pressure_liquidated_open_interest_ratio", btc) == 0.0025
    assert value("deleverage_pressure_forced_share_ratio", btc) == 0.8
    assert value("deleverage_pressure_mark_return_ratio", btc) == -0.02
    assert value("deleverage_pressure_forced_share_ratio", eth) is None  # absent, not 0
    assert value("deleverage_instrument_info", btc | {"asset": "BTC"}) == 1
    assert value("deleverage_instrument_info", eth | {"asset": "ETH"}) == 1
