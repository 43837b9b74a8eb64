"""The BitMEX parser on every BitMEX frame in ../shared/captures, with the contract metadata of
the recorded instrument list (shared/captures/rest/BITMEX.0.txt); values worked out here from
the frames and the raw instrument rows themselves (``openValue``: BitMEX's own valuation)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings, load_settings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues import REGISTRY
from service.venues.base import Instrument
from service.venues.bitmex.venue import (
    PING_INTERVAL_S,
    Bitmex,
    BitmexInstrument,
    BitmexParser,
    subscribe_requests,
)
from service.venues.bitmex.venue import instrument as to_instrument

VENUE = "bitmex"
Row = dict[str, Any]

JTOUSDT: Row = {
    "symbol": "JTOUSDT",
    "state": "Open",
    "typ": "FFWCSX",
    "underlying": "JTO",
    "quoteCurrency": "USDT",
    "multiplier": 1000000,
    "settlCurrency": "USDt",
    "underlyingToPositionMultiplier": 1,
    "isQuanto": False,
    "isInverse": False,
    "fundingInterval": "2000-01-01T08:00:00.000Z",
    "openInterest": 6780,
    "openValue": 16716835800,
    "markPrice": 2.46561,
}
"""A real linear USDt-settled perpetual (``GET /api/v1/instrument``, 2024-03-02, published in
``DvoraksPadawan/FundingRateBotLimitAndMarket``, ``response.py``), the fields read here."""


def _lines(captures: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (captures / "bitmex.jsonl").read_text().splitlines()]


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    """symbol -> row of the recorded ``/api/v1/instrument/active``."""
    line = (captures / "rest" / "BITMEX.0.txt").read_text().splitlines()[0]
    body = line.split(" -> ", 1)[1].split(": ", 1)[1]
    return {r["symbol"]: r for r in json.loads(body)}


@pytest.fixture
def markets(rows: dict[str, Row]) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for r in [*rows.values(), JTOUSDT]:
        if (inst := to_instrument(r)) is not None:
            out[inst.symbol] = inst
    return out


def _frame(table: str, action: str, data: list[Row], **extra: Any) -> str:
    return json.dumps({"table": table, "action": action, **extra, "data": data})


def _partial(*rows: Row) -> str:
    return _frame("instrument", "partial", list(rows), keys=["symbol"], filter={})


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# -- metadata ----------------------------------------------------------------------------------


def test_every_open_perpetual_valued_in_usd_is_kept_with_bitmexs_own_valuation(
    rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    """Our value of each perpetual's open interest at its mark equals BitMEX's ``openValue``
    (XBt): inverse in base coin, quanto in XBT (then USD at the XBTUSD mark)."""
    xbt_usd = rows["XBTUSD"]["markPrice"]
    perpetuals = {s for s, r in rows.items() if r["typ"] == "FFWCSX"}
    assert perpetuals - set(markets) == {"XBTEUR"}  # 1 EUR contracts: not valued in USD
    assert not {s for s, r in rows.items() if r["typ"] != "FFWCSX"} & set(markets)
    for symbol in perpetuals - {"XBTEUR"}:
        r, inst = rows[symbol], markets[symbol]
        assert isinstance(inst, BitmexInstrument)
        oi, mark, value_xbt = r["openInterest"], r["markPrice"], r["openValue"] / 1e8
        assert inst.funding_interval_h == 8.0
        if r["isInverse"]:
            assert (inst.linear, inst.quanto, inst.contract_size) == (False, False, 1.0)
            assert inst.base_units(oi, mark) == pytest.approx(value_xbt)
            assert inst.notional_usd(oi, mark) == oi  # 1 USD a contract
        else:
            assert r["isQuanto"]
            assert inst.quanto
            assert inst.quanto_xbt == r["multiplier"] / 1e8
            usd = inst.notional_usd(oi, mark, xbt_usd)
            assert usd == pytest.approx(value_xbt * xbt_usd)
            assert inst.base_units(oi, mark, xbt_usd) == pytest.approx(usd / mark)
            with pytest.raises(ValueError, match="quanto"):
                inst.notional_usd(oi, mark)
    assert markets["XBTUSD"].base == "BTC"
    assert (markets["ETHUSD"].base, markets["ETHUSD"].quote) == ("ETH", "USD")
    assert markets["LINKUSDT"].quote == "USDT"


def test_a_linear_usdt_perpetual_is_multiplier_over_1e6_coin_a_contract() -> None:
    inst = to_instrument(JTOUSDT)
    assert inst is not None
    assert (inst.linear, inst.quanto) == (True, False)
    assert inst.contract_size == 1 / JTOUSDT["underlyingToPositionMultiplier"]
    oi, mark = JTOUSDT["openInterest"], JTOUSDT["markPrice"]
    assert inst.notional_usd(oi, mark) == pytest.approx(JTOUSDT["openValue"] / 1e6)  # USDt
    xbtusdt = to_instrument(JTOUSDT | {"symbol": "XBTUSDT", "underlying": "XBT", "multiplier": 1})
    assert xbtusdt is not None
    assert (xbtusdt.base, xbtusdt.contract_size) == ("BTC", 1e-6)


@pytest.mark.parametrize(
    "change",
    [
        {"typ": "FFCCSX"},
        {"state": "Unlisted"},
        {"settlCurrency": "Gwei"},
        {"quoteCurrency": "EUR"},
        {"multiplier": None},
        {"isQuanto": False, "settlCurrency": "XBt"},  # linear paid in XBT: not a USD value
    ],
)
def test_rows_that_are_not_open_perpetuals_valued_in_usd_are_refused(change: Row) -> None:
    assert to_instrument(JTOUSDT | change) is None


def test_the_funding_interval_is_a_time_after_2000_01_01(rows: dict[str, Row]) -> None:
    four = to_instrument(rows["ETHUSD"] | {"fundingInterval": "2000-01-01T04:00:00.000Z"})
    assert four is not None
    assert four.funding_interval_h == 4.0
    missing = to_instrument(rows["ETHUSD"] | {"fundingInterval": None})
    assert missing is not None
    assert missing.funding_interval_h == 8.0


# -- every captured frame ------------------------------------------------------------------------


def test_every_captured_frame_parses_or_is_counted(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """In order, through one parser: the one real liquidation (a short of 9214 USD), the
    instrument diffs counted (dated futures have no metadata here; XBTUSD's and ETHUSD's
    diffs came before any partial), the trade frames filtered (this parser sums no volume:
    test_bitmex_liquidity.py does), the fixture rows (no envelope) counted, the welcome and
    the acks silent."""
    parser = BitmexParser(VENUE, markets, None)
    events = []
    received = [line for line in _lines(captures) if line["kind"] != "client_request"]
    for line in received:
        events += parser.parse(str(line["raw"]), recv_ms=42)
    (liq,) = events
    insert = next(json.loads(x["raw"]) for x in received if '"action":"insert"' in x["raw"]
                  and '"liquidation"' in x["raw"])["data"][0]  # fmt: skip
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT  # a Buy order closes a short
    assert liq.quantity == insert["leavesQty"] == 9214
    assert liq.notional_usd == 9214.0  # XBTUSD: 1 USD a contract
    assert liq.quantity_base == pytest.approx(9214 / insert["price"])
    assert liq.price == insert["price"]
    assert liq.event_id == insert["orderID"]
    assert (liq.ts_ms, liq.recv_ms, liq.sampled) == (42, 42, False)  # no time on the wire
    assert parser.orders == {}  # the delete that followed
    trades = sum(1 for x in received if json.loads(x["raw"]).get("table") == "trade")
    fixtures = sum(1 for x in received if x["provenance"].startswith(("fixture", "SYNTHETIC")))
    assert parser.stats.filtered >= trades > 0
    assert parser.stats.errors == {
        "update_before_partial": 2,  # XBTUSD, ETHUSD
        "unknown_instrument": 3,  # ETHM19 and LTCM19 in the partial, ETHM19 updated
        "unknown_frame": fixtures,
    }


def test_the_real_open_interest_diff_is_valued_at_the_state_it_updates(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    """ETHUSD's diff carries only ``openInterest`` (and no time): merged into the partial's
    state, valued at its mark, paid in XBT at XBTUSD's mark, stamped when received."""
    raw = next(str(x["raw"]) for x in _lines(captures) if '"openInterest":58922153' in x["raw"])
    parser = BitmexParser(VENUE, markets, {"ETHUSD"})
    parser.parse(_partial(rows["XBTUSD"], rows["ETHUSD"]), recv_ms=1)
    (oi,) = parser.parse(raw, recv_ms=77)
    assert isinstance(oi, OpenInterest)
    eth, xbt = rows["ETHUSD"], rows["XBTUSD"]
    usd = 58922153 * eth["multiplier"] / 1e8 * eth["markPrice"] * xbt["markPrice"]
    assert oi.oi_contracts == 58922153
    assert oi.oi_usd == pytest.approx(usd)
    assert oi.oi_base == pytest.approx(usd / eth["markPrice"])
    assert oi.ts_ms == 77
    assert not parser.stats.errors
    assert parser.stats.filtered == 1  # XBTUSD's partial row: read for its price only
    assert parser.xbt_usd == xbt["markPrice"]


