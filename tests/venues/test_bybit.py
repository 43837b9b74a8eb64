"""The Bybit v5 parser on every Bybit frame in ../shared/captures, values worked out here from
the frames themselves and the contract metadata (linear: 1 base unit, inverse: 1 USD)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from service.config import StressSettings, VenueSettings
from service.events import (
    AdlLevel,
    AdlRisk,
    BookTop,
    Event,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
)
from service.venues._volume import CLOSE_AFTER_MS
from service.venues.base import Connection, Instrument
from service.venues.bybit.simulator.wire import load_instruments  # the recorded listings
from service.venues.bybit.venue import (
    LIQUIDATION_SYMBOLS_PER_CONNECTION,
    MAX_ARGS_CHARS,
    SYMBOLS_PER_CONNECTION,
    Bybit,
    BybitParser,
    parse_instruments,
)

VENUE = "bybit"


def _linear(symbol: str, base: str, interval_h: float = 8.0) -> Instrument:
    return Instrument(VENUE, symbol, base, "USDT", linear=True, funding_interval_h=interval_h)


def _inverse(symbol: str, base: str) -> Instrument:
    return Instrument(VENUE, symbol, base, "USD", linear=False, contract_size=1.0)


# Perpetuals only, as load_markets lists them; the legacy frames' symbols are listed too, so
# that an obsolete frame is rejected for what it is, not because its symbol is unknown.
MARKETS = {
    i.symbol: i
    for i in (
        _linear("BTCUSDT", "BTC"),
        _linear("ROSEUSDT", "ROSE"),
        _linear("PIPPINUSDT", "PIPPIN"),
        _linear("GALAUSDT", "GALA"),
        _linear("LINKUSDT", "LINK"),
        _linear("XLMUSDT", "XLM"),
        _linear("LTCUSDT", "LTC"),
        _linear("BTCPERP", "BTC"),
        _inverse("BTCUSD", "BTC"),
        _inverse("ETHUSD", "ETH"),
        _inverse("XRPUSD", "XRP"),
        _inverse("EOSUSD", "EOS"),
    )
}


def _lines(captures: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (captures / "bybit.jsonl").read_text().splitlines()]


def _message(line: dict[str, Any]) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(line["raw"])
    return msg


def _topic(line: dict[str, Any]) -> str:
    return str(_message(line).get("topic", ""))


def _frame(captures: Path, topic: str, kind: str) -> str:
    """The first captured frame of ``topic`` and ``type``."""
    return next(
        str(line["raw"])
        for line in _lines(captures)
        if _topic(line) == topic and _message(line).get("type") == kind
    )


def _only(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# -- liquidations ------------------------------------------------------------------------------


def test_every_all_liquidation_frame_gives_position_side_and_notional(captures: Path) -> None:
    frames = [line for line in _lines(captures) if _topic(line).startswith("allLiquidation.")]
    assert len(frames) >= 3  # two real (the same message twice) and the docs' example
    for line in frames:
        msg = _message(line)
        parser = BybitParser(VENUE, MARKETS, None)
        events = parser.parse(line["raw"], recv_ms=7)
        assert not parser.stats.errors, line["raw"]
        assert len(events) == len(msg["data"])
        for row, liq in zip(msg["data"], events, strict=True):
            assert isinstance(liq, Liquidation)
            # S is the position side: Buy = a long was liquidated (Binance: the opposite).
            assert liq.side is (Side.LONG if row["S"] == "Buy" else Side.SHORT)
            v, p = float(row["v"]), float(row["p"])
            assert liq.quantity == pytest.approx(v)
            assert liq.quantity_base == pytest.approx(v)  # linear: base coin
            assert liq.price == pytest.approx(p)  # the bankruptcy price
            assert liq.notional_usd == pytest.approx(v * p)
            assert liq.ts_ms == row["T"]
            assert liq.recv_ms == 7
            assert liq.symbol == row["s"]
            assert liq.base == MARKETS[row["s"]].base
            assert liq.sampled is False  # allLiquidation pushes every liquidation
            assert liq.event_id == f"{row['T']}:{row['S']}:{row['v']}:{row['p']}"


def test_the_real_pippin_liquidation_is_a_short_and_its_copy_has_the_same_identity(
    captures: Path,
) -> None:
    copies = [
        line["raw"]
        for line in _lines(captures)
        if _topic(line) == "allLiquidation.PIPPINUSDT" and "tardis" in line["provenance"]
    ]
    assert len(copies) == 2
    (first,) = BybitParser(VENUE, MARKETS, None).parse(copies[0], recv_ms=1)
    (second,) = BybitParser(VENUE, MARKETS, None).parse(copies[1], recv_ms=2)
    assert isinstance(first, Liquidation)
    assert isinstance(second, Liquidation)
    assert first.side is Side.SHORT  # "S":"Sell": a short position was liquidated
    assert first.notional_usd == pytest.approx(2846 * 0.02456)
    assert first.event_id == second.event_id  # a re-sent liquidation keeps its identity


def test_an_inverse_batch_is_worth_its_usd_contracts() -> None:
    # Hand-made in the documented shape: no inverse allLiquidation frame was captured.
    frame = json.dumps(
        {
            "topic": "allLiquidation.BTCUSD",
            "type": "snapshot",
            "ts": 1680673944593,
            "data": [
                {"T": 1680673944093, "s": "BTCUSD", "S": "Buy", "v": "2000", "p": "28560.50"},
                {"T": 1680673944101, "s": "BTCUSD", "S": "Sell", "v": "35", "p": "28600.00"},
            ],
        }
    )
    long, short = BybitParser(VENUE, MARKETS, None).parse(frame, recv_ms=1)
    assert isinstance(long, Liquidation)
    assert isinstance(short, Liquidation)
    assert (long.side, short.side) == (Side.LONG, Side.SHORT)
    assert long.quantity == 2000  # USD contracts
    assert long.notional_usd == pytest.approx(2000 * 1.0)  # 1 USD per contract
    assert long.quantity_base == pytest.approx(2000 / 28560.50)
    assert short.notional_usd == pytest.approx(35.0)
    assert short.quantity_base == pytest.approx(35 / 28600.0)
    assert long.event_id != short.event_id


def test_liquidations_of_unlisted_or_unwanted_symbols_are_filtered() -> None:
    frame = json.dumps(
        {
            "topic": "allLiquidation.ROSEUSDT",
            "type": "snapshot",
            "ts": 3,
            "data": [
                {"T": 1, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"},
                {"T": 2, "s": "NEWUSDT", "S": "Sell", "v": "1", "p": "1"},
            ],
        }
    )
    parser = BybitParser(VENUE, MARKETS, {"BTCUSDT"})
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.filtered == 2
    assert not parser.stats.errors


# -- tickers -------------------------------------------------------------------------------------


def test_every_ticker_snapshot_gives_mark_funding_per_hour_and_open_interest(
    captures: Path,
) -> None:
    snapshots = [
        line
        for line in _lines(captures)
        if _topic(line).startswith("tickers.")
        and _message(line)["type"] == "snapshot"
        and _message(line)["data"]["symbol"] in MARKETS
    ]
    assert len(snapshots) >= 4
    for line in snapshots:
        msg = _message(line)
        d, inst = msg["data"], MARKETS[msg["data"]["symbol"]]
        parser = BybitParser(VENUE, MARKETS, None)
        events = parser.parse(line["raw"], recv_ms=5)
        assert not parser.stats.errors, line["raw"]
        mark, oi_units = float(d["markPrice"]), float(d["openInterest"])
        (m,) = _only(events, MarkPrice)
        assert m.mark_price == pytest.approx(mark)
        assert m.index_price == pytest.approx(float(d["indexPrice"]))
        assert m.ts_ms == msg["ts"]
        (f,) = _only(events, FundingRate)
        hours = float(d.get("fundingIntervalHour") or inst.funding_interval_h)
        assert f.funding_rate == pytest.approx(float(d["fundingRate"]))
        assert f.interval_h == hours
        assert f.funding_rate_1h == pytest.approx(float(d["fundingRate"]) / hours)
        assert f.next_funding_ms == int(d["nextFundingTime"])
        (oi,) = _only(events, OpenInterest)
        value = float(d["openInterestValue"])
        # These recordings predate singleOpenInterest: openInterest counts both sides (the
        # docs since 2026-06-11; the announcement's "current method" example is 2x), so one
        # side is half of it.
        assert "singleOpenInterest" not in d
        one = oi_units / 2
        if inst.linear:  # openInterest in base coin; the venue's value is OI x mark (USDT)
            assert value == pytest.approx(oi_units * mark, rel=1e-6)
            assert oi.oi_base == pytest.approx(one)
            assert oi.oi_usd == pytest.approx(one * mark)
        else:  # openInterest in USD contracts; the venue's value is OI / mark (coin)
            assert value == pytest.approx(oi_units / mark, rel=1e-5)
            assert oi.oi_usd == pytest.approx(one)
            assert oi.oi_base == pytest.approx(one / mark)
        assert oi.oi_contracts == pytest.approx(one)
        assert parser.last_mark == {d["symbol"]: pytest.approx(mark)}


# Since 2026-06-11 the v5 ticker docs list "openInterest | Open interest size (both sides)",
# "openInterestValue | ... (both sides)", "singleOpenInterest | Open interest size (single
# side)" and "singleOpenInterestValue | ... (single side)"; the page's sample frame does not
# show the new fields, so the frames below are built from the documented names.
SINGLE_SIDED_SNAPSHOT = (
    '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
    '"tickDirection":"PlusTick","price24hPcnt":"0.017103","lastPrice":"100000.00",'
    '"markPrice":"100010.00","indexPrice":"100020.00","openInterest":"52664.642",'
    '"openInterestValue":"5266990846.42","singleOpenInterest":"26332.321",'
    '"singleOpenInterestValue":"2633495423.21","fundingRate":"0.0001",'
    '"nextFundingTime":"1781164800000","fundingIntervalHour":"8"},'
    '"cs":24987956059,"ts":1781150000000}'
)


def test_one_sided_open_interest_is_read_from_single_open_interest() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    (oi,) = _only(parser.parse(SINGLE_SIDED_SNAPSHOT, recv_ms=1), OpenInterest)
    assert not parser.stats.errors
    assert oi.oi_contracts == oi.oi_base == 26332.321  # one side, not 52664.642
    assert oi.oi_usd == pytest.approx(26332.321 * 100010.00)  # 2,633,495,423.2 USD
    # A delta that moves both figures: the single side is read.
    delta = (
        '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",'
        '"openInterest":"52700.000","singleOpenInterest":"26350.000"},"cs":24987956060,'
        '"ts":1781150001000}'
    )
    (oi,) = _only(parser.parse(delta, recv_ms=2), OpenInterest)
    assert oi.oi_base == 26350.0
    assert oi.oi_usd == pytest.approx(26350.0 * 100010.00)


def test_one_side_is_half_of_open_interest_when_only_both_sides_are_sent() -> None:
    frame = SINGLE_SIDED_SNAPSHOT.replace(',"singleOpenInterest":"26332.321"', "")
    parser = BybitParser(VENUE, MARKETS, None)
    (oi,) = _only(parser.parse(frame, recv_ms=1), OpenInterest)
    assert oi.oi_base == pytest.approx(52664.642 / 2)
    inverse = (
        '{"topic":"tickers.BTCUSD","type":"snapshot","data":{"symbol":"BTCUSD",'
        '"markPrice":"60000.00","openInterest":"63910691","singleOpenInterest":"31955346"},'
        '"cs":1,"ts":1781150000000}'
    )  # the docs' open-interest example figures: 63910691 both sides, 31955346 one side
    (oi,) = _only(BybitParser(VENUE, MARKETS, None).parse(inverse, recv_ms=1), OpenInterest)
    assert oi.oi_usd == 31955346.0  # inverse: 1 USD a contract
    assert oi.oi_base == pytest.approx(31955346 / 60000.0)


def test_the_real_inverse_delta_merges_into_its_snapshot(captures: Path) -> None:
    snapshot = _frame(captures, "tickers.BTCUSD", "snapshot")
    delta = _frame(captures, "tickers.BTCUSD", "delta")
    s, d = json.loads(snapshot), json.loads(delta)
    parser = BybitParser(VENUE, MARKETS, None)
    parser.state_every_ms = 0  # report every frame (the conflation has its own test)
    parser.parse(snapshot, recv_ms=1)
    events = parser.parse(delta, recv_ms=2)
    assert not parser.stats.errors
    assert _only(events, MarkPrice) == []  # no markPrice or indexPrice in the delta
    (oi,) = _only(events, OpenInterest)
    mark = float(s["data"]["markPrice"])  # unchanged: the snapshot's
    one = float(d["data"]["openInterest"]) / 2  # both sides sent: one side is half
    assert oi.oi_usd == pytest.approx(one)
    assert oi.oi_base == pytest.approx(one / mark)
    assert oi.ts_ms == d["ts"]
    (f,) = _only(events, FundingRate)
    assert f.funding_rate == pytest.approx(float(d["data"]["fundingRate"]))
    assert f.next_funding_ms == int(s["data"]["nextFundingTime"])  # from the snapshot
    assert f.interval_h == MARKETS["BTCUSD"].funding_interval_h  # 2023: no fundingIntervalHour


def test_changes_are_reported_once_a_second_with_the_merged_state(captures: Path) -> None:
    snapshot = _frame(captures, "tickers.BTCUSD", "snapshot")
    delta = _frame(captures, "tickers.BTCUSD", "delta")  # 199 ms after the snapshot
    s, d = json.loads(snapshot), json.loads(delta)
    parser = BybitParser(VENUE, MARKETS, None)
    first = parser.parse(snapshot, recv_ms=1)  # a snapshot is reported at once
    assert len(first) == 4
    assert len(_only(first, BookTop)) == 1
    assert parser.parse(delta, recv_ms=2) == []  # merged, reported later
    quiet = {"topic": "tickers.BTCUSD", "type": "delta", "cs": 20856433703}
    later = {**quiet, "data": {"symbol": "BTCUSD", "bid1Price": "28560.50"}, "ts": s["ts"] + 999}
    assert parser.parse(json.dumps(later), recv_ms=3) == []  # not a second yet
    later["ts"] = s["ts"] + 1000
    events = parser.parse(json.dumps(later), recv_ms=4)
    (oi,) = _only(events, OpenInterest)  # the delta's open interest, a second later
    assert oi.oi_usd == pytest.approx(float(d["data"]["openInterest"]) / 2)
    assert oi.ts_ms == s["ts"] + 1000
    (f,) = _only(events, FundingRate)
    assert f.funding_rate == pytest.approx(float(d["data"]["fundingRate"]))
    (book,) = _only(events, BookTop)  # the later frame's bid, with the delta's sizes
    assert book.bid_price == 28560.50
    assert book.bid_usd == pytest.approx(float(d["data"].get("bid1Size", s["data"]["bid1Size"])))
    assert _only(events, MarkPrice) == []  # the mark never changed
    marks = []
    for step in range(1, 26):  # the mark changes every 100 ms for 2.5 s
        frame = {
            **quiet,
            "data": {"symbol": "BTCUSD", "markPrice": f"{28560 + step}.00"},
            "ts": s["ts"] + 1000 + 100 * step,
        }
        marks += _only(parser.parse(json.dumps(frame), recv_ms=5), MarkPrice)
    # Last reported with the snapshot: then once a second, with the mark of that moment.
    reported = [(m.ts_ms - s["ts"], m.mark_price) for m in marks]
    assert reported == [(1100, 28561.0), (2100, 28571.0), (3100, 28581.0)]
    later["ts"] = s["ts"] + 4100  # a frame without a mark: the pending one goes out
    (last,) = _only(parser.parse(json.dumps(later), recv_ms=6), MarkPrice)
    assert last.mark_price == 28585.0  # the last change (at 3500 ms), late but not lost


def test_a_new_sessions_snapshot_keeps_the_reports_once_a_second(captures: Path) -> None:
    """A reconnect's or a rotation's successor's snapshot replaces the state, within a second
    of the last report: its figures wait for their second (seen as two tops 200-600 ms apart
    in the live tests' store, under load, when a fresh state forgot the last report)."""
    snapshot = json.loads(_frame(captures, "tickers.BTCUSDT", "snapshot"))  # real, 2023
    parser = BybitParser(VENUE, MARKETS, None)
    first = parser.parse(json.dumps(snapshot), recv_ms=1)
    assert {type(e) for e in first} >= {MarkPrice, BookTop}
    again = {**snapshot, "ts": snapshot["ts"] + 300}  # the new session's, 300 ms later
    assert parser.parse(json.dumps(again), recv_ms=2) == []
    delta = {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "data": {"symbol": "BTCUSDT", "markPrice": "28560.10"},
        "cs": 1,
        "ts": snapshot["ts"] + 1000,
    }
    late = parser.parse(json.dumps(delta), recv_ms=3)  # its second: the snapshot's top too
    assert {type(e) for e in late} >= {MarkPrice, BookTop}
    times = sorted({e.ts_ms for e in first + late if isinstance(e, BookTop)})
    assert times == [snapshot["ts"], snapshot["ts"] + 1000]


def test_a_delta_without_funding_rate_keeps_the_old_rate(captures: Path) -> None:
    snapshot = _frame(captures, "tickers.BTCUSDT", "snapshot")  # the first: real, 2023
    msg = json.loads(snapshot)
    s = msg["data"]
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(snapshot, recv_ms=1)
    delta = {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "data": {"symbol": "BTCUSDT", "markPrice": "28560.10", "nextFundingTime": "1680710400000"},
        "cs": 50193544290,
        "ts": msg["ts"] + 1000,
    }
    events = parser.parse(json.dumps(delta), recv_ms=2)
    (m,) = _only(events, MarkPrice)
    assert m.mark_price == pytest.approx(28560.10)
    assert m.index_price == pytest.approx(float(s["indexPrice"]))  # unchanged
    (f,) = _only(events, FundingRate)
    assert f.funding_rate == pytest.approx(float(s["fundingRate"]))  # unchanged
    assert f.next_funding_ms == 1680710400000
    assert _only(events, OpenInterest) == []  # openInterest unchanged: nothing to report
    # A delta that changes the interval changes the per-hour rate, not the quoted rate.
    delta["data"] = {"symbol": "BTCUSDT", "fundingIntervalHour": "4"}
    delta["ts"] = msg["ts"] + 2000
    (f4,) = parser.parse(json.dumps(delta), recv_ms=3)
    assert isinstance(f4, FundingRate)
    assert f4.interval_h == 4.0
    assert f4.funding_rate_1h == pytest.approx(float(s["fundingRate"]) / 4)


def test_a_new_snapshot_replaces_the_whole_state(captures: Path) -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(
        '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
        '"markPrice":"1.0","fundingRate":"0.0008","fundingIntervalHour":"1",'
        '"nextFundingTime":"1680674400000"},"ts":1}',
        recv_ms=1,
    )
    real = _frame(captures, "tickers.BTCUSDT", "snapshot")  # without fundingIntervalHour
    (f,) = _only(parser.parse(real, recv_ms=2), FundingRate)
    assert f.interval_h == MARKETS["BTCUSDT"].funding_interval_h  # not the old "1"


def test_a_delta_before_any_snapshot_is_counted_and_reports_only_what_it_can(
    captures: Path,
) -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    delta = _frame(captures, "tickers.BTCUSD", "delta")
    events = parser.parse(delta, recv_ms=1)
    assert parser.stats.errors["delta_before_snapshot"] == 1
    assert _only(events, OpenInterest) == []  # no mark yet to value it
    (f,) = _only(events, FundingRate)
    assert f.next_funding_ms is None


def test_dated_futures_have_no_funding_and_are_filtered_unless_listed(captures: Path) -> None:
    future = _frame(captures, "tickers.BTCUSDU23", "snapshot")
    parser = BybitParser(VENUE, MARKETS, None)
    assert parser.parse(future, recv_ms=1) == []  # not a perpetual: not in the markets
    assert parser.stats.filtered == 1
    listed = {**MARKETS, "BTCUSDU23": _inverse("BTCUSDU23", "BTC")}
    parser = BybitParser(VENUE, listed, None)
    events = parser.parse(future, recv_ms=1)
    assert _only(events, FundingRate) == []  # "fundingRate":"" on a dated future
    assert len(_only(events, MarkPrice)) == 1
    assert parser.parse(_frame(captures, "tickers.BTCUSDU23", "delta"), recv_ms=2) == []
    assert not parser.stats.errors
    linear_future = _frame(captures, "tickers.BTC-26DEC25", "snapshot")  # the docs' example
    d = json.loads(linear_future)["data"]
    assert (d["fundingRate"], d["nextFundingTime"]) == ("", "")
    listed = {"BTC-26DEC25": _linear("BTC-26DEC25", "BTC")}
    events = BybitParser(VENUE, listed, None).parse(linear_future, recv_ms=1)
    assert _only(events, FundingRate) == []
    (oi,) = _only(events, OpenInterest)
    assert oi.oi_usd == pytest.approx(float(d["openInterest"]) / 2 * float(d["markPrice"]))


# -- everything else in the captures ------------------------------------------------------------


def _obsolete(line: dict[str, Any]) -> bool:
    legacy = "OBSOLETE" in str(line.get("endpoint")) or "realtime" in str(line.get("endpoint"))
    return line["kind"] != "client_request" and (legacy or _topic(line).startswith("liquidation."))


def test_every_obsolete_frame_is_counted_and_never_parsed(captures: Path) -> None:
    obsolete = [line for line in _lines(captures) if _obsolete(line)]
    topics = {_topic(line).split(".")[0] for line in obsolete}
    assert {"instrument_info", "trade", "liquidation", ""} <= topics  # "": pre-v5 acks
    v5_liquidation = [line for line in obsolete if "v5" in str(line.get("endpoint"))]
    assert len(v5_liquidation) == 3  # the deprecated object form of liquidation.{symbol}
    parser = BybitParser(VENUE, MARKETS, None)
    for line in obsolete:
        assert parser.parse(line["raw"], recv_ms=1) == [], line["raw"]
    assert parser.stats.errors == {"obsolete_frame": len(obsolete)}


def test_public_trades_without_volume_are_filtered(captures: Path) -> None:
    trades = [line for line in _lines(captures) if _topic(line).startswith("publicTrade.")]
    assert len(trades) == 2
    parser = BybitParser(VENUE, MARKETS, None)  # a bare parser: the venue's volume is off
    for line in trades:
        assert parser.parse(line["raw"], recv_ms=1) == []
    assert parser.stats.errors == {}
    assert parser.stats.filtered == 2


def _volume_parser(wanted: set[str] | None = None) -> BybitParser:
    parser = Bybit(VenueSettings()).new_parser(MARKETS, wanted)
    assert isinstance(parser, BybitParser)
    assert parser.volumes is not None
    return parser


def test_the_real_inverse_trades_sum_into_one_second_of_usd_contracts(captures: Path) -> None:
    frame = _frame(captures, "publicTrade.BTCUSD", "snapshot")
    rows = json.loads(frame)["data"]
    parser = _volume_parser()
    recv = rows[0]["T"] + 50
    assert parser.parse(frame, recv_ms=recv) == []  # its second is still open
    # 1,000 ms after its second ended, any frame closes it (here an ack)
    closing = (rows[0]["T"] // 1000 + 1) * 1000 + CLOSE_AFTER_MS
    assert parser.parse(ACK, recv_ms=closing - 1) == []
    (vol,) = parser.parse(ACK, recv_ms=closing)
    assert isinstance(vol, Volume)
    assert (vol.venue, vol.symbol, vol.base) == (VENUE, "BTCUSD", "BTC")
    assert vol.ts_ms == rows[0]["T"] // 1000 * 1000
    assert vol.recv_ms == closing
    assert all(r["S"] == "Buy" for r in rows)  # three taker buys at 28,560.50
    usd = sum(float(r["v"]) for r in rows)  # inverse: 1 USD a contract
    assert usd == 5823 + 3 + 5593
    assert vol.taker_buy_usd == pytest.approx(usd)
    assert vol.taker_buy_base == pytest.approx(sum(float(r["v"]) / float(r["p"]) for r in rows))
    assert (vol.taker_sell_base, vol.taker_sell_usd, vol.trades) == (0.0, 0.0, 3)
    assert parser.stats.errors == {}


def test_a_linear_trade_is_its_base_coin_at_its_price(captures: Path) -> None:
    frame = _frame(captures, "publicTrade.LTCUSDT", "snapshot")
    (row,) = json.loads(frame)["data"]
    parser = _volume_parser()
    assert parser.parse(frame, recv_ms=row["T"]) == []
    (vol,) = parser.flush_volumes(row["T"] + 10)  # the collector stopping
    assert isinstance(vol, Volume)
    assert vol.taker_buy_base == pytest.approx(float(row["v"]))  # 0.4 LTC
    assert vol.taker_buy_usd == pytest.approx(float(row["v"]) * float(row["p"]))  # x 94.53
    assert vol.trades == 1


def _trades_frame(symbol: str, *rows: tuple[int, str, str, str]) -> str:
    return json.dumps({
        "topic": f"publicTrade.{symbol}", "type": "snapshot", "ts": rows[-1][0],
        "data": [
            {"T": t, "s": symbol, "S": side, "v": v, "p": p, "L": "PlusTick",
             "i": f"id-{t}-{n}", "BT": False}
            for n, (t, side, v, p) in enumerate(rows)
        ],
    })  # fmt: skip


def test_a_print_of_the_next_second_closes_the_previous_one_split_by_taker_side() -> None:
    parser = _volume_parser()
    t0 = 1_780_000_000_000
    first = _trades_frame(
        "BTCUSDT", (t0 + 100, "Buy", "0.5", "100000"), (t0 + 900, "Sell", "0.25", "99990")
    )
    assert parser.parse(first, recv_ms=t0 + 950) == []
    (vol,) = parser.parse(_trades_frame("BTCUSDT", (t0 + 1_020, "Sell", "1", "99980")),
                          recv_ms=t0 + 1_030)  # fmt: skip
    assert isinstance(vol, Volume)
    assert vol.ts_ms == t0
    assert (vol.taker_buy_base, vol.taker_buy_usd) == (0.5, 50_000.0)
    assert (vol.taker_sell_base, vol.taker_sell_usd) == (0.25, 0.25 * 99_990)
    assert vol.trades == 2
    # a print of a second already reported is late: it counts in the next one, never twice
    late = _trades_frame("BTCUSDT", (t0 + 500, "Buy", "2", "100000"))
    assert parser.parse(late, recv_ms=t0 + 1_100) == []
    (nxt,) = parser.flush_volumes(t0 + 1_200)
    assert isinstance(nxt, Volume)
    assert nxt.ts_ms == t0 + 1_000
    assert (nxt.taker_buy_base, nxt.taker_sell_base, nxt.trades) == (2.0, 1.0, 2)


def test_a_print_delivered_twice_counts_once() -> None:
    """A rotation's two connections both deliver the prints of their overlap: the trade id
    (``i``) keeps each print in the volume once."""
    parser = _volume_parser()
    t0 = 1_780_000_000_000
    frame = _trades_frame(
        "BTCUSDT", (t0 + 100, "Buy", "0.5", "100000"), (t0 + 200, "Sell", "1", "100000")
    )
    assert parser.parse(frame, recv_ms=t0 + 300) == []
    assert parser.parse(frame, recv_ms=t0 + 310) == []  # the successor's copy
    (vol,) = parser.flush_volumes(t0 + 400)
    assert isinstance(vol, Volume)
    assert (vol.taker_buy_base, vol.taker_sell_base, vol.trades) == (0.5, 1.0, 2)
    assert parser.volumes is not None
    assert parser.volumes.duplicates == 2


def test_bad_trade_rows_are_counted_and_the_rest_of_the_batch_kept() -> None:
    parser = _volume_parser({"BTCUSDT"})
    t0 = 1_780_000_000_000
    frame = _trades_frame(
        "BTCUSDT", (t0, "Buy", "x", "100"), (t0, "Hold", "1", "100"), (t0, "Sell", "1", "100")
    )
    assert parser.parse(frame, recv_ms=t0) == []
    assert parser.parse(_trades_frame("LTCUSDT", (t0, "Buy", "1", "90")), recv_ms=t0) == []
    (vol,) = parser.flush_volumes(t0)
    assert isinstance(vol, Volume)
    assert (vol.symbol, vol.taker_sell_usd, vol.trades) == ("BTCUSDT", 100.0, 1)
    assert parser.stats.errors == {"invalid_publicTrade": 2}
    assert parser.stats.filtered == 1  # LTCUSDT: not wanted
    assert parser.parse('{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":{}}',
                        recv_ms=t0) == []  # fmt: skip
    assert parser.stats.errors["invalid_publicTrade"] == 3


def test_client_requests_are_not_server_frames(captures: Path) -> None:
    requests = [line for line in _lines(captures) if line["kind"] == "client_request"]
    assert len(requests) == 16
    parser = BybitParser(VENUE, MARKETS, None)
    for line in requests:
        assert parser.parse(line["raw"], recv_ms=1) == []
    assert parser.stats.errors == {"unknown_frame": 16}


def test_every_captured_line_is_accounted_for(captures: Path) -> None:
    """No capture line is parsed into events except v5 tickers and allLiquidation (and, once
    their second closes, publicTrade's volume)."""
    for line in _lines(captures):
        events = BybitParser(VENUE, MARKETS, None).parse(line["raw"], recv_ms=1)
        if events:
            assert _topic(line).split(".")[0] in ("tickers", "allLiquidation"), line["raw"]


# -- protocol frames and bad frames ------------------------------------------------------------

ACK = (
    '{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f",'
    '"req_id":"","op":"subscribe"}'
)
PONG = (
    '{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260",'
    '"req_id":"","op":"ping"}'
)


def test_acks_and_pongs_are_not_errors() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    assert parser.parse(ACK, recv_ms=1) == []
    assert parser.parse(PONG, recv_ms=1) == []
    assert not parser.stats.errors


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ('{"topic":5}', "invalid_frame"),
        (
            '{"success":false,"ret_msg":"Invalid symbol :[tickers.NOPEUSDT]","conn_id":"x",'
            '"req_id":"linear-1:1","op":"subscribe"}',
            "subscribe_failed",
        ),
        ('{"success":false,"ret_msg":"error","conn_id":"x","op":"ping"}', "venue_error"),
        ('{"hello":"world"}', "unknown_frame"),
        ('{"topic":"kline.1.BTCUSDT","type":"snapshot","ts":1,"data":{}}', "unknown_topic"),
        ('{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{}}', "invalid_orderbook"),
        (
            '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":{"T":1,'
            '"s":"BTCUSDT","S":"Buy","v":"1","p":"1"}}',
            "invalid_allLiquidation",
        ),
        (
            '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,'
            '"s":"BTCUSDT","S":"Hold","v":"1","p":"1"}]}',
            "invalid_side",
        ),
        (
            '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,'
            '"s":"BTCUSDT","S":"Buy","v":"lots","p":"1"}]}',
            "invalid_allLiquidation",
        ),
        (
            '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT"}}',
            "invalid_tickers",
        ),
        (
            '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"BTCUSDT",'
            '"markPrice":"n/a"}}',
            "invalid_tickers",
        ),
        (
            '{"topic":"tickers.BTCUSDT","type":"partial","ts":1,"data":{"symbol":"BTCUSDT"}}',
            "invalid_tickers",
        ),
    ],
)
def test_bad_frames_are_counted_by_reason_and_dropped(frame: str, reason: str) -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}


