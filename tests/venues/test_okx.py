"""The OKX parser on every OKX frame in ../shared/captures, with the contract metadata of the
recorded instrument lists (shared/captures/rest/OKX.0.txt); values worked out here from the
frames and the raw instrument rows themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.config import VenueSettings, load_settings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import Connection, Instrument
from service.venues.okx.venue import (
    MAX_REQUEST_BYTES,
    PING_INTERVAL_S,
    Okx,
    OkxParser,
    instrument,
    subscribe_requests,
)

VENUE = "okx"
HOUR_MS = 3_600_000

Row = dict[str, Any]


def _lines(captures: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (captures / "okx.jsonl").read_text().splitlines()]


def _rest_rows(captures: Path) -> dict[str, Row]:
    """instId -> instrument row, from every SWAP and FUTURES listing of OKX.0.txt."""
    rows: dict[str, Row] = {}
    for line in (captures / "rest" / "OKX.0.txt").read_text().splitlines():
        if " -> " not in line:
            continue  # the recorder's configuration line
        body = line.split(" -> ", 1)[1].split(": ", 1)[1]
        rows.update({r["instId"]: r for r in json.loads(body)["data"]})
    return rows


# Futures in the captures that expired before the 2022 listing was recorded: same family,
# same contract terms (ctVal, ctValCcy, ctType) as the family's listed futures.
SAME_TERMS_AS = {"XRP-USD-230929": "XRP-USD-220624", "FIL-USDT-220325": "FIL-USDT-220624"}


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    rows = _rest_rows(captures)
    for inst_id, listed in SAME_TERMS_AS.items():
        rows[inst_id] = rows[listed] | {"instId": inst_id}
    return rows


@pytest.fixture
def markets(rows: dict[str, Row]) -> dict[str, Instrument]:
    out = {i: inst for i, r in rows.items() if (inst := instrument(r)) is not None}
    assert len(out) == len(rows)  # every SWAP and FUTURES row of the listing is usable
    return out


def _data(raw: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(raw)["data"]
    return data


def _channel_lines(captures: Path, channel: str) -> list[str]:
    return [
        str(d["raw"])
        for d in _lines(captures)
        if json.loads(d["raw"]).get("arg", {}).get("channel") == channel
        and "data" in json.loads(d["raw"])
    ]


# -- liquidation-orders ---------------------------------------------------------------------


def _expected_liquidation(detail: dict[str, str], row: Row) -> tuple[Side, float, float, float]:
    """(position side, contracts, base coin, USD) from a details row and the instrument row."""
    if detail["posSide"] in ("long", "short"):
        side = Side.LONG if detail["posSide"] == "long" else Side.SHORT
    else:  # net mode: the liquidation order sells a long, buys back a short
        side = Side.LONG if detail["side"] == "sell" else Side.SHORT
    sz, px, ct_val = float(detail["sz"]), float(detail["bkPx"]), float(row["ctVal"])
    if row["ctType"] == "linear":  # ctVal in coin
        base = sz * ct_val
        return side, sz, base, base * px
    usd = sz * ct_val  # inverse: ctVal in USD
    return side, sz, usd / px, usd


def test_every_liquidation_orders_frame_gives_position_side_and_notional(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    frames = _channel_lines(captures, "liquidation-orders")
    assert len(frames) >= 3  # two real FUTURES captures and the SWAP doc example
    for raw in frames:
        parser = OkxParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=7)
        assert not parser.stats.errors, raw
        details = [(e["instId"], d) for e in _data(raw) for d in e["details"]]
        assert len(events) == len(details)
        for liq, (inst_id, d) in zip(events, details, strict=True):
            assert isinstance(liq, Liquidation)
            side, qty, base, usd = _expected_liquidation(d, rows[inst_id])
            assert liq.symbol == inst_id
            assert liq.side is side
            assert liq.quantity == pytest.approx(qty)
            assert liq.quantity_base == pytest.approx(base)
            assert liq.notional_usd == pytest.approx(usd)
            assert liq.price == pytest.approx(float(d["bkPx"]))
            assert liq.ts_ms == int(d["ts"])
            assert liq.recv_ms == 7
            assert liq.sampled is True
            assert liq.event_id


def test_the_real_futures_capture_is_a_short_of_39_contracts_of_10_usd(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(str(d["raw"]) for d in _lines(captures) if "XRP-USD-230929" in str(d["raw"]))
    (liq,) = OkxParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT  # posSide short, closed by a buy
    assert liq.notional_usd == pytest.approx(39 * 10.0)
    assert liq.quantity_base == pytest.approx(390 / 0.55205)


def test_the_doc_swap_example_is_13_contracts_of_1000_iost(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(str(d["raw"]) for d in _lines(captures) if "IOST-USDT-SWAP" in str(d["raw"]))
    (liq,) = OkxParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT
    assert liq.quantity_base == pytest.approx(13 * 1000)
    assert liq.notional_usd == pytest.approx(13 * 1000 * 0.007831)


def test_a_re_sent_liquidation_keeps_its_identity(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The capture holds the same push twice (as a re-subscribe burst re-sends it); the
    identity depends on the detail alone, not on when it came or what it was batched with."""
    first, second = (str(d["raw"]) for d in _lines(captures) if "XRP-USD-230929" in str(d["raw"]))
    assert first == second
    parser = OkxParser(VENUE, markets, None)
    (a,) = parser.parse(first, recv_ms=1)
    (b,) = parser.parse(second, recv_ms=2)
    assert isinstance(a, Liquidation)
    assert isinstance(b, Liquidation)
    assert a.event_id == b.event_id
    msg = json.loads(first)
    detail = msg["data"][0]["details"][0]
    other = detail | {"sz": "40"}
    msg["data"][0]["details"] = [other, detail]  # a batch, in another order
    c, d = parser.parse(json.dumps(msg), recv_ms=3)
    assert isinstance(c, Liquidation)
    assert isinstance(d, Liquidation)
    assert d.event_id == a.event_id
    assert c.event_id != a.event_id


