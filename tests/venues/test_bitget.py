"""The Bitget parser on every Bitget frame in ../shared/captures, values worked out here from the
frames themselves; instruments (base coin, quote) from the recorded contract listings
(shared/captures/rest/BITGET.0.txt) plus the symbols listed since."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings
from service.events import (
    BookTop,
    FundingRate,
    Liquidation,
    MarkPrice,
    OpenInterest,
    Side,
    Volume,
)
from service.venues.base import Instrument
from service.venues.bitget.instruments import (
    MAX_REQUEST_BYTES,
    SYMBOLS_PER_CONNECTION,
    parse_contracts,
)
from service.venues.bitget.simulator.wire import load_contracts  # the recorded listings
from service.venues.bitget.venue import PING_INTERVAL_S, Bitget, BitgetParser

VENUE = "bitget"
V1 = "wss://ws.bitget.com/mix/v1/stream"

Line = dict[str, Any]


def _inst(symbol: str, base: str, quote: str = "USDT", hours: float = 8.0) -> Instrument:
    return Instrument(VENUE, symbol, base, quote, linear=True, funding_interval_h=hours)


def _recorded(captures: Path) -> dict[str, Instrument]:
    """The perpetuals of the recorded mix v1 listings (``BTCUSDT_UMCBL`` is ``BTCUSDT`` in v2)."""
    out: dict[str, Instrument] = {}
    for line in (captures / "rest" / "BITGET.0.txt").read_text().splitlines():
        if "/mix/v1/market/contracts" not in line.split(" -> ")[0]:
            continue
        body = json.loads(line.split(" -> ", 1)[1].split(": ", 1)[1])
        for r in body["data"]:
            symbol = r["symbol"].split("_")[0]
            out[symbol] = _inst(symbol, r["baseCoin"], r["quoteCoin"])
    return out


@pytest.fixture
def markets(captures: Path) -> dict[str, Instrument]:
    out = _recorded(captures)
    assert {"BTCUSDT", "DASHUSDT", "UNIUSDT", "BTCUSD"} <= set(out)
    # Listed after the 2022 recording; STORJUSDT on a 4 h interval to see it used.
    later = [_inst("STORJUSDT", "STORJ", hours=4.0), _inst("APEUSDT", "APE"), _inst("IPUSDT", "IP")]
    return out | {i.symbol: i for i in later}


def _lines(captures: Path) -> list[Line]:
    return [json.loads(line) for line in (captures / "bitget.jsonl").read_text().splitlines()]


def _v23(captures: Path, topic: str) -> list[str]:
    """Pushes (not acks) of a v2/v3 topic or channel."""
    out = []
    for line in _lines(captures):
        msg = json.loads(line["raw"])
        arg = msg.get("arg", {})
        if (
            line["endpoint"] != V1
            and "data" in msg
            and topic in (arg.get("topic"), arg.get("channel"))
        ):
            out.append(str(line["raw"]))
    return out


# -- liquidation ----------------------------------------------------------------------------


def test_every_liquidation_row_is_a_sampled_position_side_valued_at_its_amount(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _v23(captures, "liquidation")
    assert len(frames) == 1
    for raw in frames:
        parser = BitgetParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=7)
        assert not parser.stats.errors
        rows = json.loads(raw)["data"]
        assert len(events) == len(rows) == 2
        for liq, row in zip(events, rows, strict=True):
            assert isinstance(liq, Liquidation)
            amount, price = float(row["amount"]), float(row["price"])
            assert liq.symbol == row["symbol"]
            assert liq.base == markets[row["symbol"]].base
            assert liq.side is (Side.LONG if row["side"] == "buy" else Side.SHORT)
            assert liq.price == price
            assert liq.notional_usd == amount  # the quote value
            assert liq.quantity == liq.quantity_base == pytest.approx(amount / price)
            assert liq.ts_ms == int(row["ts"])
            assert liq.recv_ms == 7
            assert liq.sampled is True
            assert liq.event_id == f"{row['ts']}:{row['side']}:{row['amount']}:{row['price']}"


def test_the_real_amounts_are_quote_values_of_sizes_on_the_contract_steps(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """13.70319 USDT at 0.1649 is 83.1 APE exactly; 143.330431857868 at 0.500280739469 is
    286.5 IP: sizes on a 0.1 step. Read as base coin, they would be off-step sizes."""
    (raw,) = _v23(captures, "liquidation")
    for row, size in zip(json.loads(raw)["data"], ("83.1", "286.5"), strict=True):
        exact = Decimal(row["amount"]) / Decimal(row["price"])
        assert abs(exact - Decimal(size)) < Decimal("1e-9")
    ape, ip = BitgetParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(ape, Liquidation)
    assert isinstance(ip, Liquidation)
    assert (ape.side, ip.side) == (Side.LONG, Side.LONG)  # "buy": longs liquidated
    assert ape.quantity_base == pytest.approx(83.1)
    assert ip.quantity_base == pytest.approx(286.5)


def test_a_re_sent_liquidation_keeps_its_identity(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _v23(captures, "liquidation")
    parser = BitgetParser(VENUE, markets, None)
    first = parser.parse(raw, recv_ms=1)
    msg = json.loads(raw)
    msg["data"] = [*reversed(msg["data"]), msg["data"][0] | {"amount": "13.8"}]
    msg["ts"] += 5000
    again = parser.parse(json.dumps(msg), recv_ms=2)
    ids = {e.event_id for e in first if isinstance(e, Liquidation)}
    assert {e.event_id for e in again[:2] if isinstance(e, Liquidation)} == ids
    assert isinstance(again[2], Liquidation)
    assert again[2].event_id not in ids


def test_liquidations_of_unlisted_or_unwanted_symbols_are_filtered(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _v23(captures, "liquidation")
    parser = BitgetParser(VENUE, markets, {"IPUSDT"})
    assert [e.symbol for e in parser.parse(raw, recv_ms=1)] == ["IPUSDT"]
    unlisted = BitgetParser(VENUE, {}, None)  # e.g. a dated future of the instType
    assert unlisted.parse(raw, recv_ms=1) == []
    assert (parser.stats.filtered, unlisted.stats.filtered) == (1, 2)
    assert not parser.stats.errors
    assert not unlisted.stats.errors


# -- ticker (v3 and v2) -----------------------------------------------------------------------


def test_every_ticker_gives_mark_funding_per_hour_and_open_interest_in_base_coin(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _v23(captures, "ticker")
    assert len(frames) == 3  # v3 BTCUSDT, v2 STORJUSDT, v2 BTCUSDZ24 (a dated future)
    parsed = 0
    for raw in frames:
        msg = json.loads(raw)
        parser = BitgetParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=9)
        assert not parser.stats.errors
        arg, (row,) = msg["arg"], msg["data"]
        symbol = arg.get("symbol") or arg.get("instId")
        if symbol not in markets:  # BTCUSDZ24: no perpetual, not loaded
            assert events == []
            assert parser.stats.filtered == 1
            continue
        parsed += 1
        inst = markets[symbol]
        ts = int(row.get("ts", msg["ts"]))  # v2 rows carry their time; v3 only the envelope
        mark, index = float(row["markPrice"]), float(row["indexPrice"])
        oi = float(row.get("openInterest", row.get("holdingAmount")))
        rate = float(row["fundingRate"])
        m, f, o, *book = events
        assert isinstance(m, MarkPrice)
        assert isinstance(f, FundingRate)
        assert isinstance(o, OpenInterest)
        assert (m.symbol, m.base, m.ts_ms, m.recv_ms) == (symbol, inst.base, ts, 9)
        assert (m.mark_price, m.index_price) == (mark, index)
        assert f.funding_rate == rate
        assert f.interval_h == inst.funding_interval_h  # from the contract listing
        assert f.funding_rate_1h == pytest.approx(rate / inst.funding_interval_h)
        assert f.next_funding_ms == int(row["nextFundingTime"])
        assert o.oi_contracts == o.oi_base == oi  # base coin
        assert o.oi_usd == pytest.approx(oi * mark)
        assert o.ts_ms == f.ts_ms == ts
        bid = float(row.get("bid1Price", row.get("bidPr")))  # v3 and v2 names
        ask = float(row.get("ask1Price", row.get("askPr")))
        bid_qty = float(row.get("bid1Size", row.get("bidSz")))
        ask_qty = float(row.get("ask1Size", row.get("askSz")))
        (b,) = book  # e.g. STORJUSDT (v2): 0.4705 x 1367.3 / 0.4708 x 2535.3, base coin
        assert isinstance(b, BookTop)
        assert (b.bid_price, b.ask_price, b.bid_base, b.ask_base) == (bid, ask, bid_qty, ask_qty)
        assert b.bid_usd == pytest.approx(bid * bid_qty)
        assert b.ask_usd == pytest.approx(ask * ask_qty)
        assert b.spread_bp == pytest.approx((ask - bid) / ((ask + bid) / 2) * 1e4)
        assert b.ts_ms == ts
    assert parsed == 2


def test_the_v3_btcusdt_open_interest_is_2_26_bn_usd(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(r for r in _v23(captures, "ticker") if '"topic":"ticker"' in r)
    _, _, oi, _ = BitgetParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_base == 29539.3825
    assert oi.oi_usd == pytest.approx(29539.3825 * 76631.3)
    assert 2.2e9 < oi.oi_usd < 2.3e9


def test_a_dated_future_has_no_next_funding_time(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(r for r in _v23(captures, "ticker") if "BTCUSDZ24" in r)
    listed = markets | {"BTCUSDZ24": _inst("BTCUSDZ24", "BTC", "USD")}
    _, funding, _, _ = BitgetParser(VENUE, listed, None).parse(raw, recv_ms=1)
    assert isinstance(funding, FundingRate)
    assert funding.next_funding_ms is None  # "nextFundingTime":"0"
    assert funding.funding_rate == 0.0


def _v3(ts: int, **fields: str) -> str:
    arg = {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"}
    return json.dumps({"action": "update", "arg": arg, "data": [fields], "ts": ts})


def test_changes_are_reported_once_a_second_from_the_merged_state(
    markets: dict[str, Instrument],
) -> None:
    parser = BitgetParser(VENUE, markets, None)
    full = {"markPrice": "100", "indexPrice": "99", "fundingRate": "0.0001",
            "nextFundingTime": "28800000", "openInterest": "10"}  # fmt: skip
    assert len(parser.parse(_v3(1000, **full), recv_ms=1)) == 3
    assert parser.parse(_v3(1500, markPrice="101", openInterest="11"), recv_ms=2) == []
    assert parser.parse(_v3(1900, fundingRate="0.0002"), recv_ms=3) == []
    mark, funding, oi = parser.parse(_v3(2000, markPrice="102"), recv_ms=4)
    assert isinstance(mark, MarkPrice)
    assert (mark.mark_price, mark.index_price) == (102, 99)
    assert isinstance(funding, FundingRate)
    assert funding.funding_rate == 0.0002
    assert funding.next_funding_ms == 28800000  # kept from the first frame
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(11 * 102)
    assert parser.parse(_v3(2500, markPrice="103"), recv_ms=5) == []
    assert parser.last_mark["BTCUSDT"] == 103  # merged at once, reported later


def test_open_interest_waits_for_a_mark(markets: dict[str, Instrument]) -> None:
    parser = BitgetParser(VENUE, markets, None)
    assert parser.parse(_v3(1000, openInterest="10"), recv_ms=1) == []
    mark, oi = parser.parse(_v3(1100, markPrice="100"), recv_ms=2)
    assert isinstance(mark, MarkPrice)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == 1000


def test_a_ticker_with_a_bad_field_leaves_the_state_as_it_was(
    markets: dict[str, Instrument],
) -> None:
    parser = BitgetParser(VENUE, markets, None)
    parser.state_every_ms = 0
    parser.parse(_v3(1000, markPrice="100.5", openInterest="10"), recv_ms=1)
    assert parser.parse(_v3(2000, markPrice="101", openInterest="x"), recv_ms=2) == []
    assert parser.stats.errors == {"invalid_ticker": 1}
    (oi,) = parser.parse(_v3(3000, openInterest="11"), recv_ms=3)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(11 * 100.5)  # the mark of the last good frame


# -- everything else in the captures --------------------------------------------------------


def test_the_obsolete_mix_v1_stream_is_counted_and_never_parsed(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = BitgetParser(VENUE, markets, None)
    pushes = acks = 0
    for line in _lines(captures):
        msg = json.loads(line["raw"])
        if line["endpoint"] != V1 or "op" in msg:  # "op": our own request, not a frame
            continue
        assert parser.parse(line["raw"], recv_ms=1) == []
        pushes += "data" in msg
        acks += msg.get("event") == "subscribe"
    assert pushes >= 200
    assert acks >= 4
    assert parser.stats.errors == {"obsolete_frame": pushes}  # the acks are no errors


def test_every_captured_line_is_accounted_for(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = BitgetParser(VENUE, markets, None)
    parser.state_every_ms = 0
    events = 0
    for line in _lines(captures):
        if "op" in json.loads(line["raw"]):
            assert line["kind"] == "client_request"
            continue
        events += len(parser.parse(line["raw"], recv_ms=1))
    trades = [line for line in _lines(captures) if line["kind"] == "trade"]
    pushed = [line for line in trades if '"data"' in line["raw"]]  # the others are acks
    assert all(line["endpoint"] != V1 for line in pushed)
    assert len(pushed) == 3  # v2/v3 trades: a bare parser has no volume (the venue's is off)
    assert events == 2 + 4 + 4  # two liquidations, two tickers of four events
    assert set(parser.stats.errors) == {"obsolete_frame"}


ACK = '{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"},"connId":"x"}'


def test_acks_and_pongs_are_not_errors(markets: dict[str, Instrument]) -> None:
    parser = BitgetParser(VENUE, markets, None)
    assert parser.parse(ACK, recv_ms=1) == []
    assert parser.parse("pong", recv_ms=1) == []
    assert parser.parse(b"pong", recv_ms=1) == []
    assert parser.parse(ACK.replace("subscribe", "unsubscribe"), recv_ms=1) == []
    assert not parser.stats.errors


def _row(**fields: str) -> str:
    row = {"symbol": "BTCUSDT", "side": "buy", "price": "1", "amount": "1", "ts": "1"} | fields
    return json.dumps([row]) + "}"


LIQ = '{"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},"ts":1,"data":'


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ('{"event":5}', "invalid_frame"),
        ('{"event":"error","code":30001,"msg":"instType:x doesn\'t exist"}', "venue_error"),
        ('{"event":"login","code":0}', "unknown_event"),
        ('{"hello":"world"}', "unknown_frame"),
        ('{"action":"snapshot","arg":{"topic":"ticker"}}', "unknown_frame"),
        ('{"action":"update","arg":{"topic":"books5"},"data":[]}', "unknown_topic"),
        (LIQ + '{"symbol":"BTCUSDT"}}', "invalid_liquidation"),
        (LIQ + _row(side="hold"), "invalid_liquidation"),
        (LIQ + _row(price="x"), "invalid_liquidation"),
        (LIQ + _row(price="0"), "invalid_liquidation"),
        (LIQ + _row(amount=""), "invalid_liquidation"),
        (_v3(1, markPrice="n/a"), "invalid_ticker"),
        (_v3(1, nextFundingTime="soon"), "invalid_ticker"),
    ],
)  # fmt: skip
def test_bad_frames_are_counted_by_reason_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str
) -> None:
    parser = BitgetParser(VENUE, markets, None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}


def test_one_bad_row_keeps_the_rest_of_the_batch(markets: dict[str, Instrument]) -> None:
    rows = [
        {"symbol": "BTCUSDT", "side": "sell", "price": "x", "amount": "1", "ts": "1"},
        {"symbol": "BTCUSDT", "side": "sell", "price": "50000", "amount": "100000", "ts": "2"},
    ]
    parser = BitgetParser(VENUE, markets, None)
    (liq,) = parser.parse(LIQ + json.dumps(rows) + "}", recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT
    assert liq.quantity_base == 2.0
    assert parser.stats.errors == {"invalid_liquidation": 1}


# -- the venue: connections and instruments -------------------------------------------------


def _many(n: int, quote: str = "USDT") -> dict[str, Instrument]:
    return {f"C{i}{quote}": _inst(f"C{i}{quote}", f"C{i}", quote) for i in range(n)}


def _args(conn_subscribe: tuple[str, ...]) -> list[dict[str, str]]:
    return [a for m in conn_subscribe for a in json.loads(m)["args"]]


def test_per_inst_type_a_tickers_and_a_liquidations_connection_with_text_pings(
    markets: dict[str, Instrument],
) -> None:
    venue = Bitget(VenueSettings(symbols=["BTCUSDT", "STORJUSDT", "BTCUSD"]))
    conns = {c.name: c for c in venue.connections(markets)}
    assert set(conns) == {
        "usdt-futures-1", "usdt-futures-liquidations", "coin-futures-1", "coin-futures-liquidations"
    }  # fmt: skip
    for conn in conns.values():  # the quiet lane too: the venue cuts a connection not pinging
        assert conn.url == "wss://ws.bitget.com/v3/ws/public"
        assert (conn.ping, conn.pong, conn.ping_interval_s) == ("ping", "pong", PING_INTERVAL_S)
        assert all(json.loads(m)["op"] == "subscribe" for m in conn.subscribe)
    assert PING_INTERVAL_S < 30
    assert _args(conns["usdt-futures-1"].subscribe) == [
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"},
        {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "BTCUSDT"},
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "STORJUSDT"},
        {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "STORJUSDT"},
    ]
    assert _args(conns["coin-futures-1"].subscribe) == [
        {"instType": "coin-futures", "topic": "ticker", "symbol": "BTCUSD"},
        {"instType": "coin-futures", "topic": "publicTrade", "symbol": "BTCUSD"},
    ]
    for inst_type in ("usdt-futures", "coin-futures"):
        quiet = conns[f"{inst_type}-liquidations"]
        assert quiet.quiet is True
        assert _args(quiet.subscribe) == [{"instType": inst_type, "topic": "liquidation"}]
    no_volume = Bitget(VenueSettings(symbols=["BTCUSD"], volume=False))
    assert [[a["topic"] for a in _args(c.subscribe)] for c in no_volume.connections(markets)] == [
        ["ticker"], ["liquidation"]
    ]  # fmt: skip
    local = Bitget(VenueSettings(ws_url="ws://127.0.0.1:9/v3/ws/public", rest_url="http://h:1"))
    assert {c.url for c in local.connections(markets)} == {"ws://127.0.0.1:9/v3/ws/public"}
    assert local.rest_url == "http://h:1"


def test_the_liquidations_are_on_quiet_connections_of_their_own() -> None:
    """The quiet lane (:attr:`Connection.quiet`): each instType's ``liquidation`` topic on a
    quiet connection that carries nothing else, none on a busy one (tickers, trades, books)."""
    markets = _many(550) | _many(20, "USD")
    venue = Bitget(VenueSettings())
    venue.depth_symbols = frozenset({"C1USDT", "C1USD"})
    conns = venue.connections(markets)
    quiet = {c.name: _args(c.subscribe) for c in conns if c.quiet}
    assert quiet == {
        "usdt-futures-liquidations": [{"instType": "usdt-futures", "topic": "liquidation"}],
        "coin-futures-liquidations": [{"instType": "coin-futures", "topic": "liquidation"}],
    }
    busy = [c for c in conns if not c.quiet]
    assert "depth-1" in {c.name for c in busy}
    assert not any(a.get("topic") == "liquidation" for c in busy for a in _args(c.subscribe))


def test_an_inst_type_without_subscribed_symbols_gets_no_connection(
    markets: dict[str, Instrument],
) -> None:
    venue = Bitget(VenueSettings(symbols=["BTCUSDT"]))
    assert [c.name for c in venue.connections(markets)] == [
        "usdt-futures-1", "usdt-futures-liquidations"
    ]  # fmt: skip


def test_many_symbols_are_split_about_50_a_connection_within_the_limits() -> None:
    markets = _many(550) | _many(20, "USD")
    conns = Bitget(VenueSettings()).connections(markets)
    names = [c.name for c in conns]
    assert len(names) == 22 + 1 + 2  # ceil(550 / 25) + 1 (two channels a symbol), 2 quiet
    seen: list[tuple[str, str]] = []
    liquidation_topics = 0
    for conn in conns:
        assert len(conn.subscribe) <= 2  # far under 10 messages a second
        assert all(len(m) <= MAX_REQUEST_BYTES for m in conn.subscribe)
        args = _args(conn.subscribe)
        assert len(args) < 2 * SYMBOLS_PER_CONNECTION  # the recommendation is 50; limit 1000
        liquidation_topics += sum(a["topic"] == "liquidation" for a in args)
        seen += [(a["instType"], a["symbol"]) for a in args if a["topic"] == "ticker"]
    assert liquidation_topics == 2  # one per instType
    assert len(seen) == len(set(seen)) == 570


def test_connection_names_and_symbols_stay_put_when_the_market_changes() -> None:
    venue = Bitget(VenueSettings())
    before = {c.name: _args(c.subscribe) for c in venue.connections(_many(550))}
    grown = _many(550) | {"NEWUSDT": _inst("NEWUSDT", "NEW")} | _many(700)
    after = {c.name: _args(c.subscribe) for c in venue.connections(grown)}
    assert set(after) == set(before)  # the shard count is fixed at the first call
    for name, args in before.items():
        assert all(a in after[name] for a in args)  # nothing moved


def test_contracts_are_the_trading_perpetuals_in_base_coin_with_their_interval() -> None:
    usdt = {i.symbol: i for i in parse_contracts(load_contracts("USDT-FUTURES"), "USDT-FUTURES")}
    coin = {
        i.symbol: i
        for i in parse_contracts(json.dumps(load_contracts("COIN-FUTURES")), "COIN-FUTURES")
    }
    assert len(usdt) == 50
    assert "LUNAUSDT" not in usdt  # symbolStatus "off"
    assert len(coin) == 8
    assert "BTCUSDZ25" not in coin  # a delivery contract
    assert usdt["DOGEUSDT"].funding_interval_h == 4.0
    assert usdt["BTCUSDT"].funding_interval_h == 8.0
    btc = coin["BTCUSD"]
    assert (btc.base, btc.quote, btc.linear, btc.contract_size) == ("BTC", "USD", True, 1.0)
    assert btc.notional_usd(0.5, 60_000) == 30_000  # sizes in BTC, valued at the price
    assert usdt["ETHUSDT"].base_units(2.0, 3000) == 2.0


def test_an_error_answer_is_not_an_empty_list() -> None:
    with pytest.raises(ValueError, match="40019"):
        parse_contracts({"code": "40019", "msg": "empty", "data": []}, "USDT-FUTURES")
    with pytest.raises(ValueError, match="data"):
        parse_contracts({"code": "00000", "data": None}, "USDT-FUTURES")


def test_an_emptied_side_of_the_book_stops_the_top_of_book(markets: dict[str, Instrument]) -> None:
    parser = BitgetParser(VENUE, markets, None)
    full = {"markPrice": "100", "bid1Price": "99.9", "bid1Size": "3", "ask1Price": "100.1",
            "ask1Size": "2"}  # fmt: skip
    (book,) = [e for e in parser.parse(_v3(1_777_358_880_000, **full), 1) if type(e) is BookTop]
    assert (book.bid_base, book.ask_base) == (3.0, 2.0)
    emptied = _v3(1_777_358_881_000, bid1Price="", bid1Size="")  # no bid left
    assert [e for e in parser.parse(emptied, 2) if type(e) is BookTop] == []
    back = _v3(1_777_358_882_000, bid1Price="99.8", bid1Size="1")
    (book,) = [e for e in parser.parse(back, 3) if type(e) is BookTop]
    assert (book.bid_price, book.bid_base, book.ask_price) == (99.8, 1.0, 100.1)
    assert not parser.stats.errors


# -- trades: traded volume per second -------------------------------------------------------


def _volume_parser(markets: dict[str, Instrument]) -> BitgetParser:
    parser = Bitget(VenueSettings()).new_parser(markets, None)
    assert isinstance(parser, BitgetParser)
    assert parser.volumes is not None
    return parser


def test_a_v3_trade_update_is_a_taker_buy_in_base_coin(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    pushes = [json.loads(f) for f in _v23(captures, "publicTrade")]
    (update,) = [m for m in pushes if m["action"] == "update"]
    (row,) = update["data"]
    parser = _volume_parser(markets)
    assert parser.parse(json.dumps(update), recv_ms=update["ts"]) == []
    (vol,) = parser.flush_volumes(update["ts"] + 5)
    assert isinstance(vol, Volume)
    assert (vol.symbol, vol.base, vol.ts_ms) == ("BTCUSDT", "BTC", int(row["T"]) // 1000 * 1000)
    assert row["S"] == "buy"
    assert vol.taker_buy_base == pytest.approx(float(row["v"]))  # 0.01 BTC
    assert vol.taker_buy_usd == pytest.approx(float(row["v"]) * float(row["p"]))  # 766.313
    assert (vol.taker_sell_usd, vol.trades) == (0.0, 1)


def test_the_snapshot_of_recent_trades_on_subscribe_is_not_counted(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    pushes = [json.loads(f) for f in _v23(captures, "publicTrade")]
    (snapshot,) = [m for m in pushes if m["action"] == "snapshot"]
    parser = _volume_parser(markets)
    assert parser.parse(json.dumps(snapshot), recv_ms=snapshot["ts"]) == []
    assert parser.flush_volumes(snapshot["ts"] + 5_000) == []
    assert parser.stats.errors == {}


def test_a_v2_coin_futures_trade_is_valued_in_base_coin_at_its_price(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (frame,) = _v23(captures, "trade")
    msg = json.loads(frame)
    (row,) = msg["data"]
    markets = markets | {"DOGEUSD": _inst("DOGEUSD", "DOGE", "USD")}
    parser = _volume_parser(markets)
    assert parser.parse(frame, recv_ms=msg["ts"]) == []
    ts = int(row["ts"])
    # the next second's print closes this one
    later = {**msg, "data": [{**row, "ts": str(ts + 1000), "side": "sell",
                              "tradeId": str(int(row["tradeId"]) + 1)}]}  # fmt: skip
    (vol,) = parser.parse(json.dumps(later), recv_ms=msg["ts"] + 1000)
    assert isinstance(vol, Volume)
    assert vol.symbol == "DOGEUSD"
    assert vol.ts_ms == ts // 1000 * 1000
    assert vol.taker_buy_base == pytest.approx(447.0)
    assert vol.taker_buy_usd == pytest.approx(447 * 0.168385)
    (nxt,) = parser.flush_volumes(msg["ts"] + 1001)
    assert isinstance(nxt, Volume)
    assert nxt.taker_sell_base == pytest.approx(447.0)


def test_a_bad_trade_row_is_counted_and_the_rest_kept(markets: dict[str, Instrument]) -> None:
    parser = _volume_parser(markets)
    arg = {"instType": "usdt-futures", "topic": "publicTrade", "symbol": "BTCUSDT"}
    t = 1_777_358_881_008
    rows = [
        {"i": "1", "p": "76631.3", "v": "x", "S": "buy", "T": str(t)},
        {"i": "2", "p": "76631.3", "v": "1", "S": "hold", "T": str(t)},
        {"i": "3", "p": "76600", "v": "2", "S": "sell", "T": str(t)},
    ]
    frame = json.dumps({"action": "update", "arg": arg, "data": rows, "ts": t})
    assert parser.parse(frame, recv_ms=t) == []
    (vol,) = parser.flush_volumes(t)
    assert isinstance(vol, Volume)
    assert (vol.taker_sell_base, vol.taker_sell_usd, vol.trades) == (2.0, 153_200.0, 1)
    assert parser.stats.errors == {"invalid_trade": 2}
