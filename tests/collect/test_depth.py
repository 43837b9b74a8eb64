"""The instruments whose order book is followed: the top N by open interest, with hysteresis."""

from __future__ import annotations

from service.collect.depth import rank

OI = {"BTC": 9e9, "ETH": 5e9, "SOL": 2e9, "XRP": 1.5e9, "DOGE": 1e9}


def test_the_first_ranking_is_the_top_n_by_open_interest() -> None:
    assert rank(OI, (), 3, 0.1) == {"BTC", "ETH", "SOL"}
    assert rank(OI, (), 10, 0.1) == set(OI)  # fewer instruments than places
    assert rank(OI, {"BTC"}, 0, 0.1) == set()  # 0: off


def test_a_symbol_at_the_edge_does_not_churn() -> None:
    current = {"BTC", "ETH", "SOL"}
    close = OI | {"XRP": 2.1e9}  # XRP passes SOL by 5 %: not enough
    assert rank(close, current, 3, 0.1) == current
    passed = OI | {"XRP": 2.3e9}  # by 15 %: it replaces SOL
    assert rank(passed, current, 3, 0.1) == {"BTC", "ETH", "XRP"}
    assert rank(close, current, 3, 0.0) == {"BTC", "ETH", "XRP"}  # no hysteresis: the top 3


def test_several_newcomers_replace_the_smallest_in_turn() -> None:
    surge = OI | {"XRP": 20e9, "DOGE": 6e9}
    assert rank(surge, {"BTC", "ETH", "SOL"}, 3, 0.1) == {"XRP", "BTC", "DOGE"}


def test_a_symbol_without_open_interest_leaves_and_the_next_takes_its_place() -> None:
    delisted = {k: v for k, v in OI.items() if k != "ETH"}
    assert rank(delisted, {"BTC", "ETH", "SOL"}, 3, 0.1) == {"BTC", "SOL", "XRP"}


def test_a_smaller_n_keeps_the_largest_of_the_current_set() -> None:
    assert rank(OI, {"BTC", "ETH", "SOL"}, 2, 0.1) == {"BTC", "ETH"}


def test_ties_go_by_symbol() -> None:
    even = {"B": 1.0, "A": 1.0, "C": 1.0}
    assert rank(even, (), 2, 0.0) == {"B", "C"}  # the same input, the same set
