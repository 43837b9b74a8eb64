"""The Hyperliquid parser's liquidity channels on real frames: ``trades`` (the captures in
../shared/captures, tardis.dev recordings, and the venue's own order book server's test frame),
``bbo`` and ``l2Book`` (tardis.dev recordings and the venue's order book server). Expected values
are worked out here from the frames' fields.

Sources (checked 2026-12-06):
* tardis-dev/tardis-node@00a0f2422219e1f8e93064f01f5f3d693537f799, test/mappers.test.ts, "map
  hyperliquid messages" (https://github.com/tardis-dev/tardis-node/blob/00a0f2422219e1f8e93064f01f5f3d693537f799/test/mappers.test.ts):
  the ``bbo`` and ``l2Book`` frames, JS literals re-serialized compact, key order kept;
* hyperliquid-dex/order_book_server@17d14014d3817e785b15729bf2c9041704e20d4d,
  server/src/types/subscription.rs (https://github.com/hyperliquid-dex/order_book_server/blob/17d14014d3817e785b15729bf2c9041704e20d4d/server/src/types/subscription.rs):
  the 20-level ``l2Book`` and the ``trades`` frame (with ``users``);
* the types: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions
  (``WsBbo {coin, time, bbo: [WsLevel | null, WsLevel | null]}``, ``WsBook {coin, levels:
  [bids, asks], time}``, ``WsTrade {coin, side, px, sz, hash, time, tid, users}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth, BookTop, Volume
from service.venues._volume import Volumes
from service.venues.base import Instrument
from service.venues.hyperliquid.venue import (
    BOOK_SIG_FIGS,
    MAX_SUBSCRIPTIONS,
    Hyperliquid,
    HyperliquidParser,
    fills_messages,
    parse_meta,
    subscribe_messages,
)

VENUE = "hyperliquid"

BBO_TWO_SIDED = (
    '{"channel":"bbo","data":{"coin":"@162","time":1750948919838,"bbo":[{"px":"0.97925",'
    '"sz":"4144.6","n":1},{"px":"0.97934","sz":"50.0","n":1}]}}'
)
"""tardis-node: a spot pair's ``bbo`` (its arithmetic is a perpetual's: coin x price)."""
BBO_ONE_SIDED = (
    '{"channel":"bbo","data":{"coin":"BTC","time":1750948919838,"bbo":[{"px":"107575.0",'
    '"sz":"3.87947","n":17}]}}'
)
"""tardis-node: BTC's ``bbo`` with the bid only."""
BOOK_BANANA = (
    '{"channel":"l2Book","data":{"coin":"BANANA","time":1730160007687,"levels":[[{"px":"59.8",'
    '"sz":"3.4","n":1},{"px":"59.778","sz":"1.6","n":1}],[{"px":"59.811","sz":"2.9","n":1},'
    '{"px":"59.832","sz":"17.6","n":1}]]}}'
)
BOOK_EMPTY = '{"channel":"l2Book","data":{"coin":"SHIA","time":1730160007687,"levels":[[],[]]}}'
BOOK_BTC = (
    '{"channel":"l2Book","data":{"coin":"BTC","time":1751427259657,"levels":[[{"px":"106217.0",'
    '"sz":"0.001","n":1},{"px":"106215.0","sz":"0.001","n":1},{"px":"106213.0","sz":"0.27739",'
    '"n":1},{"px":"106193.0","sz":"0.49943","n":1},{"px":"106190.0","sz":"0.52899","n":1},'
    '{"px":"106162.0","sz":"0.55931","n":1},{"px":"106160.0","sz":"0.55023","n":1},{"px":'
    '"106140.0","sz":"0.001","n":1},{"px":"106137.0","sz":"0.001","n":1},{"px":"106131.0","sz":'
    '"0.001","n":1},{"px":"106111.0","sz":"0.01094","n":1},{"px":"106085.0","sz":"1.02207","n":2},'
    '{"px":"105916.0","sz":"0.001","n":1},{"px":"105913.0","sz":"1.01927","n":2},{"px":'
    '"105822.0","sz":"0.00474","n":1},{"px":"105698.0","sz":"0.51012","n":1},{"px":"105696.0",'
    '"sz":"0.001","n":1},{"px":"105604.0","sz":"0.55072","n":1},{"px":"105579.0","sz":"0.00217",'
    '"n":1},{"px":"105543.0","sz":"0.0197","n":1}],[{"px":"106233.0","sz":"0.26739","n":3},{"px":'
    '"106258.0","sz":"0.001","n":1},{"px":"106270.0","sz":"0.49128","n":2},{"px":"106306.0","sz":'
    '"0.27263","n":1},{"px":"106311.0","sz":"0.23837","n":1},{"px":"106350.0","sz":"0.001","n":1},'
    '{"px":"106396.0","sz":"0.24733","n":1},{"px":"106414.0","sz":"0.27088","n":1},{"px":'
    '"106560.0","sz":"0.0001","n":1},{"px":"106597.0","sz":"0.56981","n":1},{"px":"106637.0",'
    '"sz":"0.57002","n":1},{"px":"106932.0","sz":"0.001","n":1},{"px":"107012.0","sz":"1.06873",'
    '"n":2},{"px":"107094.0","sz":"0.0041","n":1},{"px":"107360.0","sz":"0.001","n":1},{"px":'
    '"107535.0","sz":"0.002","n":1},{"px":"107638.0","sz":"0.001","n":1},{"px":"107639.0","sz":'
    '"0.0007","n":1},{"px":"107650.0","sz":"0.00074","n":1},{"px":"107675.0","sz":"0.00083",'
    '"n":1}]]}}'
)
"""hyperliquid-dex/order_book_server: a whole BTC book, 20 levels a side."""
TRADE_BTC = (
    '{"channel":"trades","data":[{"coin":"BTC","side":"A","px":"106296.0","sz":"0.00017",'
    '"time":1751430933565,"hash":"0xde93a8a0729ade63d8840417805ba9010b008818422ddedb1285744426b'
    '73503","tid":293353986402527,"users":["0xcc0a3b6e3267c84361e91d8230868eea53431e4b",'
    '"0xc64cc00b46101bd40aa1c3121195e85c0b0918d8"]}]}'
)
"""hyperliquid-dex/order_book_server: one print, the taker sold (``A``)."""


