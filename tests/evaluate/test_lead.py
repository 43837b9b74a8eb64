"""The liquidity lead comparison (``service.evaluate.lead``): the same states with and without
the liquidity features, and a fragile warning that comes no later than the first state."""

from __future__ import annotations

from collections import Counter

from service.config import DetectorSettings
from service.evaluate.lead import lead_table, liquidity_lead
from service.simulate.library import LIQUIDITY_KINDS, make_scenario
from service.venues import PLAYERS

VENUES = ("binance_usdm", "bybit", "okx")


def test_the_bybit_player_serves_its_book_depth_only_when_asked() -> None:
    scenario = make_scenario("thin_book_unwind", 0, VENUES)
    kinds: dict[bool, Counter[str]] = {}
    for depth in (False, True):
        player = PLAYERS["bybit"](scenario, 7, ["BTC", "ETH"])
        assert player.follow_depth() if depth else True
        kinds[depth] = Counter(
            type(e).__name__
            for i in range(30)
            for e in player.step(10.0, 1_759_276_800_000 + i * 10_000, quotes_due=True, online=True)
        )
    assert kinds[False]["BookDepth"] == 0
    assert kinds[True]["BookDepth"] >= 30  # both symbols, nearly every step
    assert not PLAYERS["okx"](scenario, 7, ["BTC"]).follow_depth()  # no depth simulated there


def test_liquidity_warns_earlier_never_changes_a_state_and_both_delays_are_reported() -> None:
    doc = liquidity_lead(DetectorSettings(), [0], VENUES)  # one play each way: about 5 s
    assert doc["kinds"] == list(LIQUIDITY_KINDS)
    assert doc["states_identical"] is True
    [run] = doc["runs"]
    [label] = run["labels"]
    assert label["group"] == "unwinding"
    assert label["without_delay_s"] is not None
    assert label["fragile_delay_s"] is not None  # the thin book warned on this seed
    assert label["with_delay_s"] == min(label["without_delay_s"], label["fragile_delay_s"])
    gain = doc["gain_s"]["mean"]
    assert gain == doc["without"]["mean_delay_s"] - doc["with"]["mean_delay_s"]
    assert gain >= 0
    text = lead_table(doc)
    assert "without liquidity: detected 1" in text
    assert "with liquidity:    detected 1" in text
