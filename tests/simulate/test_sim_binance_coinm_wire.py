"""Binance COIN-M's server-side protocol, without sockets: stream names, frame and body shapes
in contracts, read back by our real COIN-M parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.events import FundingRate, Liquidation, MarkPrice, Side
from service.simulate.market import LiquidationPrint, Quote
from service.venues.base import Instrument
from service.venues.binance.coinm import VENUE, BinanceCoinmParser
from service.venues.binance.simulator import usdm_wire as wire
from service.venues.binance.simulator.coinm_wire import COINM, contracts_of, print_contracts

INFO = json.loads(wire.load_exchange_info(COINM))
CONTRACTS = wire.contracts(INFO, ["BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_210924"], ())
BTC, ETH, BTC_QUARTER = (CONTRACTS[s] for s in ("BTCUSD_PERP", "ETHUSD_PERP", "BTCUSD_210924"))


def _instruments() -> dict[str, Instrument]:
    """Every contract of the recorded COIN-M exchangeInfo, as the service sizes them."""
    return {
        s["symbol"]: Instrument(
            VENUE,
            s["symbol"],
            s["baseAsset"],
            s["quoteAsset"],
            linear=False,
            contract_size=float(s["contractSize"]),
        )
        for s in INFO["symbols"]
    }


def _parse(stream: str, obj: object) -> list[object]:
    parser = BinanceCoinmParser(VENUE, _instruments(), None)
    events: list[object] = list(parser.parse(wire.frame(stream, wire.encode(obj), True), 1))
    assert not parser.stats.errors
    return events


def test_the_data_file_is_the_recorded_exchange_info_byte_for_byte(captures: Path) -> None:
    text = (captures / "rest" / "BINANCE_DELIVERY.0.txt").read_text(encoding="utf-8")
    url, _, rest = text.splitlines()[0].partition(" -> ")
    assert url == "https://dapi.binance.com/dapi/v1/exchangeInfo"
    assert wire.load_exchange_info(COINM) == rest.split(": ", 1)[1]


def test_contracts_carry_size_pair_and_type_from_exchange_info() -> None:
    assert (BTC.contract_size, BTC.pair, BTC.contract_type) == (100.0, "BTCUSD", "PERPETUAL")
    assert (ETH.contract_size, ETH.pair, ETH.qty_precision) == (10.0, "ETHUSD", 0)
    assert BTC_QUARTER.contract_type == "CURRENT_QUARTER"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("btcusd_perp@markPrice@1s", (wire.StreamKind.MARK, "BTCUSD_PERP", None, True)),
        ("btcusd_perp@markPrice", (wire.StreamKind.MARK, "BTCUSD_PERP", None, False)),
        ("btcusd@markPrice@1s", (wire.StreamKind.MARK, None, "BTCUSD", True)),
        ("ethusd@markPrice", (wire.StreamKind.MARK, None, "ETHUSD", False)),
        ("!forceOrder@arr", (wire.StreamKind.FORCE, None, None, True)),
        ("btcusd_perp@forceOrder", (wire.StreamKind.FORCE, "BTCUSD_PERP", None, True)),
        ("!markPrice@arr@1s", None),  # USDⓈ-M only
        ("!markPrice@arr", None),
        ("BTCUSD_PERP@markPrice", None),
    ],
)
def test_stream_names(
    name: str, expected: tuple[wire.StreamKind, str | None, str | None, bool] | None
) -> None:
    s = wire.parse_stream(name, COINM)
    assert (None if s is None else (s.kind, s.symbol, s.pair, s.fast)) == expected


def test_pair_streams_are_not_usdm_streams() -> None:
    usdm = wire.parse_stream("btcusdt@markPrice@1s")
    assert usdm is not None
    assert (usdm.symbol, usdm.pair) == ("BTCUSDT", None)


def test_a_print_is_its_notional_in_whole_contracts() -> None:
    p = LiquidationPrint("BTCUSD_PERP", "BTC", Side.LONG, 0.0251, 59_910.12, 59_500.0, 7)
    assert print_contracts(p, BTC) == round(0.0251 * 59_910.12 / 100)  # 15 contracts
    assert contracts_of(20.0, BTC) == 1  # never zero


@pytest.mark.parametrize(("side", "order_side"), [(Side.LONG, "SELL"), (Side.SHORT, "BUY")])
def test_force_order_is_in_contracts_with_the_pair_and_parses_inverse(
    side: Side, order_side: str
) -> None:
    p = LiquidationPrint("ETHUSD_PERP", "ETH", side, 1.234, 2_998.654, 2_970.0, 1_600_000_000_123)
    obj = COINM.force_order(p, ETH, 1_600_000_000_200)
    n = round(1.234 * 2_998.654 / 10)
    assert obj == {
        "e": "forceOrder",
        "E": 1_600_000_000_200,
        "o": {
            "s": "ETHUSD_PERP",
            "ps": "ETHUSD",
            "S": order_side,
            "o": "LIMIT",
            "f": "IOC",
            "q": str(n),
            "p": "2970.00",
            "ap": "2998.65",
            "X": "FILLED",
            "l": str(n),
            "z": str(n),
            "T": 1_600_000_000_123,
        },
    }
    (liq,) = _parse("!forceOrder@arr", obj)
    assert isinstance(liq, Liquidation)
    assert liq.side is side
    assert liq.quantity == n
    assert liq.notional_usd == pytest.approx(n * 10.0)
    assert liq.quantity_base == pytest.approx(n * 10.0 / 2998.65)


def test_mark_price_update_has_the_coinm_shape_and_delivery_has_no_funding() -> None:
    q = Quote("BTCUSD_PERP", "BTC", 60_123.456789, 60_100.12345678, 0.00015, 80_000.0)
    obj = COINM.mark_price_update(q, BTC, 1_597_536_008_000)
    assert list(obj) == ["e", "E", "s", "p", "P", "i", "r", "T"]
    assert (obj["p"], obj["r"], obj["T"]) == ("60123.50000000", "0.00015000", 1_597_564_800_000)
    mark, funding = _parse("btcusd_perp@markPrice@1s", obj)
    assert isinstance(mark, MarkPrice)
    assert isinstance(funding, FundingRate)
    assert funding.funding_rate_1h == pytest.approx(0.00015 / 8)
    quarter = Quote("BTCUSD_210924", "BTC", 61_000.0, 60_100.0, 0.00015, 1_000.0)
    obj = COINM.mark_price_update(quarter, BTC_QUARTER, 1_597_536_008_000)
    assert (obj["r"], obj["T"]) == ("", 0)
    (only,) = _parse("btcusd@markPrice@1s", [obj])
    assert isinstance(only, MarkPrice)


def test_open_interest_is_whole_contracts_with_pair_and_type() -> None:
    q = Quote("BTCUSD_PERP", "BTC", 60_000.0, 60_000.0, 0.0001, 80_000.0)
    body = COINM.open_interest(q, BTC, 1_700_000_000_000)
    assert body == {
        "symbol": "BTCUSD_PERP",
        "pair": "BTCUSD",
        "openInterest": "48000000",  # 80,000 BTC at 60,000 USD in 100 USD contracts
        "contractType": "PERPETUAL",
        "time": 1_700_000_000_000,
    }


def test_premium_index_rows_name_the_pair_and_delivery_rows_have_no_funding() -> None:
    q = Quote("BTCUSD_PERP", "BTC", 60_000.0, 59_990.0, 0.0001, 80_000.0)
    row = COINM.premium_index(q, BTC, 1_597_536_008_000)
    assert list(row) == [
        "symbol",
        "pair",
        "markPrice",
        "indexPrice",
        "estimatedSettlePrice",
        "lastFundingRate",
        "interestRate",
        "nextFundingTime",
        "time",
    ]
    assert (row["pair"], row["lastFundingRate"]) == ("BTCUSD", "0.00010000")
    quarter = COINM.premium_index(q, BTC_QUARTER, 1_597_536_008_000)
    assert (quarter["lastFundingRate"], quarter["interestRate"], quarter["nextFundingTime"]) == (
        "",
        "",
        0,
    )
