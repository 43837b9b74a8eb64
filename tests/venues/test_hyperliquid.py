"""The Hyperliquid parser on every Hyperliquid frame in ../shared/captures; values worked out
here from the raw frames. There is no recorded ``/info`` answer: the instruments come from a
``meta`` body in the shape of the venue's documentation example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings
from service.events import FundingRate, Liquidation, MarkPrice, OpenInterest, Side
from service.venues.base import Instrument
from service.venues.hyperliquid.venue import (
    LIQUIDATOR_ADDRESSES,
    MAX_SUBSCRIPTIONS,
    MAX_USERS,
    PING,
    PONG_MARKER,
    Hyperliquid,
    HyperliquidParser,
    fills_messages,
    liquidated_side,
    next_hour_ms,
    parse_meta,
    subscribe_messages,
)

VENUE = "hyperliquid"
HOUR_MS = 3_600_000
RECV = 1_781_528_066_250
"""A receive time half a second after the liquidation capture's fill."""
LIQUIDATOR = LIQUIDATOR_ADDRESSES[0]

Frame = dict[str, Any]


def _lines(captures: Path) -> list[Frame]:
    return [json.loads(line) for line in (captures / "hyperliquid.jsonl").read_text().splitlines()]


def _raws(captures: Path, channel: str) -> list[str]:
    return [str(d["raw"]) for d in _lines(captures) if json.loads(d["raw"])["channel"] == channel]


def _meta(*names: str, delisted: tuple[str, ...] = ()) -> dict[str, Any]:
    """A ``meta`` body: the documentation's row shape (``{"name":"BTC","szDecimals":5,
    "maxLeverage":50}``), a delisted row flagged as the venue flags it."""
    rows = [{"name": n, "szDecimals": 2, "maxLeverage": 10} for n in names]
    rows += [{"name": n, "szDecimals": 1, "maxLeverage": 3, "isDelisted": True} for n in delisted]
    return {"universe": rows}


@pytest.fixture
def markets() -> dict[str, Instrument]:
    return {i.symbol: i for i in parse_meta(_meta("BTC", "ETH", "MOODENG", "FXS", "kPEPE"))}


def _parser(markets: dict[str, Instrument], wanted: set[str] | None = None) -> HyperliquidParser:
    return HyperliquidParser(VENUE, markets, wanted)


# -- activeAssetCtx ---------------------------------------------------------------------------


