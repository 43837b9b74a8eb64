"""The Binance USDⓈ-M parser on every Binance frame in ../shared/captures, values worked out
here from the frames themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import Instrument
from service.venues.binance.usdm import (
    BinanceUsdm,
    BinanceUsdmParser,
    parse_funding_info,
    parse_open_interest,
    parse_premium_index,
)

VENUE = "binance_usdm"


def _instrument(symbol: str, base: str, interval_h: float = 8.0) -> Instrument:
    return Instrument(VENUE, symbol, base, "USDT", linear=True, funding_interval_h=interval_h)


MARKETS = {
    "BTCUSDT": _instrument("BTCUSDT", "BTC"),
    "ETHUSDT": _instrument("ETHUSDT", "ETH"),
    "BTCBUSD_210129": _instrument("BTCBUSD_210129", "BTC"),
}


def _lines(captures: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (captures / "binance_usdm.jsonl").read_text().splitlines()]


def _payload(raw: str) -> dict[str, object]:
    msg = json.loads(raw)
    return msg["data"] if "stream" in msg else msg


def test_every_mark_price_frame_gives_mark_and_funding_per_hour(captures: Path) -> None:
    frames = [
        d
        for d in _lines(captures)
        if d["kind"] == "mark_index" and "markPriceUpdate" in str(d["raw"])
    ]
    assert len(frames) >= 5
    for line in frames:
        raw = str(line["raw"])
        data = _payload(raw)
        parser = BinanceUsdmParser(VENUE, MARKETS, None)
        events = parser.parse(raw, recv_ms=123)
        assert not parser.stats.errors, raw
        marks = [e for e in events if isinstance(e, MarkPrice)]
        assert len(marks) == 1
        assert marks[0].mark_price == pytest.approx(float(data["p"]))
        assert marks[0].ts_ms == data["E"]
        assert marks[0].recv_ms == 123
        assert marks[0].index_price == (float(data["i"]) if "i" in data else None)
        funding = [e for e in events if isinstance(e, FundingRate)]
        if data["T"] == 0:  # a delivery contract: no funding
            assert funding == []
            continue
        assert len(funding) == 1
        f = funding[0]
        assert f.funding_rate == pytest.approx(float(data["r"]))
        assert f.interval_h == 8.0
        assert f.funding_rate_1h == pytest.approx(float(data["r"]) / 8)
        assert f.next_funding_ms == data["T"]


def test_every_liquidation_frame_gives_position_side_and_notional(captures: Path) -> None:
    frames = [d for d in _lines(captures) if d["kind"] == "liquidation"]
    assert len(frames) >= 3
    for line in frames:
        raw = str(line["raw"])
        order = _payload(raw)["o"]
        assert isinstance(order, dict)
        events = BinanceUsdmParser(VENUE, MARKETS, None).parse(raw, recv_ms=1)
        assert len(events) == 1
        liq = events[0]
        assert isinstance(liq, Liquidation)
        # The order side SELL closes a long position; BUY closes a short.
        assert liq.side == (Side.LONG if order["S"] == "SELL" else Side.SHORT)
        assert liq.quantity == pytest.approx(float(order["z"]))
        assert liq.quantity_base == pytest.approx(float(order["z"]))
        assert liq.price == pytest.approx(float(order["ap"]))
        assert liq.notional_usd == pytest.approx(float(order["z"]) * float(order["ap"]))
        assert liq.ts_ms == order["T"]
        assert liq.sampled is True


def test_the_real_tardis_liquidation_is_a_short_worth_65_88_usd(captures: Path) -> None:
    raw = next(
        str(d["raw"])
        for d in _lines(captures)
        if d["kind"] == "liquidation" and "tardis" in str(d["provenance"])
    )
    (liq,) = BinanceUsdmParser(VENUE, MARKETS, None).parse(raw, recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT
    assert liq.notional_usd == pytest.approx(0.014 * 4706.04)


def test_non_liquidation_streams_are_counted_as_unknown_not_raised(captures: Path) -> None:
    parser = BinanceUsdmParser(VENUE, MARKETS, None)
    for line in _lines(captures):
        if line["kind"] in ("trade", "ticker_funding_oi_mark"):
            assert parser.parse(str(line["raw"]), recv_ms=1) == []
    assert parser.stats.errors["unknown_stream"] >= 4


def test_rest_open_interest_fixture_is_base_coin_valued_at_the_mark(captures: Path) -> None:
    line = next(
        d
        for d in _lines(captures)
        if d["kind"] == "open_interest" and "generated" not in str(d["raw"])
    )
    raw = str(line["raw"])
    data = json.loads(raw)
    oi = parse_open_interest(raw, MARKETS["BTCUSDT"], mark=11793.63, recv_ms=5)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_base == pytest.approx(float(data["openInterest"]))
    assert oi.oi_contracts == pytest.approx(float(data["openInterest"]))
    assert oi.oi_usd == pytest.approx(float(data["openInterest"]) * 11793.63)
    assert oi.ts_ms == data["time"]


def test_rest_premium_index_fixture_gives_mark_and_funding(captures: Path) -> None:
    line = next(
        d
        for d in _lines(captures)
        if d["kind"] == "mark_index" and "lastFundingRate" in str(d["raw"])
    )
    data = json.loads(str(line["raw"]))
    mark, funding = parse_premium_index(str(line["raw"]), MARKETS["BTCUSDT"], recv_ms=9)
    assert isinstance(mark, MarkPrice)
    assert isinstance(funding, FundingRate)
    assert mark.mark_price == pytest.approx(float(data["markPrice"]))
    assert mark.index_price == pytest.approx(float(data["indexPrice"]))
    assert funding.funding_rate_1h == pytest.approx(float(data["lastFundingRate"]) / 8)
    assert funding.next_funding_ms == data["nextFundingTime"]


def test_all_market_mark_array_filters_to_configured_symbols() -> None:
    frame = json.dumps(
        {
            "stream": "!markPrice@arr@1s",
            "data": [
                {
                    "e": "markPriceUpdate",
                    "E": 1,
                    "s": "BTCUSDT",
                    "p": "100.5",
                    "i": "100.4",
                    "P": "0",
                    "r": "0.0004",
                    "T": 2,
                },
                {
                    "e": "markPriceUpdate",
                    "E": 1,
                    "s": "ETHUSDT",
                    "p": "10",
                    "i": "10",
                    "P": "0",
                    "r": "0.0001",
                    "T": 2,
                },
                {
                    "e": "markPriceUpdate",
                    "E": 1,
                    "s": "NEWCOINUSDT",
                    "p": "1",
                    "i": "1",
                    "P": "0",
                    "r": "0.0001",
                    "T": 2,
                },
            ],
        }
    )
    parser = BinanceUsdmParser(VENUE, MARKETS, {"BTCUSDT"})
    events = parser.parse(frame, recv_ms=1)
    assert {e.symbol for e in events} == {"BTCUSDT"}
    assert parser.stats.filtered == 2
    assert parser.last_mark == {"BTCUSDT": 100.5}


def test_a_four_hour_symbol_normalizes_funding_per_hour() -> None:
    markets = {"BLZUSDT": _instrument("BLZUSDT", "BLZ", interval_h=4.0)}
    frame = (
        '{"stream":"!markPrice@arr@1s","data":[{"e":"markPriceUpdate","E":1,"s":"BLZUSDT",'
        '"p":"0.1","i":"0.1","P":"0.1","r":"0.00080000","T":2}]}'
    )
    (_, funding) = BinanceUsdmParser(VENUE, markets, None).parse(frame, recv_ms=1)
    assert isinstance(funding, FundingRate)
    assert funding.funding_rate_1h == pytest.approx(0.0002)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ('{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1}}', "invalid_forceOrder"),
        ('{"stream":"!markPrice@arr@1s","data":[{"s":"BTCUSDT"}]}', "invalid_1s"),
        ('{"error":{"code":2,"msg":"Invalid request"},"id":1}', "venue_error"),
        ('{"hello":"world"}', "unknown_frame"),
        (
            '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT",'
            '"S":"HOLD","q":"1","p":"1","ap":"1","z":"1","T":1}}}',
            "invalid_side",
        ),
    ],
)
def test_bad_frames_are_counted_by_reason_and_dropped(frame: str, reason: str) -> None:
    parser = BinanceUsdmParser(VENUE, MARKETS, None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors[reason] == 1


def test_subscribe_ack_is_not_an_error() -> None:
    parser = BinanceUsdmParser(VENUE, MARKETS, None)
    assert parser.parse('{"result":null,"id":1}', recv_ms=1) == []
    assert not parser.stats.errors


def test_funding_info_lists_only_adjusted_intervals() -> None:
    rows = [
        {
            "symbol": "BLZUSDT",
            "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000",
            "fundingIntervalHours": 4,
            "disclaimer": False,
        },
        {"symbol": "BROKEN", "fundingIntervalHours": 0},
    ]
    assert parse_funding_info(rows) == {"BLZUSDT": 4.0}


def test_the_venue_subscribes_on_the_routed_market_path() -> None:
    venue = BinanceUsdm(VenueSettings())
    conn, liquidations, top, trades = venue.connections(MARKETS)  # no depth set yet
    assert conn.url == liquidations.url == "wss://fstream.binance.com/market/stream"
    # The liquidations' own connection, the quiet lane: not behind the marks and books.
    assert (liquidations.name, liquidations.quiet, conn.quiet) == ("liquidations", True, False)
    assert json.loads(liquidations.subscribe[0])["params"] == ["!forceOrder@arr"]
    # bookTicker and depth are /public data, aggTrade /market data (the routed paths)
    assert (top.name, top.url) == ("book-top", "wss://fstream.binance.com/public/stream")
    assert json.loads(top.subscribe[0])["params"] == ["!bookTicker"]
    assert (trades.name, trades.url) == ("trades-1", "wss://fstream.binance.com/market/stream")
    assert json.loads(trades.subscribe[0])["params"] == [
        f"{s.lower()}@aggTrade" for s in sorted(MARKETS)
    ]
    assert conn.ping is None  # Binance pings; the websockets library answers
    (sub,) = conn.subscribe
    assert json.loads(sub) == {
        "method": "SUBSCRIBE",
        "params": ["!markPrice@arr@1s"],
        "id": 1,
    }
    overridden = BinanceUsdm(
        VenueSettings(ws_url="ws://127.0.0.1:9443/market/", rest_url="http://127.0.0.1:9080")
    )
    assert overridden.connections(MARKETS)[0].url == "ws://127.0.0.1:9443/market/stream"
    assert overridden.rest_url == "http://127.0.0.1:9080"
