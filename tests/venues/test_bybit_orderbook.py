"""Bybit ``orderbook.{depth}.{symbol}``: the local book, its sequence checks and the depth it
reports, on the frames of Bybit's docs (https://bybit-exchange.github.io/docs/v5/websocket/
public/orderbook: the snapshot and delta examples, their elided levels left out), values worked
out here from the frames' levels."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.config import DepthSettings, StressSettings, VenueSettings
from service.events import BookDepth
from service.venues.base import Instrument
from service.venues.bybit.venue import Bybit, BybitParser

VENUE = "bybit"
MARKETS = {
    "BTCUSDT": Instrument(VENUE, "BTCUSDT", "BTC", "USDT", linear=True),
    "ETHUSDT": Instrument(VENUE, "ETHUSDT", "ETH", "USDT", linear=True),
    "BTCUSD": Instrument(VENUE, "BTCUSD", "BTC", "USD", linear=False, contract_size=1.0),
}

# The docs' snapshot example (its "..." levels left out).
DOCS_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,"data":{'
    '"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724}}'
)
# The docs' delta example, whole.
DOCS_DELTA = (
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT",'
    '"b":[["30247.20","30.028"],["30245.40","0.224"],["30242.10","1.593"],["30240.30","1.305"],'
    '["30240.00","0"]],"a":[["30248.70","0"],["30249.30","0.892"],["30249.50","1.778"],'
    '["30249.60","0"],["30251.90","2.947"],["30252.20","0.659"],["30252.50","4.591"]],'
    '"u":177400507,"seq":66544703342},"cts":1687940967464}'
)


def _frame(kind: str, ts: int, u: int, b: list[Any], a: list[Any], symbol: str = "BTCUSDT") -> str:
    return json.dumps({
        "topic": f"orderbook.200.{symbol}", "type": kind, "ts": ts,
        "data": {"s": symbol, "b": b, "a": a, "u": u, "seq": 1}, "cts": ts - 2,
    })  # fmt: skip


def _usd(levels: list[list[str]]) -> float:
    return sum(float(p) * float(q) for p, q in levels)


def _depth(events: list[Any]) -> BookDepth:
    (ev,) = events
    assert isinstance(ev, BookDepth)
    return ev


def test_the_docs_snapshot_gives_the_usd_near_mid_and_flags_the_bands_it_does_not_reach() -> None:
    data = json.loads(DOCS_SNAPSHOT)["data"]
    d = _depth(BybitParser(VENUE, MARKETS, None).parse(DOCS_SNAPSHOT, recv_ms=5))
    mid = (16493.50 + 16611.00) / 2  # 16552.25: a wide book (the example's elided levels)
    assert d.mid == mid
    assert (d.ts_ms, d.recv_ms, d.base) == (1672304484978, 5, "BTC")
    # Every level is within 0.5 % of mid (82.76 USD): each band holds all of them.
    bids, asks = _usd(data["b"]), _usd(data["a"])  # 1,748.26 and 4,020.08 USD
    assert (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2) == pytest.approx((bids, bids, bids))
    assert (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2) == pytest.approx((asks, asks, asks))
    # ...but the levels received reach only 0.36 % from mid: no band is known complete.
    assert d.bid_reach_pct == pytest.approx((mid - 16493.00) / mid * 100)
    assert d.ask_reach_pct == pytest.approx((16612.00 - mid) / mid * 100)
    assert not d.exact("bid", 0.5)
    assert not d.exact("ask", 0.5)


def test_the_docs_delta_updates_inserts_and_deletes_levels() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    ts = 1687940967466
    # A book for the delta to apply to (the docs give none: its levels are ours): the delta
    # deletes 30240.00 and 30248.70, updates 30247.20 and 30249.30, and inserts the rest.
    snapshot = _frame(
        "snapshot", ts - 100, 177400506,
        b=[["30247.20", "1"], ["30240.00", "2"], ["30100.00", "3"]],
        a=[["30248.70", "1"], ["30249.30", "1"], ["30400.00", "2"]],
    )  # fmt: skip
    parser.parse(snapshot, recv_ms=1)
    assert parser.parse(DOCS_DELTA, recv_ms=2) == []  # 100 ms later: not due yet
    book = parser.books["BTCUSDT"]
    delta = json.loads(DOCS_DELTA)["data"]
    bids = {30247.20: 30.028, 30245.40: 0.224, 30242.10: 1.593, 30240.30: 1.305, 30100.0: 3}
    asks = {30249.30: 0.892, 30249.50: 1.778, 30251.90: 2.947, 30252.20: 0.659}
    asks |= {30252.50: 4.591, 30400.0: 2}
    assert (book.bids, book.asks, book.update_id) == (bids, asks, delta["u"])
    # The next frame a second on reports the merged book.
    d = _depth(parser.parse(_frame("delta", ts + 900, delta["u"] + 1, [], []), recv_ms=3))
    mid = (30247.20 + 30249.30) / 2
    assert d.mid == pytest.approx(mid)
    near_bids = sum(p * q for p, q in bids.items() if p >= mid * 0.995)  # 30100 is 0.49 %
    assert d.bid_usd_0p5 == pytest.approx(near_bids)
    near_asks = sum(p * q for p, q in asks.items() if p <= mid * 1.005)  # 30400 is 0.50 %
    assert d.ask_usd_0p5 == pytest.approx(near_asks)
    assert d.ask_usd_2 == pytest.approx(sum(p * q for p, q in asks.items()))
    assert not parser.stats.errors


def test_bands_are_cumulative_and_a_band_the_levels_reach_is_exact() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    # mid 100: bids 0.1, 0.6, 1.5 and 3 % below it; asks 0.1, 0.4, 0.9, 1.9 and 2.6 % above.
    b = [["99.9", "10"], ["99.4", "20"], ["98.5", "30"], ["97", "40"]]
    a = [["100.1", "1"], ["100.4", "2"], ["100.9", "3"], ["101.9", "4"], ["102.6", "5"]]
    d = _depth(parser.parse(_frame("snapshot", 1_700_000_000_000, 7, b, a), recv_ms=1))
    assert d.mid == pytest.approx(100.0)
    assert d.bid_usd_0p5 == pytest.approx(999.0)
    assert d.bid_usd_1 == pytest.approx(999.0 + 1988.0)
    assert d.bid_usd_2 == pytest.approx(999.0 + 1988.0 + 2955.0)  # 97 is beyond 2 %
    assert d.ask_usd_0p5 == pytest.approx(100.1 + 200.8)
    assert d.ask_usd_1 == pytest.approx(100.1 + 200.8 + 302.7)
    assert d.ask_usd_2 == pytest.approx(100.1 + 200.8 + 302.7 + 407.6)  # not 102.6
    assert d.bid_reach_pct == pytest.approx(3.0)
    assert d.ask_reach_pct == pytest.approx(2.6)
    assert all(d.exact(side, band) for side in ("bid", "ask") for band in (0.5, 1.0, 2.0))


def test_an_inverse_book_is_valued_in_usd_contracts() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    b, a = [["30000", "5000"], ["29000", "7000"]], [["30010", "4000"]]
    d = _depth(parser.parse(_frame("snapshot", 1_700_000_000_000, 7, b, a, "BTCUSD"), 1))
    assert (d.bid_usd_0p5, d.bid_usd_2, d.ask_usd_2) == (5000.0, 5000.0, 4000.0)  # 29000: 3.3 %


def test_depth_is_reported_at_most_once_a_second_with_the_latest_book() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    b, a = [["100", "1"]], [["101", "1"]]
    assert len(parser.parse(_frame("snapshot", t0, 10, b, a), recv_ms=1)) == 1  # at once
    for i in range(1, 10):  # ten deltas a second
        assert parser.parse(_frame("delta", t0 + 100 * i, 10 + i, [["100", str(i)]], []), 1) == []
    d = _depth(parser.parse(_frame("delta", t0 + 1000, 20, [], [["101", "3"]]), recv_ms=2))
    assert (d.bid_usd_0p5, d.ask_usd_0p5, d.ts_ms) == (900.0, 303.0, t0 + 1000)


def test_a_gap_drops_the_book_counts_it_and_asks_for_a_new_snapshot() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    b, a = [["100", "1"]], [["101", "1"]]
    parser.parse(_frame("snapshot", t0, 10, b, a), recv_ms=1)
    assert parser.parse(_frame("delta", t0 + 1000, 12, b, a), recv_ms=2) == []  # 11 missed
    assert parser.stats.errors == {"orderbook_gap": 1}
    assert parser.resync == {"BTCUSDT"}
    assert "BTCUSDT" not in parser.books
    # Deltas until the resubscription's snapshot arrives are counted, not applied.
    assert parser.parse(_frame("delta", t0 + 2000, 13, b, a), recv_ms=3) == []
    assert parser.stats.errors["orderbook_delta_before_snapshot"] == 1
    d = _depth(parser.parse(_frame("snapshot", t0 + 3000, 500, b, [["102", "1"]]), recv_ms=4))
    assert d.mid == 101.0


def test_an_update_id_going_backwards_is_a_gap() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(_frame("snapshot", 1_700_000_000_000, 10, [["100", "1"]], [["101", "1"]]), 1)
    assert parser.parse(_frame("delta", 1_700_000_001_000, 9, [], []), recv_ms=2) == []
    assert parser.stats.errors == {"orderbook_gap": 1}
    assert parser.resync == {"BTCUSDT"}


def test_a_snapshot_with_u_1_after_a_restart_replaces_the_book() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    parser.parse(_frame("snapshot", t0, 5000, [["100", "1"], ["99", "9"]], [["101", "1"]]), 1)
    parser.parse(_frame("delta", t0 + 100, 5001, [["98", "1"]], []), recv_ms=2)
    # Bybit's service restarted: u starts again at 1, in a snapshot that replaces everything.
    restart = _frame("snapshot", t0 + 1000, 1, [["100.5", "2"]], [["101", "1"]])
    d = _depth(parser.parse(restart, recv_ms=3))
    assert parser.books["BTCUSDT"].bids == {100.5: 2.0}
    assert d.mid == 100.75
    assert d.bid_usd_2 == 201.0
    parser.parse(_frame("delta", t0 + 1100, 2, [["100", "1"]], []), recv_ms=4)
    assert parser.books["BTCUSDT"].bids == {100.5: 2.0, 100.0: 1.0}
    assert not parser.stats.errors
    assert not parser.resync


@pytest.mark.parametrize("level", [["nan", "1"], ["100", "-1"], ["100", "inf"], ["0", "1"]])
def test_a_level_that_is_no_price_and_size_drops_the_book(level: list[str]) -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(_frame("snapshot", 1_700_000_000_000, 10, [["100", "1"]], [["101", "1"]]), 1)
    assert parser.parse(_frame("delta", 1_700_000_001_000, 11, [level], []), recv_ms=2) == []
    assert "BTCUSDT" not in parser.books
    assert parser.stats.errors == {"invalid_orderbook_level": 1}
    assert parser.resync == {"BTCUSDT"}


def test_a_crossed_book_is_dropped_and_resubscribed() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    parser.parse(_frame("snapshot", 1_700_000_000_000, 10, [["100", "1"]], [["101", "1"]]), 1)
    assert parser.parse(_frame("delta", 1_700_000_001_000, 11, [["101.5", "1"]], []), 2) == []
    assert parser.stats.errors == {"orderbook_crossed": 1}
    assert parser.resync == {"BTCUSDT"}


def test_a_side_emptied_reports_nothing_until_it_is_quoted_again() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    parser.parse(_frame("snapshot", t0, 10, [["100", "1"]], [["101", "1"]]), 1)
    assert parser.parse(_frame("delta", t0 + 1000, 11, [["100", "0"]], []), recv_ms=2) == []
    assert not parser.stats.errors
    d = _depth(parser.parse(_frame("delta", t0 + 1100, 12, [["99", "1"]], []), recv_ms=3))
    assert d.mid == 100.0


def test_the_book_keeps_no_more_levels_than_the_depth_subscribed() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    b = [[str(100 - i / 100), "1"] for i in range(250)]
    a = [[str(101 + i / 100), "1"] for i in range(250)]
    d = _depth(parser.parse(_frame("snapshot", 1_700_000_000_000, 10, b, a), recv_ms=1))
    book = parser.books["BTCUSDT"]
    assert len(book.bids) == len(book.asks) == 200  # orderbook.200: the rest is trimmed
    assert d.bid_reach_pct == pytest.approx((100.5 - 98.01) / 100.5 * 100)


def test_unlisted_symbols_are_filtered_and_bad_frames_counted() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    other = _frame("snapshot", 1_700_000_000_000, 1, [["1", "1"]], [["2", "1"]], "XYZUSDT")
    assert parser.parse(other, recv_ms=1) == []
    assert parser.stats.filtered == 1
    for bad in (
        '{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT"}}',
        '{"topic":"orderbook.BTCUSDT","type":"snapshot","ts":1,"data":{}}',
        _frame("partial", 1_700_000_000_000, 1, [], []),
        _frame("delta", 1_700_000_000_000, 1, [["x", "1"]], []),  # not decoded: no book touched
    ):
        assert parser.parse(bad, recv_ms=1) == []
    assert parser.stats.errors == {"invalid_orderbook": 4}
    assert not parser.resync


# -- subscriptions ------------------------------------------------------------------------------


LIQUIDATIONS = {"linear-liquidations-1", "inverse-liquidations-1"}
"""The quiet lane: the liquidations' connections."""


