"""The Binance COIN-M parser on every COIN-M frame in ../shared/captures, with the contract sizes
of the recorded ``/dapi/v1/exchangeInfo``; expected values are worked out here from the frames
and that metadata (inverse: USD = contracts x contract size, coin = USD / price)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import Instrument
from service.venues.binance.coinm import (
    BinanceCoinm,
    BinanceCoinmParser,
    mark_stream,
    pair_of,
    parse_funding_info,
    parse_open_interest,
    parse_premium_index,
)

VENUE = "binance_coinm"


def _exchange_info(captures: Path) -> dict[str, Any]:
    line = (captures / "rest" / "BINANCE_DELIVERY.0.txt").read_text(encoding="utf-8")
    url, _, rest = line.splitlines()[0].partition(" -> ")
    assert url == "https://dapi.binance.com/dapi/v1/exchangeInfo"
    info: dict[str, Any] = json.loads(rest.split(": ", 1)[1])
    return info


def _sizes_by_pair(captures: Path) -> dict[str, float]:
    """Contract size (USD) of each pair, as every contract of the pair lists it."""
    sizes: dict[str, set[float]] = {}
    for row in _exchange_info(captures)["symbols"]:
        sizes.setdefault(row["pair"], set()).add(float(row["contractSize"]))
    assert all(len(s) == 1 for s in sizes.values())
    return {pair: s.pop() for pair, s in sizes.items()}


def _lines(captures: Path) -> list[dict[str, Any]]:
    path = captures / "binance_coinm.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _payload(raw: str) -> Any:
    msg = json.loads(raw)
    return msg["data"] if isinstance(msg, dict) and "stream" in msg else msg


def _markets(captures: Path, interval_h: float = 8.0) -> dict[str, Instrument]:
    """Every contract of the recorded exchangeInfo plus the (older) contracts of the frames,
    each sized by its pair's recorded contract size."""
    sizes = _sizes_by_pair(captures)
    symbols = {row["symbol"] for row in _exchange_info(captures)["symbols"]}
    symbols |= {"BTCUSD_200925", "BTCUSD_201225"}  # 2020 delivery contracts in the frames
    return {
        s: Instrument(
            VENUE,
            s,
            pair_of(s).removesuffix("USD"),
            "USD",
            linear=False,
            contract_size=sizes[pair_of(s)],
            funding_interval_h=interval_h,
        )
        for s in symbols
    }


def test_recorded_contract_sizes_are_100_usd_for_btc_and_10_usd_for_the_others(
    captures: Path,
) -> None:
    rows = _exchange_info(captures)["symbols"]
    assert len(rows) == 36
    for row in rows:
        assert pair_of(row["symbol"]) == row["pair"]
        assert row["contractSize"] == (100 if row["pair"] == "BTCUSD" else 10)
    perpetuals = {r["symbol"] for r in rows if r["contractType"] == "PERPETUAL"}
    assert {"BTCUSD_PERP", "ETHUSD_PERP", "BNBUSD_PERP", "XRPUSD_PERP"} <= perpetuals


def test_every_mark_price_frame_gives_marks_and_funding_only_for_perpetuals(
    captures: Path,
) -> None:
    markets = _markets(captures)
    frames = [
        str(d["raw"])
        for d in _lines(captures)
        if d["kind"] == "mark_index" and "markPriceUpdate" in str(d["raw"])
    ]
    assert len(frames) == 2  # one real per-symbol frame, the doc's per-pair array
    perpetual = delivery = 0
    for raw in frames:
        data = _payload(raw)
        updates = data if isinstance(data, list) else [data]
        parser = BinanceCoinmParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=123)
        assert not parser.stats.errors, raw
        marks = {e.symbol: e for e in events if isinstance(e, MarkPrice)}
        funding = {e.symbol: e for e in events if isinstance(e, FundingRate)}
        assert set(marks) == {u["s"] for u in updates}
        for u in updates:
            m = marks[u["s"]]
            assert m.mark_price == pytest.approx(float(u["p"]))
            assert m.index_price == (float(u["i"]) if "i" in u else None)
            assert (m.ts_ms, m.recv_ms, m.base) == (u["E"], 123, "BTC")
            assert parser.last_mark[u["s"]] == pytest.approx(float(u["p"]))
            if not u.get("r") or not u.get("T"):  # a delivery contract: no funding
                delivery += 1
                assert u["s"] not in funding
                continue
            perpetual += 1
            f = funding[u["s"]]
            assert f.funding_rate == pytest.approx(float(u["r"]))
            assert f.interval_h == 8.0
            assert f.funding_rate_1h == pytest.approx(float(u["r"]) / 8)
            assert f.next_funding_ms == u["T"]
    assert (perpetual, delivery) == (1, 2)


