"""Bars through the default model: events per bar, scaled time, intervals, the command."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from click.testing import CliRunner

from service.backtest.bars import Bar
from service.backtest.replay import asset_of, bar_events, replay
from service.cli import main
from service.config import DetectorSettings
from service.detect.factory import make_model
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest

MIN = 60_000
T0 = 1_760_000_000_000 // MIN * MIN
CASCADE_AT = 8 * 60  # minutes


def synthetic_csv(path: Path) -> Path:
    """Eight calm hours of 1-minute bars on one perpetual, then ten minutes of a long
    cascade (price -1 %/min, OI -2.5 %/min, long liquidations 40 % of the OI decline),
    then half an hour of calm."""
    rng = random.Random(7)
    price, oi = 60_000.0, 80_000.0
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "venue", "symbol", "open", "high", "low", "close", "oi_base",
                    "funding_rate", "long_liquidations_usd", "short_liquidations_usd"])  # fmt: skip
        for m in range(CASCADE_AT + 40):
            cascade = CASCADE_AT <= m < CASCADE_AT + 10
            opened = price
            price *= math.exp((-0.01 if cascade else 0.0) + rng.gauss(0, 0.0008))
            before = oi
            oi *= math.exp((-0.025 if cascade else 0.0) + rng.gauss(0, 0.0002))
            long_usd = 0.4 * (before - oi) * price if cascade else rng.uniform(0, 3_000)
            w.writerow([T0 + m * MIN, "sim", "BTCUSDT", opened, max(opened, price) * 1.0005,
                        min(opened, price) * 0.9995, price, oi, 0.0001 if m % 480 == 0 else "",
                        long_usd, rng.uniform(0, 3_000)])  # fmt: skip
    return path


def test_assets_from_symbols() -> None:
    for symbol in ("BTC", "BTCUSDT", "BTC-USDT-SWAP", "BTC/USDT:USDT", "BTCUSD_PERP", "BTCUSD"):
        assert asset_of(symbol) == "BTC"


def test_a_bar_becomes_a_price_path_open_interest_funding_and_a_flow_of_liquidations() -> None:
    bar = Bar(T0, "v", "BTCUSDT", open=100.0, high=101.0, low=90.0, price=95.0, oi_usd=1e9,
              liq_long_usd=6_000.0)  # fmt: skip
    events = bar_events(bar, 60_000, (0.0008, 8.0), "BTC")
    marks = [(t - T0, e.mark_price) for t, e in events if isinstance(e, MarkPrice)]
    # real time: the open at the bar's start, the close at its end; closed down: high first
    assert marks == [(0, 100.0), (20_000, 101.0), (40_000, 90.0), (60_000, 95.0)]
    (oi,) = [e for _, e in events if isinstance(e, OpenInterest)]
    assert oi.oi_base == 1e9 / 95.0
    (funding,) = [e for _, e in events if isinstance(e, FundingRate)]
    assert funding.funding_rate_1h == 0.0001
    liqs = [e for _, e in events if isinstance(e, Liquidation)]
    assert len(liqs) == 60
    assert sum(e.notional_usd for e in liqs) == 6_000.0
    assert all(e.side.value == "long" for e in liqs)
    assert all(T0 < e.ts_ms < T0 + 60_000 for e in liqs)  # a flow across the bar
    assert not any(e.sampled for e in liqs)
    sampled = bar_events(bar, 60_000, None, "BTC", sampled=True)
    assert all(e.sampled for _, e in sampled if isinstance(e, Liquidation))


def test_a_synthetic_cascade_in_minute_bars_is_found_long(tmp_path: Path) -> None:
    from service.backtest.command import load

    bars = load([synthetic_csv(tmp_path / "bars.csv")])
    result = replay(bars, make_model(DetectorSettings()), 60, settle_s=21.0)
    onset = T0 + CASCADE_AT * MIN
    hits = [
        i
        for i in result.intervals
        if i.scope == "instrument" and i.state.value == "cascade" and i.side == "long"
        and onset <= i.start_ms <= onset + 10 * MIN
    ]  # fmt: skip
    assert hits
    assert (
        result.coverage[("sim", "BTCUSDT")].held < result.coverage[("sim", "BTCUSDT")].evaluations
    )


def test_the_command_prints_and_writes_the_intervals(tmp_path: Path) -> None:
    source, out = synthetic_csv(tmp_path / "bars.csv"), tmp_path / "out.csv"
    result = CliRunner().invoke(main, ["backtest", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cascade" in result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert any(r["state"] == "cascade" and r["side"] == "long" for r in rows)
    assert set(rows[0]) >= {"venue", "symbol", "state", "side", "start", "end", "peak_score"}


def test_the_command_explains_what_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("when,price\n1,2\n")
    result = CliRunner().invoke(main, ["backtest", str(bad)])
    assert result.exit_code != 0
    assert "no time column" in result.output