@pytest.mark.parametrize(
    ("side", "pos_side", "expected"),
    [
        ("sell", "net", Side.LONG),
        ("buy", "net", Side.SHORT),
        ("sell", "", Side.LONG),
        ("buy", "long", Side.LONG),  # posSide wins when it is given
        ("sell", "short", Side.SHORT),
    ],
)
def test_the_position_side_comes_from_pos_side_else_from_the_order_side(
    markets: dict[str, Instrument], side: str, pos_side: str, expected: Side
) -> None:
    frame = json.dumps(
        {
            "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [
                {
                    "details": [
                        {"bkPx": "30000", "posSide": pos_side, "side": side, "sz": "2", "ts": "1"}
                    ],
                    "instId": "BTC-USDT-SWAP",
                    "instType": "SWAP",
                }
            ],
        }
    )
    (liq,) = OkxParser(VENUE, markets, None).parse(frame, recv_ms=1)
    assert isinstance(liq, Liquidation)
    assert liq.side is expected
    assert liq.notional_usd == pytest.approx(2 * 0.01 * 30000)


def test_a_batch_of_several_instruments_is_filtered_to_the_configured_ones(
    markets: dict[str, Instrument],
) -> None:
    def entry(inst_id: str, n: int) -> dict[str, Any]:
        details = [
            {"bkPx": "100", "posSide": "net", "side": "sell", "sz": "1", "ts": str(t)}
            for t in range(n)
        ]
        return {"details": details, "instId": inst_id, "instType": "SWAP"}

    frame = json.dumps(
        {
            "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [entry("ETH-USD-SWAP", 3), entry("BTC-USD-SWAP", 2)],
        }
    )
    parser = OkxParser(VENUE, markets, {"BTC-USD-SWAP"})
    events = parser.parse(frame, recv_ms=1)
    assert [e.symbol for e in events] == ["BTC-USD-SWAP", "BTC-USD-SWAP"]
    assert parser.stats.filtered == 3
    assert not parser.stats.errors


def test_futures_without_metadata_are_dropped_and_counted(captures: Path) -> None:
    parser = OkxParser(VENUE, {}, None)
    for raw in _channel_lines(captures, "liquidation-orders"):
        assert parser.parse(raw, recv_ms=1) == []
    assert parser.stats.errors["unknown_instrument"] >= 3


