"""OKX ``tickers`` (top of book) and ``trades`` (traded volume per second) on the real frames of
../shared/captures (a linear and an inverse swap's tickers, a linear swap's and an inverse
future's trades) and on the docs' trades push example (https://www.okx.com/docs-v5/en/#order-
book-trading-market-data-ws-trades-channel, with ``count``, ``source`` and ``seqId``), with
the contract terms of the recorded listing (shared/captures/rest/OKX.0.txt); sizes are
contracts, values worked out here from the frames and the listing's rows."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from service.config import VenueSettings
from service.events import BookTop, Volume
from service.venues.base import Instrument
from service.venues.okx.venue import Okx, OkxParser, instrument

VENUE = "okx"
Row = dict[str, Any]

# https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel, the push
# example as the docs print it (a spot pair: its instId is changed to a swap's below).
DOCS_TRADES: Row = {
    "arg": {"channel": "trades", "instId": "BTC-USDT"},
    "data": [{"instId": "BTC-USDT", "tradeId": "130639474", "px": "42219.9",
              "sz": "0.12060306", "side": "buy", "ts": "1630048897897", "count": "3",
              "source": "0", "seqId": 1234}],
}  # fmt: skip


def _rest_rows(captures: Path) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    for line in (captures / "rest" / "OKX.0.txt").read_text().splitlines():
        if " -> " in line:
            body = line.split(" -> ", 1)[1].split(": ", 1)[1]
            rows.update({r["instId"]: r for r in json.loads(body)["data"]})
    return rows


@pytest.fixture
def rows(captures: Path) -> dict[str, Row]:
    rows = _rest_rows(captures)
    # The future traded in the capture expired before the listing was recorded: the next
    # one of its family has its terms (ctVal 10 USD, inverse).
    rows["FIL-USD-220325"] = rows["FIL-USD-220624"] | {"instId": "FIL-USD-220325"}
    return rows


@pytest.fixture
def markets(rows: dict[str, Row]) -> dict[str, Instrument]:
    return {i: inst for i, r in rows.items() if (inst := instrument(r)) is not None}


def _captured(captures: Path, channel: str) -> dict[str, list[str]]:
    """The captured pushes of ``channel``, by instId."""
    out: dict[str, list[str]] = {}
    for line in (captures / "okx.jsonl").read_text().splitlines():
        raw = json.loads(line)["raw"]
        msg = json.loads(raw)
        if "data" in msg and msg["arg"].get("channel") == channel:
            out.setdefault(msg["arg"]["instId"], []).append(raw)
    return out


def _volume_parser(markets: dict[str, Instrument], wanted: set[str] | None = None) -> OkxParser:
    parser = Okx(VenueSettings()).new_parser(markets, wanted)
    assert isinstance(parser, OkxParser)
    assert parser.volumes is not None  # volume is on by default
    return parser


# -- tickers --------------------------------------------------------------------------------


@pytest.mark.parametrize("inst_id", ["WNCG-USDT-SWAP", "UNI-USD-SWAP"])
def test_a_captured_swap_ticker_gives_the_top_of_book_in_contracts(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument], inst_id: str
) -> None:
    raw = _captured(captures, "tickers")[inst_id][0]
    (t,) = json.loads(raw)["data"]
    parser = OkxParser(VENUE, markets, None)
    (top,) = parser.parse(raw, recv_ms=7)
    assert isinstance(top, BookTop)
    bid, ask = float(t["bidPx"]), float(t["askPx"])
    bid_sz, ask_sz, ct_val = float(t["bidSz"]), float(t["askSz"]), float(rows[inst_id]["ctVal"])
    if rows[inst_id]["ctType"] == "linear":  # WNCG: contracts of 1 WNCG
        bid_base, ask_base = bid_sz * ct_val, ask_sz * ct_val  # 2 and 168 WNCG
        bid_usd, ask_usd = bid_base * bid, ask_base * ask
    else:  # UNI-USD-SWAP: contracts of 10 USD
        bid_usd, ask_usd = bid_sz * ct_val, ask_sz * ct_val  # 960 and 250 USD
        bid_base, ask_base = bid_usd / bid, ask_usd / ask
    assert (top.symbol, top.ts_ms, top.recv_ms) == (inst_id, int(t["ts"]), 7)
    assert (top.bid_price, top.ask_price) == (bid, ask)
    assert (top.bid_base, top.ask_base) == pytest.approx((bid_base, ask_base))
    assert (top.bid_usd, top.ask_usd) == pytest.approx((bid_usd, ask_usd))
    assert top.spread_bp == pytest.approx((ask - bid) / ((ask + bid) / 2) * 10_000)
    assert not parser.stats.errors


def test_the_top_of_book_is_reported_at_most_once_a_second_per_swap(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    raw = _captured(captures, "tickers")["UNI-USD-SWAP"][0]
    ts = int(json.loads(raw)["data"][0]["ts"])
    parser = OkxParser(VENUE, markets, None)

    def at(ms: int, bid: str) -> str:
        msg = json.loads(raw)
        msg["data"][0].update(ts=str(ms), bidPx=bid)
        return json.dumps(msg)

    assert len(parser.parse(at(ts, "5.134"), recv_ms=1)) == 1
    assert parser.parse(at(ts + 100, "5.135"), recv_ms=2) == []  # the next push, 100 ms on
    assert parser.parse(at(ts + 900, "5.136"), recv_ms=3) == []
    (top,) = parser.parse(at(ts + 1000, "5.137"), recv_ms=4)  # the latest, a second on
    assert isinstance(top, BookTop)
    assert (top.ts_ms, top.bid_price) == (ts + 1000, 5.137)
    assert not parser.stats.errors


def test_a_ticker_timed_far_ahead_does_not_hold_the_next_tops_back(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    """The captured UNI-USD-SWAP ticker once with its ``ts`` in microseconds (no market's
    time: dropped as ``bad_time``): the time of the report it left behind held every later
    top of the swap back."""
    raw = _captured(captures, "tickers")["UNI-USD-SWAP"][0]
    ts = int(json.loads(raw)["data"][0]["ts"])
    parser = OkxParser(VENUE, markets, None)
    assert parser.parse(raw.replace(str(ts), str(ts * 1000)), recv_ms=ts + 50) == []
    assert parser.stats.errors == {"bad_time": 1}
    (top,) = parser.parse(raw, recv_ms=ts + 100)
    assert isinstance(top, BookTop)
    assert top.ts_ms == ts


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"bidPx": "", "bidSz": ""}, None),  # no bid: no spread, nothing to count
        ({"askPx": "0", "askSz": "0"}, None),
        ({"bidPx": "5.2", "askPx": "5.1"}, "crossed_book"),  # the docs: pre-open may cross
        ({"askSz": "lots"}, "invalid_tickers"),
        ({"ts": "soon"}, "invalid_tickers"),
    ],
)
def test_an_empty_side_reports_nothing_and_a_bad_ticker_is_counted(
    captures: Path, markets: dict[str, Instrument], change: Row, reason: str | None
) -> None:
    msg = json.loads(_captured(captures, "tickers")["UNI-USD-SWAP"][0])
    msg["data"][0].update(change)
    parser = OkxParser(VENUE, markets, None)
    assert parser.parse(json.dumps(msg), recv_ms=1) == []
    assert parser.stats.errors == ({reason: 1} if reason else {})


def test_a_bad_row_is_dropped_alone_and_the_others_of_its_frame_are_reported(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    msg = json.loads(_captured(captures, "tickers")["UNI-USD-SWAP"][0])
    good = msg["data"][0]
    msg["data"] = [good | {"askSz": "lots"}, good]
    parser = OkxParser(VENUE, markets, None)
    (top,) = parser.parse(json.dumps(msg), recv_ms=1)
    assert isinstance(top, BookTop)
    assert top.symbol == "UNI-USD-SWAP"
    assert parser.stats.errors == {"invalid_tickers": 1}


def test_tickers_of_swaps_not_followed_are_filtered(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    parser = OkxParser(VENUE, markets, {"BTC-USDT-SWAP"})
    assert parser.parse(_captured(captures, "tickers")["UNI-USD-SWAP"][0], recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


# -- trades ---------------------------------------------------------------------------------


def test_a_captured_linear_swap_trade_is_a_taker_buy_of_contracts_of_ct_val_coin(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    (raw,) = _captured(captures, "trades")["BTC-USDT-SWAP"]
    (t,) = json.loads(raw)["data"]
    parser = _volume_parser(markets)
    recv = int(t["ts"]) + 100
    assert parser.parse(raw, recv_ms=recv) == []  # its second is still open
    (v,) = parser.flush_volumes(recv_ms=recv + 1)
    assert isinstance(v, Volume)
    base = float(t["sz"]) * float(rows["BTC-USDT-SWAP"]["ctVal"])  # 5 contracts of 0.01 BTC
    assert (v.symbol, v.ts_ms, v.trades) == ("BTC-USDT-SWAP", int(t["ts"]) // 1000 * 1000, 1)
    assert v.taker_buy_base == pytest.approx(base)
    assert v.taker_buy_usd == pytest.approx(base * float(t["px"]))  # 2,446.93 USD
    assert (v.taker_sell_base, v.taker_sell_usd) == (0.0, 0.0)
    assert not parser.stats.errors


def test_a_captured_inverse_trade_is_contracts_of_ct_val_usd(
    captures: Path, rows: dict[str, Row], markets: dict[str, Instrument]
) -> None:
    (raw,) = _captured(captures, "trades")["FIL-USD-220325"]
    (t,) = json.loads(raw)["data"]
    parser = _volume_parser(markets)
    parser.parse(raw, recv_ms=int(t["ts"]) + 100)
    (v,) = parser.flush_volumes(recv_ms=int(t["ts"]) + 101)
    assert isinstance(v, Volume)
    usd = float(t["sz"]) * float(rows["FIL-USD-220325"]["ctVal"])  # 11 contracts of 10 USD
    assert v.taker_buy_usd == pytest.approx(usd)
    assert v.taker_buy_base == pytest.approx(usd / float(t["px"]))
    assert v.taker_sell_usd == 0.0


def test_prints_sum_by_taker_side_per_second_once_per_trade_id(
    markets: dict[str, Instrument],
) -> None:
    """The docs' example (today's fields: ``count``, ``source``, ``seqId``) on a swap, then a
    selling taker in the same second, the first print again (a rotation's overlap), and a
    print of the next second, which closes the first."""
    first = copy.deepcopy(DOCS_TRADES)
    first["arg"]["instId"] = first["data"][0]["instId"] = "BTC-USDT-SWAP"
    t = first["data"][0]
    sell = copy.deepcopy(first)
    sell["data"][0].update(tradeId="130639475", side="sell", sz="2", px="42219.8")
    later = copy.deepcopy(first)
    later["data"][0].update(tradeId="130639480", ts=str(int(t["ts"]) + 1000))
    parser = _volume_parser(markets)
    recv = int(t["ts"]) + 100
    for msg in (first, sell, first):
        assert parser.parse(json.dumps(msg), recv_ms=recv) == []
    (v,) = parser.parse(json.dumps(later), recv_ms=recv + 1000)
    assert isinstance(v, Volume)
    ct_val = 0.01  # BTC-USDT-SWAP: a contract is 0.01 BTC
    assert v.trades == 2  # each print once: the repeat is dropped
    assert parser.volumes is not None
    assert parser.volumes.duplicates == 1
    assert parser.stats.duplicates == {"trade": 1}  # (a collector's health, exported)
    assert v.taker_buy_base == pytest.approx(0.12060306 * ct_val)
    assert v.taker_buy_usd == pytest.approx(0.12060306 * ct_val * 42219.9)
    assert v.taker_sell_base == pytest.approx(2 * ct_val)
    assert v.taker_sell_usd == pytest.approx(2 * ct_val * 42219.8)
    assert v.ts_ms == int(t["ts"]) // 1000 * 1000
    assert not parser.stats.errors


def test_a_bad_trade_row_is_counted_and_the_rest_of_the_batch_kept(
    markets: dict[str, Instrument],
) -> None:
    msg = copy.deepcopy(DOCS_TRADES)
    msg["arg"]["instId"] = "BTC-USDT-SWAP"
    good = msg["data"][0] | {"instId": "BTC-USDT-SWAP"}
    msg["data"] = [good | {"side": "short", "tradeId": "1"}, good]
    parser = _volume_parser(markets)
    recv = int(good["ts"]) + 100
    assert parser.parse(json.dumps(msg), recv_ms=recv) == []
    assert parser.stats.errors == {"invalid_side": 1}
    (v,) = parser.flush_volumes(recv_ms=recv + 1)
    assert isinstance(v, Volume)
    assert v.trades == 1
    unreadable = json.dumps(msg).replace('"42219.9"', '"NaN"')
    assert parser.parse(unreadable, recv_ms=recv + 2) == []
    assert parser.stats.errors["invalid_trades"] == 1


def test_trades_nobody_asked_for_are_filtered_when_volume_is_off(
    captures: Path, markets: dict[str, Instrument]
) -> None:
    (raw,) = _captured(captures, "trades")["BTC-USDT-SWAP"]
    parser = Okx(VenueSettings(volume=False)).new_parser(markets, None)
    assert parser.volumes is None
    assert parser.parse(raw, recv_ms=1) == []
    assert parser.stats.filtered == 1
    assert not parser.stats.errors


# -- subscriptions --------------------------------------------------------------------------


def _args(venue: Okx, markets: dict[str, Instrument]) -> list[Row]:
    public, _liquidations = venue.connections(markets)
    return [a for r in public.subscribe for a in json.loads(r)["args"]]


def test_every_swap_gets_its_ticker_and_its_trades_unless_volume_is_off(
    markets: dict[str, Instrument],
) -> None:
    swaps = {s: i for s, i in markets.items() if s.endswith("-SWAP")}
    args = _args(Okx(VenueSettings()), swaps)
    for channel in ("tickers", "trades"):
        assert sorted(a["instId"] for a in args if a["channel"] == channel) == sorted(swaps)
    off = _args(Okx(VenueSettings(volume=False)), swaps)
    assert sorted(a["instId"] for a in off if a["channel"] == "tickers") == sorted(swaps)
    assert not [a for a in off if a["channel"] == "trades"]
    assert len(args) == len(off) + len(swaps)
