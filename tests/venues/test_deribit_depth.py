"""Deribit ``book.{instrument}.100ms``: the whole book, then ``change`` notifications of
``[action, price, amount]`` kept as a local book, the ``prev_change_id`` chain followed, the
depth valued as the ticker's amounts (USD on the inverse BTC-PERPETUAL, coin on the linear
BTC_USDC-PERPETUAL, per the recorded listing: shared/captures/rest/DERIBIT.0.txt).

The snapshot is the example of Deribit's API v2 docs for the channel (https://docs.deribit.com/
subscriptions/orderbook/bookinstrument_nameinterval; the v2 docs printed it, and Deribit clients
quote it verbatim); the changes are built here by the page's rules ("If ``prev_change_id`` is
equal to the ``change_id`` of the previous message, this means that no messages have been
missed"; actions ``new``, ``change``, ``delete``). Values are worked out here from the levels."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth
from service.venues.base import Instrument
from service.venues.deribit.frames import instruments
from service.venues.deribit.venue import Deribit, DeribitParser

VENUE = "deribit"
INVERSE, LINEAR = "BTC-PERPETUAL", "BTC_USDC-PERPETUAL"

DOCS_SNAPSHOT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "method": "subscription",
    "params": {
        "channel": "book.BTC-PERPETUAL.100ms",
        "data": {
            "type": "snapshot",
            "timestamp": 1554373962454,
            "instrument_name": "BTC-PERPETUAL",
            "change_id": 297217,
            "bids": [["new", 5042.34, 30], ["new", 5041.94, 20]],
            "asks": [["new", 5042.64, 40], ["new", 5043.3, 40]],
        },
    },
}
T0 = DOCS_SNAPSHOT["params"]["data"]["timestamp"]
MID = (5042.34 + 5042.64) / 2


@pytest.fixture
def markets(captures: Path) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for line in (captures / "rest" / "DERIBIT.0.txt").read_text().splitlines():
        if " -> " in line:
            body = line.split(" -> ", 1)[1].split(": ", 1)[1]
            out.update((i.symbol, i) for i in instruments(body))
    assert not out[INVERSE].linear
    assert out[LINEAR].linear
    return out


def _snapshot(name: str = INVERSE, **data: Any) -> str:
    msg = copy.deepcopy(DOCS_SNAPSHOT)
    msg["params"]["channel"] = f"book.{name}.100ms"
    msg["params"]["data"] |= {"instrument_name": name, **data}
    return json.dumps(msg)


def _change(prev: int, change_id: int, ts: int, bids: list[Any], asks: list[Any]) -> str:
    return json.dumps({
        "jsonrpc": "2.0", "method": "subscription",
        "params": {"channel": f"book.{INVERSE}.100ms", "data": {
            "type": "change", "timestamp": ts, "prev_change_id": prev,
            "instrument_name": INVERSE, "change_id": change_id, "bids": bids, "asks": asks,
        }},
    })  # fmt: skip


def _depth(events: list[Any]) -> BookDepth:
    (ev,) = events
    assert isinstance(ev, BookDepth)
    return ev


@pytest.mark.parametrize("name", [INVERSE, LINEAR])
def test_the_docs_snapshot_gives_the_usd_near_mid(
    markets: dict[str, Instrument], name: str
) -> None:
    parser = DeribitParser(VENUE, markets, None)
    d = _depth(parser.parse(_snapshot(name), recv_ms=5))
    assert (d.venue, d.symbol, d.base, d.ts_ms, d.recv_ms) == (VENUE, name, "BTC", T0, 5)
    assert d.mid == pytest.approx(MID)
    # Every level is within 0.5 % of mid (25.2 USD): each band holds all of them.
    if name == INVERSE:  # amounts in USD (steps of the 10 USD contract)
        bids, asks = 30 + 20, 40 + 40
    else:  # amounts in BTC, valued at their price
        bids, asks = 30 * 5042.34 + 20 * 5041.94, 40 * 5042.64 + 40 * 5043.3
    assert (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2) == pytest.approx((bids, bids, bids))
    assert (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2) == pytest.approx((asks, asks, asks))
    assert d.bid_reach_pct == pytest.approx((MID - 5041.94) / MID * 100)
    assert d.ask_reach_pct == pytest.approx((5043.3 - MID) / MID * 100)
    assert not parser.stats.errors


def test_changes_follow_the_chain_and_depth_is_reported_once_a_second(
    markets: dict[str, Instrument],
) -> None:
    parser = DeribitParser(VENUE, markets, None)
    assert len(parser.parse(_snapshot(), recv_ms=1)) == 1
    # The best bid is taken, the best ask grows, a level 1.5 % below mid appears.
    frame = _change(297217, 297219, T0 + 100, [["delete", 5042.34, 0], ["new", 4967.0, 500]],
                    [["change", 5042.64, 70]])  # fmt: skip
    assert parser.parse(frame, recv_ms=2) == []  # not a second yet
    frame = _change(297219, 297220, T0 + 1000, [], [["delete", 5043.3, 0]])
    d = _depth(parser.parse(frame, recv_ms=3))
    mid = (5041.94 + 5042.64) / 2
    assert d.mid == pytest.approx(mid)
    assert (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2) == (20, 20, 20 + 500)  # 4967 is 1.49 % off
    assert (d.ask_usd_0p5, d.ask_usd_2) == (70, 70)
    assert d.bid_reach_pct == pytest.approx((mid - 4967.0) / mid * 100)
    assert not parser.stats.errors
    assert not parser.resync


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_change(297216, 297218, T0 + 1000, [], []), "orderbook_gap"),  # one missed
        (_change(297218, 297219, T0 + 1000, [], []), "orderbook_gap"),
        (_change(297217, 297218, T0 + 1000, [["new", 5042.7, 10]], []), "orderbook_crossed"),
        (_change(297217, 297218, T0 + 1000, [["modify", 5042.34, 10]], []),
         "invalid_orderbook_level"),
        (_change(297217, 297218, T0 + 1000, [["change", 5042.34, -10]], []),
         "invalid_orderbook_level"),
    ],
)  # fmt: skip
def test_a_broken_chain_or_book_drops_it_counts_it_and_asks_for_a_snapshot(
    markets: dict[str, Instrument], frame: str, reason: str
) -> None:
    parser = DeribitParser(VENUE, markets, None)
    assert len(parser.parse(_snapshot(), recv_ms=1)) == 1
    assert parser.parse(frame, recv_ms=2) == []
    assert parser.stats.errors == {reason: 1}
    assert parser.resync == {INVERSE}
    assert INVERSE not in parser.books
    parser.resync.clear()
    # Changes until the new snapshot: counted, asked for again no sooner than 5 s.
    assert parser.parse(_change(297218, 297219, T0 + 1100, [], []), recv_ms=3) == []
    assert parser.stats.errors["orderbook_delta_before_snapshot"] == 1
    assert not parser.resync
    assert parser.parse(_change(297219, 297220, T0 + 1200, [], []), recv_ms=5003) == []
    assert parser.resync == {INVERSE}  # 5 s on: asked again
    d = _depth(parser.parse(_snapshot(timestamp=T0 + 2000, change_id=300000), recv_ms=5004))
    assert d.ts_ms == T0 + 2000


def test_an_unreadable_book_is_counted_and_one_not_followed_is_filtered(
    markets: dict[str, Instrument],
) -> None:
    parser = DeribitParser(VENUE, markets, None)
    assert parser.parse(_snapshot(change_id="soon"), recv_ms=1) == []
    assert parser.parse(_snapshot(type="partial"), recv_ms=1) == []
    assert parser.parse(_snapshot(bids=[[5042.34, 30]]), recv_ms=1) == []
    assert parser.stats.errors == {"invalid_orderbook": 3}
    parser = DeribitParser(VENUE, markets, {LINEAR})
    assert parser.parse(_snapshot(), recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


def _venue(**depth: Any) -> Deribit:
    return Deribit(VenueSettings(symbols=[INVERSE, LINEAR], depth=DepthSettings(**depth)))


def test_the_depth_set_gets_a_connection_of_its_own_that_resubscribes_a_book(
    markets: dict[str, Instrument],
) -> None:
    venue = _venue()
    before = {c.name: c for c in venue.connections(markets)}
    assert set(before) == {"public", "trades"}  # an empty set: no depth connection
    venue.depth_symbols = frozenset({INVERSE, LINEAR})
    conns = {c.name: c for c in venue.connections(markets)}
    depth = conns.pop("depth-1")
    assert conns.keys() == before.keys()
    for name in ("public", "trades"):  # unchanged by the set
        assert conns[name].subscribe == before[name].subscribe
    assert (depth.url, depth.pong, depth.own_parser) == (venue.ws_url, "heartbeat", True)
    heartbeat, subscribe = (json.loads(r) for r in depth.subscribe)
    assert (heartbeat["method"], heartbeat["params"]) == ("public/set_heartbeat", {"interval": 30})
    assert subscribe["method"] == "public/subscribe"
    assert subscribe["params"]["channels"] == [f"book.{INVERSE}.100ms", f"book.{LINEAR}.100ms"]
    assert heartbeat["id"] != subscribe["id"]
    assert callable(depth.ping)
    assert json.loads(depth.ping())["method"] == "public/test"
    sent = [json.loads(r) for _ in range(2) for r in venue.resubscribe({INVERSE})]
    assert [m["method"] for m in sent] == ["public/unsubscribe", "public/subscribe"] * 2
    assert all(m["params"] == {"channels": [f"book.{INVERSE}.100ms"]} for m in sent)
    ids = [m["id"] for m in sent] + [heartbeat["id"], subscribe["id"]]
    assert len(set(ids)) == len(ids)  # unique within the connection, as the docs want


def test_no_depth_when_top_n_is_0_and_a_level_count_fails_at_start(
    markets: dict[str, Instrument],
) -> None:
    venue = _venue(top_n=0)
    venue.depth_symbols = frozenset({INVERSE})
    assert venue.depth_levels == 0
    assert [c.name for c in venue.connections(markets)] == ["public", "trades"]
    with pytest.raises(ValueError, match=r"venues\.deribit\.depth\.levels"):
        _venue(levels=20)