def _args(conn: Any) -> list[tuple[str, str]]:
    return [(m["op"], t) for m in map(json.loads, conn.subscribe) for t in m["args"]]


def test_the_depth_set_has_its_own_connection_per_category() -> None:
    venue = Bybit(VenueSettings(stress=StressSettings(enabled=False)))
    assert venue.depth_levels == 200
    assert {c.name for c in venue.connections(MARKETS) if not c.quiet} == {
        "linear-1", "inverse-1"
    }  # fmt: skip
    before = {c.name: c.subscribe for c in venue.connections(MARKETS)}
    venue.depth_symbols = frozenset({"BTCUSDT", "ETHUSDT", "BTCUSD"})
    conns = {c.name: c for c in venue.connections(MARKETS)}
    assert _args(conns["linear-depth"]) == [
        ("subscribe", "orderbook.200.BTCUSDT"), ("subscribe", "orderbook.200.ETHUSDT"),
    ]  # fmt: skip
    assert conns["linear-depth"].url.endswith("/linear")
    assert conns["linear-depth"].ping
    assert _args(conns["inverse-depth"]) == [("subscribe", "orderbook.200.BTCUSD")]
    # A new set changes the depth connections' subscriptions only (the others do not
    # reconnect: the collector compares each connection's subscribe messages).
    venue.depth_symbols = frozenset({"ETHUSDT"})
    after = {c.name: c.subscribe for c in venue.connections(MARKETS)}
    assert set(after) == {"linear-1", "inverse-1", "linear-depth", *LIQUIDATIONS}
    assert {n: after[n] for n in before} == before


