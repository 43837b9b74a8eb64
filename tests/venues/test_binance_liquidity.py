"""Binance USDⓈ-M and COIN-M liquidity frames through the parsers: ``bookTicker`` (top of book),
``aggTrade`` (traded volume by taker side) and the diff depth stream kept against a REST
snapshot (the U/u/pu procedure of :mod:`service.venues.binance.book`).

Frames copied verbatim from the official docs (checked 2026-12-06):

* USDⓈ-M bookTicker: https://developers.binance.com/docs/derivatives/usds-margined-futures/
  websocket-market-streams/Individual-Symbol-Book-Ticker-Streams
* COIN-M !bookTicker: https://developers.binance.com/docs/derivatives/coin-margined-futures/
  websocket-market-streams/All-Book-Tickers-Stream
* USDⓈ-M aggTrade: https://developers.binance.com/docs/derivatives/usds-margined-futures/
  websocket-market-streams/Aggregate-Trade-Streams
* Diff depth, both products: .../usds-margined-futures/websocket-market-streams/
  Diff-Book-Depth-Streams and .../coin-margined-futures/websocket-market-streams/
  Diff-Book-Depth-Streams
* REST snapshot: https://developers.binance.com/docs/derivatives/usds-margined-futures/
  market-data/rest-api/Order-Book

The docs' examples do not chain with each other (the snapshot's ``lastUpdateId`` 1027024 is
not in the diff's ids; its prices are not near the diff's): where a test needs a chain, the
snapshot or a following diff is written in the docs' shape with the ids it needs, and says so.
"""

from __future__ import annotations

import json

import pytest

from service.events import BookDepth, BookTop, Volume
from service.venues._volume import Volumes
from service.venues.base import Instrument
from service.venues.binance.coinm import BinanceCoinmParser
from service.venues.binance.usdm import BinanceUsdmParser

USDM_BOOK_TICKER = (
    '{"e":"bookTicker","u":400900217,"E": 1568014460893,"T": 1568014460891,"s":"BNBUSDT",'
    '"b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'
)
COINM_BOOK_TICKER = (
    '{"e":"bookTicker","u":17242169,"s":"BTCUSD_200626","ps":"BTCUSD","b":"9548.1","B":"52",'
    '"a":"9548.5","A":"11","T":1591268628155,"E":1591268628166}'
)
USDM_AGG_TRADE = (
    '{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,'
    '"l":105,"T":123456785,"m":true}'
)
USDM_DEPTH = (
    '{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,'
    '"b":[["0.0024","10"]],"a":[["0.0026","100"]]}'
)
COINM_DEPTH = (
    '{"e":"depthUpdate","E":1591270260907,"T":1591270260891,"s":"BTCUSD_200626","ps":"BTCUSD",'
    '"U":17285681,"u":17285702,"pu":17285675,"b":[["9517.6","10"]],"a":[["9518.5","45"]]}'
)
USDM_SNAPSHOT = (
    '{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,'
    '"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}'
)

USDM_MARKETS = {
    s: Instrument("binance_usdm", s, s.removesuffix("USDT"), "USDT", linear=True)
    for s in ("BNBUSDT", "BTCUSDT")
}
COINM_MARKETS = {
    "BTCUSD_200626": Instrument(
        "binance_coinm", "BTCUSD_200626", "BTC", "USD", linear=False, contract_size=100.0
    )
}


def combined(stream: str, data: str) -> str:
    return f'{{"stream":"{stream}","data":{data}}}'


def usdm() -> BinanceUsdmParser:
    return BinanceUsdmParser("binance_usdm", USDM_MARKETS, None)


def coinm() -> BinanceCoinmParser:
    return BinanceCoinmParser("binance_coinm", COINM_MARKETS, None)


# -- bookTicker --------------------------------------------------------------------------------


