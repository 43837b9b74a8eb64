"""BitMEX's liquidity tables through the parser: ``quote`` (top of book), ``trade`` (traded
volume) and ``orderBookL2`` (book depth), on real frames: cryptofeed's 2021 recording of the
trade table (../shared/captures), rows recorded from BitMEX on 2026-02-22 (a public project's
fixtures of "real unencoded documents"), and BitMEX's own examples of ``orderBookL2`` rows
(https://blog.bitmex.com/api_announcement/removing-id-schema-on-orderbook-feeds/, checked
2026-12-06). Expected values are worked out here from the frames' fields and the contracts'
listing rows (shared/captures/rest/BITMEX.0.txt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth, BookTop, Volume
from service.venues._volume import Volumes
from service.venues.base import Instrument
from service.venues.bitmex.frames import text_ms
from service.venues.bitmex.venue import (
    FULL_BOOK_LEVELS,
    RESYNC_EVERY_MS,
    Bitmex,
    BitmexInstrument,
    BitmexParser,
)
from service.venues.bitmex.venue import instrument as to_instrument

VENUE = "bitmex"
Row = dict[str, Any]

QUOTE_2026 = (
    '{"table":"quote","action":"insert","data":[{"timestamp":"2026-02-22T00:55:57.903Z",'
    '"symbol":"BCHUSDT","bidSize":3727000,"bidPrice":563.55,"askPrice":563.6,"askSize":1000}]}'
)
"""A real ``quote`` row (2026-02-22), in the table's envelope."""
L2_UPDATE_2026 = (
    '{"table":"orderBookL2","action":"update","data":[{"symbol":"ARBUSDT","id":186898796284,'
    '"side":"Buy","size":535200,"price":0.088,"timestamp":"2026-02-22T00:55:59.948Z",'
    '"transactTime":"2026-02-22T00:55:59.943Z"}]}'
)
"""A real ``orderBookL2`` update (2026-02-22)."""
# BitMEX's examples (the blog above), verbatim but for the quotes' typography.
BLOG_INSERT = (
    '{"table": "orderBookL2", "action": "insert", "data": [{"symbol": "XBTUSD", "id": '
    '8797309800, "side": "Buy", "size": 32800, "price": 26902, "timestamp": '
    '"2023-05-19T08:51:43.911Z"}]}'
)
BLOG_UPDATE = (
    '{"table": "orderBookL2", "action": "update", "data": [{"symbol": "XBTUSD", "id": '
    '8797309800, "side": "Buy", "size": 42800, "price": 26902, "timestamp": '
    '"2023-05-19T08:51:44.911Z"}]}'
)
BLOG_DELETE = (
    '{"table": "orderBookL2", "action": "delete", "data": [{"symbol": "XBTUSD", "id": '
    '8797309800, "side": "Buy", "price": 26902, "timestamp": "2023-05-19T08:51:45.911Z"}]}'
)


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    line = (captures / "rest" / "BITMEX.0.txt").read_text().splitlines()[0]
    body = line.split(" -> ", 1)[1].split(": ", 1)[1]
    return {r["symbol"]: r for r in json.loads(body)}


@pytest.fixture
def markets(rows: dict[str, Row]) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for r in rows.values():
        if (inst := to_instrument(r)) is not None:
            out[inst.symbol] = inst
    # Two linear USDT contracts of the 2026 rows: their listing rows are not recorded here,
    # so one contract is taken as 1e-6 coin (multiplier 1 USDt, as XBTUSDT's row).
    for symbol, base in (("BCHUSDT", "BCH"), ("ARBUSDT", "ARB")):
        out[symbol] = BitmexInstrument(VENUE, symbol, base, "USDT", True, contract_size=1e-6)
    return out


def _parser(markets: dict[str, Instrument], *, volume: bool = False) -> BitmexParser:
    parser = BitmexParser(VENUE, markets, None)
    if volume:
        parser.volumes = Volumes(VENUE)
    return parser


def _with_xbt(parser: BitmexParser, rows: dict[str, Row], mark: float) -> None:
    """XBTUSD's instrument partial with ``mark``: the XBT price quantos are valued at."""
    row = rows["XBTUSD"] | {"markPrice": mark}
    frame = json.dumps({"table": "instrument", "action": "partial", "data": [row]})
    parser.parse(frame, recv_ms=1)
    assert parser.xbt_usd == mark