def _markets(*names: str) -> dict[str, Instrument]:
    rows = [{"name": n, "szDecimals": 2, "maxLeverage": 10} for n in names]
    return {i.symbol: i for i in parse_meta({"universe": rows})}


@pytest.fixture
def markets() -> dict[str, Instrument]:
    return _markets("BTC", "FXS", "BANANA", "SHIA", "@162", "kPEPE")


def _parser(markets: dict[str, Instrument], volume: bool = True) -> HyperliquidParser:
    parser = HyperliquidParser(VENUE, markets, None)
    if volume:
        parser.volumes = Volumes(VENUE)
    return parser


def _with_time(frame: str, **times: int) -> str:
    """``frame`` with its ``data.time`` (bbo, l2Book) set: the same frame, a later push."""
    msg = json.loads(frame)
    msg["data"]["time"] = times["time"]
    return json.dumps(msg, separators=(",", ":"))


def _trade_raws(captures: Path) -> list[str]:
    lines = [json.loads(line) for line in (captures / "hyperliquid.jsonl").read_text().splitlines()]
    return [str(d["raw"]) for d in lines if json.loads(d["raw"])["channel"] == "trades"]


# -- trades -----------------------------------------------------------------------------------


def test_captured_trades_sum_into_taker_volume_per_second(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raws = _trade_raws(captures)
    btc = [r for r in raws if '"coin":"BTC"' in r]
    assert len(btc) == 2  # three buys in second 1730160006, one in 1730160007
    parser = _parser(markets)
    assert parser.parse(btc[0], 1730160006192 + 300) == []  # its second still open
    (closed,) = parser.parse(btc[1], 1730160007572 + 300)  # a later second closes it
    assert isinstance(closed, Volume)
    assert closed.symbol == closed.base == "BTC"
    assert closed.ts_ms == 1730160006000
    assert closed.trades == 3
    assert closed.taker_buy_base == pytest.approx(0.38111 + 0.33458 + 0.83613)  # B: taker bought
    assert closed.taker_buy_usd == pytest.approx((0.38111 + 0.33458 + 0.83613) * 69997.0)
    assert closed.taker_sell_base == closed.taker_sell_usd == 0
    (last,) = parser.flush_volumes(1730160009000)
    assert isinstance(last, Volume)
    assert (last.ts_ms, last.taker_buy_usd) == (1730160007000, pytest.approx(0.00714 * 69998.0))
    assert parser.stats.errors == {}


def test_a_taker_sell_from_the_venues_own_frame_and_a_repeat_counted_once(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    recv = 1751430933565 + 200
    assert parser.parse(TRADE_BTC, recv) == []
    assert parser.parse(TRADE_BTC, recv + 10) == []  # a rotation's second connection
    (vol,) = parser.flush_volumes(recv + 2000)
    assert isinstance(vol, Volume)
    assert vol.trades == 1  # the repeated tid is dropped
    assert vol.taker_sell_base == pytest.approx(0.00017)  # A: the taker sold
    assert vol.taker_sell_usd == pytest.approx(0.00017 * 106296.0)
    assert vol.taker_buy_usd == 0
    assert parser.volumes is not None
    assert parser.volumes.duplicates == 1


def test_a_k_coin_trades_in_thousands_valued_at_its_price_per_thousand(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    # The FXS print, as kPEPE: sz is kPEPE (1000 PEPE), px USDC per kPEPE.
    (fxs,) = [r for r in _trade_raws(captures) if "1.9008" in r]
    parser = _parser(markets)
    parser.parse(fxs.replace('"FXS"', '"kPEPE"'), 1730160015113 + 100)
    (vol,) = parser.flush_volumes(1730160017000)
    assert isinstance(vol, Volume)
    assert (vol.symbol, vol.base) == ("kPEPE", "kPEPE")
    assert vol.taker_sell_base == pytest.approx(10.5)
    assert vol.taker_sell_usd == pytest.approx(10.5 * 1.9008)


def test_old_prints_volume_off_and_bad_rows_give_no_volume(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    assert parser.parse(TRADE_BTC, 1751430933565 + 10_001) == []  # history: a re-send
    assert parser.stats.filtered == 1
    assert parser.flush_volumes(1751430950000) == []
    bad = TRADE_BTC.replace('"side":"A"', '"side":"X"')
    assert parser.parse(bad, 1751430933565 + 100) == []
    assert parser.stats.errors == {"invalid_trades": 1}
    off = _parser(markets, volume=False)
    assert off.parse(TRADE_BTC, 1751430933565 + 100) == []
    assert (off.stats.filtered, off.stats.errors) == (1, {})


# -- bbo --------------------------------------------------------------------------------------


def test_the_recorded_bbo_gives_the_top_of_book_in_coin_and_usd(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    recv = 1750948919838 + 150
    (top,) = parser.parse(BBO_TWO_SIDED, recv)
    assert isinstance(top, BookTop)
    assert (top.symbol, top.ts_ms, top.recv_ms) == ("@162", 1750948919838, recv)
    assert (top.bid_price, top.ask_price) == (0.97925, 0.97934)
    assert (top.bid_base, top.ask_base) == (4144.6, 50.0)
    assert top.bid_usd == pytest.approx(4144.6 * 0.97925)
    assert top.ask_usd == pytest.approx(50.0 * 0.97934)
    mid = (0.97925 + 0.97934) / 2
    assert top.spread_bp == pytest.approx((0.97934 - 0.97925) / mid * 10_000)


def test_a_one_sided_bbo_gives_no_top_and_no_error(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    assert parser.parse(BBO_ONE_SIDED, 1750948919838 + 100) == []
    nulled = BBO_ONE_SIDED.replace('"n":17}]', '"n":17},null]')  # the docs' null side
    assert parser.parse(nulled, 1750948919838 + 100) == []
    assert parser.stats.errors == {}


def test_top_of_book_at_most_once_a_second_the_last_change_reported_late(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    t0 = 1750948919838
    assert len(parser.parse(BBO_TWO_SIDED, t0 + 100)) == 1
    changed = _with_time(BBO_TWO_SIDED, time=t0 + 400).replace('"4144.6"', '"100.0"')
    assert parser.parse(changed, t0 + 500) == []  # within the second: it waits
    ctx = (
        '{"channel":"activeAssetCtx","data":{"coin":"@162","ctx":{"funding":"0.0",'
        '"openInterest":"1.0","markPx":"0.9793","oraclePx":"0.9793"}}}'
    )  # the coin's next context push (every block) reports it once the second is over
    late = [e for e in parser.parse(ctx, t0 + 1100) if isinstance(e, BookTop)]
    assert [(t.ts_ms, t.bid_base) for t in late] == [(t0 + 400, 100.0)]
    assert not [e for e in parser.parse(ctx, t0 + 2500) if isinstance(e, BookTop)]


def test_a_bbo_with_crossed_or_negative_levels_is_counted(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    crossed = BBO_TWO_SIDED.replace('"0.97934"', '"0.9"')
    assert parser.parse(crossed, 1750948919838 + 100) == []
    negative = BBO_TWO_SIDED.replace('"50.0"', '"-50.0"')
    assert parser.parse(negative, 1750948919838 + 100) == []
    assert parser.parse(BBO_TWO_SIDED.replace('"0.97925"', '"x"'), 1750948919838) == []
    assert parser.stats.errors == {"invalid_bbo": 3}


# -- l2Book -----------------------------------------------------------------------------------


def test_the_venues_twenty_level_book_gives_usd_within_each_band_and_its_reach(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    (depth,) = parser.parse(BOOK_BTC, 1751427259657 + 80)
    assert isinstance(depth, BookDepth)
    mid = (106217.0 + 106233.0) / 2
    assert depth.mid == mid
    bids, asks = json.loads(BOOK_BTC)["data"]["levels"]

    def usd(levels: list[dict[str, Any]], inside: Any) -> float:
        return sum(float(x["sz"]) * float(x["px"]) for x in levels if inside(float(x["px"])))

    for band, bid, ask in (
        (0.5, depth.bid_usd_0p5, depth.ask_usd_0p5),
        (1.0, depth.bid_usd_1, depth.ask_usd_1),
        (2.0, depth.bid_usd_2, depth.ask_usd_2),
    ):
        assert bid == pytest.approx(usd(bids, lambda p, b=band: p >= mid * (1 - b / 100)))
        assert ask == pytest.approx(usd(asks, lambda p, b=band: p <= mid * (1 + b / 100)))
    # 105604 is the first bid beyond 0.5 % of mid (105693.875): the band stops before it
    assert depth.bid_usd_0p5 < depth.bid_usd_1 == depth.bid_usd_2
    assert depth.bid_reach_pct == pytest.approx((mid - 105543.0) / mid * 100)  # 0.64 %
    assert depth.ask_reach_pct == pytest.approx((107675.0 - mid) / mid * 100)  # 1.37 %
    assert [depth.exact("bid", b) for b in (0.5, 1.0, 2.0)] == [True, False, False]
    assert [depth.exact("ask", b) for b in (0.5, 1.0, 2.0)] == [True, True, False]
    assert parser.stats.errors == {}


def test_the_recorded_two_level_book_and_an_empty_one(markets: dict[str, Instrument]) -> None:
    parser = _parser(markets)
    (depth,) = parser.parse(BOOK_BANANA, 1730160007687 + 50)
    assert isinstance(depth, BookDepth)
    assert depth.mid == pytest.approx((59.8 + 59.811) / 2)
    assert depth.bid_usd_0p5 == pytest.approx(3.4 * 59.8 + 1.6 * 59.778)
    assert depth.ask_usd_0p5 == pytest.approx(2.9 * 59.811 + 17.6 * 59.832)
    assert not depth.exact("bid", 0.5)  # two levels reach 0.04 %: lower bounds
    assert parser.parse(BOOK_EMPTY, 1730160007687 + 50) == []  # no mid, nothing to report
    assert parser.stats.errors == {}


def test_depth_at_most_once_a_second_bad_books_counted_and_replaced(
    markets: dict[str, Instrument],
) -> None:
    parser = _parser(markets)
    t0 = 1730160007687
    assert len(parser.parse(BOOK_BANANA, t0)) == 1
    assert parser.parse(_with_time(BOOK_BANANA, time=t0 + 500), t0 + 500) == []  # too soon
    crossed = _with_time(BOOK_BANANA, time=t0 + 1000).replace('"59.811"', '"59.7"')
    assert parser.parse(crossed, t0 + 1000) == []
    negative = _with_time(BOOK_BANANA, time=t0 + 1000).replace('"17.6"', '"-17.6"')
    assert parser.parse(negative, t0 + 1000) == []
    assert parser.parse('{"channel":"l2Book","data":{"coin":"BANANA"}}', t0 + 1000) == []
    assert parser.stats.errors == {
        "orderbook_crossed": 1,
        "invalid_orderbook_level": 1,
        "invalid_orderbook": 1,
    }
    (healed,) = parser.parse(_with_time(BOOK_BANANA, time=t0 + 1500), t0 + 1500)
    assert isinstance(healed, BookDepth)
    assert healed.ts_ms == t0 + 1500


# -- subscriptions ----------------------------------------------------------------------------


def test_books_of_the_depth_set_on_a_connection_of_their_own(
    markets: dict[str, Instrument],
) -> None:
    venue = Hyperliquid(VenueSettings(symbols=["BTC", "kPEPE"], depth=DepthSettings(top_n=2)))
    venue.depth_symbols = frozenset({"BTC"})
    public, liquidations, depth = venue.connections(markets)
    assert [c.name for c in (public, liquidations, depth)] == ["public", "liquidations", "depth-1"]
    assert depth.url == public.url
    assert depth.ping == public.ping
    assert [json.loads(m) for m in depth.subscribe] == [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC", "nSigFigs": 4}}
    ]
    assert BOOK_SIG_FIGS == 4
    venue.depth_symbols = frozenset({"kPEPE"})  # another ranking: the public one is unchanged
    public2, liquidations2, depth2 = venue.connections(markets)
    assert (public2, liquidations2) == (public, liquidations)
    assert depth2 != depth
    with pytest.raises(ValueError, match=r"depth\.levels"):
        Hyperliquid(VenueSettings(depth=DepthSettings(levels=50)))
    off = Hyperliquid(VenueSettings(symbols=["BTC"], volume=False, depth=DepthSettings(top_n=0)))
    off.depth_symbols = frozenset({"BTC"})
    only, _ = off.connections(markets)
    assert [json.loads(m)["subscription"]["type"] for m in only.subscribe][-2:] == [
        "activeAssetCtx",
        "bbo",
    ]


def test_liquidity_channels_yield_to_the_contexts_within_the_limit() -> None:
    users = [f"0x{n:040x}" for n in range(5)]  # their fills: room kept on the public one too
    coins = [f"C{n}" for n in range(400)]
    subs = [
        json.loads(m)["subscription"]
        for m in subscribe_messages(coins, users, bbo=True, trades=True, reserved=20)
    ]
    # room kept for the books, and for the vaults' fills (on the liquidations connection)
    assert len(subs) + len(fills_messages(users)) == MAX_SUBSCRIPTIONS - 20
    kinds = [s["type"] for s in subs]
    assert kinds.count("activeAssetCtx") == 400  # every coin's context first
    room = MAX_SUBSCRIPTIONS - 20 - 5 - 400  # 575: coin by coin, bbo then trades
    assert (kinds.count("bbo"), kinds.count("trades")) == (room // 2 + 1, room // 2)
    assert subs[-2:] == [{"type": "trades", "coin": "C286"}, {"type": "bbo", "coin": "C287"}]
