"""OKX ``books``: a snapshot then updates kept as a local book, the ``prevSeqId`` chain and the
CRC32 checksum checked, the depth valued in contracts (linear: ``ctVal`` base coin, inverse:
``ctVal`` USD), on the frames of OKX's docs (https://www.okx.com/docs-v5/en/#order-book-trading-
market-data-ws-order-book-channel: the push examples; "Checksum": its two string examples),
values worked out here from the frames' levels."""

from __future__ import annotations

import copy
import json
import zlib
from typing import Any

import pytest

from service.config import DepthSettings, VenueSettings
from service.events import BookDepth
from service.venues.base import Instrument
from service.venues.okx.book import OkxBook, signed_crc32
from service.venues.okx.venue import Okx, OkxParser

VENUE = "okx"
LINEAR = Instrument(VENUE, "BTC-USDT-SWAP", "BTC", "USDT", linear=True, contract_size=0.01)
INVERSE = Instrument(VENUE, "BTC-USD-SWAP", "BTC", "USD", linear=False, contract_size=100.0)
MARKETS = {i.symbol: i for i in (LINEAR, INVERSE)}

# The docs' snapshot example (their instId is a spot pair: ours is a swap's). Its checksum,
# -855196043, is the placeholder every example of the page carries: not this book's.
DOCS_SNAPSHOT: dict[str, Any] = {
    "arg": {"channel": "books", "instId": "BTC-USDT-SWAP"},
    "action": "snapshot",
    "data": [{
        "asks": [["8476.98", "415", "0", "13"], ["8477", "7", "0", "2"],
                 ["8477.34", "85", "0", "1"], ["8477.56", "1", "0", "1"],
                 ["8505.84", "8", "0", "1"], ["8506.37", "85", "0", "1"],
                 ["8506.49", "2", "0", "1"], ["8506.96", "100", "0", "2"]],
        "bids": [["8476.97", "256", "0", "12"], ["8475.55", "101", "0", "1"],
                 ["8475.54", "100", "0", "1"], ["8475.3", "1", "0", "1"],
                 ["8447.32", "6", "0", "1"], ["8447.02", "246", "0", "1"],
                 ["8446.83", "24", "0", "1"], ["8446", "95", "0", "3"]],
        "ts": "1597026383085",
        "checksum": -855196043,
        "prevSeqId": -1,
        "seqId": 123456,
    }],
}  # fmt: skip