def test_a_usdm_book_ticker_is_the_top_of_book_in_base_coin() -> None:
    parser = usdm()
    (top,) = parser.parse(combined("bnbusdt@bookTicker", USDM_BOOK_TICKER), 1568014460900)
    assert isinstance(top, BookTop)
    assert (top.symbol, top.ts_ms) == ("BNBUSDT", 1568014460891)  # the transaction time
    assert (top.bid_price, top.ask_price) == (25.3519, 25.3652)
    assert (top.bid_base, top.ask_base) == (31.21, 40.66)
    assert top.bid_usd == pytest.approx(31.21 * 25.3519)
    assert top.ask_usd == pytest.approx(40.66 * 25.3652)
    assert top.spread_bp == pytest.approx((25.3652 - 25.3519) / ((25.3652 + 25.3519) / 2) * 1e4)


def test_a_book_ticker_timed_far_ahead_does_not_hold_the_next_tops_back() -> None:
    """The docs' bookTicker once with ``T`` in microseconds (no market's time: dropped as
    ``bad_time``): the time of the report it left behind held every later top of the
    symbol back (never a second after it)."""
    parser = usdm()
    micro = USDM_BOOK_TICKER.replace('"T": 1568014460891', '"T": 1568014460891000')
    assert parser.parse(combined("!bookTicker", micro), 1568014460900) == []
    assert parser.stats.errors == {"bad_time": 1}
    (top,) = parser.parse(combined("!bookTicker", USDM_BOOK_TICKER), 1568014460950)
    assert isinstance(top, BookTop)
    assert top.ts_ms == 1568014460891


def test_a_coinm_book_ticker_counts_contracts_of_the_contract_size() -> None:
    parser = coinm()
    (top,) = parser.parse(combined("!bookTicker", COINM_BOOK_TICKER), 0)
    assert isinstance(top, BookTop)
    assert top.bid_usd == 52 * 100.0  # contracts x contractSize
    assert top.ask_usd == 11 * 100.0
    assert top.bid_base == pytest.approx(52 * 100.0 / 9548.1)
    assert top.ask_base == pytest.approx(11 * 100.0 / 9548.5)


def test_the_top_of_book_is_reported_at_most_once_a_second_per_symbol() -> None:
    parser = usdm()
    first = json.loads(USDM_BOOK_TICKER)
    frames = [dict(first, T=first["T"] + dt, b=str(25.35 + dt / 1e5)) for dt in (0, 400, 999, 1000)]
    got = [parser.parse(combined("!bookTicker", json.dumps(f)), 0) for f in frames]
    assert [len(g) for g in got] == [1, 0, 0, 1]
    assert isinstance(got[3][0], BookTop)
    assert got[3][0].bid_price == pytest.approx(25.35 + 1000 / 1e5)  # the latest values


def test_book_tickers_of_symbols_not_collected_are_filtered() -> None:
    parser = BinanceUsdmParser("binance_usdm", USDM_MARKETS, {"BTCUSDT"})
    assert parser.parse(combined("!bookTicker", USDM_BOOK_TICKER), 0) == []
    assert parser.stats.filtered == 1
    assert parser.stats.errors == {}


@pytest.mark.parametrize("bad", ['"b":"NaN"', '"b":"abc"', '"b":null'])
def test_an_unreadable_book_ticker_is_a_counted_drop(bad: str) -> None:
    parser = usdm()
    frame = USDM_BOOK_TICKER.replace('"b":"25.35190000"', bad)
    assert parser.parse(combined("!bookTicker", frame), 0) == []
    assert parser.stats.errors == {"invalid_bookTicker": 1}


# -- aggTrade ----------------------------------------------------------------------------------