def test_tardis_generated_liquidations_are_not_a_websocket_channel(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """tardis wrapped REST polls as ``"channel":"liquidations","generated":true``: the
    venue never sends that channel, so it is counted, not parsed."""
    frames = _channel_lines(captures, "liquidations")
    assert len(frames) == 2
    parser = OkxParser(VENUE, markets, None)
    for raw in frames:
        assert parser.parse(raw, recv_ms=1) == []
    assert parser.stats.errors == {"unknown_channel": 2}


# -- funding-rate ---------------------------------------------------------------------------


def test_every_funding_frame_gives_a_rate_per_hour_or_a_counted_drop(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _channel_lines(captures, "funding-rate")
    assert len(frames) >= 5
    seen = {"interval_from_times": 0, "old_without_next_time": 0, "without_rate": 0}
    for raw in frames:
        (row,) = _data(raw)
        parser = OkxParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=99)
        if row["instId"] not in markets:  # the 2026 X-Perp future: not in the 2022 listing
            assert events == []
            assert parser.stats.errors == {"unknown_instrument": 1}
            continue
        if not row.get("fundingRate"):  # 2021: only nextFundingRate
            seen["without_rate"] += 1
            assert events == []
            assert parser.stats.errors == {"missing_funding_rate": 1}
            continue
        (f,) = events
        assert isinstance(f, FundingRate)
        assert not parser.stats.errors
        rate = float(row["fundingRate"])
        if row.get("nextFundingTime"):
            seen["interval_from_times"] += 1
            hours = (int(row["nextFundingTime"]) - int(row["fundingTime"])) / HOUR_MS
        else:  # 2021: OKX settled every swap every 8 h
            seen["old_without_next_time"] += 1
            hours = 8.0
        assert f.funding_rate == pytest.approx(rate)
        assert f.interval_h == pytest.approx(hours)
        assert f.funding_rate_1h == pytest.approx(rate / hours)
        assert f.next_funding_ms == int(row["fundingTime"])
        assert f.ts_ms == (int(row["ts"]) if "ts" in row else 99)  # 2021 frames have no ts
    assert all(seen.values()), seen


def test_the_x_perp_future_funding_parses_with_its_metadata(captures: Path) -> None:
    (raw,) = (r for r in _channel_lines(captures, "funding-rate") if "XPERP" in r)
    (row,) = _data(raw)
    inst = Instrument(VENUE, row["instId"], "BTC", "USD", linear=False, contract_size=100)
    (f,) = OkxParser(VENUE, {row["instId"]: inst}, None).parse(raw, recv_ms=1)
    assert isinstance(f, FundingRate)
    hours = (int(row["nextFundingTime"]) - int(row["fundingTime"])) / HOUR_MS
    assert hours == 8.0
    assert f.funding_rate_1h == pytest.approx(float(row["fundingRate"]) / 8)
    assert f.next_funding_ms == int(row["fundingTime"]) > f.ts_ms  # the coming settlement


def test_a_four_hour_interval_read_once_applies_to_frames_without_next_time(
    markets: dict[str, Instrument],
) -> None:
    parser = OkxParser(VENUE, markets, None)
    t = 1_700_726_400_000
    now = {"fundingRate": "0.0004", "fundingTime": str(t), "nextFundingTime": str(t + 4 * HOUR_MS)}
    old = {"fundingRate": "0.0004", "fundingTime": str(t)}
    for data in (now, old):
        frame = json.dumps(
            {
                "arg": {"channel": "funding-rate", "instId": "DOGE-USDT-SWAP"},
                "data": [data | {"instId": "DOGE-USDT-SWAP", "instType": "SWAP"}],
            }
        )
        (f,) = parser.parse(frame, recv_ms=1)
        assert isinstance(f, FundingRate)
        assert f.interval_h == 4.0
        assert f.funding_rate_1h == pytest.approx(0.0001)


# -- open-interest and mark-price ----------------------------------------------------------


def test_every_open_interest_frame_gives_contracts_coin_and_usd(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    """``oiUsd`` when sent; else ours: the 2021 linear frames are valued at the mark price
    captured for the same instrument, and dropped (counted) before any mark."""
    marks = {
        _data(r)[0]["instId"]: float(_data(r)[0]["markPx"])
        for r in _channel_lines(captures, "mark-price")
    }
    frames = _channel_lines(captures, "open-interest")
    assert len(frames) >= 4
    valued = 0
    for raw in frames:
        (row,) = _data(raw)
        inst_id = row["instId"]
        parser = OkxParser(VENUE, markets, None)
        if inst_id not in markets:  # an option: no metadata loaded
            assert parser.parse(raw, recv_ms=1) == []
            assert parser.stats.errors == {"unknown_instrument": 1}
            continue
        linear = rows[inst_id]["ctType"] == "linear"
        if "oiUsd" not in row and linear:
            assert parser.parse(raw, recv_ms=1) == []
            assert parser.stats.errors == {"open_interest_without_mark": 1}
            parser.last_mark[inst_id] = marks[inst_id]
            expected_usd = float(row["oiCcy"]) * marks[inst_id]
        elif "oiUsd" not in row:
            expected_usd = float(row["oi"]) * float(rows[inst_id]["ctVal"])
        else:
            expected_usd = float(row["oiUsd"])
        (oi,) = parser.parse(raw, recv_ms=1)
        assert isinstance(oi, OpenInterest)
        assert oi.oi_contracts == pytest.approx(float(row["oi"]))
        assert oi.oi_base == pytest.approx(float(row["oiCcy"]))
        assert oi.oi_usd == pytest.approx(expected_usd)
        assert oi.ts_ms == int(row["ts"])
        valued += 1
    assert valued >= 3


def test_inverse_open_interest_without_usd_is_contracts_times_their_usd_value(
    markets: dict[str, Instrument],
) -> None:
    frame = (
        '{"arg":{"channel":"open-interest","instId":"BTC-USD-SWAP"},"data":[{"instId":'
        '"BTC-USD-SWAP","instType":"SWAP","oi":"50000","oiCcy":"125","ts":"1"}]}'
    )
    (oi,) = OkxParser(VENUE, markets, None).parse(frame, recv_ms=1)
    assert isinstance(oi, OpenInterest)
    assert oi.oi_usd == pytest.approx(50000 * 100)  # BTC-USD-SWAP: 100 USD a contract


def test_every_mark_price_frame_gives_the_mark_and_keeps_it(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _channel_lines(captures, "mark-price")
    assert len(frames) >= 4
    for raw in frames:
        (row,) = _data(raw)
        parser = OkxParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=3)
        if row["instType"] == "OPTION":  # no option metadata is loaded
            assert events == []
            assert parser.stats.errors == {"unknown_instrument": 1}
            continue
        (m,) = events
        assert isinstance(m, MarkPrice)
        assert m.mark_price == pytest.approx(float(row["markPx"]))
        assert m.index_price is None
        assert m.ts_ms == int(row["ts"])
        assert parser.last_mark == {row["instId"]: float(row["markPx"])}


def test_a_mark_is_reported_at_most_once_a_second_and_every_push_values_open_interest(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """OKX pushes a moving mark every 200 ms; every other venue's mark is reported once a
    second. A push within a second of the last one reported is skipped, but its price is
    the one the next linear open interest is valued at."""
    raw = next(
        r for r in _channel_lines(captures, "mark-price") if _data(r)[0]["instType"] == "SWAP"
    )
    (row,) = _data(raw)
    inst_id, ts = row["instId"], int(row["ts"])
    parser = OkxParser(VENUE, markets, None)

    def at(ms: int, price: float) -> str:
        msg = json.loads(raw)
        msg["data"][0].update(ts=str(ms), markPx=str(price))
        return json.dumps(msg)

    (first,) = parser.parse(at(ts, 10.0), recv_ms=1)
    assert parser.parse(at(ts + 200, 11.0), recv_ms=2) == []
    assert parser.last_mark[inst_id] == 11.0  # skipped, yet kept for the open interest
    assert parser.parse(at(ts + 999, 12.0), recv_ms=3) == []
    (later,) = parser.parse(at(ts + 1000, 13.0), recv_ms=4)  # a second on: the latest
    assert isinstance(first, MarkPrice)
    assert isinstance(later, MarkPrice)
    assert (first.ts_ms, first.mark_price) == (ts, 10.0)
    assert (later.ts_ms, later.mark_price) == (ts + 1000, 13.0)
    assert not parser.stats.errors


# -- protocol ------------------------------------------------------------------------------


def test_other_channels_are_counted_and_acks_are_not_errors(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = OkxParser(VENUE, markets, None)
    pushes = acks = 0
    ours = (
        "funding-rate",
        "open-interest",
        "mark-price",
        "liquidation-orders",
        "liquidations",
        "tickers",
        "trades",
    )  # fmt: skip  (tickers and trades: test_okx_liquidity.py)
    for line in _lines(captures):
        msg = json.loads(line["raw"])
        if msg.get("event") == "subscribe":
            acks += 1
        elif "data" in msg and msg["arg"]["channel"] not in ours:
            pushes += 1
        else:
            continue
        assert parser.parse(str(line["raw"]), recv_ms=1) == []
    assert acks >= 10
    assert pushes >= 10  # index-tickers, price-limit, opt-summary
    assert parser.stats.errors == {"unknown_channel": pushes}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "invalid_json"),
        ('{"event":"error","msg":"Invalid request","code":"60012","connId":"a4d3ae55"}', None),
        (
            '{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
            'service upgrade. Please reconnect.","connId":"a4d3ae55"}',
            "venue_notice",
        ),
        ('{"event":"login","code":"0"}', "unknown_event"),
        ('{"op":"subscribe","args":[]}', "unknown_frame"),
        (
            '{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instId":'
            '"BTC-USDT-SWAP"}]}',
            "invalid_mark-price",
        ),
        (
            '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":'
            '"BTC-USDT-SWAP","details":[{"bkPx":"1","sz":"1","ts":"1","side":"","posSide":'
            '"net"}]}]}',
            "invalid_side",
        ),
        (
            '{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":'
            '"BTC-USDT-SWAP","fundingRate":"x","fundingTime":"1"}]}',
            "invalid_funding-rate",
        ),
        (
            '{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":'
            '"BTC-USDT-SWAP","oi":"1","oiCcy":"0.01","oiUsd":"n/a","ts":"1"}]}',
            "invalid_open-interest",
        ),
    ],
)
def test_bad_frames_are_counted_by_reason_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str | None
) -> None:
    parser = OkxParser(VENUE, markets, None)
    assert parser.parse(frame, recv_ms=1) == []
    assert parser.stats.errors == {reason or "venue_error": 1}


