"""Listings at the market's real size (``service.simulate.listing``): a simulator asked for
``listing_size`` perpetuals lists that many, in its own shape, and the venue's collector side
loads every one of them through its normal instrument loading."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import listed_markets

from service.simulate.clock import MarketClock
from service.simulate.listing import grow_rows, grow_specs, rename, synthetic_bases
from service.simulate.market import Market, SymbolSpec
from service.simulate.scenario import get_scenario
from service.venues import SPECS
from service.venues.spec import VenueSpec

GROWN = [s for s in SPECS if s.simulator.listing_specs(None) and s.venue.retired is None]


def test_the_clones_copy_the_template_under_new_bases() -> None:
    doge = SymbolSpec("DOGEUSDT", "DOGE", 0.15, 1e9, 1.0)
    btc = SymbolSpec("BTCUSDT", "BTC", 60_000.0, 1e5, 0.001)
    specs, clones = grow_specs((btc, doge), "DOGEUSDT", 5)
    assert clones == {"Q0001USDT": "Q0001", "Q0002USDT": "Q0002", "Q0003USDT": "Q0003"}
    assert [s.symbol for s in specs] == ["BTCUSDT", "DOGEUSDT", *clones]
    assert all(s.price == doge.price and s.qty_step == doge.qty_step for s in specs[2:])
    assert grow_specs((btc, doge), "DOGEUSDT", 2) == ((btc, doge), {})
    assert grow_specs((btc, doge), "DOGEUSDT", None) == ((btc, doge), {})
    with pytest.raises(ValueError, match="template"):
        grow_specs((btc,), "DOGEUSDT", 5)


def test_a_cloned_row_renames_the_base_in_every_value_but_not_the_keys() -> None:
    row = {"instrument_name": "ETH_USDC-PERPETUAL", "base_currency": "ETH",
           "price_index": "eth_usdc", "contract_size": 1.0, "ETH": "kept"}  # fmt: skip
    template = SymbolSpec("ETH_USDC-PERPETUAL", "ETH", 3000.0, 1e5, 0.01)
    rows = grow_rows([row], "instrument_name", template, {"Q0001_USDC-PERPETUAL": "Q0001"})
    assert rows[0] == row
    assert rows[1] == {
        "instrument_name": "Q0001_USDC-PERPETUAL", "base_currency": "Q0001",
        "price_index": "q0001_usdc", "contract_size": 1.0, "ETH": "kept",
    }  # fmt: skip
    other = [{"instrument_name": "BTC-PERPETUAL"}]  # another currency's list: no template
    assert grow_rows(other, "instrument_name", template, {"Q0001_USDC-PERPETUAL": "Q0001"}) == other
    assert rename("DOGE-USDT", "DOGE", "Q0007") == "Q0007-USDT"
    assert synthetic_bases(2) == ["Q0001", "Q0002"]


@pytest.mark.parametrize("spec", GROWN, ids=lambda s: s.id)
async def test_the_collector_loads_every_perpetual_of_a_grown_listing(spec: VenueSpec) -> None:
    size = len(spec.listing_specs(None)) + 25
    market = Market(get_scenario("calm"), specs=spec.listing_specs(size))
    sim: Any = spec.simulate_listing(MarketClock(market), seed=1, listing_size=size)
    async with sim:
        loaded = await listed_markets(spec.venue, sim)
    assert len(loaded) == size
    clones = {s for s in loaded if "Q00" in s}
    assert len(clones) == 25
    bases = {i.base for s, i in loaded.items() if s in clones}
    assert bases == {f"Q{i:04d}" for i in range(1, 26)}  # the venue's base, as ccxt reads it
