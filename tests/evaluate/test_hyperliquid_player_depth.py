"""The Hyperliquid wire player serves its ``l2Book`` depth only when asked (the liquidity lead
comparison, ``service.evaluate.lead``), parsed by the venue's parser like the live pushes."""

from __future__ import annotations

from collections import Counter

from service.events import BookDepth
from service.simulate.library import make_scenario
from service.venues import PLAYERS


def test_the_hyperliquid_player_serves_its_book_depth_only_when_asked() -> None:
    scenario = make_scenario("thin_book_unwind", 0, ("hyperliquid",))
    kinds: dict[bool, Counter[str]] = {}
    depths: list[BookDepth] = []
    for depth in (False, True):
        player = PLAYERS["hyperliquid"](scenario, 7, ["BTC", "ETH"])
        assert player.follow_depth() if depth else True
        events = [
            e
            for i in range(30)
            for e in player.step(10.0, 1_759_276_800_000 + i * 10_000, quotes_due=True, online=True)
        ]
        kinds[depth] = Counter(type(e).__name__ for e in events)
        depths += [e for e in events if isinstance(e, BookDepth)]
    assert kinds[False]["BookDepth"] == 0
    assert kinds[True]["BookDepth"] >= 30  # both coins, nearly every step
    assert {d.symbol for d in depths} == {"BTC", "ETH"}
    assert all(0 < d.bid_usd_0p5 <= d.bid_usd_2 for d in depths)
