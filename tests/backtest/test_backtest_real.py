"""The backtest on real history: ``../shared/data/funding_the_fall_2025_2026`` (Unlicense).

What the data supports (see docs/evaluation.md): around the 2025-10-10 crash the set has
hourly candles and funding only, no open interest and no liquidations, so the detector,
which needs open interest, must say it cannot score rather than call the market calm. From
2025-12-07 Lighter has hourly open interest beside its candles (no liquidations): there the
detector scores, finds build-ups and unwinds of both sides, and claims no cascade.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.backtest.bars import to_ms
from service.backtest.command import load
from service.backtest.replay import replay
from service.config import DetectorSettings
from service.detect.factory import make_model

REPO = Path(__file__).resolve().parents[2]
DATA = Path(
    os.environ.get(
        "DELEVERAGE_SHARED_DATA", REPO.parent / "shared" / "data" / "funding_the_fall_2025_2026"
    )
)
CRASH_HOUR = to_ms("2025-10-10T21:00:00Z")


@pytest.fixture(scope="module")
def data() -> Path:
    if not (DATA / "candles.parquet").is_file():
        pytest.fail(f"shared data not found at {DATA} (set DELEVERAGE_SHARED_DATA)")
    return DATA


def test_the_crash_hour_is_in_the_data(data: Path) -> None:
    bars = load([data / "candles.parquet"], since="2025-10-10T21:00:00Z",
                until="2025-10-10T21:00:00Z", only=["binance:BTC", "binance:SOL"])  # fmt: skip
    drop = {b.symbol: (b.low or 0) / (b.open or 1) - 1 for b in bars}
    assert drop["BTC"] < -0.10  # 114,200 -> 101,516 within the hour
    assert drop["SOL"] < -0.25


def test_without_open_interest_the_crash_is_not_scored_rather_than_called_calm(
    data: Path,
) -> None:
    only = [f"{v}:{c}" for v in ("binance", "bybit") for c in ("BTC", "ETH", "SOL")]
    bars = load([data / "candles.parquet", data / "funding_rates.parquet"],
                since="2025-10-03", until="2025-10-12", only=only)  # fmt: skip
    assert any(b.funding_rate is not None for b in bars)
    assert all(b.oi_usd is None and b.oi_base is None for b in bars)
    result = replay(bars, make_model(DetectorSettings()), 3600)
    assert len(result.coverage) == len(only)
    for cov in result.coverage.values():
        assert cov.held == cov.evaluations  # quality 0 throughout: never a calm verdict
        assert any("oi" in r for r in cov.hold_reasons)
    assert [i for i in result.intervals if i.scope == "instrument"] == []


def test_with_open_interest_lighter_is_scored_and_no_cascade_is_claimed_without_liquidations(
    data: Path,
) -> None:
    only = [f"lighter:{c}" for c in ("BTC", "ETH", "SOL", "DOGE", "HYPE")]
    bars = load(
        [data / "candles.parquet", data / "funding_rates.parquet", data / "open_interest.parquet"],
        since="2025-12-07",
        until="2026-01-24",
        only=only,
    )
    assert all(b.liq_long_usd is None and b.liq_short_usd is None for b in bars)
    result = replay(bars, make_model(DetectorSettings()), 3600)
    for cov in result.coverage.values():
        assert cov.held < 0.1 * cov.evaluations  # scored: OI, mark and funding are there
    found = [i for i in result.intervals if i.scope == "instrument"]
    assert {i.state.value for i in found} <= {"building", "unwinding"}  # no liquidation data
    assert {i.side for i in found if i.state.value == "unwinding"} == {"long", "short"}
    assert all(result.first_ms <= i.start_ms <= result.last_ms + 3_600_000 for i in found)
