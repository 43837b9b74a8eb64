"""The Gate parser's liquidity channels: ``futures.book_ticker`` (top of book), ``futures.trades``
(traded volume) and ``futures.obu`` (order book depth), on real frames, values worked out here
from the frames and the recorded contract list (shared/captures/rest/GATEIO_FUTURES.0.txt:
BTC_USDT 0.0001 BTC a contract, ETH_USDT 0.01 ETH).

Sources of the frames:

* ``futures.trades``: the three real pushes in shared/captures/gateio_futures.jsonl (tardis).
* ``futures.book_ticker``: the docs' example
  (https://www.gate.com/docs/developers/futures/ws/en/, "Best ask/bid subscription", checked
  2026-12-06), and a real BTC_USDT push captured on 2026-09-15 by a public probe of the
  venue (quoted in its report, as below).
* ``futures.obu``: real pushes captured on 2026-09-15 by the same probe (the ETH_USDT whole
  book trimmed to three levels a side by the report's author, a BTC_USDT update and an
  id-only update); the rules are the docs' and Gate's announcement of the channel
  (https://www.gate.com/announcements/article/44946: "If U ≠ local depth ID + 1 ...
  unsubscribe from the symbol and resubscribe to obtain an initial full depth snapshot").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth, BookTop, Volume
from service.venues._volume import Volumes
from service.venues.base import Instrument
from service.venues.gateio.instruments import GateContract, parse_contracts
from service.venues.gateio.venue import Gate, GateParser

VENUE = "gateio"

DOC_BOOK_TICKER = (
    '{"time": 1615366379, "time_ms": 1615366379123, "channel": "futures.book_ticker", '
    '"event": "update", "result": {"t": 1615366379123, "u": 2517661076, "s": "BTC_USD", '
    '"b": "54696.6", "B": 37000, "a": "54696.7", "A": 47061}}'
)
REAL_BOOK_TICKER = (
    '{"time":1789456337,"time_ms":1789456337019,"channel":"futures.book_ticker","event":"update",'
    '"result":{"t":1789456337013,"u":125034507671,"s":"BTC_USDT","b":"77179","B":107847,'
    '"a":"77179.1","A":5808}}'
)
ETH_FULL = (
    '{"time":1789456334,"time_ms":1789456334999,"channel":"futures.obu","event":"update",'
    '"result":{"t":1789456334981,"full":true,"s":"ob.ETH_USDT.50","u":108552472643,'
    '"b":[["2480.27","2781.6"],["2480.25","1"],["2480.21","201.2"]],'
    '"a":[["2480.28","8292"],["2480.29","4"],["2480.33","100"]]}}'
)
BTC_UPDATE = (
    '{"time":1789455580,"time_ms":1789455580280,"channel":"futures.obu","event":"update",'
    '"result":{"t":1789455580280,"s":"ob.BTC_USDT.50","U":125033675975,"u":125033676003,'
    '"b":[["77222.9","648"]],"a":[["77235","50"],["77235.2","0"]]}}'
)
BTC_ID_ONLY = (
    '{"time":1789455580,"time_ms":1789455580301,"channel":"futures.obu","event":"update",'
    '"result":{"t":1789455580300,"s":"ob.BTC_USDT.50","U":125033676004,"u":125033676011}}'
)
# A whole BTC_USDT book the two updates above follow (u one before the first's U): made here,
# in the shape of ETH_FULL (levels chosen so the update changes the touch).
BTC_FULL = (
    '{"time":1789455580,"time_ms":1789455580200,"channel":"futures.obu","event":"update",'
    '"result":{"t":1789455580200,"full":true,"s":"ob.BTC_USDT.50","u":125033675974,'
    '"b":[["77222.8","1000"],["77200","2000"]],"a":[["77235.2","700"],["77300","3000"]]}}'
)


@pytest.fixture
def markets(captures: Path) -> dict[str, Instrument]:
    line = (captures / "rest" / "GATEIO_FUTURES.0.txt").read_text().splitlines()[0]
    listed = parse_contracts(line.split(" -> ", 1)[1].split(": ", 1)[1], "usdt")
    inverse = GateContract(VENUE, "BTC_USD", "BTC", "USD", linear=False, settle="btc")
    return {i.symbol: i for i in [*listed, inverse]}


def _parser(markets: dict[str, Instrument], *, volume: bool = False) -> GateParser:
    parser = GateParser(VENUE, markets, None)
    if volume:
        parser.volumes = Volumes(VENUE)
    return parser


# -- futures.book_ticker ------------------------------------------------------------------------


def test_the_docs_book_ticker_of_the_inverse_contract_is_usd_contracts(
    markets: dict[str, Instrument],
) -> None:
    (top,) = _parser(markets).parse(DOC_BOOK_TICKER, recv_ms=1615366379200)
    assert isinstance(top, BookTop)
    assert (top.symbol, top.ts_ms) == ("BTC_USD", 1615366379123)
    assert (top.bid_price, top.ask_price) == (54696.6, 54696.7)
    assert top.bid_usd == 37000  # contracts of 1 USD
    assert top.ask_usd == 47061
    assert top.bid_base == pytest.approx(37000 / 54696.6)
    assert top.spread_bp == pytest.approx(0.1 / ((54696.6 + 54696.7) / 2) * 10_000)


def test_a_real_book_ticker_is_contracts_of_quanto_multiplier_coin(
    markets: dict[str, Instrument],
) -> None:
    (top,) = _parser(markets).parse(REAL_BOOK_TICKER, recv_ms=1789456337100)
    assert isinstance(top, BookTop)
    assert top.bid_base == pytest.approx(107847 * 0.0001)  # 10.78 BTC
    assert top.ask_base == pytest.approx(5808 * 0.0001)
    assert top.bid_usd == pytest.approx(107847 * 0.0001 * 77179)
    assert top.ask_usd == pytest.approx(5808 * 0.0001 * 77179.1)


def test_a_book_ticker_timed_far_ahead_does_not_hold_the_next_tops_back(
    markets: dict[str, Instrument],
) -> None:
    """The real BTC_USDT push once with its ``t`` in microseconds (no market's time: dropped
    as ``bad_time``): the time of the report it left behind held every later top back."""
    parser = _parser(markets)
    micro = REAL_BOOK_TICKER.replace('"t":1789456337013', '"t":1789456337013000')
    assert parser.parse(micro, recv_ms=1789456337100) == []
    assert parser.stats.errors == {"bad_time": 1}
    (top,) = parser.parse(REAL_BOOK_TICKER, recv_ms=1789456337200)
    assert isinstance(top, BookTop)
    assert top.ts_ms == 1789456337013


def test_the_top_is_reported_once_a_second_from_the_latest_and_text_sizes_are_read(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    first = parser.parse(REAL_BOOK_TICKER, recv_ms=1)
    later = REAL_BOOK_TICKER.replace("1789456337013", "1789456337500")
    later = later.replace('"B":107847', '"B":"12.5"')  # decimal text (the size header)
    assert parser.parse(later, recv_ms=2) == []  # within the second: merged, not reported
    (top,) = parser.parse(later.replace("1789456337500", "1789456338013"), recv_ms=3)
    assert len(first) == 1
    assert isinstance(top, BookTop)
    assert top.bid_base == pytest.approx(12.5 * 0.0001)


def test_an_empty_side_gives_no_top_until_it_is_quoted_again(
    markets: dict[str, Instrument],
) -> None:
    """The docs: "If ``a`` is empty string, it means empty asks" (and ``A`` is 0)."""
    parser = _parser(markets)
    empty = DOC_BOOK_TICKER.replace('"a": "54696.7", "A": 47061', '"a": "", "A": 0')
    assert parser.parse(empty, recv_ms=1) == []
    quoted = DOC_BOOK_TICKER.replace("1615366379123", "1615366380123")
    (top,) = parser.parse(quoted, recv_ms=2)
    assert isinstance(top, BookTop)
    assert parser.stats.errors == {}


@pytest.mark.parametrize(
    "bad",
    [
        REAL_BOOK_TICKER.replace('"b":"77179"', '"b":"x"'),
        REAL_BOOK_TICKER.replace('"s":"BTC_USDT",', ""),
        REAL_BOOK_TICKER.replace('"A":5808', '"A":[1]'),
    ],
)
def test_an_unreadable_book_ticker_is_counted_and_leaves_the_top_as_it_was(
    markets: dict[str, Instrument], bad: str
) -> None:
    parser = _parser(markets)
    parser.parse(REAL_BOOK_TICKER, recv_ms=1)
    assert parser.parse(bad, recv_ms=2) == []
    assert parser.stats.errors == {"invalid_futures.book_ticker": 1}
    assert parser.tickers["BTC_USDT"].bid == 77179


# -- futures.trades -------------------------------------------------------------------------------


def _trade_frames(captures: Path) -> list[str]:
    lines = [json.loads(x) for x in (captures / "gateio_futures.jsonl").read_text().splitlines()]
    raws = [str(x["raw"]) for x in lines]
    return [r for r in raws if '"futures.trades"' in r and '"update"' in r]


def test_real_trades_are_summed_per_second_by_the_taker_side_in_quanto_coin(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _trade_frames(captures)
    assert len(frames) == 3
    parser = _parser(markets, volume=True)
    events = [e for f in frames for e in parser.parse(f, recv_ms=1_700_000_000_000)]
    events += parser.flush_volumes(1_700_000_000_001)
    got = {v.symbol: v for v in events if isinstance(v, Volume)}
    assert set(got) == {"COMP_USDT", "ETH_USDT", "BTC_USDT"}
    comp_size = markets["COMP_USDT"].contract_size
    # 2020: {"size":1,"id":31615,"create_time":1593561616,"price":"217.2"}: a taker bought
    assert got["COMP_USDT"].ts_ms == 1593561616000  # create_time in seconds
    assert got["COMP_USDT"].taker_buy_base == pytest.approx(1 * comp_size)
    assert got["COMP_USDT"].taker_buy_usd == pytest.approx(1 * comp_size * 217.2)
    # {"size":-22,"id":1696009,"price":"225.5","contract":"ETH_USDT"}: a taker sold
    eth = got["ETH_USDT"]
    assert (eth.taker_buy_usd, eth.trades) == (0.0, 1)
    assert eth.taker_sell_base == pytest.approx(22 * 0.01)
    assert eth.taker_sell_usd == pytest.approx(22 * 0.01 * 225.5)
    # 2021: three buys of 1, 2000 and 999 contracts at 45300, create_time_ms 1614556850860
    btc = got["BTC_USDT"]
    assert (btc.ts_ms, btc.trades) == (1614556850000, 3)
    assert btc.taker_buy_base == pytest.approx((1 + 2000 + 999) * 0.0001)
    assert btc.taker_buy_usd == pytest.approx((1 + 2000 + 999) * 0.0001 * 45300)
    assert parser.stats.errors == {}


def test_a_trade_seen_twice_counts_once_and_internal_takeovers_not_at_all(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    btc = _trade_frames(captures)[2]
    parser = _parser(markets, volume=True)
    recv = 1614556850900  # the prints' create_time_ms 1614556850860, and after
    parser.parse(btc, recv_ms=recv)
    parser.parse(btc, recv_ms=recv + 1)  # a rotation's overlap delivers it again
    # the docs' is_internal (the insurance fund's or ADL's takeover): no taker on the book
    internal = btc.replace('"id":13654526,', '"id":13654600,"is_internal":true,')
    parser.parse(internal, recv_ms=recv + 2)
    assert parser.volumes is not None
    assert parser.volumes.duplicates == 3 + 2  # the second frame, and two rows of the third
    (v,) = parser.flush_volumes(recv + 3)
    assert isinstance(v, Volume)
    assert v.trades == 3
    assert v.taker_buy_base == pytest.approx(3000 * 0.0001)


def test_bad_trade_rows_are_counted_and_the_rest_of_the_batch_kept(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    btc = _trade_frames(captures)[2]
    parser = _parser(markets, volume=True)
    bad = btc.replace('"size":2000', '"size":0').replace('"price":"45300","contract"', '"price"'
                                                         ':"x","contract"', 1)  # fmt: skip
    recv = 1614556850900  # the prints' create_time_ms 1614556850860, and after
    parser.parse(bad, recv_ms=recv)
    unreadable = '{"channel":"futures.trades","event":"update","result":{"id":1}}'
    assert parser.parse(unreadable, recv + 1) == []
    (v,) = parser.flush_volumes(recv + 2)
    assert isinstance(v, Volume)
    assert v.trades == 1  # 999 contracts: the first row had a bad price, the second size 0
    assert v.taker_buy_base == pytest.approx(999 * 0.0001)
    assert parser.stats.errors == {"invalid_futures.trades": 3}


# -- futures.obu ---------------------------------------------------------------------------------


def test_a_whole_book_gives_the_usd_within_each_band_of_mid(
    markets: dict[str, Instrument],
) -> None:
    (depth,) = _parser(markets).parse(ETH_FULL, recv_ms=1789456335000)
    assert isinstance(depth, BookDepth)
    assert (depth.symbol, depth.ts_ms) == ("ETH_USDT", 1789456334981)
    mid = (2480.27 + 2480.28) / 2
    assert depth.mid == pytest.approx(mid)
    bids = 2781.6 * 0.01 * 2480.27 + 1 * 0.01 * 2480.25 + 201.2 * 0.01 * 2480.21
    asks = 8292 * 0.01 * 2480.28 + 4 * 0.01 * 2480.29 + 100 * 0.01 * 2480.33
    for band in (depth.bid_usd_0p5, depth.bid_usd_1, depth.bid_usd_2):
        assert band == pytest.approx(bids)  # three levels within 0.003 % of mid
    assert depth.ask_usd_2 == pytest.approx(asks)
    assert depth.bid_reach_pct == pytest.approx((mid - 2480.21) / mid * 100)
    assert depth.ask_reach_pct == pytest.approx((2480.33 - mid) / mid * 100)
    assert not depth.exact("bid", 0.5)  # the levels sent do not reach the band's edge


def test_updates_that_follow_the_ids_move_the_book_and_an_id_only_one_moves_its_id(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    parser.parse(BTC_FULL, recv_ms=1)
    assert parser.parse(BTC_UPDATE, recv_ms=2) == []  # 80 ms after: not due
    assert parser.parse(BTC_ID_ONLY, recv_ms=3) == []
    book = parser.books["BTC_USDT"]
    assert book.update_id == 125033676011
    assert book.bids == {77222.9: 648.0, 77222.8: 1000.0, 77200.0: 2000.0}
    assert book.asks == {77235.0: 50.0, 77300.0: 3000.0}  # 77235.2 removed (size "0")
    later = BTC_ID_ONLY.replace("1789455580300", "1789455581200").replace(
        '"U":125033676004,"u":125033676011', '"U":125033676012,"u":125033676013'
    )
    (depth,) = parser.parse(later, recv_ms=4)
    assert isinstance(depth, BookDepth)
    assert depth.mid == pytest.approx((77222.9 + 77235.0) / 2)
    assert depth.bid_usd_0p5 == pytest.approx((648 * 77222.9 + 1000 * 77222.8 + 2000 * 77200) *
                                              0.0001)  # fmt: skip
    assert parser.stats.errors == {}
    assert not parser.resync


def test_a_gap_drops_the_book_counts_it_and_asks_for_a_resubscription(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    parser.parse(BTC_FULL, recv_ms=1)
    assert parser.parse(BTC_ID_ONLY, recv_ms=2) == []  # U 125033676004, the book at ...5974
    assert "BTC_USDT" not in parser.books
    assert parser.stats.errors == {"orderbook_gap": 1}
    assert parser.resync == {"BTC_USDT"}
    parser.resync.clear()  # (the collector sends the resubscription)
    assert parser.parse(BTC_UPDATE, recv_ms=3) == []  # in flight before it: no book yet
    assert parser.stats.errors == {"orderbook_gap": 1, "orderbook_delta_before_snapshot": 1}
    assert not parser.resync  # asked 2 ms ago: not again
    assert parser.parse(BTC_FULL, recv_ms=4) == []  # the answer, a whole book: the last
    assert parser.books["BTC_USDT"].update_id == 125033675974  # report was < 1 s ago
    (depth,) = parser.parse(BTC_UPDATE.replace("1789455580280", "1789455581200"), recv_ms=5)
    assert isinstance(depth, BookDepth)  # followed again, and due


def test_a_new_whole_book_replaces_the_old_and_reports_no_sooner_than_a_second_later(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    assert len(parser.parse(ETH_FULL, recv_ms=1)) == 1
    again = ETH_FULL.replace('["2480.25","1"],', "")
    assert parser.parse(again, recv_ms=2) == []  # same time: the second has not passed
    assert 2480.25 not in parser.books["ETH_USDT"].bids


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (ETH_FULL.replace('"ob.ETH_USDT.50"', '"ETH_USDT"'), "invalid_orderbook"),
        (ETH_FULL.replace('"u":108552472643,', ""), "invalid_orderbook"),
        (ETH_FULL.replace('["2480.25","1"]', '["2480.25"]'), "invalid_orderbook"),
        (ETH_FULL.replace('"result":{', '"x":{').replace("]]}}", "]]},\"result\":5}"),
         "invalid_orderbook"),
        (ETH_FULL.replace('["2480.25","1"]', '["-2480.25","1"]'), "invalid_orderbook_level"),
        (ETH_FULL.replace('["2480.28","8292"]', '["2480.2","8292"]'), "orderbook_crossed"),
    ],
)  # fmt: skip
def test_bad_book_frames_are_counted_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str
) -> None:
    parser = _parser(markets)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}
    assert "ETH_USDT" not in parser.books


def test_books_of_the_top_contracts_on_a_connection_of_their_own_per_settlement(
    markets: dict[str, Instrument],
) -> None:
    venue = Gate(VenueSettings(symbols=["BTC_USDT", "ETH_USDT", "BTC_USD"]))
    venue.depth_symbols = frozenset({"BTC_USDT", "BTC_USD"})
    conns = {c.name: c for c in venue.connections(markets)}
    assert set(conns) == {
        "usdt-1", "usdt-liquidations", "btc-1", "btc-liquidations", "usdt-depth", "btc-depth"
    }  # fmt: skip
    (usdt,) = (json.loads(r) for r in conns["usdt-depth"].subscribe)
    assert (usdt["channel"], usdt["event"], usdt["payload"]) == (
        "futures.obu", "subscribe", ["ob.BTC_USDT.400"])  # fmt: skip
    assert conns["btc-depth"].url.endswith("/btc")
    assert conns["usdt-depth"].own_parser
    assert not conns["usdt-1"].own_parser
    assert [json.loads(r)["event"] for r in venue.resubscribe(["BTC_USDT"])] == [
        "unsubscribe", "subscribe"]  # fmt: skip
    assert Gate(VenueSettings(depth=DepthSettings(levels=50))).book_levels == 50
    assert Gate(VenueSettings(depth=DepthSettings(top_n=0))).book_levels == 0
    with pytest.raises(ValueError, match=r"venues\.gateio\.depth\.levels: 20"):
        Gate(VenueSettings(depth=DepthSettings(levels=20)))


def test_a_print_timed_ahead_of_the_receive_clock_is_counted_not_summed(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The real 2021 BTC_USDT push (three buys, create_time_ms 1614556850860), and the same
    prints with their time in microseconds (a unit change, a broken clock): summed, such a
    print opened BTC_USDT's second 50,000 years ahead and every later print was summed into
    it, never reported (the real second below was lost)."""
    btc = _trade_frames(captures)[2]
    recv = 1614556851000
    parser = Gate(VenueSettings()).new_parser(markets, None)
    micro = btc.replace("1614556850860", "1614556850860000").replace('"id":136545', '"id":936545')
    assert parser.parse(micro, recv_ms=recv) == []
    later = btc.replace("1614556850", "1614556851")  # the same prints a second later
    parser.parse(later.replace('"id":136545', '"id":536545'), recv_ms=recv + 1000)
    events = parser.parse(REAL_BOOK_TICKER, recv_ms=recv + 2000)  # any frame: the clock closes it
    (v,) = [e for e in events if isinstance(e, Volume)]
    assert (v.ts_ms, v.trades) == (1614556851000, 3)
    assert parser.stats.errors == {"trade_time_ahead": 3}


def test_a_book_timed_far_ahead_does_not_hold_the_next_reports_back(
    markets: dict[str, Instrument],
) -> None:
    """The real ETH_USDT whole book (t 1789456334981) once with its ``t`` in microseconds:
    its depth is no event (a time no market has), and the time of the last report it left
    behind held every later book's depth back (never a second after it): ETH_USDT's depth
    was gone until a restart."""
    parser = _parser(markets)
    micro = ETH_FULL.replace('"t":1789456334981', '"t":1789456334981000')
    assert parser.parse(micro, recv_ms=1789456335000) == []
    assert parser.stats.errors == {"bad_time": 1}
    (depth,) = parser.parse(ETH_FULL, recv_ms=1789456335100)
    assert isinstance(depth, BookDepth)
    assert depth.ts_ms == 1789456334981