def test_an_agg_trade_whose_buyer_is_the_maker_is_a_taker_sell_counted_once() -> None:
    parser = usdm()
    parser.volumes = _volumes()
    frame = combined("btcusdt@aggTrade", USDM_AGG_TRADE)
    assert parser.parse(frame, 123456790) == []  # its second is still open
    assert parser.parse(frame, 123456791) == []  # a rotation's overlap: the same id again
    assert parser.volumes.duplicates == 1
    (vol,) = parser.flush_volumes(123456800)
    assert isinstance(vol, Volume)
    assert vol.ts_ms == 123456000  # the trade time's second
    assert vol.taker_sell_base == 100.0
    assert vol.taker_sell_usd == pytest.approx(100 * 0.001)
    assert (vol.taker_buy_base, vol.taker_buy_usd, vol.trades) == (0.0, 0.0, 1)


def test_an_agg_trade_whose_buyer_took_is_a_taker_buy_and_a_later_second_closes_it() -> None:
    parser = usdm()
    parser.volumes = _volumes()
    buy = USDM_AGG_TRADE.replace('"m":true', '"m":false')
    later = buy.replace('"a":5933014', '"a":5933015').replace('"T":123456785', '"T":123457100')
    assert parser.parse(combined("btcusdt@aggTrade", buy), 123456789) == []
    (vol,) = parser.parse(combined("btcusdt@aggTrade", later), 123457105)
    assert isinstance(vol, Volume)
    assert (vol.ts_ms, vol.taker_buy_base, vol.taker_sell_base) == (123456000, 100.0, 0.0)


def test_agg_trades_with_volume_off_are_filtered_and_bad_ones_counted() -> None:
    parser = usdm()  # no Volumes: the venue's volume setting is off
    assert parser.parse(combined("btcusdt@aggTrade", USDM_AGG_TRADE), 0) == []
    assert parser.stats.filtered == 1
    parser.volumes = _volumes()
    no_side = USDM_AGG_TRADE.replace(',"m":true', "")
    assert parser.parse(combined("btcusdt@aggTrade", no_side), 0) == []
    assert parser.stats.errors == {"invalid_aggTrade": 1}


def _volumes() -> Volumes:
    return Volumes("binance_usdm")


# -- diff depth and snapshots ------------------------------------------------------------------


def coinm_snapshot(last_update_id: int) -> str:
    """A ``GET /dapi/v1/depth`` body in the docs' shape, around the docs' COIN-M diff."""
    return json.dumps({
        "lastUpdateId": last_update_id, "E": 1591270260900, "T": 1591270260890,
        "symbol": "BTCUSD_200626", "pair": "BTCUSD",
        "bids": [["9517.6", "3"], ["9500.0", "20"]], "asks": [["9518.5", "4"], ["9600.0", "8"]],
    })  # fmt: skip


def test_a_diff_before_any_snapshot_is_buffered_and_a_snapshot_asked_for() -> None:
    parser = coinm()
    assert parser.parse(combined("btcusd_200626@depth@500ms", COINM_DEPTH), 0) == []
    assert parser.resync == {"BTCUSD_200626"}
    assert parser.stats.errors == {}  # the documented start, not an error


def test_the_snapshot_takes_the_buffered_diff_that_follows_it_and_reports_the_depth() -> None:
    parser = coinm()
    parser.parse(combined("btcusd_200626@depth@500ms", COINM_DEPTH), 0)
    # pu 17285675 <= lastUpdateId 17285690 <= u 17285702: the diff follows the snapshot.
    (depth,) = parser.book_snapshot("BTCUSD_200626", coinm_snapshot(17285690), 5)
    assert isinstance(depth, BookDepth)
    assert depth.ts_ms == 1591270260907  # the diff's event time
    mid = (9517.6 + 9518.5) / 2
    assert depth.mid == pytest.approx(mid)
    # The diff set 9517.6 to 10 contracts and 9518.5 to 45; 100 USD each.
    assert mid * 0.995 <= 9500.0  # both bids within 0.5 %
    assert depth.bid_usd_0p5 == (10 + 20) * 100.0
    assert mid * 1.005 < 9600.0 <= mid * 1.01  # the second ask: in the 1 % band only
    assert (depth.ask_usd_0p5, depth.ask_usd_1) == (45 * 100.0, (45 + 8) * 100.0)
    assert depth.ask_reach_pct == pytest.approx((9600.0 - mid) / mid * 100)
    assert parser.stats.errors == {}