def test_depth_is_off_with_top_n_0_and_follows_its_levels_setting() -> None:
    off = Bybit(VenueSettings(depth=DepthSettings(top_n=0)))
    off.depth_symbols = frozenset({"BTCUSDT"})
    assert off.depth_levels == 0
    assert {c.name for c in off.connections(MARKETS)} == {"linear-1", "inverse-1", *LIQUIDATIONS}
    listed = Bybit(VenueSettings(depth=DepthSettings(top_n=0, symbols=["BTCUSDT"], levels=50)))
    listed.depth_symbols = frozenset({"BTCUSDT"})
    (depth,) = [c for c in listed.connections(MARKETS) if c.name == "linear-depth"]
    assert _args(depth) == [("subscribe", "orderbook.50.BTCUSDT")]


def test_a_resync_unsubscribes_then_subscribes_the_books() -> None:
    venue = Bybit(VenueSettings())
    messages = [json.loads(m) for m in venue.resubscribe(["ETHUSDT", "BTCUSDT"])]
    assert [(m["op"], m["args"]) for m in messages] == [
        ("unsubscribe", ["orderbook.200.BTCUSDT", "orderbook.200.ETHUSDT"]),
        ("subscribe", ["orderbook.200.BTCUSDT", "orderbook.200.ETHUSDT"]),
    ]