def test_a_ticker_with_a_bad_field_leaves_the_state_as_it_was() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1000,"data":{"symbol":"BTCUSDT",'
        '"markPrice":"100.5","openInterest":"10"}}',
        recv_ms=1,
    )
    bad = (
        '{"topic":"tickers.BTCUSDT","type":"delta","ts":2000,"data":{"symbol":"BTCUSDT",'
        '"markPrice":"101","openInterest":"x"}}'
    )
    assert parser.parse(bad, recv_ms=2) == []
    assert parser.stats.errors["invalid_tickers"] == 1
    good = '{"topic":"tickers.BTCUSDT","type":"delta","ts":3000,"data":{"symbol":"BTCUSDT",'
    (oi,) = parser.parse(good + '"openInterest":"11"}}', recv_ms=3)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(11 / 2 * 100.5)  # the mark of the last good frame


# -- the venue: connections and instruments ------------------------------------------------------


def _many(n: int) -> dict[str, Instrument]:
    return {f"COIN{i}USDT": _linear(f"COIN{i}USDT", f"COIN{i}") for i in range(n)}


def _topics(conn: Connection) -> list[str]:
    return [t for m in conn.subscribe for t in json.loads(m)["args"]]


def test_the_venue_subscribes_each_category_on_its_path_with_json_pings() -> None:
    venue = Bybit(VenueSettings())
    conns = {c.name: c for c in venue.connections(MARKETS)}
    assert set(conns) == {
        "linear-1", "linear-liquidations-1", "inverse-1", "inverse-liquidations-1"
    }  # fmt: skip
    for name in ("linear-1", "linear-liquidations-1"):
        assert conns[name].url == "wss://stream.bybit.com/v5/public/linear"
    for name in ("inverse-1", "inverse-liquidations-1"):
        assert conns[name].url == "wss://stream.bybit.com/v5/public/inverse"
    for conn in conns.values():  # the quiet lane too: the venue cuts a connection left silent
        assert json.loads(conn.ping or "") == {"req_id": "ping", "op": "ping"}
        assert conn.ping_interval_s == 20.0
        assert conn.pong == '"ret_msg":"pong"'
    requests = [json.loads(m) for m in conns["inverse-1"].subscribe]
    assert all(r["op"] == "subscribe" for r in requests)
    inverse = sorted(s for s, i in MARKETS.items() if not i.linear)
    assert _topics(conns["inverse-1"]) == [
        *(t for s in inverse for t in (f"tickers.{s}", f"publicTrade.{s}")),
        "adlAlert.inverse",  # the pools' ADL state, once per category (stress on by default)
    ]
    assert _topics(conns["inverse-liquidations-1"]) == [f"allLiquidation.{s}" for s in inverse]
    assert _topics(conns["linear-1"])[-2:] == ["adlAlert.USDT", "adlAlert.USDC"]
    linear = sorted(s for s, i in MARKETS.items() if i.linear)
    assert _topics(conns["linear-liquidations-1"]) == [f"allLiquidation.{s}" for s in linear]
    assert json.loads(conns["linear-liquidations-1"].subscribe[0])["req_id"] == (
        "linear-liquidations-1:1"
    )
    overridden = Bybit(
        VenueSettings(ws_url="ws://127.0.0.1:9443/v5/public/", rest_url="http://127.0.0.1:9080")
    )
    assert overridden.connections(MARKETS)[0].url == "ws://127.0.0.1:9443/v5/public/linear"
    assert overridden.rest_url == "http://127.0.0.1:9080"