def test_a_diff_that_leaves_out_an_update_drops_the_book_and_asks_again() -> None:
    parser = coinm()
    parser.parse(combined("btcusd_200626@depth@500ms", COINM_DEPTH), 0)
    parser.book_snapshot("BTCUSD_200626", coinm_snapshot(17285690), 5)
    parser.resync = set()
    # The next diffs, in the docs' shape: one that chains (pu = the last u), then a gap.
    nxt = json.loads(COINM_DEPTH) | {"E": 1591270261407, "U": 17285703, "u": 17285710,
                                     "pu": 17285702, "b": [["9517.6", "0"]], "a": []}  # fmt: skip
    assert parser.parse(combined("btcusd_200626@depth@500ms", json.dumps(nxt)), 10) == []
    assert parser.resync == set()
    gap = nxt | {"E": 1591270261907, "U": 17285721, "u": 17285730, "pu": 17285720}
    assert parser.parse(combined("btcusd_200626@depth@500ms", json.dumps(gap)), 20) == []
    assert parser.stats.errors == {"orderbook_gap": 1}
    assert parser.resync == {"BTCUSD_200626"}
    # A new snapshot heals it with the diff that showed the gap.
    after = json.loads(coinm_snapshot(17285725))
    (depth,) = parser.book_snapshot("BTCUSD_200626", after, 30)  # ccxt hands decoded JSON
    assert isinstance(depth, BookDepth)
    assert depth.ts_ms == 1591270261907
    # The gap diff (the same levels as the one before) removes the snapshot's 9517.6.
    assert depth.bid_usd_0p5 == 20 * 100.0


def test_a_snapshot_older_than_the_buffered_stream_is_dropped_and_asked_again() -> None:
    parser = coinm()
    parser.parse(combined("btcusd_200626@depth@500ms", COINM_DEPTH), 0)
    parser.resync = set()
    # lastUpdateId 17285600 < pu 17285675: updates between them are in no diff we hold.
    assert parser.book_snapshot("BTCUSD_200626", coinm_snapshot(17285600), 6000) == []
    assert parser.stats.errors == {"orderbook_snapshot_stale": 1}
    assert parser.resync == {"BTCUSD_200626"}


def test_diffs_older_than_the_snapshot_are_dropped_without_a_count() -> None:
    parser = usdm()
    assert parser.parse(combined("btcusdt@depth@500ms", USDM_DEPTH), 0) == []
    # The docs' snapshot: lastUpdateId 1027024 is past the docs' diff (u 160): in it already.
    assert parser.book_snapshot("BTCUSDT", USDM_SNAPSHOT, 1) == []
    assert parser.parse(combined("btcusdt@depth@500ms", USDM_DEPTH), 2) == []
    assert parser.stats.errors == {}
    book = parser.books.books["BTCUSDT"]
    assert (book.bids, book.asks) == ({4.0: 431.0}, {4.000002: 12.0})


@pytest.mark.parametrize(
    "bad",
    [
        USDM_DEPTH.replace('"pu":149,', ""),
        USDM_DEPTH.replace('"10"', '"ten"'),
        USDM_DEPTH.replace('[["0.0024","10"]]', '"0.0024"'),
    ],
)
def test_an_unreadable_diff_is_a_counted_drop(bad: str) -> None:
    parser = usdm()
    assert parser.parse(combined("btcusdt@depth@500ms", bad), 0) == []
    assert parser.stats.errors == {"invalid_orderbook": 1}


def test_an_unreadable_snapshot_is_a_counted_drop() -> None:
    parser = usdm()
    assert parser.book_snapshot("BTCUSDT", '{"code":-1121,"msg":"Invalid symbol."}', 0) == []
    assert parser.stats.errors == {"invalid_orderbook": 1}