def test_pong_and_acks_are_protocol() -> None:
    parser = OkxParser(VENUE, {}, None)
    ack = (
        '{"id":"1512","event":"subscribe","arg":{"channel":"funding-rate","instId":'
        '"BTC-USD-SWAP"},"connId":"a4d3ae55"}'
    )
    for frame in ("pong", b"pong", ack, '{"event":"channel-conn-count","connCount":"2"}'):
        assert parser.parse(frame, recv_ms=1) == []
    assert not parser.stats.errors


# -- metadata and subscriptions ------------------------------------------------------------


def test_instrument_rows_give_linear_coin_and_inverse_usd_contracts(
    rows: dict[str, Row],
) -> None:
    btc_linear = instrument(rows["BTC-USDT-SWAP"])
    btc_inverse = instrument(rows["BTC-USD-SWAP"])
    eth_inverse = instrument(rows["ETH-USD-SWAP"])
    assert btc_linear is not None
    assert btc_inverse is not None
    assert eth_inverse is not None
    assert (btc_linear.linear, btc_linear.contract_size, btc_linear.base) == (True, 0.01, "BTC")
    assert btc_linear.notional_usd(3, 60_000) == pytest.approx(3 * 0.01 * 60_000)
    assert (btc_inverse.linear, btc_inverse.contract_size) == (False, 100.0)
    assert btc_inverse.notional_usd(3, 60_000) == pytest.approx(300)
    assert btc_inverse.base_units(3, 60_000) == pytest.approx(300 / 60_000)
    assert eth_inverse.contract_size == 10.0
    for inst_id, row in rows.items():  # linear iff ctType says so; size = ctVal x ctMult
        inst = instrument(row)
        assert inst is not None, inst_id
        assert inst.linear is (row["ctType"] == "linear")
        assert inst.contract_size == float(row["ctVal"]) * float(row["ctMult"])
        if not inst.linear and inst.base != "BTC":
            assert inst.contract_size == 10.0


