"""The Deribit parser on every Deribit frame in ../shared/captures, with the instrument rows of
the recorded listings (shared/captures/rest/DERIBIT.0.txt); expected values are worked out here
from the raw frames and rows themselves."""

from __future__ import annotations

import json
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
from service.venues import REGISTRY
from service.venues.base import Connection, Instrument
from service.venues.deribit.frames import CHANNELS_PER_REQUEST, HEARTBEAT_INTERVAL_S, instruments
from service.venues.deribit.venue import (
    PING_INTERVAL_S,
    PONG_MARKER,
    Deribit,
    DeribitParser,
    liquidated_sides,
    pings,
    session_requests,
)

VENUE = "deribit"
Row = dict[str, Any]


def _lines(captures: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (captures / "deribit.jsonl").read_text().splitlines()]


def _rest_rows(captures: Path) -> list[Row]:
    """Every instrument row of the four recorded get_instruments answers."""
    rows: list[Row] = []
    for line in (captures / "rest" / "DERIBIT.0.txt").read_text().splitlines():
        if " -> " not in line:
            continue  # the recorder's configuration line
        body = line.split(" -> ", 1)[1].split(": ", 1)[1]
        rows += json.loads(body)["result"]
    return rows


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    return {r["instrument_name"]: r for r in _rest_rows(captures)}


@pytest.fixture
def markets(captures: Path) -> dict[str, Instrument]:
    out: dict[str, Instrument] = {}
    for line in (captures / "rest" / "DERIBIT.0.txt").read_text().splitlines():
        if " -> " in line:
            body = line.split(" -> ", 1)[1].split(": ", 1)[1]
            out.update((i.symbol, i) for i in instruments(body))
    return out


def _frames(captures: Path, prefix: str) -> list[str]:
    """Raw notifications whose channel starts with ``prefix``."""
    out = []
    for d in _lines(captures):
        msg = json.loads(d["raw"])
        if msg.get("params", {}).get("channel", "").startswith(prefix):
            out.append(str(d["raw"]))
    return out


def _data(raw: str) -> Any:
    return json.loads(raw)["params"]["data"]


# -- instruments -----------------------------------------------------------------------------


