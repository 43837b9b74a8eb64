"""The Gate futures parser on every Gate frame in ../shared/captures, values worked out here from
the frames and the recorded contract list (shared/captures/rest/GATEIO_FUTURES.0.txt)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import Connection, Instrument
from service.venues.gateio.instruments import (
    CONTRACTS_PER_REQUEST,
    SYMBOLS_PER_CONNECTION,
    GateContract,
    parse_contracts,
)
from service.venues.gateio.simulator.wire import load_contracts
from service.venues.gateio.venue import PING_INTERVAL_S, Gate, GateParser

VENUE = "gateio"
HOUR_MS = 3_600_000
Row = dict[str, Any]


def _recorded_body(captures: Path) -> str:
    line = (captures / "rest" / "GATEIO_FUTURES.0.txt").read_text().splitlines()[0]
    assert line.startswith("https://api.gateio.ws/api/v4/futures/usdt/contracts")
    return line.split(" -> ", 1)[1].split(": ", 1)[1]


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    return {r["name"]: r for r in json.loads(_recorded_body(captures))}


def _inverse(name: str, base: str) -> GateContract:
    return GateContract(VENUE, name, base, "USD", linear=False, settle="btc")


@pytest.fixture
def markets(captures: Path) -> dict[str, Instrument]:
    listed = parse_contracts(_recorded_body(captures), "usdt")
    assert len(listed) == 302  # every row of the recorded list is usable
    # ETC_USD (2020-2022 frames) was a BTC-settled contract; valued here as a 1 USD inverse
    # contract to read those frames' shapes (the service skips BTC-settled quantos).
    extra = [_inverse("BTC_USD", "BTC"), _inverse("ETC_USD", "ETC")]
    return {i.symbol: i for i in [*listed, *extra]}


def _lines(captures: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (captures / "gateio_futures.jsonl").read_text().splitlines()]


def _pushes(captures: Path, channel: str) -> list[str]:
    return [
        str(line["raw"])
        for line in _lines(captures)
        if json.loads(line["raw"]).get("channel") == channel
        and json.loads(line["raw"]).get("event") == "update"
    ]


def _objects(result: Any) -> list[Row]:
    """The result's objects, whatever its shape (the test's own flattening)."""
    if isinstance(result, dict):
        return [result]
    return [o for item in result for o in (item if isinstance(item, list) else [item])]


# -- futures.public_liquidates ----------------------------------------------------------------


def test_every_liquidation_is_the_position_opposite_to_the_order_sign(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    frames = _pushes(captures, "futures.public_liquidates")
    assert len(frames) == 3  # the docs' new decimal, new integer and old examples
    for raw in frames:
        parser = GateParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=7)
        assert not parser.stats.errors
        expected = _objects(json.loads(raw)["result"])
        assert len(events) == len(expected)
        for liq, row in zip(events, expected, strict=True):
            assert isinstance(liq, Liquidation)
            size, price = float(row["size"]), float(row["price"])
            multiplier = float(rows[row["contract"]]["quanto_multiplier"])  # 0.0001 BTC
            in_ms = row["time"] > 10**11
            assert liq.side is (Side.LONG if size < 0 else Side.SHORT)
            assert liq.quantity == abs(size)  # contracts
            assert liq.quantity_base == pytest.approx(abs(size) * multiplier)
            assert liq.notional_usd == pytest.approx(abs(size) * multiplier * price)
            assert liq.price == price
            assert liq.ts_ms == (row["time"] if in_ms else row["time"] * 1000)
            assert liq.sampled is not in_ms  # the old format is one a second: a sample
            assert liq.event_id == f"{liq.ts_ms}:{row['size']}:{row['price']}"
            assert liq.recv_ms == 7


def test_the_new_format_keeps_every_liquidation_of_the_second_the_old_one_sampled(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    new_decimal, new_integer, old = _pushes(captures, "futures.public_liquidates")
    parser = GateParser(VENUE, markets, None)
    a, b = parser.parse(new_decimal, recv_ms=1)
    assert isinstance(a, Liquidation)
    assert isinstance(b, Liquidation)
    assert (a.ts_ms, b.ts_ms) == (1541486601123, 1541486601456)  # one second, two orders
    assert (a.quantity, b.quantity) == (124.5, 10.5)
    assert (a.sampled, b.sampled) == (False, False)
    c, _ = parser.parse(new_integer, recv_ms=1)  # without the size header: whole contracts
    assert isinstance(c, Liquidation)
    assert c.quantity == 124
    assert c.event_id != a.event_id
    (d,) = parser.parse(old, recv_ms=1)
    assert isinstance(d, Liquidation)
    assert d.sampled is True
    assert d.ts_ms == 1541486601000


def test_a_re_sent_liquidation_keeps_its_identity(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = _pushes(captures, "futures.public_liquidates")[0]
    parser = GateParser(VENUE, markets, None)
    first = parser.parse(raw, recv_ms=1)
    msg = json.loads(raw)
    msg["result"] = [*reversed(msg["result"]), msg["result"][0] | {"size": "-124"}]
    msg["time_ms"] += 60_000  # re-sent later, in another batch
    again = parser.parse(json.dumps(msg), recv_ms=2)
    ids = {e.event_id for e in first if isinstance(e, Liquidation)}
    assert {e.event_id for e in again[:2] if isinstance(e, Liquidation)} == ids
    assert isinstance(again[2], Liquidation)
    assert again[2].event_id not in ids


def test_a_bare_object_and_a_positive_size_are_read(markets: dict[str, Instrument]) -> None:
    frame = {
        "channel": "futures.public_liquidates",
        "event": "update",
        "time": 1,
        "result": {"price": "30000", "size": 3, "time": 1700000000, "contract": "BTC_USD"},
    }
    (liq,) = GateParser(VENUE, markets, None).parse(json.dumps(frame), recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT  # a buy order: a short was liquidated
    assert liq.notional_usd == 3.0  # three 1 USD contracts
    assert liq.quantity_base == pytest.approx(3 / 30000)
    assert liq.sampled is True  # time in seconds: the old format


def test_liquidations_of_unlisted_or_unwanted_contracts_are_filtered(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = _pushes(captures, "futures.public_liquidates")[0]
    unwanted = GateParser(VENUE, markets, {"ETH_USDT"})
    unlisted = GateParser(VENUE, {}, None)
    assert unwanted.parse(raw, recv_ms=1) == []
    assert unlisted.parse(raw, recv_ms=1) == []
    assert (unwanted.stats.filtered, unlisted.stats.filtered) == (2, 2)
    assert not unwanted.stats.errors
    assert not unlisted.stats.errors


# -- futures.tickers --------------------------------------------------------------------------


def test_every_ticker_shape_gives_mark_funding_per_hour_and_open_interest(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _pushes(captures, "futures.tickers")
    assert len(frames) == 4  # a list (2020), a list of lists (2021), an object (2022), a list
    for raw in frames:
        msg = json.loads(raw)
        parser = GateParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=9)
        assert not parser.stats.errors
        objects = _objects(msg["result"])
        ts = msg.get("time_ms") or msg["time"] * 1000
        # One report per contract per second: a repeated contract of the frame waits.
        first = {o["contract"]: o for o in reversed(objects)}
        assert len(events) == 3 * len(first)
        for (mark, funding, oi), obj in zip(
            (events[i : i + 3] for i in range(0, len(events), 3)), first.values(), strict=True
        ):
            inst = markets[obj["contract"]]
            assert isinstance(mark, MarkPrice)
            assert isinstance(funding, FundingRate)
            assert isinstance(oi, OpenInterest)
            assert mark.ts_ms == funding.ts_ms == oi.ts_ms == ts
            assert mark.mark_price == float(obj["mark_price"])
            assert mark.index_price == float(obj["index_price"])
            rate = float(obj["funding_rate"])
            assert funding.funding_rate == rate
            assert funding.interval_h == inst.funding_interval_h
            assert funding.funding_rate_1h == pytest.approx(rate / inst.funding_interval_h)
            contracts = float(obj["total_size"])
            assert oi.oi_contracts == contracts
            if inst.linear:
                assert oi.oi_base == pytest.approx(contracts * inst.contract_size)
                assert oi.oi_usd == pytest.approx(oi.oi_base * mark.mark_price)
            else:
                assert oi.oi_usd == contracts
                assert oi.oi_base == pytest.approx(contracts / mark.mark_price)


def test_the_2023_btc_usdt_ticker_is_15348_btc_and_settles_on_the_8h_grid(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(r for r in _pushes(captures, "futures.tickers") if "BTC_USDT" in r)
    _, funding, oi = GateParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_base == pytest.approx(153482780 * 0.0001)
    assert oi.oi_usd == pytest.approx(15348.278 * 23175.64)
    assert isinstance(funding, FundingRate)
    assert funding.next_funding_ms == 1677657600000  # 2023-03-01 08:00 UTC
    assert funding.ts_ms == 1677629168840


def test_contracts_not_collected_are_filtered(captures: Path) -> None:
    raw = next(r for r in _pushes(captures, "futures.tickers") if "ETC_USD" in r)
    parser = GateParser(VENUE, {}, None)
    assert parser.parse(raw, recv_ms=1) == []
    assert parser.stats.filtered == 2
    assert not parser.stats.errors


def _ticker(ts_ms: int, **fields: Any) -> str:
    result = [{"contract": "BTC_USDT"} | fields]
    return json.dumps({"time": ts_ms // 1000, "time_ms": ts_ms, "channel": "futures.tickers",
                       "event": "update", "result": result})  # fmt: skip


def test_changes_are_reported_once_a_second_from_the_merged_state(
    markets: dict[str, Instrument],
) -> None:
    parser = GateParser(VENUE, markets, None)
    full = {"mark_price": "100", "index_price": "99", "funding_rate": "0.0001",
            "total_size": "1000"}  # fmt: skip
    assert len(parser.parse(_ticker(1000, **full), recv_ms=1)) == 3
    assert parser.parse(_ticker(1500, mark_price="101", total_size=2000), recv_ms=2) == []
    mark, oi = parser.parse(_ticker(2000, index_price="100"), recv_ms=3)
    assert isinstance(mark, MarkPrice)
    assert (mark.mark_price, mark.index_price) == (101, 100)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_contracts == 2000  # a JSON number, read too
    assert oi.oi_usd == pytest.approx(2000 * 0.0001 * 101)


def test_a_ticker_with_a_bad_field_leaves_the_state_as_it_was(
    markets: dict[str, Instrument],
) -> None:
    parser = GateParser(VENUE, markets, None)
    parser.state_every_ms = 0
    parser.parse(_ticker(1000, mark_price="100", total_size="10"), recv_ms=1)
    assert parser.parse(_ticker(2000, mark_price="101", total_size="x"), recv_ms=2) == []
    assert parser.stats.errors == {"invalid_futures.tickers": 1}
    (oi,) = parser.parse(_ticker(3000, total_size="11"), recv_ms=3)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(11 * 0.0001 * 100)


# -- protocol and everything else -------------------------------------------------------------


def test_every_captured_line_is_accounted_for(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = GateParser(VENUE, markets, None)
    parser.state_every_ms = 0
    events = 0
    for line in _lines(captures):
        msg = json.loads(line["raw"])
        if "payload" in msg and "result" not in msg:  # our own request, not a server frame
            assert line["kind"] == "client_request"
            continue
        events += len(parser.parse(line["raw"], recv_ms=1))
    trades = _pushes(captures, "futures.trades")
    assert events == (2 + 1 + 1 + 1) * 3 + 5  # ticker objects x 3 kinds, 5 liquidations
    assert parser.stats.errors == {}
    assert parser.stats.filtered == len(trades) == 3  # read for volume only: off here


PONG = (
    '{"time":1545404023,"time_ms":1545404023123,"channel":"futures.pong","event":"","result":null}'
)
ACK = json.dumps(
    {"time": 1, "channel": "futures.tickers", "event": "subscribe", "result": {"status": "success"}}
)


def test_acks_and_pongs_are_not_errors(captures: Path, markets: dict[str, Instrument]) -> None:
    parser = GateParser(VENUE, markets, None)
    messages = [json.loads(line["raw"]) for line in _lines(captures)]
    acks = [json.dumps(m) for m in messages if m.get("event") == "subscribe" and "result" in m]
    assert len(acks) == 3
    for frame in [*acks, PONG, ACK, ACK.replace('"subscribe"', '"unsubscribe"')]:
        assert parser.parse(frame, recv_ms=1) == []
    assert not parser.stats.errors


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ('{"channel":5}', "invalid_frame"),
        ('{"time":1,"channel":"futures.tickers","event":"subscribe","error":{"code":2,'
         '"message":"unknown contract X"},"result":{"status":"fail"}}', "subscribe_failed"),
        ('{"channel":"futures.tickers","event":"subscribe","result":{"status":"fail"}}',
         "subscribe_failed"),
        ('{"type":"upgrade","msg":"reconnect"}', "unknown_frame"),
        ('{"channel":"futures.order_book","event":"all","result":{}}', "unknown_channel"),
        ('{"channel":"futures.tickers","event":"update"}', "invalid_futures.tickers"),
        ('{"channel":"futures.tickers","event":"update","result":5}', "invalid_futures.tickers"),
        ('{"channel":"futures.tickers","event":"all","result":[]}', "invalid_futures.tickers"),
        ('{"channel":"futures.public_liquidates","event":"update","result":[{"price":"1"}]}',
         "invalid_futures.public_liquidates"),
        ('{"channel":"futures.public_liquidates","event":"update","result":[{"price":"1",'
         '"size":0,"time":1,"contract":"BTC_USDT"}]}', "invalid_liquidation"),
        ('{"channel":"futures.public_liquidates","event":"update","result":[{"price":"x",'
         '"size":1,"time":1,"contract":"BTC_USDT"}]}', "invalid_liquidation"),
        ('{"channel":"futures.public_liquidates","event":"update","result":[{"price":"1",'
         '"size":1,"contract":"BTC_USDT"}]}', "invalid_liquidation"),
    ],
)  # fmt: skip
def test_bad_frames_are_counted_by_reason_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str
) -> None:
    parser = GateParser(VENUE, markets, None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason: 1}


# -- the venue: connections and contracts -----------------------------------------------------


def _requests(subscribe: tuple[str, ...]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in subscribe]


def test_each_settlement_has_its_path_the_liquidations_of_all_and_json_pings(
    markets: dict[str, Instrument],
) -> None:
    venue = Gate(VenueSettings(symbols=["BTC_USDT", "ETH_USDT", "BTC_USD"]))
    conns = {c.name: c for c in venue.connections(markets)}
    assert list(conns) == ["usdt-1", "usdt-liquidations", "btc-1", "btc-liquidations"]
    for name in ("usdt-1", "usdt-liquidations"):
        assert conns[name].url == "wss://fx-ws.gateio.ws/v4/ws/usdt"
    for name in ("btc-1", "btc-liquidations"):
        assert conns[name].url == "wss://fx-ws.gateio.ws/v4/ws/btc"
    for conn in conns.values():  # the quiet lane too: Gate's application ping
        ping = json.loads(conn.ping or "")
        assert ping["channel"] == "futures.ping"
        assert isinstance(ping["time"], int)
        assert conn.ping_interval_s == PING_INTERVAL_S
        assert conn.pong is not None
        assert conn.pong in PONG
        assert conn.headers == (("X-Gate-Size-Decimal", "1"),)
    tickers, tops, trades = _requests(conns["usdt-1"].subscribe)
    assert (tickers["channel"], tickers["event"]) == ("futures.tickers", "subscribe")
    assert (tops["channel"], trades["channel"]) == ("futures.book_ticker", "futures.trades")
    for request in (tickers, tops, trades):
        assert request["payload"] == ["BTC_USDT", "ETH_USDT"]
    assert {r["channel"]: r["payload"] for r in _requests(conns["btc-1"].subscribe)} == {
        "futures.tickers": ["BTC_USD"],
        "futures.book_ticker": ["BTC_USD"],
        "futures.trades": ["BTC_USD"],
    }
    for name in ("usdt-liquidations", "btc-liquidations"):
        (liq,) = _requests(conns[name].subscribe)
        assert (liq["channel"], liq["event"]) == ("futures.public_liquidates", "subscribe")
        assert liq["payload"] == ["!all"]
        assert liq["time"] == tickers["time"]  # one fixed time: a refresh sees the same text
    again = {c.name: c.subscribe for c in venue.connections(markets)}
    assert again == {n: c.subscribe for n, c in conns.items()}  # a refresh changes nothing


def test_the_liquidations_are_on_quiet_connections_of_their_own(
    markets: dict[str, Instrument],
) -> None:
    """The quiet lane (:attr:`Connection.quiet`): each settlement's
    ``futures.public_liquidates`` alone on its ``<settle>-liquidations``, on no busy
    connection, so a collector behind on the tickers, books and trades still reads them as
    they come. A settlement with nothing subscribed has no liquidations connection."""
    venue = Gate(VenueSettings())
    venue.depth_symbols = frozenset({"BTC_USDT", "BTC_USD"})
    conns = venue.connections(markets)
    assert {c.name for c in conns} == {
        "usdt-1", "usdt-2", "usdt-liquidations", "btc-1", "btc-liquidations",
        "usdt-depth", "btc-depth"}  # fmt: skip

    def channels(c: Connection) -> set[str]:
        return {r["channel"] for r in _requests(c.subscribe)}

    quiet = {c.name: channels(c) for c in conns if c.quiet}
    assert quiet == {
        "usdt-liquidations": {"futures.public_liquidates"},
        "btc-liquidations": {"futures.public_liquidates"},
    }
    assert all("futures.public_liquidates" not in channels(c) for c in conns if not c.quiet)
    usdt_only = Gate(VenueSettings(symbols=["BTC_USDT"])).connections(markets)
    assert [c.name for c in usdt_only] == ["usdt-1", "usdt-liquidations"]


def test_many_contracts_are_split_and_chunked(markets: dict[str, Instrument]) -> None:
    usdt = [s for s, i in markets.items() if i.linear]
    conns = Gate(VenueSettings()).connections(markets)
    assert {c.name for c in conns} == {
        "usdt-1", "usdt-2", "usdt-liquidations", "btc-1", "btc-liquidations"}  # fmt: skip
    seen: list[str] = []
    for conn in conns:
        requests = _requests(conn.subscribe)
        assert all(len(r["payload"]) <= CONTRACTS_PER_REQUEST for r in requests)
        tickers = [r for r in requests if r["channel"] == "futures.tickers"]
        tops = [r for r in requests if r["channel"] == "futures.book_ticker"]
        assert [r["payload"] for r in tops] == [r["payload"] for r in tickers]
        seen += [s for r in tickers for s in r["payload"]]
        assert len(seen) < 2 * SYMBOLS_PER_CONNECTION * 3
    assert sorted(seen) == sorted([*usdt, "BTC_USD", "ETC_USD"])  # 302 contracts of ~200
    liquidations = [
        c for c in conns for r in _requests(c.subscribe) if "liquidates" in r["channel"]
    ]
    assert sorted(c.name for c in liquidations) == ["btc-liquidations", "usdt-liquidations"]


def test_the_recorded_list_values_contracts_in_quanto_coin(rows: dict[str, Row]) -> None:
    listed = {c.symbol: c for c in parse_contracts(list(rows.values()), "usdt")}
    for name, row in rows.items():
        c = listed[name]
        assert (c.base, c.quote) == tuple(name.split("_"))
        assert c.linear is True
        assert c.contract_size == float(row["quanto_multiplier"])
        assert c.funding_interval_h == row["funding_interval"] / 3600
        assert c.funding_anchor_ms == row["funding_next_apply"] * 1000
    assert listed["DOGE_USDT"].notional_usd(3, 0.071083) == pytest.approx(3 * 10 * 0.071083)
    assert listed["BTC_USDT"].next_funding_ms(1684944000000) == 1684944000000 + 8 * HOUR_MS
    assert listed["BTC_USDT"].next_funding_ms(1684943999999) == 1684944000000


def test_btc_settled_contracts_are_inverse_usd_and_quantos_are_skipped() -> None:
    listed = {c.symbol: c for c in parse_contracts(json.dumps(load_contracts("btc")), "btc")}
    assert set(listed) == {"BTC_USD"}  # ETH_USD: a quanto contract paid in BTC
    btc = listed["BTC_USD"]
    assert (btc.linear, btc.contract_size, btc.settle) == (False, 1.0, "btc")
    assert btc.notional_usd(500, 60_000) == 500


def test_delisted_and_unusable_rows_are_skipped() -> None:
    good = {"name": "A_USDT", "type": "direct", "quanto_multiplier": "1", "funding_interval": 3600}
    rows = [
        good,
        good | {"name": "B_USDT", "status": "delisted"},
        good | {"name": "C_USDT", "quanto_multiplier": "0"},
        good | {"name": "D_USDT", "quanto_multiplier": "x"},
        good | {"name": "NOUNDERSCORE"},
    ]
    (only,) = parse_contracts(rows, "usdt")
    assert only.symbol == "A_USDT"
    assert only.funding_interval_h == 1.0
    with pytest.raises(ValueError, match="Expected `array`"):
        parse_contracts('{"label":"INVALID_PARAM_VALUE"}', "usdt")


# Gate's futures websocket docs (zh_CN), the 2026-08-20 changelog and the channel's field
# table before and after, as the docs diff of 2026-08-21 shows them (docs/venues.md): the
# current samples carry several rows per contract, "time" in ms; the old ones one row, "time"
# in seconds, under a table that named the field "time_ms" (ms).
GATE_NEW_DECIMAL = (
    '{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, '
    '"time_ms": 1541505434123, "result": [ { "price": "215.1", "size": "-124.5", '
    '"time": 1541486601123, "contract": "BTC_USDT" }, { "price": "215.2", "size": "-10.5", '
    '"time": 1541486601456, "contract": "BTC_USDT" } ] }'
)
GATE_NEW_INTEGER = (
    '{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, '
    '"time_ms": 1541505434123, "result": [ { "price": "215.1", "size": -124, '
    '"time": 1541486601123, "contract": "BTC_USDT" }, { "price": "215.2", "size": -10, '
    '"time": 1541486601456, "contract": "BTC_USDT" } ] }'
)
GATE_OLD_DECIMAL = (
    '{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, '
    '"time_ms": 1541505434123, "result": [ { "price": "215.1", "size": "-124.5", '
    '"time": 1541486601, "contract": "BTC_USDT" } ] }'
)
GATE_OLD_INTEGER = (
    '{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, '
    '"time_ms": 1541505434123, "result": [ { "price": "215.1", "size": -124, '
    '"time": 1541486601, "contract": "BTC_USDT" } ] }'
)


def test_gate_liquidations_are_complete_in_the_documented_format_and_sampled_in_the_old(
    markets: dict[str, Instrument],
) -> None:
    parser = GateParser(VENUE, markets, None)
    multiplier = markets["BTC_USDT"].contract_size  # 0.0001 BTC a contract
    for raw, sizes in ((GATE_NEW_DECIMAL, (124.5, 10.5)), (GATE_NEW_INTEGER, (124, 10))):
        a, b = parser.parse(raw, recv_ms=1)
        assert isinstance(a, Liquidation)
        assert isinstance(b, Liquidation)
        assert (a.sampled, b.sampled) == (False, False)  # every liquidation of the second
        assert (a.ts_ms, b.ts_ms) == (1541486601123, 1541486601456)
        assert (a.quantity, b.quantity) == sizes
        assert (a.side, b.side) == (Side.LONG, Side.LONG)  # a sell order closes a long
        assert a.notional_usd == pytest.approx(sizes[0] * multiplier * 215.1)
    for raw in (GATE_OLD_DECIMAL, GATE_OLD_INTEGER):
        (old,) = parser.parse(raw, recv_ms=1)
        assert isinstance(old, Liquidation)
        assert (old.sampled, old.ts_ms) == (True, 1541486601000)  # one a second, time in s
    assert not parser.stats.errors
    assert Gate.liquidations_sampled is False  # the current format


def test_a_row_in_the_old_tables_time_ms_field_is_still_a_sample(
    markets: dict[str, Instrument],
) -> None:
    """Before 2026-08-20 the field table named the row's time ``time_ms`` (ms) while the
    channel pushed at most one liquidation per contract per second: a row shaped by that
    table is the old sample, whatever the unit of its time."""
    frame = {
        "channel": "futures.public_liquidates", "event": "update", "time": 1541505434,
        "result": [{"price": "215.1", "size": "-124.5", "time_ms": 1541486601123,
                    "contract": "BTC_USDT"}],
    }  # fmt: skip
    (liq,) = GateParser(VENUE, markets, None).parse(json.dumps(frame), recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert (liq.sampled, liq.ts_ms) == (True, 1541486601123)
