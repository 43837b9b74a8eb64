"""The players of the venues added later (Gate, Bitget, Deribit, BitMEX, Hyperliquid): a long
cascade played on each venue alone parses cleanly and is detected long there."""

from __future__ import annotations

import pytest

from service.config import DetectorSettings
from service.detect.factory import make_model
from service.evaluate.suite import run_one
from service.events import Event, Liquidation, Side
from service.simulate.scenario import get_scenario
from service.venues import PLAYERS

NEWER = ["gateio", "bitget", "deribit", "bitmex", "hyperliquid"]


def test_every_newer_venue_has_a_player() -> None:
    assert set(NEWER) <= set(PLAYERS)


@pytest.mark.parametrize("venue", NEWER)
def test_a_long_cascade_on_one_newer_venue_parses_cleanly_and_is_detected_long(
    venue: str,
) -> None:
    scored = run_one("long_cascade", 0, [venue], make_model(DetectorSettings()))
    assert scored.parse_errors == 0
    assert scored.events > 1_000
    cascade = next(lr for lr in scored.outcome.labels if lr.label.regime.value == "cascade")
    assert cascade.label.side is Side.LONG
    first = cascade.first
    assert first is not None  # detected
    assert first.instrument.venue == venue
    assert first.side is Side.LONG


def _liquidations(venue: str, seconds: int, *, offline: range = range(0)) -> list[Liquidation]:
    player = PLAYERS[venue](get_scenario("long_unwind"), 1, ["BTC", "ETH"])
    events: list[Event] = []
    for i in range(1, seconds + 1):
        now_ms = 1_759_276_800_000 + i * 1000
        events += player.step(1.0, now_ms, quotes_due=True, online=i not in offline)
    assert player.parse_errors == 0
    return [e for e in events if isinstance(e, Liquidation)]


def test_a_deribit_mt_trade_is_two_liquidations_of_the_same_amount() -> None:
    liqs = _liquidations("deribit", 60)
    by_trade: dict[str, list[Liquidation]] = {}
    for e in liqs:
        by_trade.setdefault(e.event_id.split(":")[0], []).append(e)
    pairs = [es for es in by_trade.values() if len(es) == 2]
    assert pairs
    assert all({e.side for e in es} == {Side.LONG, Side.SHORT} for es in pairs)
    assert all(es[0].quantity == es[1].quantity for es in pairs)


def test_a_bitmex_order_is_counted_once_through_its_update_and_delete() -> None:
    liqs = _liquidations("bitmex", 60)
    assert liqs
    assert len({e.event_id for e in liqs}) == len(liqs)
    assert {e.symbol for e in liqs} >= {"ETHUSD"}  # a quanto, valued at XBTUSD's mark
    eth = [e for e in liqs if e.symbol == "ETHUSD"]
    assert all(abs(e.notional_usd / (e.quantity_base * e.price) - 1) < 0.01 for e in eth)


@pytest.mark.parametrize("venue", NEWER)
def test_a_newer_player_reconnects_with_a_clean_parse(venue: str) -> None:
    liqs = _liquidations(venue, 60, offline=range(20, 30))
    assert liqs
    assert len({e.event_id for e in liqs}) == len(liqs)  # replays dropped by the dedup