def test_every_perpetual_of_the_listing_becomes_an_instrument_in_its_unit(
    rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    perpetuals = {n: r for n, r in rows.items() if r.get("settlement_period") == "perpetual"}
    assert set(markets) == set(perpetuals)
    assert len(markets) == 19  # BTC, ETH, SOL inverse; 16 USDC linear
    for name, row in perpetuals.items():
        inst = markets[name]
        # the recorded rows: future_type when present (2022), else the quote currency (2021)
        linear = row.get("future_type", "linear" if row["quote_currency"] != "USD" else "")
        assert inst.linear is (linear == "linear"), name
        assert inst.base == row["base_currency"]
        assert inst.contract_size == 1.0  # amounts are USD (inverse) or coin (linear)
        assert inst.funding_interval_h == 8.0
    assert not markets["BTC-PERPETUAL"].linear  # 2021 row: no future_type, quoted in USD
    assert markets["BTC-PERPETUAL"].quote == "USD"
    assert not markets["SOL-PERPETUAL"].linear  # future_type "reversed"
    assert markets["BTC_USDC-PERPETUAL"].linear
    assert markets["BTC_USDC-PERPETUAL"].quote == "USDC"
    assert not any(n.endswith(("C", "P")) and "-PERPETUAL" not in n for n in markets)


def test_an_error_answer_is_not_a_listing() -> None:
    with pytest.raises(ValueError, match="result"):
        instruments({"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}})


# -- ticker ----------------------------------------------------------------------------------


def test_every_perpetual_ticker_gives_mark_current_funding_and_open_interest(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = [
        f for f in _frames(captures, "ticker.") if "PERPETUAL" in json.loads(f)["params"]["channel"]
    ]
    assert len(frames) == 3  # two tardis recordings (2019) and the nautilus one (2025)
    for raw in frames:
        d = _data(raw)
        parser = DeribitParser(VENUE, markets, None)
        mark, funding, oi, book = parser.parse(raw, recv_ms=5)
        assert not parser.stats.errors
        assert isinstance(mark, MarkPrice)
        assert isinstance(funding, FundingRate)
        assert isinstance(oi, OpenInterest)
        for ev in (mark, funding, oi):
            assert (ev.symbol, ev.base, ev.ts_ms, ev.recv_ms) == (
                "BTC-PERPETUAL",
                "BTC",
                d["timestamp"],
                5,
            )
        assert mark.mark_price == d["mark_price"]
        assert mark.index_price == d["index_price"]
        assert parser.last_mark["BTC-PERPETUAL"] == d["mark_price"]
        # funding: the rate accruing now, quoted per 8 h; continuous, so no settlement time
        assert funding.funding_rate == d["current_funding"]
        assert funding.interval_h == 8.0
        assert funding.funding_rate_1h == pytest.approx(d["current_funding"] / 8)
        assert funding.next_funding_ms is None
        # open interest of the inverse perpetual: USD
        assert oi.oi_usd == d["open_interest"]
        assert oi.oi_contracts == d["open_interest"]
        assert oi.oi_base == pytest.approx(d["open_interest"] / d["mark_price"])
        # the best bid and ask: amounts in USD on the inverse perpetual, as open interest
        assert isinstance(book, BookTop)
        bid, ask = d["best_bid_price"], d["best_ask_price"]
        assert (book.bid_price, book.ask_price) == (bid, ask)
        assert (book.bid_usd, book.ask_usd) == (d["best_bid_amount"], d["best_ask_amount"])
        assert book.bid_base == pytest.approx(d["best_bid_amount"] / bid)
        assert book.spread_bp == pytest.approx((ask - bid) / ((ask + bid) / 2) * 1e4)


def test_the_2025_btc_perpetual_holds_1_13_billion_usd_of_open_interest(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms"))
    _, funding, oi, _ = DeribitParser(VENUE, markets, None).parse(raw, recv_ms=1)
    assert isinstance(oi, OpenInterest)
    assert isinstance(funding, FundingRate)
    assert oi.oi_usd == pytest.approx(1_132_329_370.0)
    assert oi.oi_base == pytest.approx(1_132_329_370.0 / 92281.78)  # about 12,270 BTC
    assert funding.funding_rate == 0.0  # current_funding; funding_8h (trailing) is 1.742e-05


def test_a_ticker_timed_far_ahead_does_not_hold_the_next_ones_back(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The real 2025 BTC-PERPETUAL ticker (NT's ws_ticker.json) once with its ``timestamp`` in
    microseconds (no market's time: each of its events dropped as ``bad_time``): the time of
    the report it left behind held every later ticker of the perpetual back (its mark,
    funding, open interest and top of book)."""
    msg = json.loads(next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms")))
    ts = msg["params"]["data"]["timestamp"]
    parser = DeribitParser(VENUE, markets, None)
    msg["params"]["data"]["timestamp"] = ts * 1000
    assert parser.parse(json.dumps(msg), recv_ms=ts + 50) == []
    assert set(parser.stats.errors) == {"bad_time"}
    msg["params"]["data"]["timestamp"] = ts
    events = parser.parse(json.dumps(msg), recv_ms=ts + 100)
    assert {type(e) for e in events} >= {MarkPrice, FundingRate, OpenInterest}
    assert {e.ts_ms for e in events} == {ts}


def test_funding_8h_stands_in_when_current_funding_is_missing(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    msg = json.loads(next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms")))
    del msg["params"]["data"]["current_funding"]
    events = DeribitParser(VENUE, markets, None).parse(json.dumps(msg), 1)
    (funding,) = [e for e in events if isinstance(e, FundingRate)]
    assert funding.funding_rate == pytest.approx(1.742e-05)
    assert funding.funding_rate_1h == pytest.approx(1.742e-05 / 8)


def test_a_linear_ticker_has_open_interest_in_coin(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The real frame moved to ``ETH_USDC-PERPETUAL`` (no linear ticker was captured)."""
    msg = json.loads(next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms")))
    data = msg["params"]["data"] | {
        "instrument_name": "ETH_USDC-PERPETUAL",
        "open_interest": 2500.5,
        "mark_price": 3000.0,
    }
    msg["params"] |= {"channel": "ticker.ETH_USDC-PERPETUAL.100ms", "data": data}
    events = DeribitParser(VENUE, markets, None).parse(json.dumps(msg), 1)
    (oi,) = [e for e in events if isinstance(e, OpenInterest)]
    assert (oi.oi_contracts, oi.oi_base) == (2500.5, 2500.5)
    assert oi.oi_usd == pytest.approx(2500.5 * 3000.0)


def test_tickers_report_at_most_once_a_second_but_keep_the_latest_mark(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    msg = json.loads(next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms")))
    t0 = msg["params"]["data"]["timestamp"]
    parser = DeribitParser(VENUE, markets, None)
    reported = []
    for dt, mark in ((0, 100.0), (100, 101.0), (900, 102.0), (1000, 103.0), (1900, 104.0)):
        msg["params"]["data"] |= {"timestamp": t0 + dt, "mark_price": mark}
        events = parser.parse(json.dumps(msg), 1)
        assert parser.last_mark["BTC-PERPETUAL"] == mark
        reported += [e.ts_ms - t0 for e in events if isinstance(e, MarkPrice)]
    assert reported == [0, 1000]


def test_tickers_of_other_instruments_are_counted_not_reported(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """Options, dated futures and combos of the captures: we subscribe to none of them."""
    frames = [
        f
        for f in _frames(captures, "ticker.")
        if "PERPETUAL" not in json.loads(f)["params"]["channel"]
    ]
    assert len(frames) == 97
    parser = DeribitParser(VENUE, markets, None)
    assert [e for f in frames for e in parser.parse(f, 1)] == []
    assert parser.stats.errors == {"unknown_instrument": 97}


def test_an_unconfigured_perpetual_is_filtered(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(f for f in _frames(captures, "ticker.BTC-PERPETUAL.100ms"))
    parser = DeribitParser(VENUE, markets, {"ETH-PERPETUAL"})
    assert parser.parse(raw, 1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


# -- trades and liquidations -----------------------------------------------------------------


def _expected_sides(flag: str, direction: str) -> list[Side]:
    """Whose position the trade closed: T the taker's (a sell closes a long), M the maker's
    (the other side of the taker), MT both."""
    taker = Side.LONG if direction == "sell" else Side.SHORT
    maker = Side.SHORT if taker is Side.LONG else Side.LONG
    return {"T": [taker], "M": [maker], "MT": [taker, maker]}[flag]


def test_every_captured_trade_frame_gives_its_liquidations_and_only_them(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    frames = _frames(captures, "trades.")
    assert len(frames) == 3  # two liquidations (T and M) and a frame of two ordinary trades
    seen_flags = set()
    for raw in frames:
        parser = DeribitParser(VENUE, markets, None)
        events = parser.parse(raw, recv_ms=9)
        assert not parser.stats.errors
        expected = [
            (t, side)
            for t in _data(raw)
            if "liquidation" in t
            for side in _expected_sides(t["liquidation"], t["direction"])
        ]
        seen_flags |= {t["liquidation"] for t in _data(raw) if "liquidation" in t}
        assert len(events) == len(expected)
        for liq, (t, side) in zip(events, expected, strict=True):
            assert isinstance(liq, Liquidation)
            assert liq.symbol == t["instrument_name"] == "BTC-PERPETUAL"
            assert liq.side is side
            assert liq.price == t["price"]
            assert liq.quantity == t["amount"]  # USD on the inverse perpetual
            assert liq.notional_usd == t["amount"]
            assert liq.quantity_base == pytest.approx(t["amount"] / t["price"])
            assert (liq.ts_ms, liq.recv_ms) == (t["timestamp"], 9)
            assert liq.sampled is False  # every trade is published: a complete tape
            assert liq.event_id == f"{t['trade_id']}:{side.value}"
    assert seen_flags == {"T", "M"}


def test_the_real_t_and_m_liquidations_were_both_longs(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """T with a selling taker: the taker's long was sold. M with a buying taker: the maker
    sold, closing its long."""
    got = [
        e
        for f in _frames(captures, "trades.")
        for e in DeribitParser(VENUE, markets, None).parse(f, 1)
    ]
    assert [(e.event_id, e.side, e.notional_usd) for e in got if isinstance(e, Liquidation)] == [
        ("66460463:long", Side.LONG, 1120.0),
        ("66460626:long", Side.LONG, 2500.0),
    ]


def test_an_mt_trade_liquidated_a_long_and_a_short_each_for_the_full_amount(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(f for f in _frames(captures, "trades.") if '"liquidation":"T"' in f)
    msg = json.loads(raw)
    msg["params"]["data"][0]["liquidation"] = "MT"
    taker, maker = DeribitParser(VENUE, markets, None).parse(json.dumps(msg), 1)
    assert isinstance(taker, Liquidation)
    assert isinstance(maker, Liquidation)
    assert (taker.side, maker.side) == (Side.LONG, Side.SHORT)  # the taker sold
    assert taker.notional_usd == maker.notional_usd == 1120.0
    assert (taker.event_id, maker.event_id) == ("66460463:long", "66460463:short")


def test_a_linear_liquidation_is_in_coin(captures: Path, markets: dict[str, Instrument]) -> None:
    """The real T frame moved to ``BTC_USDC-PERPETUAL`` with a coin amount."""
    msg = json.loads(next(f for f in _frames(captures, "trades.") if '"liquidation":"T"' in f))
    msg["params"]["channel"] = "trades.BTC_USDC-PERPETUAL.100ms"
    msg["params"]["data"][0] |= {"instrument_name": "BTC_USDC-PERPETUAL", "amount": 0.25}
    (liq,) = DeribitParser(VENUE, markets, None).parse(json.dumps(msg), 1)
    assert isinstance(liq, Liquidation)
    assert (liq.quantity, liq.quantity_base) == (0.25, 0.25)
    assert liq.notional_usd == pytest.approx(0.25 * 4469.5)


@pytest.mark.parametrize(
    ("flag", "direction", "sides"),
    [
        ("T", "sell", (Side.LONG,)),
        ("T", "buy", (Side.SHORT,)),
        ("M", "sell", (Side.SHORT,)),
        ("M", "buy", (Side.LONG,)),
        ("MT", "sell", (Side.LONG, Side.SHORT)),
        ("MT", "buy", (Side.SHORT, Side.LONG)),
        ("X", "sell", None),
        ("T", "up", None),
    ],
)
def test_liquidated_sides(flag: str, direction: str, sides: tuple[Side, ...] | None) -> None:
    assert liquidated_sides(flag, direction) == sides


# -- protocol frames and bad frames ----------------------------------------------------------


PROTOCOL_FRAMES = [
    '{"jsonrpc":"2.0","id":1,"result":"ok","usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
    '{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}',
    '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}',
    '{"jsonrpc":"2.0","id":"heartbeat-7","result":{"version":"1.2.26"},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
]


def test_acks_heartbeats_and_test_answers_give_nothing_and_no_error(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    ack = next(str(d["raw"]) for d in _lines(captures) if '"result":[' in d["raw"])  # real
    parser = DeribitParser(VENUE, markets, None)
    for raw in [ack, *PROTOCOL_FRAMES]:
        assert parser.parse(raw, 1) == []
    assert not parser.stats.errors


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{oops", "invalid_json"),
        ("[1,2]", "invalid_frame"),
        ("{}", "unknown_frame"),
        (
            '{"jsonrpc":"2.0","id":3,"error":{"message":"Invalid params","code":-32602}}',
            "venue_error",
        ),
        (
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"perpetual.BTC-PERPETUAL.100ms","data":{}}}',
            "unknown_channel",
        ),
        (
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{}}}',
            "invalid_orderbook",
        ),
        (
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"instrument_name":"BTC-PERPETUAL"}}}',
            "invalid_ticker",
        ),
        (
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":{"amount":1}}}',
            "invalid_trades",
        ),
        (
            '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms","data":[{"trade_id":"1","instrument_name":"BTC-PERPETUAL","timestamp":1,"price":1.0,"amount":10,"direction":"sell","liquidation":"X"}]}}',
            "invalid_side",
        ),
        ('{"jsonrpc":"2.0","method":"subscription","params":"x"}', "invalid_frame"),
    ],
)
def test_bad_frames_are_counted_and_dropped(
    markets: dict[str, Instrument], raw: str, reason: str
) -> None:
    parser = DeribitParser(VENUE, markets, None)
    assert parser.parse(raw, 1) == []
    assert parser.stats.errors == {reason: 1}


# -- requests and keep-alive -----------------------------------------------------------------


def test_a_session_sets_the_heartbeat_then_subscribes_in_batches() -> None:
    symbols = [f"C{n:03}_USDC-PERPETUAL" for n in range(240)]
    first, *subscribes = (json.loads(r) for r in session_requests(symbols, "trades"))
    assert first["method"] == "public/set_heartbeat"
    assert first["params"]["interval"] == HEARTBEAT_INTERVAL_S >= 10
    assert [s["method"] for s in subscribes] == ["public/subscribe"] * 3
    channels = [c for s in subscribes for c in s["params"]["channels"]]
    assert all(len(s["params"]["channels"]) <= CHANNELS_PER_REQUEST for s in subscribes)
    assert channels == sorted(f"trades.{s}.100ms" for s in symbols)
    ids = [first["id"], *(s["id"] for s in subscribes)]
    assert len(set(ids)) == len(ids)
    assert all(r["jsonrpc"] == "2.0" for r in subscribes)


def test_the_trades_and_their_liquidations_have_a_connection_of_their_own() -> None:
    """The liquidations come in the trades: on ``trades``, not behind the tickers of
    ``public``; the liquidations' lane (quiet: it reads on while Redis is behind)."""
    venue = Deribit(VenueSettings(symbols=["ETH-PERPETUAL", "BTC-PERPETUAL"]))
    markets = {
        s: Instrument(VENUE, s, s[:3], "USD", linear=False)
        for s in ("BTC-PERPETUAL", "ETH-PERPETUAL", "SOL-PERPETUAL")
    }
    public, trades = venue.connections(markets)  # no depth set yet: no depth connection
    assert (public.name, trades.name) == ("public", "trades")
    assert (public.quiet, trades.quiet) == (False, True)

    def channels(conn: Connection) -> list[str]:
        return [c for r in conn.subscribe[1:] for c in json.loads(r)["params"]["channels"]]

    assert channels(trades) == ["trades.BTC-PERPETUAL.100ms", "trades.ETH-PERPETUAL.100ms"]
    assert channels(public) == ["ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"]
    assert public.ping is not trades.ping  # each its own public/test sequence


def test_the_keep_alive_is_a_public_test_within_the_heartbeat_interval() -> None:
    venue = Deribit(VenueSettings(symbols=["BTC-PERPETUAL"]))
    inst = Instrument(VENUE, "BTC-PERPETUAL", "BTC", "USD", linear=False)
    for conn in venue.connections({"BTC-PERPETUAL": inst}):  # public, trades: each its own
        assert conn.url == "wss://www.deribit.com/ws/api/v2"
        assert json.loads(conn.subscribe[0])["method"] == "public/set_heartbeat"
        assert callable(conn.ping)
        sent = [json.loads(conn.ping()) for _ in range(7)]
        assert all((p["method"], p["params"]) == ("public/test", {}) for p in sent)
        assert conn.ping_interval_s == PING_INTERVAL_S <= HEARTBEAT_INTERVAL_S / 2
        # The marker flags the venue's heartbeats and its answer to our ping (which echoes
        # the ping's id), never a notification.
        assert conn.pong == PONG_MARKER
    assert all(PONG_MARKER in f for f in PROTOCOL_FRAMES[1:])
    assert f'"id":{json.dumps(sent[-1]["id"])}' in PROTOCOL_FRAMES[3]


def test_every_request_id_is_unique_within_a_connection() -> None:
    """Deribit's JSON-RPC overview: the id "Must be unique within the connection context"
    (https://docs.deribit.com/articles/json-rpc-overview). The session's requests take the
    integers 1, 2...; the keep-alive ``public/test`` ids heartbeat-1, heartbeat-2..., and a
    new connection starts its own sequence."""
    venue = Deribit(VenueSettings())
    symbols = [f"C{i}-PERPETUAL" for i in range(240)]  # 240 channels: three subscribes
    markets = {s: Instrument(VENUE, s, s[:-11], "USD", linear=False) for s in symbols}
    _, conn = venue.connections(markets)
    assert callable(conn.ping)
    ids = [json.loads(r)["id"] for r in conn.subscribe]
    ids += [json.loads(conn.ping())["id"] for _ in range(1000)]  # 2.8 hours of pings
    assert ids[:4] == [1, 2, 3, 4]  # set_heartbeat, then the subscribes
    assert ids[4:7] == ["heartbeat-1", "heartbeat-2", "heartbeat-3"]
    assert len(ids) == len(set(ids))
    _, again = venue.connections(markets)
    assert callable(again.ping)
    assert json.loads(again.ping())["id"] == "heartbeat-1"
    assert pings()() == again.ping().replace("heartbeat-2", "heartbeat-1")


def test_no_captured_notification_looks_like_a_keep_alive(captures: Path) -> None:
    assert not [d for d in _lines(captures) if PONG_MARKER in d["raw"]]


def test_the_venue_is_registered_with_a_complete_tape() -> None:
    assert REGISTRY["deribit"] is Deribit
    assert Deribit.liquidations_sampled is False
    assert Deribit.default_rest_url == "https://www.deribit.com"


# -- trades: traded volume per second ---------------------------------------------------------


def _volume_parser(markets: dict[str, Instrument]) -> DeribitParser:
    parser = Deribit(VenueSettings()).new_parser(markets, None)
    assert isinstance(parser, DeribitParser)
    assert parser.volumes is not None
    return parser


def test_ordinary_trades_sum_into_taker_sells_of_usd_on_the_inverse_perpetual(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(f for f in _frames(captures, "trades.") if '"liquidation"' not in f)
    trades = _data(raw)
    assert [t["direction"] for t in trades] == ["sell", "sell"]  # the taker sold, twice
    parser = _volume_parser(markets)
    assert parser.parse(raw, recv_ms=trades[0]["timestamp"]) == []  # no liquidation, open second
    (vol,) = parser.flush_volumes(trades[0]["timestamp"] + 100)
    assert isinstance(vol, Volume)
    assert (vol.symbol, vol.ts_ms) == ("BTC-PERPETUAL", trades[0]["timestamp"] // 1000 * 1000)
    assert vol.taker_sell_usd == sum(t["amount"] for t in trades) == 2050  # USD contracts
    assert vol.taker_sell_base == pytest.approx(sum(t["amount"] / t["price"] for t in trades))
    assert (vol.taker_buy_base, vol.taker_buy_usd, vol.trades) == (0.0, 0.0, 2)


def test_a_liquidation_trade_still_gives_its_liquidation_and_counts_as_volume(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = next(f for f in _frames(captures, "trades.") if '"liquidation":"M"' in f)
    (t,) = _data(raw)
    parser = _volume_parser(markets)
    (liq,) = parser.parse(raw, recv_ms=t["timestamp"])
    assert isinstance(liq, Liquidation)  # as without volume
    assert (liq.event_id, liq.side, liq.notional_usd) == ("66460626:long", Side.LONG, 2500.0)
    closing = (t["timestamp"] // 1000 + 2) * 1000  # 1 s after its second ended
    (vol,) = parser.parse('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}',
                          recv_ms=closing)  # fmt: skip
    assert isinstance(vol, Volume)
    assert vol.recv_ms == closing
    assert t["direction"] == "buy"  # a buying taker met the liquidated long's sell
    assert (vol.taker_buy_usd, vol.trades) == (2500.0, 1)
    assert vol.taker_buy_base == pytest.approx(2500 / t["price"])


def test_a_linear_trade_is_counted_in_coin(captures: Path, markets: dict[str, Instrument]) -> None:
    msg = json.loads(next(f for f in _frames(captures, "trades.") if '"liquidation"' not in f))
    msg["params"]["channel"] = "trades.BTC_USDC-PERPETUAL.100ms"
    for t in msg["params"]["data"]:
        t |= {"instrument_name": "BTC_USDC-PERPETUAL", "amount": 0.25, "direction": "buy"}
    parser = _volume_parser(markets)
    recv = msg["params"]["data"][-1]["timestamp"] + 100
    assert parser.parse(json.dumps(msg), recv) == []
    (vol,) = parser.flush_volumes(recv + 1)
    assert isinstance(vol, Volume)
    assert (vol.taker_buy_base, vol.trades) == (0.5, 2)
    assert vol.taker_buy_usd == pytest.approx(0.5 * 9598.5)


def test_a_trade_of_no_known_direction_is_counted_and_the_rest_kept(
    markets: dict[str, Instrument],
) -> None:
    row = {"trade_id": "1", "instrument_name": "BTC-PERPETUAL", "timestamp": 1_000, "price": 1e5}
    data = [row | {"amount": 10, "direction": "up"}, row | {"amount": 20, "direction": "buy"}]
    frame = {"jsonrpc": "2.0", "method": "subscription",
             "params": {"channel": "trades.BTC-PERPETUAL.100ms", "data": data}}  # fmt: skip
    parser = _volume_parser(markets)
    assert parser.parse(json.dumps(frame), 1_000) == []
    (vol,) = parser.flush_volumes(1_001)
    assert isinstance(vol, Volume)
    assert (vol.taker_buy_usd, vol.trades) == (20.0, 1)
    assert parser.stats.errors == {"invalid_side": 1}
