"""``Parser.parse``, the one failure policy of every venue's frames: the frames that took the
service down before (a Binance rate that is no number, 1,000 levels of nesting, a Gate size
of 400 digits, a liquidation at NaN), a parser bug, and events that fail the checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from fuzz_support import RECV_MS, capture_frames, new_parser, productive

from service.events import Event, FundingRate, Liquidation, MarkPrice
from service.venues import REGISTRY
from service.venues.base import Instrument, Parser, ParseStats
from service.venues.binance.usdm import BinanceUsdmParser
from service.venues.bybit.venue import BybitParser
from service.venues.gateio.venue import GateParser

BINANCE = {
    s: Instrument("binance_usdm", s, s.removesuffix("USDT"), "USDT", linear=True)
    for s in ("BTCUSDT", "ETHUSDT")
}
T = 1_597_536_008_000


def _mark(symbol: str, rate: str) -> dict[str, object]:
    return {"e": "markPriceUpdate", "E": T, "s": symbol, "p": "11857.5", "i": "11851.8",
            "P": "11852.0", "r": rate, "T": T + 3_600_000}  # fmt: skip


def _force_order(**order: str) -> str:
    o = {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "4793.91",
         "ap": "4706.04", "X": "FILLED", "l": "0.014", "z": "0.014", "T": T} | order  # fmt: skip
    return json.dumps({"stream": "!forceOrder@arr", "data": {"e": "forceOrder", "E": T, "o": o}})


def test_a_mark_whose_rate_is_no_number_is_dropped_and_the_rest_of_the_array_kept() -> None:
    parser = BinanceUsdmParser("binance_usdm", BINANCE, None)
    frame = {
        "stream": "!markPrice@arr@1s",
        "data": [_mark("BTCUSDT", "x"), _mark("ETHUSDT", "1e-4")],
    }
    events = parser.parse(json.dumps(frame), recv_ms=T)
    assert {(type(e), e.symbol) for e in events} == {
        (MarkPrice, "ETHUSDT"),
        (FundingRate, "ETHUSDT"),
    }
    assert parser.stats.errors == {"bad_number": 1}
    assert "BTCUSDT" not in parser.last_mark  # the bad row left the state as it was


@pytest.mark.parametrize("rate", ["NaN", "Infinity", "-inf"])
def test_a_rate_that_is_not_finite_is_dropped_and_its_mark_kept(rate: str) -> None:
    parser = BinanceUsdmParser("binance_usdm", BINANCE, None)
    frame = {"stream": "btcusdt@markPrice@1s", "data": _mark("BTCUSDT", rate)}
    (mark,) = parser.parse(json.dumps(frame), recv_ms=T)
    assert isinstance(mark, MarkPrice)
    assert mark.mark_price == 11857.5
    assert parser.stats.errors == {"non_finite": 1}


def test_a_liquidation_at_nan_prices_is_dropped_not_stored_as_null() -> None:
    parser = BinanceUsdmParser("binance_usdm", BINANCE, None)
    assert parser.parse(_force_order(p="NaN", ap="NaN"), recv_ms=T) == []
    assert parser.parse(_force_order(p="4793.91", ap="1e999"), recv_ms=T) == []
    assert parser.stats.errors == {"non_finite": 2}


def test_a_liquidation_of_a_negative_size_is_dropped() -> None:
    parser = BinanceUsdmParser("binance_usdm", BINANCE, None)
    assert parser.parse(_force_order(z="-5", q="-5"), recv_ms=T) == []
    assert parser.stats.errors == {"negative": 1}
    (liq,) = parser.parse(_force_order(), recv_ms=T)  # the next frame is read as always
    assert isinstance(liq, Liquidation)
    assert liq.quantity == 0.014


def test_one_invalid_event_of_a_batch_is_dropped_alone() -> None:
    markets = {"BTCUSDT": Instrument("bybit", "BTCUSDT", "BTC", "USDT", linear=True)}
    parser = BybitParser("bybit", markets, None)
    rows = [
        {"T": T, "s": "BTCUSDT", "S": "Buy", "v": "-2", "p": "60000"},
        {"T": T, "s": "BTCUSDT", "S": "Buy", "v": "2", "p": "0"},
        {"T": T, "s": "BTCUSDT", "S": "Sell", "v": "3", "p": "60000"},
    ]
    frame = {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": T, "data": rows}
    (liq,) = parser.parse(json.dumps(frame), recv_ms=T)
    assert isinstance(liq, Liquidation)
    assert liq.quantity == 3.0
    assert parser.stats.errors == {"negative": 1, "bad_price": 1}


@pytest.mark.parametrize("venue", sorted(REGISTRY))
def test_a_frame_nested_1000_levels_is_counted_and_the_next_frame_parses(
    captures: Path, venue: str
) -> None:
    parser = new_parser(captures, venue)
    for depth in (1_000, 100_000):
        assert parser.parse('{"a":' * depth + "1" + "}" * depth, recv_ms=RECV_MS) == []
    assert parser.stats.errors == {"too_deep": 2}
    good = productive(captures, venue, capture_frames(captures, venue))
    assert any(parser.parse(frame, RECV_MS) for frame in good)


def test_a_gate_number_of_400_digits_is_counted_not_raised(captures: Path) -> None:
    parser = new_parser(captures, "gateio")
    assert isinstance(parser, GateParser)
    big = "1" + "0" * 400
    liquidation = (
        '{"channel":"futures.public_liquidates","event":"update","time":1541505434,'
        '"time_ms":1541505434123,"result":[{"price":"215.1","size":' + big + ","
        '"time":1541486601123,"contract":"BTC_USDT"}]}'
    )
    ticker = (
        '{"time":1617952183,"channel":"futures.tickers","event":"update","result":[{'
        '"contract":"BTC_USDT","mark_price":"244.78","total_size":' + big + "}]}"
    )
    assert parser.parse(liquidation, recv_ms=RECV_MS) == []
    assert parser.parse(ticker, recv_ms=RECV_MS) == []
    assert parser.stats.errors == {"invalid_liquidation": 1, "invalid_futures.tickers": 1}


def test_a_bitmex_time_without_its_zone_is_an_invalid_row_not_a_type_error(
    captures: Path,
) -> None:
    parser = new_parser(captures, "bitmex")
    row: dict[str, Any] = {"symbol": "XBTUSD", "markPrice": 30000, "fundingRate": 0.0001,
                           "fundingInterval": "2000-01-01T08:00:00.000Z",
                           "timestamp": "2021-07-22T22:36:05.000Z"}  # fmt: skip
    frame = {"table": "instrument", "action": "partial", "data": [row]}
    assert parser.parse(json.dumps(frame), recv_ms=RECV_MS)  # as BitMEX writes it
    for key in ("fundingInterval", "timestamp"):
        naive = [row | {key: row[key].removesuffix("Z")}]
        assert parser.parse(json.dumps(frame | {"data": naive}), recv_ms=RECV_MS) == []
    assert parser.stats.errors == {"invalid_instrument": 2}


class _Buggy(Parser):
    """Raises what its frame names, as a parser with a bug would."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        errors: dict[str | bytes, Exception] = {
            "key": KeyError("symbol"), "zero": ZeroDivisionError("division by zero"),
            "memory": MemoryError(),
        }  # fmt: skip
        if frame in errors:
            raise errors[frame]
        return []


def test_a_parser_bug_drops_the_frame_counted_and_logged_once_per_exception_type() -> None:
    parser = _Buggy("v", {}, None)
    with structlog.testing.capture_logs() as logs:
        for frame in ("key", "key", "zero", "ok", "key"):
            assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {"bug": 4}
    bugs = [x for x in logs if x["event"] == "parser bug: frame dropped"]
    assert [x["error"] for x in bugs] == [
        "KeyError: 'symbol'",
        "ZeroDivisionError: division by zero",
    ]
    assert all(x["log_level"] == "error" and x["exc_info"] for x in bugs)


def test_memory_errors_are_not_swallowed() -> None:
    with pytest.raises(MemoryError):
        _Buggy("v", {}, None).parse("memory", recv_ms=1)


def test_a_dropped_frame_is_logged_once_per_reason_with_a_short_readable_sample() -> None:
    stats = ParseStats()
    with structlog.testing.capture_logs() as logs:
        stats.error("v", "invalid_x", b"\x00" * 10_000)
        stats.error("v", "invalid_x", "again")
    assert stats.errors == {"invalid_x": 2}
    (line,) = logs
    assert line["reason"] == "invalid_x"
    assert line["frame"].startswith("b'\\x00")
    assert len(line["frame"]) == 300
