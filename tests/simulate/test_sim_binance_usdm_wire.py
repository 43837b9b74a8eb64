"""Binance USDⓈ-M's server-side protocol, without sockets: frames, requests, throttle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simkit import VENUE, instruments

from service.events import FundingRate, Liquidation, MarkPrice, Side
from service.simulate.market import LiquidationPrint, Quote
from service.venues.binance.simulator import usdm_wire as wire
from service.venues.binance.usdm import BinanceUsdmParser

BTC = wire.Contract("BTCUSDT", 2, 3)
DOGE = wire.Contract("DOGEUSDT", 6, 0, funding_interval_h=4.0)


def _print(ts_ms: int, symbol: str = "BTCUSDT", side: Side = Side.LONG) -> LiquidationPrint:
    return LiquidationPrint(symbol, "BTC", side, 0.014, 59_910.123, 59_500.0, ts_ms)


def test_the_data_file_is_the_recorded_exchange_info_byte_for_byte(captures: Path) -> None:
    line = (captures / "rest" / "BINANCE_FUTURES.0.txt").read_text(encoding="utf-8").splitlines()[0]
    url, _, rest = line.partition(" -> ")
    assert url == "https://fapi.binance.com/fapi/v1/exchangeInfo"
    assert wire.load_exchange_info() == rest.split(": ", 1)[1]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("!markPrice@arr@1s", (wire.StreamKind.MARK, None, True)),
        ("!markPrice@arr", (wire.StreamKind.MARK, None, False)),
        ("btcusdt@markPrice@1s", (wire.StreamKind.MARK, "BTCUSDT", True)),
        ("btcusdt@markPrice", (wire.StreamKind.MARK, "BTCUSDT", False)),
        ("!forceOrder@arr", (wire.StreamKind.FORCE, None, True)),
        ("ethusdt@forceOrder", (wire.StreamKind.FORCE, "ETHUSDT", True)),
        ("BTCUSDT@markPrice", None),
        ("btcusdt@aggTrade", (wire.StreamKind.AGG_TRADE, "BTCUSDT", True)),
        ("!bookTicker", (wire.StreamKind.BOOK_TICKER, None, True)),
        ("btcusdt@bookTicker", (wire.StreamKind.BOOK_TICKER, "BTCUSDT", True)),
        ("btcusdt@depth@500ms", (wire.StreamKind.DEPTH, "BTCUSDT", True)),
        ("btcusdt@depth", (wire.StreamKind.DEPTH, "BTCUSDT", True)),
        ("btcusdt@depth@1000ms", None),
        ("btcusdt@kline_1m", None),
        ("!forceOrder", None),
        ("", None),
    ],
)
def test_stream_names(name: str, expected: tuple[wire.StreamKind, str | None, bool] | None) -> None:
    s = wire.parse_stream(name)
    assert (None if s is None else (s.kind, s.symbol, s.fast)) == expected


def test_mark_price_update_has_the_venue_shape_and_parses() -> None:
    q = Quote("BTCUSDT", "BTC", 60_123.456789, 60_100.12345678, 0.00015, 80_000.0)
    obj = wire.mark_price_update(q, BTC, 1_597_536_008_000)
    assert list(obj) == ["e", "E", "s", "p", "i", "P", "r", "T"]
    assert obj["p"] == "60123.46000000"
    assert obj["i"] == "60100.12345678"
    assert obj["r"] == "0.00015000"
    assert obj["T"] == 1_597_564_800_000
    frame = wire.frame("!markPrice@arr@1s", "[" + wire.encode(obj) + "]", combined=True)
    events = BinanceUsdmParser(VENUE, instruments(), None).parse(frame, 1)
    assert [type(e) for e in events] == [MarkPrice, FundingRate]
    assert isinstance(events[1], FundingRate)
    assert events[1].funding_rate_1h == pytest.approx(0.00015 / 8)


def test_four_hour_symbols_quote_a_4h_rate_and_4h_funding_times() -> None:
    q = Quote("DOGEUSDT", "DOGE", 0.15, 0.15, 0.0001, 1e9)
    obj = wire.mark_price_update(q, DOGE, 1_597_536_008_000)
    assert obj["r"] == "0.00005000"  # the same per-hour rate as 0.0001 per 8 h
    assert obj["T"] == 1_597_550_400_000
    assert obj["T"] % (4 * 3_600_000) == 0
    assert wire.funding_info([BTC, DOGE]) == [
        {
            "symbol": "DOGEUSDT",
            "adjustedFundingRateCap": "0.02000000",
            "adjustedFundingRateFloor": "-0.02000000",
            "fundingIntervalHours": 4,
            "disclaimer": False,
        }
    ]


@pytest.mark.parametrize(("side", "order_side"), [(Side.LONG, "SELL"), (Side.SHORT, "BUY")])
def test_force_order_side_is_the_order_side(side: Side, order_side: str) -> None:
    obj = wire.force_order(_print(1_568_014_460_890, side=side), BTC, 1_568_014_460_893)
    assert obj == {
        "e": "forceOrder",
        "E": 1_568_014_460_893,
        "o": {
            "s": "BTCUSDT",
            "S": order_side,
            "o": "LIMIT",
            "f": "IOC",
            "q": "0.014",
            "p": "59500.00",
            "ap": "59910.12",
            "X": "FILLED",
            "l": "0.014",
            "z": "0.014",
            "T": 1_568_014_460_890,
        },
    }
    events = BinanceUsdmParser(VENUE, instruments(), None).parse(
        wire.frame("!forceOrder@arr", wire.encode(obj), combined=True), 1
    )
    assert len(events) == 1
    assert isinstance(events[0], Liquidation)
    assert events[0].side is side
    assert events[0].quantity_base == pytest.approx(0.014)


def test_numbers_never_print_as_negative_zero() -> None:
    assert wire.fmt(-0.000000001, 8) == "0.00000000"
    assert wire.fmt(-0.00002, 8) == "-0.00002000"


def test_subscribe_list_unsubscribe_and_properties() -> None:
    s = wire.Session(combined=True)
    ack = s.handle(
        '{"method":"SUBSCRIBE","params":["!markPrice@arr@1s","btcusdt@kline_1m"],"id":1}'
    )
    assert ack == '{"result":null,"id":1}'
    assert [x.name for x in s.wanted()] == ["!markPrice@arr@1s"]  # kline: accepted, not served
    assert s.handle('{"method":"LIST_SUBSCRIPTIONS","id":3}') == (
        '{"result":["!markPrice@arr@1s","btcusdt@kline_1m"],"id":3}'
    )
    s.handle('{"method":"UNSUBSCRIBE","params":["btcusdt@kline_1m"],"id":4}')
    assert list(s.streams) == ["!markPrice@arr@1s"]
    assert s.handle('{"method":"SET_PROPERTY","params":["combined",false],"id":5}') == (
        '{"result":null,"id":5}'
    )
    assert s.handle('{"method":"GET_PROPERTY","params":["combined"],"id":6}') == (
        '{"result":false,"id":6}'
    )
    assert not s.combined


@pytest.mark.parametrize(
    ("request_text", "code", "msg_start", "req_id"),
    [
        ("not json", 3, "Invalid JSON: expected value at line 1 column 1", None),
        (
            '{"method":"SUBSCRIB","params":[],"id":2}',
            2,
            "Invalid request: unknown variant `SUBSCRIB`",
            2,
        ),
        ('{"params":[],"id":7}', 2, "Invalid request: missing field `method`", 7),
        (
            '{"method":"SUBSCRIBE","params":[]}',
            2,
            "Invalid request: request ID must be an unsigned",
            None,
        ),
        ('{"method":"SET_PROPERTY","params":["foo",true],"id":8}', 0, "Unknown property", 8),
        ('{"method":"SET_PROPERTY","params":["combined",1],"id":9}', 1, "Invalid value type", 9),
    ],
)
def test_bad_requests_get_binance_error_frames(
    request_text: str, code: int, msg_start: str, req_id: int | None
) -> None:
    answer = json.loads(wire.Session(combined=True).handle(request_text))
    assert answer["error"]["code"] == code
    assert answer["error"]["msg"].startswith(msg_start)
    assert answer["id"] == req_id


def test_throttle_pushes_one_per_symbol_per_second_and_keeps_the_latest() -> None:
    t = wire.ForceOrderThrottle()
    t.offer([_print(100), _print(150, "ETHUSDT")])
    assert [p.ts_ms for p in t.due(160)] == [100, 150]  # a quiet symbol goes out at once
    t.offer([_print(300), _print(700), _print(650)])
    assert t.due(900) == []  # within 1000 ms of the last BTC push
    pushed = t.due(1160)
    assert [p.ts_ms for p in pushed] == [700]  # the latest of the window, the rest dropped
    assert t.due(5000) == []


def test_weight_counter_counts_per_ip_per_minute() -> None:
    w = wire.WeightCounter(limit=5)
    assert [w.add("a", 1, 1_000), w.add("a", 10, 2_000), w.add("b", 1, 3_000)] == [1, 11, 1]
    assert w.add("a", 1, 61_000) == 1