def test_every_liquidation_frame_is_the_position_side_sized_in_contracts(captures: Path) -> None:
    markets = _markets(captures)
    frames = [str(d["raw"]) for d in _lines(captures) if d["kind"] == "liquidation"]
    assert len(frames) == 2  # the real tardis frame, the doc example
    for raw in frames:
        order = _payload(raw)["o"]
        assert order["ps"] == pair_of(order["s"])
        size = _sizes_by_pair(captures)[order["ps"]]
        (liq,) = BinanceCoinmParser(VENUE, markets, None).parse(raw, recv_ms=1)
        assert isinstance(liq, Liquidation)
        # The order side SELL closes a long position; BUY closes a short.
        assert liq.side == (Side.LONG if order["S"] == "SELL" else Side.SHORT)
        contracts, price = float(order["z"]), float(order["ap"])
        assert liq.quantity == pytest.approx(contracts)
        assert liq.price == pytest.approx(price)
        assert liq.notional_usd == pytest.approx(contracts * size)
        assert liq.quantity_base == pytest.approx(contracts * size / price)
        assert liq.ts_ms == order["T"]
        assert liq.sampled is True
        assert liq.event_id == f"{order['T']}:{order['S']}:{order['z']}:{order['ap']}"


def test_the_real_tardis_liquidation_is_a_long_of_three_100_usd_contracts(
    captures: Path,
) -> None:
    raw = next(
        str(d["raw"])
        for d in _lines(captures)
        if d["kind"] == "liquidation" and "tardis" in str(d["provenance"])
    )
    (liq,) = BinanceCoinmParser(VENUE, _markets(captures), None).parse(raw, recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert (liq.symbol, liq.side) == ("BTCUSD_200925", Side.LONG)
    assert liq.notional_usd == pytest.approx(300.0)
    assert liq.quantity_base == pytest.approx(300.0 / 9352.7)


def test_the_rest_wrapped_open_interest_is_no_frame_and_reads_as_rest_contracts(
    captures: Path,
) -> None:
    (line,) = [d for d in _lines(captures) if d["kind"] == "open_interest"]
    raw = str(line["raw"])
    wrapped = json.loads(raw)
    assert wrapped["generated"] is True  # tardis polled REST and wrapped the reply
    parser = BinanceCoinmParser(VENUE, _markets(captures), None)
    assert parser.parse(raw, recv_ms=1) == []
    assert parser.stats.errors == {"rest_pseudo_frame": 1}

    body = wrapped["data"]
    assert set(body) == {"symbol", "pair", "openInterest", "contractType", "time"}
    # Valued at the mark the same recording has for the same contract.
    mark_frame = next(
        _payload(str(d["raw"]))
        for d in _lines(captures)
        if '"markPriceUpdate"' in str(d["raw"]) and body["symbol"] in str(d["raw"])
    )
    mark = float(mark_frame["p"])
    inst = _markets(captures)[body["symbol"]]
    for payload in (json.dumps(body), body):  # raw text, or the dict ccxt returns
        oi = parse_open_interest(payload, inst, mark=mark, recv_ms=5)
        assert isinstance(oi, OpenInterest)
        contracts = float(body["openInterest"])
        assert oi.oi_contracts == contracts
        assert oi.oi_usd == pytest.approx(contracts * 100.0)
        assert oi.oi_base == pytest.approx(contracts * 100.0 / mark)
        assert (oi.ts_ms, oi.recv_ms, oi.symbol) == (body["time"], 5, body["symbol"])


def test_other_streams_are_counted_as_unknown_and_the_ack_is_no_error(captures: Path) -> None:
    parser = BinanceCoinmParser(VENUE, _markets(captures), None)
    others = [
        str(d["raw"])
        for d in _lines(captures)
        if d["kind"] in ("trade", "ticker_funding_oi_mark", "protocol")
        or "indexPriceUpdate" in str(d["raw"])
    ]
    assert len(others) == 5
    assert all(parser.parse(raw, recv_ms=1) == [] for raw in others)
    assert parser.stats.errors == {"unknown_stream": 4}  # indexPrice, ticker, two trades


def test_a_pair_array_keeps_only_the_configured_perpetual(captures: Path) -> None:
    raw = next(
        str(d["raw"]) for d in _lines(captures) if str(d["raw"]).startswith("[")
    )  # the doc's raw-mode btcusd@markPrice array
    combined = json.dumps({"stream": "btcusd@markPrice@1s", "data": json.loads(raw)})
    for frame in (raw, combined):
        parser = BinanceCoinmParser(VENUE, _markets(captures), {"BTCUSD_PERP"})
        events = parser.parse(frame, recv_ms=1)
        assert [(type(e), e.symbol) for e in events] == [
            (MarkPrice, "BTCUSD_PERP"),
            (FundingRate, "BTCUSD_PERP"),
        ]
        assert parser.stats.filtered == 1  # BTCUSD_201225, a delivery contract
        assert not parser.stats.errors


def test_a_four_hour_symbol_normalizes_funding_per_hour(captures: Path) -> None:
    markets = _markets(captures, interval_h=4.0)
    frame = (
        '{"stream":"ethusd_perp@markPrice@1s","data":{"e":"markPriceUpdate","E":1,'
        '"s":"ETHUSD_PERP","p":"3000.1","P":"3000","i":"3000","r":"0.00040000","T":2}}'
    )
    (mark, funding) = BinanceCoinmParser(VENUE, markets, None).parse(frame, recv_ms=1)
    assert isinstance(mark, MarkPrice)
    assert isinstance(funding, FundingRate)
    assert funding.funding_rate_1h == pytest.approx(0.0001)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        (
            '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1}}',
            "invalid_arr",
        ),
        ('{"stream":"btcusd@markPrice@1s","data":[{"s":"BTCUSD_PERP"}]}', "invalid_1s"),
        ('{"error":{"code":2,"msg":"Invalid request"},"id":1}', "venue_error"),
        ('{"hello":"world"}', "unknown_frame"),
        (
            '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSD_PERP",'
            '"ps":"BTCUSD","S":"HOLD","q":"1","p":"1","ap":"1","z":"1","T":1}}}',
            "invalid_side",
        ),
    ],
)
def test_bad_frames_are_counted_by_reason_and_dropped(
    captures: Path, frame: str, reason: str
) -> None:
    parser = BinanceCoinmParser(VENUE, _markets(captures), None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}


