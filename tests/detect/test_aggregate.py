"""Asset and market scores from their members (:mod:`service.detect.aggregate`): the
weighted evidence, the members that count, the side vote and the market's breadth; the
market's combination kept between rounds (``MarketSums``) against ``combine``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import DetectorSettings
from service.detect.aggregate import MarketSums, Part, combine
from service.events import Side
from service.scores import State

S = DetectorSettings()
CALM, UNWINDING, CASCADE, BUILDING = State.CALM, State.UNWINDING, State.CASCADE, State.BUILDING


def part(
    name: str,
    oi_usd: float,
    state: State = CALM,
    x_unwind: float = 0.0,
    x_build: float = 0.0,
    side: Side | None = None,
    quality: float = 1.0,
    factor: float = 1.0,
) -> Part:
    score = 100 * max(x_unwind, x_build) / (1 + max(x_unwind, x_build))
    return Part(name, oi_usd, quality, factor, x_unwind, x_build, state, state, side, score,
                f"{name} reason")  # fmt: skip


def test_one_venue_with_40_percent_of_the_oi_in_a_strong_cascade_moves_the_asset() -> None:
    """The module's example: x = 9 on 40 % of the open interest is x = 3.6 (score 78)."""
    c = combine([part("a", 40.0, CASCADE, 9.0, side=Side.LONG), part("b", 60.0)], S)
    assert c is not None
    assert c.x_unwind == pytest.approx(3.6)
    assert c.score == 78.3
    assert (c.candidate, c.side) == (CASCADE, Side.LONG)
    assert c.features["members_under_pressure"] == 1.0
    assert c.features["oi_share_under_pressure"] == 0.4
    assert c.reasons[0] == "1 of 2 under pressure (40% of open interest)"


def test_evidence_of_a_member_still_calm_counts_for_nothing() -> None:
    """Its persistence, dwell or burn-in keeps it calm: the asset must not flag."""
    c = combine([part("a", 50.0, CALM, 5.0), part("b", 50.0)], S)
    assert c is not None
    assert (c.x_unwind, c.candidate, c.score) == (0.0, CALM, 0.0)


def test_stale_members_weigh_nothing_and_all_stale_is_no_score() -> None:
    hot = part("a", 10.0, UNWINDING, 2.0, side=Side.SHORT)
    stale = part("b", 90.0, quality=0.0)
    c = combine([hot, stale], S)
    assert c is not None
    assert c.x_unwind == pytest.approx(2.0)  # b's 90 % of the OI is not in the weights
    assert c.quality == pytest.approx(0.1)  # but it is in the OI-weighted quality
    assert combine([stale], S) is None


def test_a_sampled_feed_weighs_less() -> None:
    sampled = part("binance", 50.0, UNWINDING, 4.0, factor=S.sampled_weight)
    c = combine([sampled, part("okx", 50.0)], S)
    assert c is not None
    assert c.x_unwind == pytest.approx(4.0 * 25 / 75)


def test_cascade_needs_half_of_the_unwinding_evidence_from_members_in_a_cascade() -> None:
    def candidate(x_cascade: float, x_unwinding: float) -> State:
        c = combine(
            [part("a", 50.0, CASCADE, x_cascade), part("b", 50.0, UNWINDING, x_unwinding)], S
        )
        assert c is not None
        return c.candidate

    assert candidate(2.0, 2.0) is CASCADE
    assert candidate(1.0, 3.0) is UNWINDING


def test_the_side_is_the_evidence_weighted_vote() -> None:
    """Weight times evidence: 30 x 6 short outvotes 70 x 2 long."""
    c = combine([part("a", 30.0, UNWINDING, 6.0, side=Side.SHORT),
                 part("b", 70.0, UNWINDING, 2.0, side=Side.LONG)], S)  # fmt: skip
    assert c is not None
    assert c.side is Side.SHORT
    tie = combine([part("a", 50.0, UNWINDING, 2.0, side=Side.SHORT),
                   part("b", 50.0, UNWINDING, 2.0, side=Side.LONG)], S)  # fmt: skip
    assert tie is not None
    assert tie.side is None


