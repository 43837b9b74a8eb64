"""A liquidation's identity as the venue put it on the wire and as the service stored it, so
that what a simulator sent and what Redis holds can be compared one liquidation at a time."""

from __future__ import annotations

from collections import Counter
from typing import Any

from service.events import Liquidation
from service.simulate.server import canonical_id as canonical

Id = tuple[str, str]


def sent_ids(sim: Any, since: int = 0, upto: int | None = None) -> Counter[Id]:
    """What ``sim`` sent live in ``pushed[since:upto]``, each identity as often as sent."""
    return Counter(canonical(i) for i in sim.sent_ids(since, upto).elements())


def stored_id(x: Liquidation) -> Id:
    return canonical((x.symbol, x.event_id))


def assert_stored_once(got: list[Id], sent: Counter[Id]) -> None:
    """Nothing stored twice, and nothing stored that the venue did not send."""
    twice = [i for i, n in Counter(got).items() if n > sent[i]]
    assert not twice, f"stored more often than sent: {twice[:5]}"
    unknown = set(got) - set(sent)
    assert not unknown, f"stored but never sent: {sorted(unknown)[:5]}"