# The official example of GET /dapi/v1/premiumIndex (developers.binance.com, COIN-M "Index
# Price and Mark Price"): a list even for one symbol; delivery rows have no funding.
PREMIUM_INDEX = [
    {
        "symbol": "BTCUSD_PERP",
        "pair": "BTCUSD",
        "markPrice": "11029.69574559",
        "indexPrice": "10979.14437500",
        "estimatedSettlePrice": "10981.74168236",
        "lastFundingRate": "0.00071003",
        "interestRate": "0.00010000",
        "nextFundingTime": 1596096000000,
        "time": 1596094042000,
    },
    {
        "symbol": "BTCUSD_200925",
        "pair": "BTCUSD",
        "markPrice": "12077.01343750",
        "indexPrice": "10979.10312500",
        "estimatedSettlePrice": "10981.74168236",
        "lastFundingRate": "",
        "interestRate": "",
        "nextFundingTime": 0,
        "time": 1596094042000,
    },
]


def test_premium_index_rows_give_mark_and_funding_of_the_asked_symbol(captures: Path) -> None:
    markets = _markets(captures)
    for payload in (json.dumps(PREMIUM_INDEX), PREMIUM_INDEX):
        mark, funding = parse_premium_index(payload, markets["BTCUSD_PERP"], recv_ms=9)
        assert isinstance(mark, MarkPrice)
        assert isinstance(funding, FundingRate)
        assert mark.mark_price == pytest.approx(float(PREMIUM_INDEX[0]["markPrice"]))
        assert funding.funding_rate_1h == pytest.approx(0.00071003 / 8)
        assert funding.next_funding_ms == PREMIUM_INDEX[0]["nextFundingTime"]
        (delivery,) = parse_premium_index(payload, markets["BTCUSD_200925"], recv_ms=9)
        assert isinstance(delivery, MarkPrice)
        assert delivery.mark_price == pytest.approx(12077.0134375)
    with pytest.raises(LookupError):
        parse_premium_index(PREMIUM_INDEX, markets["ETHUSD_PERP"], recv_ms=9)