@pytest.mark.parametrize(
    "change",
    [{"ctType": ""}, {"ctValCcy": "ETH"}, {"ctVal": ""}, {"uly": "", "instFamily": ""}],
)
def test_rows_that_cannot_be_valued_are_refused(rows: dict[str, Row], change: Row) -> None:
    assert instrument(rows["BTC-USDT-SWAP"] | change) is None


def test_the_venue_subscribes_every_channel_once_in_few_small_requests(
    markets: dict[str, Instrument],
) -> None:
    venue = Okx(VenueSettings())
    swaps = {s: i for s, i in markets.items() if s.endswith("-SWAP")}
    per_swap = ("mark-price", "open-interest", "funding-rate", "tickers", "trades")
    conn, liquidations = venue.connections(swaps)
    assert conn.url == liquidations.url == "wss://ws.okx.com:443/ws/v5/public"
    for c in (conn, liquidations):  # the quiet lane is pinged too: the 30 s idle cut
        assert (c.ping, c.pong) == ("ping", "pong")
        assert c.ping_interval_s is not None
        assert c.ping_interval_s == PING_INTERVAL_S < 30  # the venue's idle cut
    requests = [json.loads(r) for r in conn.subscribe]
    assert all(len(r.encode()) <= MAX_REQUEST_BYTES < 64 * 1024 for r in conn.subscribe)
    assert all(r["op"] == "subscribe" and r["id"] for r in requests)
    args = [tuple(sorted(a.items())) for r in requests for a in r["args"]]
    assert len(args) == len(set(args)) == len(per_swap) * len(swaps)
    assert len(requests) <= 3  # of 480 a connection may send per hour
    many = subscribe_requests([f"COIN{n}-USDT-SWAP" for n in range(2000)])
    assert 3 <= len(many) < 480
    assert all(len(r.encode()) <= MAX_REQUEST_BYTES for r in many)
    overridden = Okx(VenueSettings(ws_url="ws://127.0.0.1:9443/ws/v5/public"))
    assert overridden.connections(swaps)[0].url == "ws://127.0.0.1:9443/ws/v5/public"


