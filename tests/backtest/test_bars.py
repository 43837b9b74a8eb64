"""Reading bars: column names, mapping, merging files, bar size and funding interval."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from service.backtest.bars import (
    Bar,
    funding_intervals,
    infer_bar_s,
    merge,
    parse_bar,
    parse_mapping,
    read_bars,
    to_ms,
)

H = 3_600_000


def write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


def test_default_column_names_are_found_and_missing_columns_stay_none(tmp_path: Path) -> None:
    f = write(
        tmp_path / "c.csv",
        """
timestamp,exchange,coin,o,h,l,c,v
2025-10-10T21:00:00Z,binance,BTC,114200.4,115075.6,101516.5,113253.6,131850
""",
    )
    (bar,) = read_bars(f)
    assert bar == Bar(
        ts_ms=to_ms("2025-10-10T21:00:00+00:00"),
        venue="binance",
        symbol="BTC",
        open=114200.4,
        high=115075.6,
        low=101516.5,
        price=113253.6,
    )


def test_columns_can_be_mapped_and_venue_given(tmp_path: Path) -> None:
    f = write(
        tmp_path / "f.csv",
        """
Symbol,Date,Funding Rate
BTC/USDT,2022-11-10 00:00:00,-0.001192
""",
    )
    mapping = parse_mapping(["funding_rate=Funding Rate"])
    (bar,) = read_bars(f, mapping, venue="binance")
    assert (bar.venue, bar.symbol, bar.funding_rate) == ("binance", "BTC/USDT", -0.001192)
    with pytest.raises(ValueError, match="no venue column"):
        read_bars(f, mapping)
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        parse_mapping(["nonsense=x"])


def test_files_merge_on_time_venue_and_symbol() -> None:
    candles = [Bar(0, "v", "BTC", price=100.0), Bar(H, "v", "BTC", price=101.0)]
    funding = [Bar(0, "v", "BTC", funding_rate=0.0001), Bar(0, "w", "BTC", funding_rate=0.0002)]
    merged = merge([*candles, *funding])
    assert merged[0] == Bar(0, "v", "BTC", price=100.0, funding_rate=0.0001)
    assert [(b.ts_ms, b.venue) for b in merged] == [(0, "v"), (0, "w"), (H, "v")]


def test_times_in_every_usual_form() -> None:
    want = 1_760_130_000_000  # 2025-10-10 21:00 UTC
    assert to_ms("2025-10-10T21:00:00Z") == want
    assert to_ms("2025-10-10 21:00:00") == want
    assert to_ms(want) == want
    assert to_ms(want / 1000) == want
    assert to_ms(str(want // 1000)) == want
    assert to_ms(dt.datetime(2025, 10, 10, 21, tzinfo=dt.UTC)) == want


def test_bar_size_is_the_common_spacing_and_can_be_given() -> None:
    bars = [Bar(i * H, "v", "BTC", price=1.0) for i in range(5)] + [
        Bar(i * 8 * H, "v", "BTC", funding_rate=0.0001) for i in range(3)
    ]
    assert infer_bar_s(merge(bars)) == 3600
    assert parse_bar("1m") == 60
    assert parse_bar("4h") == 14_400
    assert parse_bar("1d") == 86_400
    with pytest.raises(ValueError, match="bar size"):
        parse_bar("fortnight")


def test_funding_interval_is_the_spacing_of_funding_rows() -> None:
    bars = [Bar(i * 8 * H, "binance", "BTC", funding_rate=0.0001) for i in range(4)]
    bars += [Bar(i * H, "hyperliquid", "BTC", funding_rate=0.0000125) for i in range(10)]
    assert funding_intervals(bars) == {("binance", "BTC"): 8, ("hyperliquid", "BTC"): 1}