def test_a_partial_gives_mark_index_funding_and_open_interest(
    rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    parser = BitmexParser(VENUE, markets, None)
    events = parser.parse(_partial(rows["XBTUSD"], rows["ETHUSD"], rows["XBTU21"]), recv_ms=1)
    assert parser.stats.errors == {"unknown_instrument": 1}  # the dated future
    by = {(type(e).__name__, e.symbol): e for e in events}
    assert len(by) == len(events) == 6
    for symbol in ("XBTUSD", "ETHUSD"):
        r = rows[symbol]
        mark, funding = by[("MarkPrice", symbol)], by[("FundingRate", symbol)]
        oi = by[("OpenInterest", symbol)]
        assert isinstance(mark, MarkPrice)
        assert isinstance(funding, FundingRate)
        assert isinstance(oi, OpenInterest)
        assert mark.mark_price == r["markPrice"]
        assert mark.index_price == r["indicativeSettlePrice"]
        assert mark.ts_ms == _ms(r["timestamp"])
        assert funding.funding_rate == r["fundingRate"]
        assert funding.interval_h == 8.0
        assert funding.funding_rate_1h == pytest.approx(r["fundingRate"] / 8)
        assert funding.next_funding_ms == _ms(r["fundingTimestamp"]) > funding.ts_ms
        assert oi.oi_contracts == r["openInterest"]
    xbt = by[("OpenInterest", "XBTUSD")]
    assert isinstance(xbt, OpenInterest)
    assert xbt.oi_usd == rows["XBTUSD"]["openInterest"]
    assert xbt.oi_base == pytest.approx(rows["XBTUSD"]["openValue"] / 1e8)


def test_a_diff_reports_only_what_it_changed(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    """The nautilus fixtures' diffs: mark with its ``indexPrice`` (preferred to
    ``indicativeSettlePrice``) and open interest; then a funding diff on a 4 h interval."""
    fixture = next(
        json.loads(x["raw"])
        for x in _lines(captures)
        if x["kind"] == "ticker_funding_oi_mark" and x["provenance"].startswith("fixture")
    )
    parser = BitmexParser(VENUE, markets, None)
    parser.parse(_partial(rows["XBTUSD"]), recv_ms=1)
    mark, oi = parser.parse(_frame("instrument", "update", [fixture]), recv_ms=2)
    assert isinstance(mark, MarkPrice)
    assert isinstance(oi, OpenInterest)
    assert (mark.mark_price, mark.index_price) == (95125.7, 95124.3)
    assert mark.ts_ms == oi.ts_ms == _ms("2024-11-25T12:00:00.000Z")
    assert oi.oi_usd == 123456789
    diff = {
        "symbol": "XBTUSD",
        "fundingRate": -0.0003,
        "fundingInterval": "2000-01-01T04:00:00.000Z",
        "fundingTimestamp": "2024-11-25T16:00:00.000Z",
        "timestamp": "2024-11-25T12:00:01.000Z",
    }
    (f,) = parser.parse(_frame("instrument", "update", [diff]), recv_ms=3)
    assert isinstance(f, FundingRate)
    assert (f.funding_rate, f.interval_h, f.funding_rate_1h) == (-0.0003, 4.0, -0.000075)
    assert f.next_funding_ms == _ms("2024-11-25T16:00:00.000Z")
    quiet = {"symbol": "XBTUSD", "lastPrice": 95130, "timestamp": "2024-11-25T12:00:02.000Z"}
    assert parser.parse(_frame("instrument", "update", [quiet]), recv_ms=4) == []
    assert parser.parse(_frame("instrument", "delete", [{"symbol": "XBTUSD"}]), recv_ms=5) == []
    assert "XBTUSD" not in parser.instruments


# -- liquidations ----------------------------------------------------------------------------


def _order(oid: str, symbol: str, side: str, price: float, qty: float) -> Row:
    return {"orderID": oid, "symbol": symbol, "side": side, "price": price, "leavesQty": qty}


def test_a_liquidation_is_counted_once_at_insert_for_its_leaves_qty(
    markets: dict[str, Instrument],
) -> None:
    """Its fills (``update``) and its end (``delete``) count nothing; a reconnect's partial
    re-sending the order (with what is left) counts nothing; a fresh parser counts it once
    from the partial, for what is left, under the same id."""
    parser = BitmexParser(VENUE, markets, None)
    o = _order("a1", "XBTUSD", "Sell", 30000.0, 5000)
    (liq,) = parser.parse(_frame("liquidation", "insert", [o]), recv_ms=10)
    assert isinstance(liq, Liquidation)
    assert (liq.side, liq.quantity, liq.notional_usd, liq.event_id) == (Side.LONG, 5000, 5000, "a1")
    assert liq.quantity_base == pytest.approx(5000 / 30000)
    fill = {"orderID": "a1", "symbol": "XBTUSD", "leavesQty": 1200}
    assert parser.parse(_frame("liquidation", "update", [fill]), recv_ms=11) == []
    assert parser.orders["a1"].leaves_qty == 1200
    resent = _frame("liquidation", "partial", [o | fill], filter={"symbol": "XBTUSD"})
    assert parser.parse(resent, recv_ms=12) == []
    (again,) = BitmexParser(VENUE, markets, None).parse(resent, recv_ms=13)
    assert isinstance(again, Liquidation)
    assert (again.event_id, again.quantity) == ("a1", 1200)
    gone = {"orderID": "a1", "symbol": "XBTUSD"}
    assert parser.parse(_frame("liquidation", "delete", [gone]), recv_ms=14) == []
    assert parser.orders == {}
    assert not parser.stats.errors


def test_a_partial_forgets_the_orders_of_its_symbol_that_ended_meanwhile(
    markets: dict[str, Instrument],
) -> None:
    parser = BitmexParser(VENUE, markets, None)
    a, b = _order("a", "XBTUSD", "Buy", 1.0, 1), _order("b", "ETHUSD", "Buy", 1.0, 1)
    d = _order("d", "JTOUSDT", "Buy", 1.0, 1)
    parser.parse(_frame("liquidation", "insert", [a, b, d]), recv_ms=1)
    new = _order("c", "XBTUSD", "Buy", 2.0, 3)
    (liq,) = parser.parse(
        _frame("liquidation", "partial", [new], filter={"symbol": "XBTUSD"}), recv_ms=2
    )
    assert liq.event_id == "c"  # placed while disconnected, still open: counted now
    assert set(parser.orders) == {"c", "d"}  # b (ETHUSD) was not counted: no XBT price yet
    assert parser.stats.errors == {"without_xbt_price": 1}


def test_quanto_and_linear_liquidations_are_valued_in_usd(
    rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    parser = BitmexParser(VENUE, markets, None)
    eth = _order("e", "ETHUSD", "Buy", 2010.5, 300)
    assert parser.parse(_frame("liquidation", "insert", [eth]), recv_ms=1) == []
    assert parser.stats.errors == {"without_xbt_price": 1}
    parser.parse(_partial(rows["XBTUSD"]), recv_ms=2)
    xbt = rows["XBTUSD"]["markPrice"]
    resent = _frame("liquidation", "partial", [eth], filter={"symbol": "ETHUSD"})
    (q,) = parser.parse(resent, recv_ms=3)  # once it can be valued, a re-send counts it
    assert q.event_id == "e"
    jto = _order("j", "JTOUSDT", "Sell", 2.5, 40)
    (lin,) = parser.parse(_frame("liquidation", "insert", [jto]), recv_ms=4)
    assert isinstance(q, Liquidation)
    assert isinstance(lin, Liquidation)
    usd = 300 * 100 / 1e8 * 2010.5 * xbt  # 100 XBt per USD of ETH price, per contract
    assert (q.side, q.notional_usd) == (Side.SHORT, pytest.approx(usd))
    assert q.quantity_base == pytest.approx(usd / 2010.5)
    assert (lin.side, lin.quantity_base, lin.notional_usd) == (Side.LONG, 40.0, 100.0)


def test_configured_symbols_filter_and_unknown_ones_are_counted(
    markets: dict[str, Instrument],
) -> None:
    parser = BitmexParser(VENUE, markets, {"ETHUSD"})
    orders = [_order("x", "XBTUSD", "Buy", 1.0, 1), _order("y", "XBTZ21", "Buy", 1.0, 1)]
    assert parser.parse(_frame("liquidation", "insert", orders), recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert parser.stats.errors == {"unknown_instrument": 1}


# -- protocol -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"status":400,"error":"Unknown table: foo","meta":{},"request":{}}', "venue_error"),
        ('{"success":false,"subscribe":"instrument:NOPE"}', "venue_error"),
        ('{"op":"subscribe","args":[]}', "unknown_frame"),
        ('{"table":"funding","action":"insert","data":[{"symbol":"XBTUSD"}]}', "unknown_table"),
        ('{"table":"instrument","action":"upsert","data":[{"symbol":"XBTUSD"}]}', None),
        ('{"table":"instrument","action":"update"}', "invalid_instrument"),
        ('{"table":"instrument","action":"update","data":[{"markPrice":1}]}', None),
        ('{"table":"instrument","action":"update","data":[{"symbol":"X","markPrice":"a"}]}', None),
        ('{"table":"liquidation","action":"insert","data":[{"symbol":"XBTUSD"}]}', None),
        (
            '{"table":"liquidation","action":"insert","data":[{"orderID":"1","symbol":"XBTUSD"}]}',
            "invalid_liquidation",
        ),
        (
            '{"table":"liquidation","action":"insert","data":[{"orderID":"1","symbol":"XBTUSD",'
            '"side":"Hold","price":1,"leavesQty":1}]}',
            "invalid_side",
        ),
    ],
)
def test_bad_frames_are_counted_by_reason_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str | None
) -> None:
    parser = BitmexParser(VENUE, markets, None)
    assert parser.parse(frame, recv_ms=1) == []
    table = json.loads(frame).get("table") if frame.startswith("{") else None
    assert parser.stats.errors == {reason or f"invalid_{table}": 1}


def test_the_welcome_acks_and_pong_are_protocol(captures: Path) -> None:
    parser = BitmexParser(VENUE, {}, None)
    protocol = [str(x["raw"]) for x in _lines(captures) if x["kind"] == "protocol"]
    assert len(protocol) >= 10
    for frame in [*protocol, "pong", b"pong", '{"success":true,"unsubscribe":"liquidation"}']:
        assert parser.parse(frame, recv_ms=1) == []
    assert not parser.stats.errors


# -- subscriptions ---------------------------------------------------------------------------


def test_the_venue_subscribes_its_tables_per_perpetual_xbtusd_first(
    markets: dict[str, Instrument],
) -> None:
    """instrument, liquidation, quote and trade per perpetual (the order books: on their own
    connection, test_bitmex_liquidity.py)."""
    venue = Bitmex(VenueSettings())
    (conn,) = venue.connections(markets)
    assert conn.url == "wss://ws.bitmex.com/realtime"
    assert (conn.ping, conn.pong, conn.ping_interval_s) == ("ping", "pong", PING_INTERVAL_S)
    requests = [json.loads(r) for r in conn.subscribe]
    assert all(r["op"] == "subscribe" and 0 < len(r["args"]) <= 10 for r in requests)
    args = [a for r in requests for a in r["args"]]
    assert len(args) == len(set(args)) == 4 * len(markets)
    assert args[0] == "instrument:XBTUSD"  # its mark values the quanto contracts
    assert {a.partition(":")[2] for a in args} == set(markets)
    only_eth = Bitmex(VenueSettings(symbols=["ETHUSD"], volume=False))
    (conn,) = only_eth.connections(markets)
    (request,) = (json.loads(r) for r in conn.subscribe)
    assert request["args"] == [
        "instrument:XBTUSD", "instrument:ETHUSD", "liquidation:ETHUSD", "quote:ETHUSD"
    ]  # fmt: skip
    assert subscribe_requests(["JTOUSDT"], markets, trades=True) == (
        '{"op":"subscribe","args":["instrument:JTOUSDT","liquidation:JTOUSDT",'
        '"quote:JTOUSDT","trade:JTOUSDT"]}',
    )


def test_subscribe_requests_have_the_shape_the_venue_was_sent(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """Same keys and topic form as a real client request recorded by cryptofeed."""
    sent = next(json.loads(x["raw"]) for x in _lines(captures) if x["kind"] == "client_request")
    (ours,) = (json.loads(r) for r in subscribe_requests(["XBTUSD"], markets))
    assert set(ours) == set(sent)
    assert ours["op"] == sent["op"]
    assert all(a.count(":") == 1 for a in ours["args"] + sent["args"])


def test_bitmex_is_retired_and_disabled_by_the_shipped_configuration() -> None:
    """BitMEX closed on 2026-09-23 04:00 UTC (https://www.bitmex.com/blog/bitmex-closure):
    the venue stays registered (its simulator and these protocol tests run), but the shipped
    configuration, and so ``run`` and the demo, leave it off."""
    from service.demo import demo_venues

    assert REGISTRY["bitmex"] is Bitmex
    assert Bitmex.retired is not None
    assert "2026-09-23" in Bitmex.retired
    assert [name for name, v in REGISTRY.items() if v.retired] == ["bitmex"]
    repo = Path(__file__).resolve().parents[2]
    shipped = load_settings(set(REGISTRY), [repo / "config/default.yaml"])
    assert shipped.venues["bitmex"].enabled is False
    assert set(shipped.enabled_venues()) == set(REGISTRY) - {"bitmex"}
    demo = load_settings(set(REGISTRY), [repo / "config/default.yaml", repo / "config/demo.yaml"])
    assert demo_venues(demo) == sorted(set(REGISTRY) - {"bitmex"})
    explicit = load_settings(set(REGISTRY), [], venues={"bitmex": {"enabled": True}})
    assert demo_venues(explicit) == sorted(REGISTRY)  # enabled explicitly: it runs too
    bare = load_settings(set(REGISTRY), [])  # no configuration: the live venues
    assert demo_venues(bare) == sorted(set(REGISTRY) - {"bitmex"})