def test_configured_symbols_are_the_only_ones_subscribed() -> None:
    venue = Bybit(
        VenueSettings(symbols=["BTCUSDT", "ETHUSD"], stress=StressSettings(enabled=False))
    )
    conns = venue.connections(MARKETS)
    args = {c.name: [t for m in c.subscribe for t in json.loads(m)["args"]] for c in conns}
    assert args == {
        "linear-1": ["tickers.BTCUSDT", "publicTrade.BTCUSDT"],
        "linear-liquidations-1": ["allLiquidation.BTCUSDT"],
        "inverse-1": ["tickers.ETHUSD", "publicTrade.ETHUSD"],
        "inverse-liquidations-1": ["allLiquidation.ETHUSD"],
    }


def test_the_liquidations_are_on_quiet_connections_of_their_own() -> None:
    """The quiet lane (:attr:`Connection.quiet`): every ``allLiquidation`` topic on a quiet
    connection that carries nothing else, none on a busy one (tickers, trades, books)."""
    markets = MARKETS | _many(650)
    venue = Bybit(VenueSettings())
    venue.depth_symbols = frozenset({"BTCUSDT", "BTCUSD"})
    conns = venue.connections(markets)
    quiet = [c for c in conns if c.quiet]
    busy = [c for c in conns if not c.quiet]
    assert {c.name for c in quiet} == {
        "linear-liquidations-1", "linear-liquidations-2", "inverse-liquidations-1"
    }  # fmt: skip
    assert {"linear-1", "inverse-1", "linear-depth", "inverse-depth"} <= {c.name for c in busy}
    carried = [t for c in quiet for t in _topics(c)]
    assert all(t.startswith("allLiquidation.") for t in carried)
    assert sorted(carried) == sorted(f"allLiquidation.{s}" for s in markets)  # each once
    assert not any(t.startswith("allLiquidation.") for c in busy for t in _topics(c))