def test_the_asset_context_capture_gives_hourly_funding_and_coin_oi_valued_at_the_mark(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _raws(captures, "activeAssetCtx")
    ctx = json.loads(raw)["data"]["ctx"]
    parser = _parser(markets)
    mark, funding, oi = parser.parse(raw, RECV)
    assert not parser.stats.errors
    assert isinstance(mark, MarkPrice)
    assert isinstance(funding, FundingRate)
    assert isinstance(oi, OpenInterest)
    for e in (mark, funding, oi):
        assert (e.venue, e.symbol, e.base) == (VENUE, "MOODENG", "MOODENG")
        assert e.ts_ms == e.recv_ms == RECV  # the push carries no time
    assert mark.mark_price == float(ctx["markPx"]) == 0.19963
    assert mark.index_price == float(ctx["oraclePx"])  # the oracle is the index
    assert funding.funding_rate == float(ctx["funding"])
    assert funding.interval_h == 1.0
    assert funding.funding_rate_1h == funding.funding_rate  # already per hour
    assert funding.next_funding_ms == (RECV // HOUR_MS + 1) * HOUR_MS
    assert oi.oi_base == oi.oi_contracts == float(ctx["openInterest"])  # coin
    assert oi.oi_usd == pytest.approx(18_617_460.0 * 0.19963)
    assert parser.last_mark["MOODENG"] == 0.19963


def _all_ctxs(captures: Path) -> list[tuple[str, Frame]]:
    """Every real asset context of the ``allDexsAssetCtxs`` capture, named ``<dex>:<index>``
    (the push names no asset: its index in the dex's ``meta``)."""
    (raw,) = _raws(captures, "allDexsAssetCtxs")
    return [
        (f"{dex or 'main'}:{i}", ctx)
        for dex, ctxs in json.loads(raw)["data"]["ctxs"]
        for i, ctx in enumerate(ctxs)
    ]


def test_every_real_asset_context_parses_idle_markets_included(captures: Path) -> None:
    """The 170 KB capture holds a few hundred contexts of the same shape as
    ``activeAssetCtx``'s, idle and delisted markets among them (``premium``, ``midPx`` and
    ``impactPxs`` null); each, in the ``activeAssetCtx`` envelope, gives its three events."""
    ctxs = _all_ctxs(captures)
    assert len(ctxs) > 200
    assert any(c["premium"] is None and c["impactPxs"] is None for _, c in ctxs)
    markets = {i.symbol: i for i in parse_meta(_meta(*(name for name, _ in ctxs)))}
    parser = _parser(markets)
    for name, ctx in ctxs:
        frame = json.dumps({"channel": "activeAssetCtx", "data": {"coin": name, "ctx": ctx}})
        mark, funding, oi = parser.parse(frame, RECV)
        assert isinstance(mark, MarkPrice)
        assert isinstance(funding, FundingRate)
        assert isinstance(oi, OpenInterest)
        px = float(ctx["markPx"])
        assert mark.mark_price == px
        assert mark.index_price == float(ctx["oraclePx"])
        assert funding.funding_rate_1h == float(ctx["funding"])
        assert oi.oi_base == float(ctx["openInterest"])
        assert oi.oi_usd == pytest.approx(float(ctx["openInterest"]) * px)
    assert not parser.stats.errors
    btc = dict(ctxs)["main:0"]  # index 0 of the main dex is BTC
    assert float(btc["markPx"]) * float(btc["openInterest"]) == pytest.approx(2.12e9, rel=0.01)


def test_parts_are_reported_when_changed_at_most_once_a_second_and_refreshed_when_quiet(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _raws(captures, "activeAssetCtx")
    frame = json.loads(raw)
    moved = json.loads(raw)
    moved["data"]["ctx"]["markPx"] = "0.2"
    parser = _parser(markets)
    assert len(parser.parse(raw, RECV)) == 3
    assert parser.parse(json.dumps(moved), RECV + 400) == []  # too soon: held back
    later = parser.parse(json.dumps(moved), RECV + 1000)
    assert [type(e) for e in later] == [MarkPrice]  # funding and OI did not change
    assert parser.parse(json.dumps(frame), RECV + 1500) == []
    back = parser.parse(json.dumps(frame), RECV + 2000)
    assert [e.mark_price for e in back if isinstance(e, MarkPrice)] == [0.19963]
    assert parser.last_mark["MOODENG"] == 0.19963
    refreshed = parser.parse(json.dumps(frame), RECV + 2000 + 30_000)
    assert len(refreshed) == 3  # unchanged for 30 s: reported again, a quiet feed is alive
    parser.state_every_ms = 0
    moved["data"]["ctx"]["openInterest"] = "1.0"
    assert {type(e) for e in parser.parse(json.dumps(moved), RECV + 32_001)} == {
        MarkPrice,
        OpenInterest,
    }


def test_a_coin_not_configured_is_filtered_and_an_unknown_one_counted(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _raws(captures, "activeAssetCtx")
    parser = _parser(markets, wanted={"BTC"})
    assert parser.parse(raw, RECV) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors
    parser = _parser({})
    assert parser.parse(raw, RECV) == []
    assert parser.stats.errors == {"unknown_instrument": 1}


# -- liquidations -----------------------------------------------------------------------------


def _fill(captures: Path) -> Frame:
    """The captured fill (a user channel push from a market liquidation)."""
    (raw,) = _raws(captures, "user")
    fill: Frame = json.loads(raw)["data"]["fills"][0]
    return fill


def _user_fills(user: str, *fills: Frame, snapshot: bool = False) -> str:
    data: Frame = {"isSnapshot": True} if snapshot else {}
    return json.dumps({"channel": "userFills", "data": data | {"user": user, "fills": list(fills)}})


def test_the_captured_liquidation_fill_is_a_short_bought_back_from_its_counterparty(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The fill's owner *sold* (``A``, ``Open Short``, not crossing) to the market order of
    the liquidated user, who therefore bought: a short was liquidated."""
    (raw,) = _raws(captures, "user")
    fill = _fill(captures)
    assert fill["side"] == "A"
    assert fill["liquidation"]["method"] == "market"
    parser = _parser(markets)
    (liq,) = parser.parse(raw, RECV)
    assert not parser.stats.errors
    assert isinstance(liq, Liquidation)
    assert liq.side is Side.SHORT
    assert (liq.symbol, liq.base) == ("BTC", "BTC")
    assert liq.price == float(fill["px"]) == 66653.0
    assert liq.quantity == liq.quantity_base == float(fill["sz"])
    assert liq.notional_usd == pytest.approx(0.001 * 66653.0)
    assert liq.ts_ms == fill["time"]
    assert liq.recv_ms == RECV
    assert liq.sampled is True
    assert liq.event_id == str(fill["tid"])


def test_a_liquidator_vaults_fills_give_the_liquidated_side(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """A vault buying (taking a long over, or buying what a long sells) means a long was
    liquidated; selling, a short."""
    fill = _fill(captures)
    takeover = {"method": "backstop"}
    backstop = fill | {"side": "B", "dir": "Open Long", "tid": 1}
    backstop["liquidation"] = fill["liquidation"] | takeover
    parser = _parser(markets)
    short, long = parser.parse(_user_fills(LIQUIDATOR, fill, backstop), RECV)
    assert not parser.stats.errors
    assert isinstance(short, Liquidation)
    assert isinstance(long, Liquidation)
    assert (short.side, long.side) == (Side.SHORT, Side.LONG)
    assert (short.event_id, long.event_id) == (str(fill["tid"]), "1")


def test_the_vaults_own_trades_and_forced_closes_are_not_liquidations_of_users(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    fill = _fill(captures)
    unwind = {k: v for k, v in fill.items() if k != "liquidation"}
    adl = fill | {"liquidation": fill["liquidation"] | {"liquidatedUser": LIQUIDATOR.upper()}}
    older_field = unwind | {"liquidationMarkPx": None, "liquidation": None}
    parser = _parser(markets)
    assert parser.parse(_user_fills(LIQUIDATOR, unwind, adl, older_field), RECV) == []
    assert parser.stats.filtered == 3
    assert not parser.stats.errors


def test_the_liquidated_users_own_fill_gives_the_opposite_of_its_order_side(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    fill = _fill(captures)
    victim = fill["liquidation"]["liquidatedUser"]
    own = fill | {"dir": "Liquidated Cross Long", "crossed": True}
    parser = _parser(markets)
    (by_dir,) = parser.parse(json.dumps({"channel": "user", "data": {"fills": [own]}}), RECV)
    (by_user,) = parser.parse(_user_fills(victim, fill | {"tid": 2}), RECV)
    assert isinstance(by_dir, Liquidation)
    assert isinstance(by_user, Liquidation)
    assert by_dir.side is by_user.side is Side.LONG  # it sold: its long was closed


def test_a_snapshot_re_sends_recent_fills_with_their_identity_and_drops_history(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    fill = _fill(captures)
    parser = _parser(markets)
    (live,) = parser.parse(_user_fills(LIQUIDATOR, fill), RECV)
    (again,) = parser.parse(_user_fills(LIQUIDATOR, fill, snapshot=True), RECV + 60_000)
    assert isinstance(live, Liquidation)
    assert isinstance(again, Liquidation)
    assert (again.symbol, again.event_id) == (live.symbol, live.event_id)
    assert parser.parse(_user_fills(LIQUIDATOR, fill, snapshot=True), RECV + 2 * HOUR_MS) == []
    assert parser.stats.filtered == 1
    (late_live,) = parser.parse(_user_fills(LIQUIDATOR, fill), RECV + 2 * HOUR_MS)
    assert isinstance(late_live, Liquidation)  # only snapshots are cut by age


@pytest.mark.parametrize(
    ("order_side", "owner_liquidated", "side"),
    [
        ("B", False, Side.LONG),  # a vault or maker buys what a liquidated long sells
        ("A", False, Side.SHORT),
        ("A", True, Side.LONG),  # the liquidated user sells: its long is closed
        ("B", True, Side.SHORT),
        ("X", False, None),
    ],
)
def test_liquidated_side(order_side: str, owner_liquidated: bool, side: Side | None) -> None:
    assert liquidated_side(order_side, owner_liquidated) is side


# -- protocol, unsubscribed and malformed frames ----------------------------------------------


@pytest.mark.parametrize("channel", ["activeSpotAssetCtx", "allDexsAssetCtxs"])
def test_captured_channels_we_never_subscribe_give_nothing_and_are_counted(
    captures: Path, markets: dict[str, Instrument], channel: str
) -> None:
    raws = _raws(captures, channel)
    assert raws
    parser = _parser(markets)
    assert [e for raw in raws for e in parser.parse(raw, RECV)] == []
    assert parser.stats.errors == {"unknown_channel": len(raws)}


@pytest.mark.parametrize(
    "frame",
    [
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
        '{"type":"trades","coin":"SOL"}}}',  # the documentation's example
        '{"channel":"pong"}',
        "Websocket connection established.",
        b'{"channel":"subscriptionResponse","data":{"method":"unsubscribe","subscription":'
        b'{"type":"userFills","user":"0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"}}}',
        '{"channel":"user","data":{"funding":{"coin":"BTC","usdc":"-0.1","szi":"1.0",'
        '"fundingRate":"0.0000125"}}}',
    ],
)
def test_protocol_frames_give_nothing_and_no_error(
    markets: dict[str, Instrument], frame: str | bytes
) -> None:
    parser = _parser(markets)
    assert parser.parse(frame, RECV) == []
    assert not parser.stats.errors
    assert parser.stats.filtered == 0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (
            '{"channel":"error","data":"Already subscribed: {\\"type\\":\\"trades\\"}"}',
            "venue_error",
        ),
        ("{oops", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"channel":"activeAssetCtx","data":{"coin":"BTC"}}', "invalid_activeAssetCtx"),
        (
            '{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"x",'
            '"openInterest":"1","markPx":"2"}}}',
            "invalid_activeAssetCtx",
        ),
        (
            '{"channel":"userFills","data":{"user":"0x1","fills":[{"coin":"BTC"}]}}',
            "invalid_userFills",
        ),
        ('{"channel":"userFills"}', "invalid_userFills"),
        ('{"channel":"l2Book","data":{}}', "invalid_orderbook"),
        ('{"channel":"candle","data":{}}', "unknown_channel"),
    ],
)
def test_malformed_frames_are_counted_and_dropped(
    markets: dict[str, Instrument], frame: str, reason: str
) -> None:
    parser = _parser(markets)
    assert parser.parse(frame, RECV) == []
    assert parser.stats.errors == {reason: 1}


def test_a_fill_with_an_unknown_side_is_counted(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = _parser(markets)
    assert parser.parse(_user_fills(LIQUIDATOR, _fill(captures) | {"side": "S"}), RECV) == []
    assert parser.stats.errors == {"invalid_side": 1}


# -- instruments and subscriptions ------------------------------------------------------------


def test_meta_gives_the_listed_perpetuals_in_coin_with_hourly_funding() -> None:
    body = _meta("BTC", "kPEPE", delisted=("MATIC",))
    for payload in (body, [body, []], json.dumps(body)):  # meta, metaAndAssetCtxs, text
        listed = {i.symbol: i for i in parse_meta(payload)}
        assert set(listed) == {"BTC", "kPEPE"}  # delisted coins are left out
    pepe = listed["kPEPE"]
    assert (pepe.base, pepe.quote, pepe.linear, pepe.contract_size) == ("kPEPE", "USDC", True, 1)
    assert pepe.funding_interval_h == 1.0
    assert pepe.notional_usd(1000, 0.0123) == pytest.approx(12.3)  # price per 1000 PEPE
    with pytest.raises(ValueError, match="name"):
        parse_meta({"universe": [{"szDecimals": 5}]})


def test_the_vaults_fills_have_a_quiet_connection_of_their_own_and_public_each_coin(
    markets: dict[str, Instrument],
) -> None:
    venue = Hyperliquid(VenueSettings(symbols=["BTC", "kPEPE"]))
    public, liquidations = venue.connections(markets)  # no depth set yet: no depth connection
    assert public.url == liquidations.url == "wss://api.hyperliquid.xyz/ws"
    for conn in (public, liquidations):  # the venue's 60 s idle cut: both keep pinging
        assert (conn.ping, conn.pong) == (PING, PONG_MARKER)
        assert conn.ping_interval_s is not None
        assert conn.ping_interval_s < 60
    assert json.loads(PING) == {"method": "ping"}
    assert PONG_MARKER in '{"channel":"pong"}'
    # The liquidations' own connection, the quiet lane: not behind the contexts and tops.
    assert (liquidations.name, liquidations.quiet) == ("liquidations", True)
    assert (public.name, public.quiet) == ("public", False)
    assert [json.loads(m) for m in liquidations.subscribe] == [
        {"method": "subscribe", "subscription": {"type": "userFills", "user": a}}
        for a in LIQUIDATOR_ADDRESSES
    ]
    subs = [json.loads(m) for m in public.subscribe]
    assert all(s["method"] == "subscribe" for s in subs)
    assert [s["subscription"] for s in subs] == [  # no userFills on the busy connection
        {"type": "activeAssetCtx", "coin": "BTC"},
        {"type": "activeAssetCtx", "coin": "kPEPE"},
        {"type": "bbo", "coin": "BTC"},
        {"type": "trades", "coin": "BTC"},
        {"type": "bbo", "coin": "kPEPE"},
        {"type": "trades", "coin": "kPEPE"},
    ]
    assert Hyperliquid.liquidations_sampled
    parser = venue.new_parser(markets, {"BTC"})
    assert isinstance(parser, HyperliquidParser)
    assert parser.liquidators == frozenset(LIQUIDATOR_ADDRESSES)


def test_subscriptions_stay_within_the_venues_limits() -> None:
    """The limits are per IP, across connections: the vaults' fills (their own connection)
    and the coins' channels together stay within them."""
    users = [f"0x{n:040x}" for n in range(MAX_USERS + 2)]
    coins = [f"C{n}" for n in range(MAX_SUBSCRIPTIONS)]
    fills = [json.loads(m)["subscription"] for m in fills_messages(users)]
    subs = [json.loads(m)["subscription"] for m in subscribe_messages(coins, users)]
    assert len(fills) == MAX_USERS
    assert {s["type"] for s in fills} == {"userFills"}
    assert len(fills) + len(subs) == MAX_SUBSCRIPTIONS
    assert not any(s["type"] == "userFills" for s in subs)
    assert len(fills_messages(["0xAB", "0xab"])) == 1  # addresses are case-blind
    assert len(subscribe_messages(coins, ["0xAB", "0xab"])) == MAX_SUBSCRIPTIONS - 1


def test_funding_settles_on_the_hour() -> None:
    assert next_hour_ms(0) == HOUR_MS
    assert next_hour_ms(HOUR_MS - 1) == HOUR_MS
    assert next_hour_ms(HOUR_MS) == 2 * HOUR_MS