def _trade_frames(captures: Path) -> list[str]:
    lines = [json.loads(x) for x in (captures / "bitmex.jsonl").read_text().splitlines()]
    return [str(x["raw"]) for x in lines if str(x["raw"]).startswith('{"table":"trade"')]


def _rows_of(frames: list[str], action: str) -> list[Row]:
    return [r for f in frames if (m := json.loads(f))["action"] == action for r in m["data"]]


# -- quote ---------------------------------------------------------------------------------


def test_a_quote_is_the_top_of_book_in_contracts(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    (top,) = parser.parse(QUOTE_2026, recv_ms=5)
    q = json.loads(QUOTE_2026)["data"][0]
    assert isinstance(top, BookTop)
    assert (top.bid_price, top.ask_price) == (q["bidPrice"], q["askPrice"])
    assert top.bid_base == pytest.approx(q["bidSize"] * 1e-6)  # 1e-6 BCH a contract
    assert top.ask_usd == pytest.approx(q["askSize"] * 1e-6 * q["askPrice"])
    assert top.spread_bp == pytest.approx((563.6 - 563.55) / ((563.6 + 563.55) / 2) * 1e4)
    assert (top.ts_ms, top.recv_ms) == (text_ms(q["timestamp"]), 5)
    # Every change is merged; one report a second per symbol (the latest state).
    later = QUOTE_2026.replace('"askSize":1000', '"askSize":2000').replace(":57.903Z", ":58.403Z")
    assert parser.parse(later, recv_ms=6) == []
    (top,) = parser.parse(later.replace(":58.403Z", ":58.903Z"), recv_ms=7)
    assert isinstance(top, BookTop)
    assert top.ask_base == pytest.approx(2000 * 1e-6)
    assert not parser.stats.errors


def test_a_quote_with_an_empty_side_reports_nothing(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    empty = QUOTE_2026.replace('"bidPrice":563.55', '"bidPrice":null')
    assert parser.parse(empty, recv_ms=5) == []
    assert not parser.stats.errors


def test_an_inverse_and_a_quanto_quote_are_valued_in_usd(
    markets: dict[str, Instrument], rows: dict[str, Row]
) -> None:
    """XBTUSD: 1 USD a contract. ETHUSD (quanto, 100 XBt per USD of price): paid in XBT at the
    XBTUSD mark; before any XBT price the quote is dropped and counted."""
    parser = _parser(markets)
    eth = QUOTE_2026.replace("BCHUSDT", "ETHUSD")
    assert parser.parse(eth, recv_ms=5) == []
    assert parser.stats.errors == {"without_xbt_price": 1}
    _with_xbt(parser, rows, 32_000.0)
    (top,) = parser.parse(eth.replace(":57.903Z", ":59.903Z"), recv_ms=6)
    assert isinstance(top, BookTop)
    multiplier = rows["ETHUSD"]["multiplier"]  # XBt per contract per USD of price
    assert top.bid_usd == pytest.approx(3727000 * multiplier / 1e8 * 563.55 * 32_000.0)
    assert top.bid_base == pytest.approx(top.bid_usd / 563.55)
    (top,) = parser.parse(QUOTE_2026.replace("BCHUSDT", "XBTUSD"), recv_ms=7)
    assert isinstance(top, BookTop)
    assert (top.bid_usd, top.ask_usd) == (3727000.0, 1000.0)


# -- trade ---------------------------------------------------------------------------------


def test_real_prints_sum_into_volume_per_second_by_taker_side(
    captures: Path, markets: dict[str, Instrument], rows: dict[str, Row]
) -> None:
    """cryptofeed's recording: a partial per symbol (the last print before the
    subscription: not counted), then inserts. XBTUSD: 1 USD contracts; UNIUSDT and MATICUSDT
    were quantos then: our USD equals BitMEX's own ``foreignNotional`` at the XBT price of
    the moment (XBTUSD's prints: 32,180.5-32,187)."""
    frames = _trade_frames(captures)
    parser = _parser(markets, volume=True)
    _with_xbt(parser, rows, 32_180.5)
    events = [e for f in frames for e in parser.parse(f, recv_ms=1_700_000_000_000)]
    events += parser.flush_volumes(1_700_000_000_000)
    assert not parser.stats.errors
    volumes = [e for e in events if isinstance(e, Volume)]
    inserts = _rows_of(frames, "insert")
    for symbol in ("XBTUSD", "UNIUSDT", "MATICUSDT"):
        mine = [r for r in inserts if r["symbol"] == symbol]
        got = [v for v in volumes if v.symbol == symbol]
        assert sum(v.trades for v in got) == len(mine), symbol
        buys = [r for r in mine if r["side"] == "Buy"]  # the taker's side
        sells = [r for r in mine if r["side"] == "Sell"]
        buy_usd = sum(r["foreignNotional"] for r in buys)
        sell_usd = sum(r["foreignNotional"] for r in sells)
        assert sum(v.taker_buy_usd for v in got) == pytest.approx(buy_usd, rel=2e-3)
        assert sum(v.taker_sell_usd for v in got) == pytest.approx(sell_usd, rel=2e-3)
        buy_base = sum(r["homeNotional"] for r in buys)
        assert sum(v.taker_buy_base for v in got) == pytest.approx(buy_base, rel=2e-3)
    xbt = [r for r in inserts if r["symbol"] == "XBTUSD"]
    assert sum(v.taker_buy_usd for v in volumes if v.symbol == "XBTUSD") == sum(
        r["size"] for r in xbt if r["side"] == "Buy"
    )  # exactly: 1 USD a contract


def test_a_print_is_counted_once_by_its_trdmatchid(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """A rotation's overlap delivers the same prints twice: the second is dropped."""
    frame = next(f for f in _trade_frames(captures) if '"action":"insert"' in f
                 and '"XBTUSD"' in f and "2021" in f)  # fmt: skip
    parser = _parser(markets, volume=True)
    recv = 1626993371800  # 2021-07-22T22:36:11.800Z: after the prints, their second open
    assert parser.parse(frame, recv_ms=recv) == []
    assert parser.parse(frame, recv_ms=recv + 1) == []
    (vol,) = parser.flush_volumes(recv + 2)
    assert isinstance(vol, Volume)
    assert vol.trades == len(json.loads(frame)["data"])
    assert parser.volumes is not None
    assert parser.volumes.duplicates == vol.trades


def test_prints_are_filtered_without_volume_and_bad_rows_counted(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _trade_frames(captures)
    off = _parser(markets)
    for f in frames:
        assert off.parse(f, recv_ms=1) == []
    assert off.stats.filtered == len(frames)
    assert not off.stats.errors
    parser = _parser(markets, volume=True)
    frame = next(f for f in frames if '"action":"insert"' in f and '"XBTUSD","side":"Buy"' in f)
    assert parser.parse(frame.replace('"side":"Buy"', '"side":"Hold"', 1), recv_ms=1) == []
    assert parser.stats.errors == {"invalid_trade": 1}
    assert parser.parse('{"table":"trade","action":"insert","data":[{"x":1}]}', 2) == []
    assert parser.stats.errors == {"invalid_trade": 2}


# -- orderBookL2 ---------------------------------------------------------------------------


def _level(symbol: str, level_id: int, side: str, size: int, price: float) -> Row:
    return {"symbol": symbol, "id": level_id, "side": side, "size": size, "price": price,
            "timestamp": "2023-05-19T08:51:40.000Z"}  # fmt: skip


def _partial(symbol: str, *levels: Row) -> str:
    return json.dumps({"table": "orderBookL2", "action": "partial",
                       "keys": ["symbol", "id", "side"], "filter": {"symbol": symbol},
                       "data": list(levels)})  # fmt: skip


XBT_BOOK = (
    _level("XBTUSD", 1, "Sell", 70_000, 27_300.0),  # beyond 1 % above mid
    _level("XBTUSD", 2, "Sell", 20_000, 26_910.0),
    _level("XBTUSD", 3, "Buy", 10_000, 26_800.0),  # beyond 0.5 % below mid
)
"""A partial around the blog's level (26,902, a bid): mid (26,902 + 26,910) / 2 once it is in."""


def test_the_blogs_rows_move_a_book_and_its_depth_is_in_usd(
    markets: dict[str, Instrument],
) -> None:
    """XBTUSD (1 USD contracts): the partial, the blog's insert (a bid of 32,800 at 26,902),
    update (42,800) and delete, each a second apart: a depth each time, in USD."""
    parser = _parser(markets)
    (depth,) = parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    assert isinstance(depth, BookDepth)
    assert depth.mid == (26_800 + 26_910) / 2
    assert (depth.bid_usd_0p5, depth.bid_usd_1, depth.ask_usd_2) == (10_000, 10_000, 90_000)
    (depth,) = parser.parse(BLOG_INSERT, recv_ms=2)
    assert isinstance(depth, BookDepth)
    mid = (26_902 + 26_910) / 2
    assert depth.mid == mid
    assert depth.ts_ms == text_ms("2023-05-19T08:51:43.911Z")

    def usd(levels: list[tuple[float, int]], pct: float) -> float:
        return sum(size for price, size in levels if abs(price - mid) <= mid * pct / 100)

    bids = [(26_902.0, 32_800), (26_800.0, 10_000)]  # 26,800: 0.39 % below mid
    asks = [(26_910.0, 20_000), (27_300.0, 70_000)]  # 27,300: 1.46 % above mid
    got = (depth.bid_usd_0p5, depth.bid_usd_1, depth.bid_usd_2)
    assert got == (usd(bids, 0.5), usd(bids, 1), usd(bids, 2)) == (42_800, 42_800, 42_800)
    got = (depth.ask_usd_0p5, depth.ask_usd_1, depth.ask_usd_2)
    assert got == (usd(asks, 0.5), usd(asks, 1), usd(asks, 2)) == (20_000, 20_000, 90_000)
    (depth,) = parser.parse(BLOG_UPDATE, recv_ms=3)
    assert isinstance(depth, BookDepth)
    assert depth.bid_usd_0p5 == 42_800 + 10_000
    (depth,) = parser.parse(BLOG_DELETE, recv_ms=4)
    assert isinstance(depth, BookDepth)
    assert depth.mid == (26_800 + 26_910) / 2
    assert depth.bid_usd_2 == 10_000
    assert parser.books["XBTUSD"].ids.keys() == {1, 2, 3}
    assert not parser.stats.errors
    assert not parser.resync


def test_depth_is_reported_at_most_once_a_second(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    assert len(parser.parse(BLOG_INSERT, recv_ms=2)) == 1
    sooner = BLOG_UPDATE.replace("08:51:44.911Z", "08:51:44.500Z")
    assert parser.parse(sooner, recv_ms=3) == []  # 0.589 s after the last
    assert parser.books["XBTUSD"].bids[26_902] == 42_800  # applied all the same


def test_a_real_linear_row_and_its_value(markets: dict[str, Instrument]) -> None:
    """ARBUSDT (1e-6 ARB a contract): a partial holding the real row's level and an ask,
    then the real update."""
    row = json.loads(L2_UPDATE_2026)["data"][0]
    parser = _parser(markets)
    ask = _level("ARBUSDT", 186898796300, "Sell", 400_000, 0.0881)
    earlier = {"size": 1, "timestamp": "2026-02-22T00:55:58.000Z"}
    parser.parse(_partial("ARBUSDT", ask, row | earlier), recv_ms=1)
    (depth,) = parser.parse(L2_UPDATE_2026, recv_ms=2)
    assert isinstance(depth, BookDepth)
    assert depth.bid_usd_0p5 == pytest.approx(row["size"] * 1e-6 * row["price"])
    assert depth.ask_usd_0p5 == pytest.approx(400_000 * 1e-6 * 0.0881)
    assert depth.ts_ms == text_ms(row["timestamp"])


def test_a_quanto_book_waits_for_the_xbt_price_shared_with_the_depth_session(
    markets: dict[str, Instrument], rows: dict[str, Row]
) -> None:
    """A depth connection carries no instrument table: its session's parser values ETHUSD
    at the XBT price the realtime connection's parser holds."""
    venue = Bitmex(VenueSettings(depth=DepthSettings(symbols=["ETHUSD"])))
    shared = venue.new_parser(markets, None)
    session = venue.session_parser(shared)
    assert isinstance(shared, BitmexParser)
    assert isinstance(session, BitmexParser)
    book = (_level("ETHUSD", 7, "Buy", 1000, 1_800.0), _level("ETHUSD", 8, "Sell", 500, 1_801.0))
    session.parse(_partial("ETHUSD", *book), recv_ms=1)
    insert = BLOG_INSERT.replace("XBTUSD", "ETHUSD").replace("26902", "1799.5")
    assert session.parse(insert, recv_ms=2) == []
    assert session.stats.errors == {"without_xbt_price": 2}  # the partial's, the insert's
    _with_xbt(shared, rows, 30_000.0)
    (depth,) = session.parse(BLOG_UPDATE.replace("XBTUSD", "ETHUSD").replace("26902", "1"), 3)
    assert isinstance(depth, BookDepth)
    xbt_per_usd = rows["ETHUSD"]["multiplier"] / 1e8  # XBT a contract per USD of price
    bids = 1000 * 1_800.0 + 42_800 * 1_799.5  # contracts x price, at the level's own price
    assert depth.bid_usd_0p5 == pytest.approx(bids * xbt_per_usd * 30_000.0)
    assert depth.ask_usd_0p5 == pytest.approx(500 * 1_801.0 * xbt_per_usd * 30_000.0)


@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        (BLOG_UPDATE.replace("8797309800", "8798309800"), "update of unknown id"),
        (BLOG_DELETE.replace("8797309800", "2"), None),  # id 2 known: no gap
        (BLOG_DELETE.replace("8797309800", "99"), "delete of unknown id"),
        (BLOG_INSERT.replace("8797309800", "3"), "insert of known id"),
    ],
)
def test_rows_that_show_missed_rows_drop_the_book_and_ask_for_a_partial(
    markets: dict[str, Instrument], frame: str, detail: str | None
) -> None:
    parser = _parser(markets)
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    parser.parse(BLOG_INSERT, recv_ms=2)
    parser.parse(frame, recv_ms=3)
    if detail is None:
        assert not parser.stats.errors
        assert "XBTUSD" in parser.books
        return
    assert parser.stats.errors == {"orderbook_gap": 1}
    assert "XBTUSD" not in parser.books
    assert parser.resync == {"XBTUSD"}
    # Until the new partial: rows are counted, a partial asked again at most every 5 s.
    parser.resync = set()
    parser.parse(BLOG_UPDATE, recv_ms=4)
    assert parser.stats.errors["orderbook_delta_before_snapshot"] == 1
    assert parser.resync == set()
    parser.parse(BLOG_UPDATE, recv_ms=3 + RESYNC_EVERY_MS)
    assert parser.resync == {"XBTUSD"}
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=3 + RESYNC_EVERY_MS)
    assert parser.parse(BLOG_INSERT.replace(":43.911Z", ":59.000Z"), recv_ms=9_000)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (_level("XBTUSD", 9, "Buy", -5, 26_000.0), "invalid_orderbook_level"),
        (_level("XBTUSD", 9, "Buy", 5, 0.0), "invalid_orderbook_level"),
        (_level("XBTUSD", 9, "Hold", 5, 26_000.0), "invalid_orderbook_level"),
        (
            {"symbol": "XBTUSD", "id": 9, "side": "Buy", "price": 26_000.0},
            "invalid_orderbook_level",
        ),  # an insert without a size
        (
            _level("XBTUSD", 9, "Buy", 5, 27_000.0) | {"timestamp": "2023-05-19T08:52:00.000Z"},
            "orderbook_crossed",
        ),  # (seen when a depth is due: the partial's was reported)
    ],
)
def test_a_bad_level_or_a_crossed_book_drops_the_book(
    markets: dict[str, Instrument], row: Row, reason: str
) -> None:
    parser = _parser(markets)
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    frame = json.dumps({"table": "orderBookL2", "action": "insert", "data": [row]})
    assert parser.parse(frame, recv_ms=2) == []
    assert parser.stats.errors == {reason: 1}
    assert "XBTUSD" not in parser.books
    assert parser.resync == {"XBTUSD"}