def test_funding_info_lists_the_adjusted_intervals() -> None:
    # The official example of GET /dapi/v1/fundingInfo (COIN-M "Get Funding Rate Info").
    rows = [
        {
            "symbol": "BTCUSD_PERP",
            "adjustedFundingRateCap": "0.02500000",
            "adjustedFundingRateFloor": "-0.02500000",
            "fundingIntervalHours": 8,
            "disclaimer": False,
        }
    ]
    assert parse_funding_info(rows) == {"BTCUSD_PERP": 8.0}


def test_the_venue_subscribes_liquidations_and_each_wanted_perpetuals_mark(
    captures: Path,
) -> None:
    markets = {s: i for s, i in _markets(captures).items() if s.endswith("_PERP")}
    venue = BinanceCoinm(VenueSettings(symbols=["ETHUSD_PERP", "BTCUSD_PERP"]))
    conn, liquidations, top, trades = venue.connections(markets)  # no depth set yet
    assert conn.url == "wss://dstream.binance.com/stream"  # no /market routing on dstream
    assert top.url == trades.url == liquidations.url == conn.url
    # The liquidations' own connection, the quiet lane: not behind the marks and books.
    assert (liquidations.name, liquidations.quiet, conn.quiet) == ("liquidations", True, False)
    assert json.loads(liquidations.subscribe[0])["params"] == ["!forceOrder@arr"]
    assert json.loads(top.subscribe[0])["params"] == ["!bookTicker"]
    assert json.loads(trades.subscribe[0])["params"] == [
        "btcusd_perp@aggTrade",
        "ethusd_perp@aggTrade",
    ]
    assert conn.ping is None  # Binance pings; the websockets library answers
    (sub,) = conn.subscribe
    assert json.loads(sub) == {
        "method": "SUBSCRIBE",
        "params": ["btcusd_perp@markPrice@1s", "ethusd_perp@markPrice@1s"],
        "id": 1,
    }
    everything = json.loads(BinanceCoinm(VenueSettings()).connections(markets)[0].subscribe[0])
    assert everything["params"] == sorted(mark_stream(s) for s in markets)
    assert len(everything["params"]) == 18  # every recorded perpetual: far below 1024
    overridden = BinanceCoinm(
        VenueSettings(ws_url="ws://127.0.0.1:9443/", rest_url="http://127.0.0.1:9080")
    )
    assert overridden.connections({})[0].url == "ws://127.0.0.1:9443/stream"
    assert overridden.rest_url == "http://127.0.0.1:9080"
    assert (venue.oi_over_rest, venue.liquidations_sampled) == (True, True)