def test_building_is_the_mirror() -> None:
    c = combine([part("a", 100.0, BUILDING, x_build=2.0, side=Side.LONG)], S)
    assert c is not None
    assert (c.candidate, c.side, c.score) == (BUILDING, Side.LONG, 66.7)


def test_the_market_needs_breadth() -> None:
    """One asset under pressure among four: its evidence counts in proportion to the
    breadth over market_breadth_enter (0.25 / 0.5); with two of four, in full."""
    one = [part("BTC", 25.0, CASCADE, 3.0, side=Side.LONG)] + [
        part(a, 25.0) for a in ("ETH", "SOL", "XRP")
    ]
    c = combine(one, S, breadth=True)
    assert c is not None
    assert c.features["breadth"] == 0.25
    assert c.x_unwind == pytest.approx(3.0 * 0.25 * (0.25 / S.market_breadth_enter))
    assert c.candidate is CALM
    two = [*one[:1], part("ETH", 25.0, CASCADE, 3.0, side=Side.LONG), *one[2:]]
    c = combine(two, S, breadth=True)
    assert c is not None
    assert c.x_unwind == pytest.approx(3.0 * 0.5)
    assert c.candidate is CASCADE
    # fewer assets than market_min_assets: no breadth factor
    c = combine(one[:2], S, breadth=True)
    assert c is not None
    assert c.x_unwind == pytest.approx(3.0 * 0.5)


# few distinct values: ties (equal scores, equal evidence) are what a stable order must keep
_x = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 3.0]), st.floats(0.0, 50.0))
_parts = st.builds(
    Part,
    name=st.sampled_from(["BTC", "ETH", "SOL"]),
    oi_usd=st.one_of(st.sampled_from([1.0, 25.0, 1e9]), st.floats(1e-3, 1e10)),
    quality=st.sampled_from([0.0, 0.5, 0.75, 1.0]),
    weight_factor=st.sampled_from([1.0, 0.25]),
    x_unwind=_x,
    x_build=_x,
    candidate=st.sampled_from(list(State)),
    state=st.sampled_from(list(State)),
    side=st.sampled_from([None, Side.LONG, Side.SHORT]),
    score=st.one_of(st.sampled_from([0.0, 50.0, 90.0]), st.floats(0.0, 100.0)),
    top_reason=st.sampled_from([None, "a reason", "another"]),
)
# one round's changes: (which asset, its new part or None: no score yet / no open interest)
_changes = st.lists(st.tuples(st.integers(0, 11), st.one_of(_parts, st.none())), max_size=6)


@given(st.lists(_changes, min_size=1, max_size=12))
def test_the_market_kept_between_rounds_is_combine_of_its_members(
    rounds: list[list[tuple[int, Part | None]]],
) -> None:
    """After each round's changes (a new part, a part gone, a new asset, the same part
    kept), the kept sums give exactly what ``combine`` gives from scratch."""
    market = MarketSums(S)
    members: dict[str, Part | None] = {}
    for changes in rounds:
        for asset, p in changes:
            members[f"A{asset}"] = p
        expected = combine([p for p in members.values() if p is not None], S, breadth=True)
        assert market.combine(members.items()) == expected


def test_the_market_kept_between_rounds_follows_a_change_of_order() -> None:
    """Another order of the same members (a detector shard's members as read) is combined
    in that order, as ``combine`` does."""
    a, b = part("A", 10.0, UNWINDING, 2.0, side=Side.LONG), part("B", 30.0, CASCADE, 4.0)
    market = MarketSums(S)
    assert market.combine([("A", a), ("B", b)]) == combine([a, b], S, breadth=True)
    assert market.combine([("B", b), ("A", a)]) == combine([b, a], S, breadth=True)
    assert market.combine([("B", None), ("A", a)]) == combine([a], S, breadth=True)
    assert market.combine([]) is None