def test_an_unreadable_book_frame_is_counted(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    assert parser.parse('{"table":"orderBookL2","action":"update","data":[{"id":1}]}', 2) == []
    assert parser.parse('{"table":"orderBookL2","action":"replace","data":[]}', 3) == []
    assert parser.stats.errors == {"invalid_orderbook": 2}


def test_an_empty_partial_is_an_empty_book(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    assert parser.parse(_partial("XBTUSD"), recv_ms=1) == []
    assert parser.books["XBTUSD"].ids == {}
    assert parser.parse(BLOG_INSERT, recv_ms=2) == []  # one side: no mid
    assert not parser.stats.errors


# -- subscriptions ---------------------------------------------------------------------------


def test_quotes_and_trades_on_realtime_books_on_a_connection_of_their_own(
    markets: dict[str, Instrument],
) -> None:
    venue = Bitmex(VenueSettings(depth=DepthSettings(symbols=["XBTUSD", "ETHUSD"])))
    venue.depth_symbols = frozenset({"XBTUSD", "ETHUSD", "NOTLISTED"})
    realtime, depth = venue.connections(markets)
    args = [a for r in realtime.subscribe for a in json.loads(r)["args"]]
    for table in ("instrument", "liquidation", "quote", "trade"):
        assert {a.partition(":")[2] for a in args if a.startswith(f"{table}:")} == set(markets)
    assert not any(a.startswith("orderBookL2") for a in args)
    assert depth.name == "depth"
    assert depth.own_parser
    assert depth.url == realtime.url
    assert (depth.ping, depth.pong) == (realtime.ping, realtime.pong)
    (request,) = (json.loads(r) for r in depth.subscribe)
    assert request == {"op": "subscribe", "args": ["orderBookL2:ETHUSD", "orderBookL2:XBTUSD"]}
    assert venue.depth_levels == FULL_BOOK_LEVELS
    assert venue.resubscribe(["XBTUSD"]) == (
        '{"op":"unsubscribe","args":["orderBookL2:XBTUSD"]}',
        '{"op":"subscribe","args":["orderBookL2:XBTUSD"]}',
    )
    quiet = Bitmex(VenueSettings(volume=False, depth=DepthSettings(top_n=0)))
    quiet.depth_symbols = frozenset({"XBTUSD"})
    (realtime,) = quiet.connections(markets)
    args = [a for r in realtime.subscribe for a in json.loads(r)["args"]]
    assert not any(a.startswith("trade:") for a in args)
    capped = Bitmex(VenueSettings(depth=DepthSettings(levels=500)))
    parser = capped.new_parser(markets, None)
    assert isinstance(parser, BitmexParser)
    assert parser.depth_levels == 500


def test_an_unreadable_book_frame_drops_the_books_it_names_and_asks_for_partials(
    markets: dict[str, Instrument],
) -> None:
    """The table has no sequence: the blog's delete (above) lost to a row that does not
    decode (its id as text) left the blog's bid of 32,800 at 26,902 in the book for good, the
    depth overstated with nothing counted but the frame. The book it names is dropped, asked
    again; a frame whose rows name no symbol drops every book."""
    parser = _parser(markets)
    parser.parse(_partial("XBTUSD", *XBT_BOOK), recv_ms=1)
    parser.parse(_partial("ARBUSDT", _level("ARBUSDT", 7, "Buy", 5, 0.088)), recv_ms=1)
    parser.parse(BLOG_INSERT, recv_ms=2)
    unreadable = BLOG_DELETE.replace('"id": 8797309800', '"id": "8797309800"')
    assert parser.parse(unreadable, recv_ms=3) == []
    assert parser.stats.errors == {"invalid_orderbook": 1}
    assert set(parser.books) == {"ARBUSDT"}
    assert parser.resync == {"XBTUSD"}
    assert parser.parse('{"table":"orderBookL2","action":"update","data":[1]}', 4) == []
    assert parser.books == {}
    assert parser.resync == {"XBTUSD", "ARBUSDT"}
    assert parser.stats.errors == {"invalid_orderbook": 2}
