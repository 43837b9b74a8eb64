"""Bitget v2 ``books15``: the depth of each whole-book push, its checks and its connections, on
the frame of Bitget's docs (https://www.bitget.com/api-doc/contract/websocket/public/
Order-Book-Channel: the push example, a ``books5`` one; the channel's rows are the same shape),
values worked out here from the frame's levels."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth
from service.venues.base import Instrument
from service.venues.bitget.venue import Bitget, BitgetParser

VENUE = "bitget"
MARKETS = {
    "BTCUSDT": Instrument(VENUE, "BTCUSDT", "BTC", "USDT", linear=True),
    "ETHUSDT": Instrument(VENUE, "ETHUSDT", "ETH", "USDT", linear=True),
    "BTCUSD": Instrument(VENUE, "BTCUSD", "BTC", "USD", linear=True),  # coin-margined
    "SOLUSDT": Instrument(VENUE, "SOLUSDT", "SOL", "USDT", linear=True),
}

# The docs' push example, as the stored page gives it (its envelope's ts is cut off there).
DOCS_PUSH = (
    '{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5",'
    '"instId":"BTCUSDT"},"data":[{"asks":[["27000.5","8.760"],["27001.0","0.400"]],'
    '"bids":[["27000.0","2.710"],["26999.5","1.460"]],"checksum":0,"seq":123,"pseq":122,'
    '"ts":"1695716059516"}]}'
)
DOCS_BOOKS15 = DOCS_PUSH.replace('"books5"', '"books15"')


def _push(ts: int, bids: list[Any], asks: list[Any], symbol: str = "BTCUSDT") -> str:
    return json.dumps({
        "action": "snapshot",
        "arg": {"instType": "USDT-FUTURES", "channel": "books15", "instId": symbol},
        "data": [{"asks": asks, "bids": bids, "checksum": 0, "seq": 1, "pseq": 0,
                  "ts": str(ts)}],
        "ts": ts + 1,
    })  # fmt: skip


def _usd(levels: list[list[str]]) -> float:
    return sum(float(p) * float(q) for p, q in levels)


def _depth(events: list[Any]) -> BookDepth:
    (ev,) = events
    assert isinstance(ev, BookDepth)
    return ev


@pytest.mark.parametrize("frame", [DOCS_PUSH, DOCS_BOOKS15])
def test_the_docs_push_gives_the_usd_near_mid_and_flags_the_bands_it_does_not_reach(
    frame: str,
) -> None:
    data = json.loads(frame)["data"][0]
    parser = BitgetParser(VENUE, MARKETS, None)
    d = _depth(parser.parse(frame, recv_ms=5))
    mid = (27000.0 + 27000.5) / 2  # 27000.25
    assert d.mid == mid
    assert (d.venue, d.symbol, d.base) == (VENUE, "BTCUSDT", "BTC")
    assert (d.ts_ms, d.recv_ms) == (int(data["ts"]), 5)  # the row's time
    # Every level is within 0.5 % of mid (135 USD): each band holds all of them.
    bids, asks = _usd(data["bids"]), _usd(data["asks"])  # 112,589.27 and 247,326.78 USD
    assert bids == pytest.approx(27000.0 * 2.710 + 26999.5 * 1.460)
    assert (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2) == pytest.approx((bids, bids, bids))
    assert (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2) == pytest.approx((asks, asks, asks))
    # ...but the levels received reach only 0.0028 % from mid: every band is a lower bound.
    assert d.bid_reach_pct == pytest.approx((mid - 26999.5) / mid * 100)
    assert d.ask_reach_pct == pytest.approx((27001.0 - mid) / mid * 100)
    assert not any(d.exact(side, band) for side in ("bid", "ask") for band in (0.5, 1, 2))
    assert not parser.stats.errors


def test_fifteen_levels_that_stop_short_of_2_percent_flag_the_bands_beyond_them() -> None:
    # mid 100; 15 bids every 0.12 from 99.9 (reach 1.78 %), 15 asks every 0.06 from 100.1
    # (reach 0.94 %): no level on a band's edge.
    bids = [[f"{99.9 - 0.12 * i:.2f}", "2"] for i in range(15)]
    asks = [[f"{100.1 + 0.06 * i:.2f}", "1"] for i in range(15)]
    d = _depth(BitgetParser(VENUE, MARKETS, None).parse(_push(1_700_000_000_000, bids, asks), 1))
    assert d.mid == pytest.approx(100.0)
    assert d.bid_reach_pct == pytest.approx(1.78)  # 98.22
    assert d.ask_reach_pct == pytest.approx(0.94)  # 100.94
    assert d.exact("bid", 0.5)
    assert d.exact("bid", 1.0)
    assert not d.exact("bid", 2.0)
    assert d.exact("ask", 0.5)
    assert not d.exact("ask", 1.0)
    near = [float(p) * 2 for p, _ in bids if float(p) >= 99.5]  # 99.9, 99.78, 99.66, 99.54
    assert len(near) == 4
    assert d.bid_usd_0p5 == pytest.approx(sum(near))
    assert d.bid_usd_2 == pytest.approx(_usd(bids))  # all 15: a lower bound of the 2 % band
    assert d.ask_usd_0p5 == pytest.approx(_usd(asks[:7]))  # 100.1 ... 100.46
    assert d.ask_usd_1 == d.ask_usd_2 == pytest.approx(_usd(asks))  # lower bounds


def test_depth_is_reported_at_most_once_a_second_with_the_latest_push() -> None:
    parser = BitgetParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    assert len(parser.parse(_push(t0, [["100", "1"]], [["101", "1"]]), recv_ms=1)) == 1
    for i in range(1, 7):  # a push every 150 ms
        assert parser.parse(_push(t0 + 150 * i, [["100", str(i)]], [["101", "1"]]), 1) == []
    d = _depth(parser.parse(_push(t0 + 1050, [["100", "9"]], [["101", "3"]]), recv_ms=2))
    assert (d.bid_usd_0p5, d.ask_usd_0p5, d.ts_ms) == (900.0, 303.0, t0 + 1050)
    assert not parser.stats.errors


@pytest.mark.parametrize(
    ("bids", "asks", "reason"),
    [
        ([["100", "1"]], [["100", "1"]], "orderbook_crossed"),  # best bid at the best ask
        ([["100.5", "1"], ["99", "1"]], [["100.2", "1"]], "orderbook_crossed"),
        ([["100", "-1"]], [["101", "1"]], "invalid_orderbook_level"),
        ([["0", "1"]], [["101", "1"]], "invalid_orderbook_level"),
        ([["100", "x"]], [["101", "1"]], "invalid_orderbook_level"),
        ([["100", "1"]], [["NaN", "1"]], "invalid_orderbook_level"),
        ([["100"]], [["101", "1"]], "invalid_orderbook_level"),
    ],
)
def test_a_bad_push_is_a_counted_drop_and_the_next_one_reports(
    bids: list[Any], asks: list[Any], reason: str
) -> None:
    parser = BitgetParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    assert parser.parse(_push(t0, bids, asks), recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}
    d = _depth(parser.parse(_push(t0 + 150, [["100", "1"]], [["101", "1"]]), recv_ms=2))
    assert d.ts_ms == t0 + 150  # the bad one reported nothing: the next is due at once


def test_an_unreadable_push_is_counted_and_an_empty_side_reports_nothing() -> None:
    parser = BitgetParser(VENUE, MARKETS, None)
    bad = DOCS_BOOKS15.replace('"ts":"1695716059516"', '"ts":"soon"')
    assert parser.parse(bad, recv_ms=1) == []
    two_rows = DOCS_BOOKS15.replace('"data":[{', '"data":[{"bids":[],"asks":[],"ts":"1"},{')
    assert parser.parse(two_rows, recv_ms=1) == []
    assert parser.stats.errors == {"invalid_orderbook": 2}
    assert parser.parse(_push(1_700_000_000_000, [], [["101", "1"]]), recv_ms=1) == []
    assert parser.stats.errors == {"invalid_orderbook": 2}  # no mid: nothing, no error


def test_a_symbol_not_followed_is_filtered() -> None:
    parser = BitgetParser(VENUE, MARKETS, {"ETHUSDT"})
    assert parser.parse(DOCS_BOOKS15, recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


def _venue(**depth: Any) -> Bitget:
    return Bitget(VenueSettings(symbols=list(MARKETS), depth=DepthSettings(**depth)))


def test_the_depth_set_gets_v2_connections_of_its_own() -> None:
    venue = _venue()
    before = {c.name: c for c in venue.connections(MARKETS)}
    assert not any(name.startswith("depth") for name in before)  # an empty set: none
    venue.depth_symbols = frozenset({"BTCUSDT", "BTCUSD"})
    conns = {c.name: c for c in venue.connections(MARKETS)}
    depth = conns.pop("depth-1")
    assert conns == before  # the ticker connections do not change with the depth set
    assert depth.url == "wss://ws.bitget.com/v2/ws/public"
    (request,) = depth.subscribe
    assert json.loads(request) == {
        "op": "subscribe",
        "args": [
            {"instType": "COIN-FUTURES", "channel": "books15", "instId": "BTCUSD"},
            {"instType": "USDT-FUTURES", "channel": "books15", "instId": "BTCUSDT"},
        ],
    }
    assert (depth.ping, depth.pong, depth.own_parser) == ("ping", "pong", False)


def test_the_depth_url_follows_a_configured_endpoint_and_the_levels_pick_the_channel() -> None:
    venue = Bitget(
        VenueSettings(ws_url="ws://127.0.0.1:9/v3/ws/public", depth=DepthSettings(levels=5))
    )
    assert venue.depth_url == "ws://127.0.0.1:9/v2/ws/public"
    venue.depth_symbols = frozenset({"ETHUSDT"})
    (depth,) = [c for c in venue.connections(MARKETS) if c.name.startswith("depth")]
    assert '"channel":"books5"' in depth.subscribe[0]


def test_many_followed_symbols_are_spread_over_connections_of_50() -> None:
    symbols = [f"S{i:03}USDT" for i in range(120)]
    markets = {s: Instrument(VENUE, s, "S", "USDT", linear=True) for s in symbols}
    venue = Bitget(VenueSettings(depth=DepthSettings(top_n=120)))
    venue.depth_symbols = frozenset(markets)
    depth = [c for c in venue.connections(markets) if c.name.startswith("depth")]
    assert [c.name for c in depth] == ["depth-1", "depth-2", "depth-3"]
    counts = [sum(r.count('"books15"') for r in c.subscribe) for c in depth]
    assert counts == [50, 50, 20]


def test_no_depth_when_top_n_is_0_and_a_level_count_bitget_has_not_fails_at_start() -> None:
    venue = _venue(top_n=0)
    venue.depth_symbols = frozenset({"BTCUSDT"})
    assert venue.depth_levels == 0
    assert not [c for c in venue.connections(MARKETS) if c.name.startswith("depth")]
    with pytest.raises(ValueError, match=r"venues\.bitget\.depth\.levels"):
        _venue(levels=50)