def test_the_liquidations_are_on_a_quiet_connection_of_their_own(
    markets: dict[str, Instrument],
) -> None:
    """The quiet lane (:attr:`Connection.quiet`): ``liquidation-orders`` alone on
    ``liquidations``, on no busy connection, so a collector behind on the tickers and books
    still reads them as they come."""
    venue = Okx(VenueSettings())
    venue.depth_symbols = frozenset({"BTC-USDT-SWAP"})
    conns = venue.connections({s: i for s, i in markets.items() if s.endswith("-SWAP")})
    assert [c.name for c in conns] == ["public", "liquidations", "depth-1"]

    def channels(c: Connection) -> set[str]:
        return {a["channel"] for r in c.subscribe for a in json.loads(r)["args"]}

    quiet = [c for c in conns if c.quiet]
    assert [(c.name, channels(c)) for c in quiet] == [("liquidations", {"liquidation-orders"})]
    (request,) = quiet[0].subscribe
    assert json.loads(request)["args"] == [{"channel": "liquidation-orders", "instType": "SWAP"}]
    assert all("liquidation-orders" not in channels(c) for c in conns if not c.quiet)
    # No swap subscribed: the liquidations alone (OKX closes a connection with nothing on it).
    assert [c.name for c in venue.connections({})] == ["liquidations"]


def test_subscribe_requests_have_the_shape_the_venue_was_sent(captures: Path) -> None:
    """Same keys as a real client request recorded by cryptofeed."""
    sent = next(json.loads(d["raw"]) for d in _lines(captures) if d["kind"] == "client_request")
    (ours,) = (json.loads(r) for r in subscribe_requests(["BTC-USDT-SWAP"]))
    assert set(sent) <= set(ours)
    assert ours["op"] == sent["op"]
    assert {k for a in ours["args"] for k in a} == {k for a in sent["args"] for k in a}


def test_okx_connects_on_port_443_by_default_and_the_url_stays_configurable() -> None:
    """Port 8443 stopped accepting websocket connections on 2026-10-31 (docs/venues.md):
    the module's default, and the shipped configuration, use 443 on the same host and path
    (the configuration's URL type drops the scheme's default port: the same handshake)."""
    repo = Path(__file__).resolve().parents[2]
    shipped = load_settings(None, [repo / "config/default.yaml"]).venues["okx"]
    assert Okx.default_ws_url == "wss://ws.okx.com:443/ws/v5/public"
    for settings in (VenueSettings(), shipped):
        (conn,) = Okx(settings).connections({})  # no swap: the liquidations' alone
        url = urlsplit(conn.url)
        port = url.port or {"wss": 443, "ws": 80}[url.scheme]
        assert (url.scheme, url.hostname, port, url.path) == (
            "wss",
            "ws.okx.com",
            443,
            "/ws/v5/public",
        )
    moved = Okx(VenueSettings(ws_url="wss://wseea.okx.com:8443/ws/v5/public"))
    assert moved.connections({})[0].url == "wss://wseea.okx.com:8443/ws/v5/public"