def test_a_new_snapshot_reports_no_sooner_than_a_second_after_the_last_report() -> None:
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    b, a = [["100", "1"]], [["101", "1"]]
    assert len(parser.parse(_frame("snapshot", t0, 10, b, a), recv_ms=1)) == 1
    # Resubscribed (a gap, a reconnect): the new snapshot 300 ms on is applied, not reported.
    assert parser.parse(_frame("snapshot", t0 + 300, 50, b, [["102", "1"]]), recv_ms=2) == []
    assert parser.books["BTCUSDT"].asks == {102.0: 1.0}
    d = _depth(parser.parse(_frame("delta", t0 + 1000, 51, [], []), recv_ms=3))
    assert d.mid == 101.0


def test_two_sessions_of_the_depth_connection_report_once_a_second_between_them() -> None:
    """A rotation's overlap: the successor's session (books of its own, :meth:`session_parser`)
    subscribes after the old one's report at t0 and before its report at t0 + 1000; the
    successor's first delta, 100 ms later, waits for the old one's last report to be a second
    old (seen in the live rotation test, under load: two depths 100 ms apart)."""
    venue = Bybit(VenueSettings())
    shared = BybitParser(VENUE, MARKETS, None)
    old, new = venue.session_parser(shared), venue.session_parser(shared)
    t0 = 1_700_000_000_000
    b, a = [["100", "1"]], [["101", "1"]]
    assert len(old.parse(_frame("snapshot", t0, 10, b, a), recv_ms=1)) == 1
    assert new.parse(_frame("snapshot", t0 + 300, 500, b, a), recv_ms=2) == []
    assert len(old.parse(_frame("delta", t0 + 1000, 11, [["100", "2"]], []), recv_ms=3)) == 1
    assert new.parse(_frame("delta", t0 + 1100, 501, [["100", "2"]], []), recv_ms=4) == []
    (d,) = new.parse(_frame("delta", t0 + 2000, 502, [["100", "3"]], []), recv_ms=5)
    assert d.ts_ms == t0 + 2000


def test_deltas_without_a_book_ask_for_a_snapshot_every_few_seconds() -> None:
    """A resubscription lost with its connection, or a rotation's successor whose book the old
    connection's last deltas dropped: the deltas keep asking, at most every 5 s."""
    parser = BybitParser(VENUE, MARKETS, None)
    t0 = 1_700_000_000_000
    for i, recv in enumerate((0, 1000, 4999, 5000)):
        parser.resync.clear()
        parser.parse(_frame("delta", t0 + recv, 100 + i, [], []), recv_ms=t0 + recv)
        assert parser.resync == ({"BTCUSDT"} if recv in (0, 5000) else set()), recv
    assert parser.stats.errors == {"orderbook_delta_before_snapshot": 4}