def _checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """The docs' rule, written out: the best 25 of each side interleaved bid, ask as
    ``price:size`` text, CRC32 as a signed 32-bit integer."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - 2**32 if crc >= 2**31 else crc


def _frame(msg: dict[str, Any], **row: Any) -> str:
    out = copy.deepcopy(msg)
    out["data"][0].update(row)
    return json.dumps(out)


def _snapshot(inst_id: str = "BTC-USDT-SWAP", **row: Any) -> str:
    msg = copy.deepcopy(DOCS_SNAPSHOT)
    msg["arg"]["instId"] = inst_id
    data = msg["data"][0]
    row.setdefault("checksum", _checksum(data["bids"], data["asks"]))
    return _frame(msg, **row)


def _update(
    prev: int, seq: int, ts: int, bids: list[list[str]], asks: list[list[str]], checksum: int = 0
) -> str:
    return json.dumps({
        "arg": {"channel": "books", "instId": "BTC-USDT-SWAP"},
        "action": "update",
        "data": [{"asks": asks, "bids": bids, "ts": str(ts), "checksum": checksum,
                  "prevSeqId": prev, "seqId": seq}],
    })  # fmt: skip


def _depth(events: list[Any]) -> BookDepth:
    (ev,) = events
    assert isinstance(ev, BookDepth)
    return ev


def test_the_checksum_string_is_the_docs_interleaving() -> None:
    # "Checksum", example 1 (aligned sides) and 2 (one bid, three asks): the docs' strings.
    book = OkxBook(0)
    book.apply_rows([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
    assert book.checksum() == signed_crc32("3366.1:7:3366.8:9:3366:6:3368:8")
    book = OkxBook(0)
    book.apply_rows([["3366.1", "7"]], [["3366.8", "9"], ["3368", "8"], ["3372", "8"]])
    assert book.checksum() == signed_crc32("3366.1:7:3366.8:9:3368:8:3372:8")
    assert signed_crc32("3366.1:7:3366.8:9:3366:6:3368:8") == _checksum(
        [["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]]
    )


@pytest.mark.parametrize("inst", [LINEAR, INVERSE], ids=["linear", "inverse"])
def test_the_docs_snapshot_gives_the_usd_near_mid_in_contracts(inst: Instrument) -> None:
    frame = _snapshot(inst.symbol)
    data = json.loads(frame)["data"][0]
    parser = OkxParser(VENUE, MARKETS, None)
    d = _depth(parser.parse(frame, recv_ms=5))
    mid = (8476.97 + 8476.98) / 2
    assert d.mid == mid
    assert (d.venue, d.symbol, d.base, d.ts_ms, d.recv_ms) == (
        VENUE, inst.symbol, "BTC", 1597026383085, 5,
    )  # fmt: skip
    # Every level is within 0.5 % of mid (42.4 USD): each band holds all of them.
    if inst.linear:  # contracts of 0.01 BTC, valued at their price
        bids = sum(float(p) * float(q) * 0.01 for p, q, *_ in data["bids"])  # 70,016.55 USD
        asks = sum(float(p) * float(q) * 0.01 for p, q, *_ in data["asks"])  # 59,120.68 USD
    else:  # contracts of 100 USD
        bids = sum(float(q) * 100 for _, q, *_ in data["bids"])  # 829 contracts: 82,900 USD
        asks = sum(float(q) * 100 for _, q, *_ in data["asks"])  # 703 contracts: 70,300 USD
    assert (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2) == pytest.approx((bids, bids, bids))
    assert (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2) == pytest.approx((asks, asks, asks))
    # ...8 levels reach 0.36 % (bids) and 0.35 % (asks): every band is a lower bound.
    assert d.bid_reach_pct == pytest.approx((mid - 8446) / mid * 100)
    assert d.ask_reach_pct == pytest.approx((8506.96 - mid) / mid * 100)
    assert not any(d.exact(side, band) for side in ("bid", "ask") for band in (0.5, 1, 2))
    assert not parser.stats.errors


def test_updates_follow_the_chain_and_their_checksum_and_depth_is_reported_once_a_second() -> None:
    parser = OkxParser(VENUE, MARKETS, None)
    t0 = 1597026383085
    assert len(parser.parse(_snapshot(), recv_ms=1)) == 1
    snap = DOCS_SNAPSHOT["data"][0]
    bids, asks = copy.deepcopy(snap["bids"]), copy.deepcopy(snap["asks"])
    # The best bid grows to 300 contracts, the best ask is taken: both sides change.
    bids[0][1] = "300"
    del asks[0]
    frame = _update(123456, 123457, t0 + 100, [["8476.97", "300", "0", "13"]],
                    [["8476.98", "0", "0", "0"]], _checksum(bids, asks))  # fmt: skip
    assert parser.parse(frame, recv_ms=2) == []  # not a second yet
    # No change for a while: an empty update, seqId == prevSeqId (the docs' keep-alive).
    assert parser.parse(_update(123457, 123457, t0 + 500, [], [], _checksum(bids, asks)), 3) == []
    # The sequence restarts lower after maintenance: prevSeqId still links.
    asks.insert(0, ["8477.5", "2", "0", "1"])
    asks.sort(key=lambda r: float(r[0]))
    frame = _update(123457, 5, t0 + 1000, [], [["8477.5", "2", "0", "1"]], _checksum(bids, asks))
    d = _depth(parser.parse(frame, recv_ms=4))
    assert d.mid == (8476.97 + 8477) / 2
    assert d.ask_usd_2 == pytest.approx(sum(float(p) * float(q) * 0.01 for p, q, *_ in asks))
    assert d.bid_usd_2 == pytest.approx(sum(float(p) * float(q) * 0.01 for p, q, *_ in bids))
    assert not parser.stats.errors
    assert not parser.resync


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_update(123455, 123457, 1597026384085, [], []), "orderbook_gap"),  # a frame missed
        (_update(123457, 123458, 1597026384085, [], []), "orderbook_gap"),
        (_update(123456, 123457, 1597026384085, [["8476.97", "1", "0", "1"]], [], 12345),
         "orderbook_checksum"),
        (_update(123456, 123457, 1597026384085, [["8477.1", "1", "0", "1"]], []),
         "orderbook_crossed"),
        (_update(123456, 123457, 1597026384085, [["8476.97", "-1", "0", "1"]], []),
         "invalid_orderbook_level"),
    ],
)  # fmt: skip
def test_a_broken_chain_or_book_drops_it_counts_it_and_asks_for_a_snapshot(
    frame: str, reason: str
) -> None:
    parser = OkxParser(VENUE, MARKETS, None)
    assert len(parser.parse(_snapshot(), recv_ms=1)) == 1
    assert parser.parse(frame, recv_ms=2) == []
    assert parser.stats.errors == {reason: 1}
    assert parser.resync == {"BTC-USDT-SWAP"}
    assert "BTC-USDT-SWAP" not in parser.books
    parser.resync.clear()
    # Updates until the new snapshot: counted, asked for again no sooner than 5 s.
    assert parser.parse(_update(123457, 123458, 1597026384185, [], []), recv_ms=3) == []
    assert parser.stats.errors["orderbook_delta_before_snapshot"] == 1
    assert not parser.resync
    d = _depth(parser.parse(_snapshot(ts="1597026384285"), recv_ms=4))
    assert d.ts_ms == 1597026384285


def test_the_docs_placeholder_checksum_is_a_mismatch_and_a_zero_one_is_not_checked() -> None:
    parser = OkxParser(VENUE, MARKETS, None)
    assert parser.parse(json.dumps(DOCS_SNAPSHOT), recv_ms=1) == []
    assert parser.stats.errors == {"orderbook_checksum": 1}
    # Since 2026-06-23 the venue sends 0: no checksum, the book is kept, and its texts are
    # not: a non-zero checksum on a later update cannot be checked, so it is not.
    parser = OkxParser(VENUE, MARKETS, None)
    assert len(parser.parse(_snapshot(checksum=0), recv_ms=1)) == 1
    assert parser.books["BTC-USDT-SWAP"].bid_texts == {}
    update = _update(123456, 123457, 1597026384085, [["8476.97", "1", "0", "1"]], [], 12345)
    assert len(parser.parse(update, recv_ms=2)) == 1
    assert not parser.stats.errors


def test_an_unreadable_frame_is_counted_and_a_symbol_not_followed_is_filtered() -> None:
    parser = OkxParser(VENUE, MARKETS, None)
    assert parser.parse(_snapshot(seqId="soon"), recv_ms=1) == []
    assert parser.parse(_snapshot().replace('"snapshot"', '"partial"'), recv_ms=1) == []
    assert parser.stats.errors == {"invalid_orderbook": 2}
    parser = OkxParser(VENUE, MARKETS, {"BTC-USD-SWAP"})
    assert parser.parse(_snapshot(), recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


def _venue(**depth: Any) -> Okx:
    return Okx(VenueSettings(symbols=list(MARKETS), depth=DepthSettings(**depth)))


def test_the_depth_set_gets_connections_of_its_own_that_resubscribe_a_book() -> None:
    venue = _venue()
    before = {c.name: c for c in venue.connections(MARKETS)}
    assert set(before) == {"public", "liquidations"}  # an empty set: no depth connection
    venue.depth_symbols = frozenset(MARKETS)
    conns = {c.name: c for c in venue.connections(MARKETS)}
    depth = conns.pop("depth-1")
    assert conns == before  # the other connections do not change with the depth set
    assert depth.url == venue.ws_url
    (request,) = depth.subscribe
    assert json.loads(request) == {
        "id": "1",
        "op": "subscribe",
        "args": [
            {"channel": "books", "instId": "BTC-USD-SWAP"},
            {"channel": "books", "instId": "BTC-USDT-SWAP"},
        ],
    }
    assert (depth.ping, depth.pong, depth.own_parser) == ("ping", "pong", True)
    unsub, sub = (json.loads(r) for r in venue.resubscribe({"BTC-USDT-SWAP"}))
    assert (unsub["op"], sub["op"]) == ("unsubscribe", "subscribe")
    assert unsub["args"] == sub["args"] == [{"channel": "books", "instId": "BTC-USDT-SWAP"}]


def test_many_followed_symbols_are_spread_over_connections_of_20() -> None:
    symbols = [f"S{i:02}-USDT-SWAP" for i in range(45)]
    markets = {s: Instrument(VENUE, s, "S", "USDT", linear=True) for s in symbols}
    venue = Okx(VenueSettings(depth=DepthSettings(top_n=45)))
    venue.depth_symbols = frozenset(markets)
    depth = [c for c in venue.connections(markets) if c.name.startswith("depth")]
    assert [c.name for c in depth] == ["depth-1", "depth-2", "depth-3"]
    assert [sum(r.count('"books"') for r in c.subscribe) for c in depth] == [20, 20, 5]


def test_no_depth_when_top_n_is_0_and_another_level_count_fails_at_start() -> None:
    venue = _venue(top_n=0)
    venue.depth_symbols = frozenset(MARKETS)
    assert venue.depth_levels == 0
    assert [c.name for c in venue.connections(MARKETS)] == ["public", "liquidations"]
    assert _venue(levels=400).depth_levels == 400
    with pytest.raises(ValueError, match=r"venues\.okx\.depth\.levels"):
        _venue(levels=5)