def test_with_volume_off_no_trades_are_subscribed_or_counted() -> None:
    venue = Bybit(VenueSettings(symbols=["BTCUSDT"], volume=False))
    conn, liquidations = venue.connections(MARKETS)
    assert _topics(conn) == ["tickers.BTCUSDT", "adlAlert.USDT", "adlAlert.USDC"]
    assert _topics(liquidations) == ["allLiquidation.BTCUSDT"]
    assert venue.new_parser(MARKETS, {"BTCUSDT"}).volumes is None


def test_many_symbols_are_split_within_the_venue_limits() -> None:
    markets = _many(650)
    conns = Bybit(VenueSettings()).connections(markets)
    per_conn: dict[str, list[str]] = {}
    for conn in conns:
        assert conn.name.startswith("linear-")
        requests = [json.loads(m) for m in conn.subscribe]
        assert all(len(r["args"]) <= 10 for r in requests)  # 10 topics per request
        per_conn[conn.name] = [t for r in requests for t in r["args"]]
        args_chars = len(json.dumps(per_conn[conn.name], separators=(",", ":")))
        assert args_chars <= MAX_ARGS_CHARS  # the venue's limit per connection
    tickers = [c for c in conns if not c.quiet]
    liquidations = [c for c in conns if c.quiet]
    assert len(tickers) == -(-650 // SYMBOLS_PER_CONNECTION)  # 7 connections of ~100 symbols
    assert len(liquidations) == -(-650 // LIQUIDATION_SYMBOLS_PER_CONNECTION)  # 2 of ~325
    topics = [t for ts in per_conn.values() for t in ts]
    adl = {"adlAlert.USDT", "adlAlert.USDC"}  # once, on the first connection
    assert len(topics) == len(set(topics)) == 3 * 650 + len(adl)  # each topic exactly once
    assert adl <= set(per_conn["linear-1"])
    assert max(len(per_conn[c.name]) for c in tickers) < 2 * 1.5 * SYMBOLS_PER_CONNECTION
    assert max(len(per_conn[c.name]) for c in liquidations) < LIQUIDATION_SYMBOLS_PER_CONNECTION


def test_a_liquidations_connection_stays_within_the_args_limit() -> None:
    """Long symbols: the liquidations' shards grow past the count by symbols to fit
    :data:`MAX_ARGS_CHARS` (the venue refuses the rest of a connection's subscriptions)."""
    long = {f"{i:04}{'X' * 40}USDT": _linear(f"{i:04}{'X' * 40}USDT", "X") for i in range(900)}
    quiet = [c for c in Bybit(VenueSettings()).connections(long) if c.quiet]
    assert len(quiet) > -(-900 // LIQUIDATION_SYMBOLS_PER_CONNECTION)
    for conn in quiet:
        assert len(json.dumps(_topics(conn), separators=(",", ":"))) <= MAX_ARGS_CHARS
    assert sum(len(_topics(c)) for c in quiet) == 900


def _where(venue: Bybit, markets: dict[str, Instrument]) -> dict[str, str]:
    """Topic → the connection that subscribes it."""
    out = {}
    for conn in venue.connections(markets):
        for msg in conn.subscribe:
            out.update((t, conn.name) for t in json.loads(msg)["args"])
    return out


def test_a_new_listing_moves_no_other_symbol() -> None:
    markets = _many(650)
    venue = Bybit(VenueSettings())
    before = _where(venue, markets)
    after = _where(venue, {**markets, "NEWUSDT": _linear("NEWUSDT", "NEW")})
    assert {t: c for t, c in after.items() if "NEWUSDT" not in t} == before


def test_the_connections_keep_their_names_when_the_market_grows_or_shrinks() -> None:
    # The collector starts one supervisor per connection once, then re-reads each by name.
    venue = Bybit(VenueSettings())
    names = {c.name for c in venue.connections(_many(650))}
    assert len(names) == 7 + 2  # tickers, and liquidations (the quiet lane)
    grown = _many(1100)  # would be 11 + 3 connections from scratch
    assert {c.name for c in venue.connections(grown)} == names
    kept = _where(venue, grown)
    assert all(kept[t] == c for t, c in _where(venue, _many(650)).items())  # nothing moved
    assert {c.name for c in venue.connections(_many(550))} == names
    fresh = Bybit(VenueSettings())
    assert len(fresh.connections(grown)) == 11 + 3


def test_instruments_are_the_trading_perpetuals_with_their_funding_interval() -> None:
    for category in ("linear", "inverse"):
        body = load_instruments(category)
        instruments, cursor = parse_instruments(body)
        assert cursor == ""
        expected = [
            r
            for r in body["result"]["list"]
            if r["contractType"] in ("LinearPerpetual", "InversePerpetual")
            and r["status"] == "Trading"
        ]
        assert [i.symbol for i in instruments] == [r["symbol"] for r in expected]
        for inst, row in zip(instruments, expected, strict=True):
            assert inst.venue == VENUE
            assert inst.base == row["baseCoin"]
            assert inst.quote == row["quoteCoin"]
            assert inst.linear is (category == "linear")
            assert inst.contract_size == 1.0  # 1 base unit, or 1 USD
            assert inst.funding_interval_h == row["fundingInterval"] / 60
    inverse, _ = parse_instruments(json.dumps(load_instruments("inverse")))
    btcusd = next(i for i in inverse if i.symbol == "BTCUSD")
    assert btcusd.notional_usd(2000, 28560.5) == 2000.0


def test_an_error_answer_is_not_an_empty_list() -> None:
    with pytest.raises(ValueError, match="10001"):
        parse_instruments({"retCode": 10001, "retMsg": "params error", "result": {"list": []}})


# -- adlAlert: the pools' ADL state, pushed every second ------------------------------------


def _adl_frame(ts: int, rows: list[tuple[str, float, float]]) -> str:
    """An ``adlAlert.USDT`` frame in the docs' shape (fixtures/stress/bybit_adl_alert_ws.json)
    with ``(symbol, balance, pnl ratio)`` rows and the docs' trigger figures."""
    data = [
        {"c": "USDT", "s": s, "b": b, "mb": b, "i_pr": -0.3, "pr": pr, "adl_tt": 10000,
         "adl_sr": -0.25}
        for s, b, pr in rows
    ]  # fmt: skip
    return json.dumps({"topic": "adlAlert.USDT", "type": "snapshot", "ts": ts, "data": data})


def test_adl_alerts_leave_the_parser_as_stress_events_when_a_level_changes() -> None:
    """Every second the frame lists every symbol of the coin: the parser hands a subscribed
    symbol's level on when it changes, or a minute after it last did, and nothing of the
    others; no market event comes out of it."""
    parser = BybitParser(VENUE, MARKETS, {"BTCUSDT", "LINKUSDT"})
    calm = [("BTCUSDT", 2e7, -0.01), ("LINKUSDT", 2e7, -0.02), ("ROSEUSDT", 2e7, -0.31)]
    assert parser.parse(_adl_frame(1_000, calm), recv_ms=1_000) == []
    first = parser.take_stress()
    assert [(e.symbol, e.level) for e in first] == [
        ("BTCUSDT", AdlLevel.LOW), ("LINKUSDT", AdlLevel.LOW),  # ROSE is not subscribed
    ]  # fmt: skip
    assert parser.take_stress() == []

    # a second later BTC's drawdown passes the trigger (pr -0.36 < i_pr -0.3, b > adl_tt)
    crash = [("BTCUSDT", 2e7, -0.36), ("LINKUSDT", 2e7, -0.02)]
    assert parser.parse(_adl_frame(2_000, crash), recv_ms=2_000) == []
    [active] = parser.take_stress()
    assert isinstance(active, AdlRisk)
    assert (active.symbol, active.level, active.native, active.trigger) == (
        "BTCUSDT", AdlLevel.ACTIVE, "-0.36", -0.3,
    )  # fmt: skip
    for t in range(3_000, 61_000, 1_000):  # unchanged for a minute: nothing new
        parser.parse(_adl_frame(t, crash), recv_ms=t)
    assert parser.take_stress() == []
    parser.parse(_adl_frame(61_000, crash), recv_ms=61_000)  # LINK: a minute since its first
    assert [e.symbol for e in parser.take_stress()] == ["LINKUSDT"]
    parser.parse(_adl_frame(62_000, crash), recv_ms=62_000)  # BTC: a minute since it changed
    assert [e.symbol for e in parser.take_stress()] == ["BTCUSDT"]
    assert not parser.stats.errors


def test_the_top_of_book_of_a_linear_ticker_is_valued_in_base_coin(captures: Path) -> None:
    frame = _frame(captures, "tickers.BTCUSDT", "snapshot")  # a real recording, 2023-04-05
    data = json.loads(frame)["data"]
    (book,) = _only(BybitParser(VENUE, MARKETS, None).parse(frame, recv_ms=1), BookTop)
    bid, ask = float(data["bid1Price"]), float(data["ask1Price"])  # 28550.70, 28550.80
    assert (book.bid_price, book.ask_price) == (bid, ask)
    assert book.bid_base == float(data["bid1Size"])  # linear: base coin, 2.049 BTC
    assert book.ask_base == float(data["ask1Size"])
    assert book.bid_usd == pytest.approx(float(data["bid1Size"]) * bid)
    assert book.ask_usd == pytest.approx(float(data["ask1Size"]) * ask)
    assert book.spread_bp == pytest.approx((ask - bid) / ((ask + bid) / 2) * 1e4)  # 0.035 bp
    assert book.ts_ms == json.loads(frame)["ts"]


def test_the_top_of_book_of_an_inverse_ticker_is_valued_in_usd_contracts(captures: Path) -> None:
    frame = _frame(captures, "tickers.BTCUSD", "snapshot")
    data = json.loads(frame)["data"]
    (book,) = _only(BybitParser(VENUE, MARKETS, None).parse(frame, recv_ms=1), BookTop)
    bid, ask = float(data["bid1Price"]), float(data["ask1Price"])
    assert book.bid_usd == float(data["bid1Size"])  # 340,549 contracts of 1 USD
    assert book.ask_usd == float(data["ask1Size"])
    assert book.bid_base == pytest.approx(float(data["bid1Size"]) / bid)
    assert book.ask_base == pytest.approx(float(data["ask1Size"]) / ask)
    assert book.spread_bp == pytest.approx(0.5 / 28560.25 * 1e4)


def test_a_one_sided_or_crossed_top_of_book_is_not_reported() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    base = {"symbol": "BTCUSDT", "markPrice": "100", "bid1Size": "1", "ask1Size": "1"}
    empty = {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": 1_700_000_000_000,
             "data": {**base, "bid1Price": "", "ask1Price": "101"}}  # fmt: skip
    assert _only(parser.parse(json.dumps(empty), recv_ms=1), BookTop) == []
    assert not parser.stats.errors
    crossed = {**empty, "data": {**base, "bid1Price": "102", "ask1Price": "101"}}
    crossed["ts"] += 1000
    assert _only(parser.parse(json.dumps(crossed), recv_ms=2), BookTop) == []
    assert parser.stats.errors == {"crossed_book": 1}


def test_the_adl_topics_stay_subscribed_when_the_first_connection_is_left_empty() -> None:
    """The number of a category's connections is fixed by the first listing; a refresh that
    delists every symbol of the first one leaves it out, and the ADL topics go to the first
    connection left instead of nowhere."""
    markets = MARKETS | _many(650)
    venue = Bybit(VenueSettings())
    linear = [c.name for c in venue.connections(markets) if c.name.startswith("linear-")]
    assert {"linear-1", "linear-2"} <= set(linear)  # the first listing: two or more
    count = sum(1 for n in linear if n.removeprefix("linear-").isdigit())
    first = {s for s, i in markets.items() if i.linear and zlib.crc32(s.encode()) % count == 0}
    left = {s: i for s, i in markets.items() if s not in first}
    conns = {c.name: c for c in venue.connections(left)}
    assert "linear-1" not in conns
    topics = [t for c in conns.values() for t in _topics(c)]
    assert topics.count("adlAlert.USDT") == topics.count("adlAlert.USDC") == 1
    assert topics.count("adlAlert.inverse") == 1
