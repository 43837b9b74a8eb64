"""The data people have: open interest in USD without a price, columns nobody maps,
instrument lists and exclusions, one price file for several instruments, resampling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.backtest.bars import Bar
from service.backtest.command import load_all
from service.backtest.prepare import Selection, apply_prices, check_open_interest, resample
from service.cli import main

H = 3_600_000
T0 = 1_760_000_400_000 // H * H


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def oi_usd_file(path: Path, venues: tuple[str, ...] = ("hyperliquid", "lighter")) -> Path:
    """Hourly open interest in USD for BTC on two venues, no price: flat, then -30 % in an
    hour (with the price -10 %: in base units -22 %)."""
    rows: list[list[object]] = [
        [T0 + i * H, v, "BTC", 1e9 * (0.7 if i >= 60 else 1.0), 42]
        for i in range(80)
        for v in venues
    ]
    return write_csv(path, ["timestamp", "venue", "coin", "oi_usd", "rank"], rows)


def price_file(path: Path) -> Path:
    rows: list[list[object]] = []
    for i in range(80):
        p = 100_000.0 * (0.9 if i >= 60 else 1.0) * (1 + 0.001 * (i % 3))
        rows.append([T0 + i * H, "binance", "BTC", p, p * 1.002, p * 0.998, p])
        rows.append([T0 + i * H, "bybit", "BTC", 1.0, 1.0, 1.0, 1.0])  # a worse source
    return write_csv(path, ["timestamp", "venue", "coin", "o", "h", "l", "c"], rows)


def test_open_interest_in_usd_without_a_price_is_refused_naming_the_missing_column(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match=r"hyperliquid:BTC.*oi_usd.*no price column.*--prices"):
        load_all([oi_usd_file(tmp_path / "oi.csv")])
    result = CliRunner().invoke(main, ["backtest", str(tmp_path / "oi.csv")])
    assert result.exit_code != 0
    assert "open interest is in USD (column oi_usd) but there is no price column" in result.output


def test_columns_nobody_reads_are_reported_and_a_bad_mapping_is_refused(tmp_path: Path) -> None:
    loaded = load_all([oi_usd_file(tmp_path / "oi.csv")], prices=[price_file(tmp_path / "p.csv")])
    assert loaded.notes == ["oi.csv: columns not used: rank"]
    with pytest.raises(ValueError, match="--col oi_base=nope: no such column"):
        load_all([tmp_path / "oi.csv"], ["oi_base=nope"], prices=[tmp_path / "p.csv"])


def test_one_price_file_serves_every_instrument_of_its_asset(tmp_path: Path) -> None:
    loaded = load_all([oi_usd_file(tmp_path / "oi.csv")], prices=[price_file(tmp_path / "p.csv")],
                      price_venues=["binance", "bybit"])  # fmt: skip
    by_venue = {(b.venue, b.ts_ms): b for b in loaded.bars}
    assert {b.venue for b in loaded.bars} == {"hyperliquid", "lighter"}  # not binance's rows
    for venue in ("hyperliquid", "lighter"):
        b = by_venue[(venue, T0 + 61 * H)]
        assert b.price == pytest.approx(90_000.0 * 1.001)  # binance preferred over bybit
        assert b.open is not None
        assert b.low is not None
    own = Bar(T0, "x", "BTC", price=5.0)
    (kept,) = apply_prices([own], [Bar(T0, "binance", "BTCUSDT", price=7.0)])
    assert kept.price == 5.0  # an instrument's own price wins


def test_instrument_selection_takes_lists_and_exclusions() -> None:
    keep = Selection(("hyperliquid:*", "binance:ETHUSDT", "SOL"), ("hyperliquid:DOGE",))
    assert keep("hyperliquid", "BTC")
    assert not keep("hyperliquid", "DOGE")
    assert keep("binance", "ETHUSDT")
    assert not keep("binance", "BTCUSDT")
    assert keep("bybit", "SOLUSDT")  # by asset
    assert Selection((), ("lighter:*",))("binance", "BTCUSDT")
    assert not Selection((), ("lighter:*",))("lighter", "BTC")


def test_the_command_takes_lists_and_exclusions(tmp_path: Path) -> None:
    source = oi_usd_file(tmp_path / "oi.csv", ("hyperliquid", "lighter", "paradex"))
    prices = price_file(tmp_path / "p.csv")
    out = tmp_path / "intervals.csv"
    result = CliRunner().invoke(main, [
        "backtest", str(source), "--prices", str(prices), "--prices-venue", "binance",
        "--only", "hyperliquid:BTC,lighter:BTC,paradex:*", "--exclude", "paradex:*",
        "--out", str(out), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{") :])
    assert doc["notes"] == ["oi.csv: columns not used: rank"]
    assert "2 instruments" in result.stderr
    assert {r["venue"] for r in doc["intervals"] if r["scope"] == "instrument"} <= {
        "hyperliquid",
        "lighter",
    }


def test_intervals_say_their_scope_and_give_reasons_in_real_time(tmp_path: Path) -> None:
    """Hourly bars play in real time: the -22 % hour is read over an hour ("in 1h"), never
    over the minutes the detector's short windows span live."""
    out = tmp_path / "intervals.csv"
    result = CliRunner().invoke(main, [
        "backtest", str(oi_usd_file(tmp_path / "oi.csv")), "--prices",
        str(price_file(tmp_path / "p.csv")), "--prices-venue", "binance", "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["scope"] for r in rows} >= {"instrument", "asset"}
    hit = [r for r in rows if r["scope"] == "instrument" and r["state"] in ("unwinding", "cascade")]
    assert hit, rows
    assert all(r["side"] == "long" for r in hit)
    assert any("in 1h" in r["reasons"] for r in hit)
    assert not any(f"in {w}," in r["reasons"] for r in rows for w in ("1m", "5m", "15m"))
    assert "warming up until" in result.stderr  # the burn-in is said, per instrument


def test_bars_resample_to_a_coarser_size() -> None:
    hours = [
        Bar(T0 + i * H, "v", "BTC", open=10.0 + i, high=12.0 + i, low=9.0 + i, price=11.0 + i,
            oi_base=100.0 + i, liq_long_usd=1.0)
        for i in range(48)
    ]  # fmt: skip
    days = resample(hours, 86_400)
    first = days[0]
    assert first.ts_ms % (86_400 * 1000) == 0
    group = [b for b in hours if b.ts_ms // 86_400_000 == first.ts_ms // 86_400_000]
    assert first.open == group[0].open
    assert first.high == max(b.high or 0 for b in group)
    assert first.low == min(b.low or 0 for b in group)
    assert (first.price, first.oi_base) == (group[-1].price, group[-1].oi_base)
    assert first.liq_long_usd == len(group)


def test_instruments_without_open_interest_are_named() -> None:
    notes = check_open_interest([Bar(T0, "binance", "BTC", price=1.0)])
    assert notes == ["binance:BTC: no open interest column: not scored"]


def test_files_without_a_symbol_column_take_one_each_in_order(tmp_path: Path) -> None:
    rows = [[T0 + i * H, 100.0, 1000.0 + i] for i in range(5)]
    a = write_csv(tmp_path / "a.csv", ["ts", "close", "oi"], rows)
    b = write_csv(tmp_path / "b.csv", ["ts", "close", "oi"], rows)
    loaded = load_all([a, b], venue=["binance"], symbol=["BTCUSDT", "ETHUSDT"])
    assert {b.key for b in loaded.bars} == {("binance", "BTCUSDT"), ("binance", "ETHUSDT")}
    with pytest.raises(ValueError, match="--symbol given 3 times for 2 files"):
        load_all([a, b], venue="binance", symbol=["X", "Y", "Z"])


def test_each_asset_has_intervals_of_its_own(tmp_path: Path) -> None:
    """Two assets crash in the same hour: each asset's interval is its own (they once shared
    one key and closed each other's)."""
    rows: list[list[object]] = []
    for i in range(80):
        for coin, size in (("BTC", 1e9), ("ETH", 5e8)):
            crash = 0.7 if i >= 60 else 1.0
            rows.append([T0 + i * H, "hyperliquid", coin, size * crash])
    source = write_csv(tmp_path / "oi.csv", ["timestamp", "venue", "coin", "oi_usd"], rows)
    prices = []
    for i in range(80):
        for coin in ("BTC", "ETH"):
            p = (0.9 if i >= 60 else 1.0) * (1 + 0.001 * (i % 3))
            prices.append([T0 + i * H, "binance", coin, p, p, p, p])
    price = write_csv(tmp_path / "p.csv", ["timestamp", "venue", "coin", "o", "h", "l", "c"],
                      prices)  # fmt: skip
    out = tmp_path / "intervals.csv"
    result = CliRunner().invoke(main, ["backtest", str(source), "--prices", str(price),
                                       "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    with out.open() as f:
        assets = [r for r in csv.DictReader(f) if r["scope"] == "asset"]
    assert {r["asset"] for r in assets} == {"BTC", "ETH"}
    assert all(float(r["hours"]) >= 0.9 for r in assets)  # none closed by the other asset
