"""Every registered venue's parser (and the tests' example venue's) on every frame the venue was
really captured sending (``VenueSpec.recorded``), checked against what the test works out by
itself:

- the frame is parsed, or dropped under a named reason: never as a parser bug;
- each event it yields passes the event checks (:func:`service.validate.problem`);
- the events come from a channel that the venue's shape (the drift checks' own description
  of its protocol, :mod:`service.venues.shape`) says carries them;
- a liquidation's size in base coin and in USD follow from its native quantity and price by
  the contract terms of the venue's recorded listing.

Each venue's own test module checks chosen frames value by value; this one runs them all, the
same way for every venue, so a new venue gets it by registering its recordings.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from example_venue import SPEC as EXAMPLE
from fuzz_support import RECV_MS, capture_frames, new_parser, recorded

from service.events import KIND_OF, Liquidation
from service.validate import problem
from service.venues import SPECS
from service.venues.base import BUG
from service.venues.shape import decode
from service.venues.spec import VenueSpec


@pytest.mark.parametrize("spec", [*SPECS, EXAMPLE], ids=lambda s: s.id)
def test_every_captured_frame_parses_to_events_its_shape_and_listing_agree_with(
    captures: Path, spec: VenueSpec
) -> None:
    parser = new_parser(captures, spec)
    markets = recorded(spec).markets(captures)
    kinds: Counter[str] = Counter()
    for frame in capture_frames(captures, spec):
        events = parser.parse(frame, RECV_MS)
        seen = spec.shape.classify(decode(frame))
        channel = spec.shape.channel(seen.channel) if seen.channel is not None else None
        for event in events:
            kind = KIND_OF[type(event)]
            kinds[kind.value] += 1
            assert problem(event) is None, (event, problem(event))
            if channel is not None:  # frames the service never subscribes to are not judged
                assert kind in channel.kinds, (channel.name, event)
            if isinstance(event, Liquidation):
                inst = markets[event.symbol]
                assert event.quantity > 0
                assert event.quantity_base == pytest.approx(
                    inst.base_units(event.quantity, event.price), rel=1e-9
                ), event
                assert event.notional_usd == pytest.approx(
                    inst.notional_usd(event.quantity, event.price), rel=1e-9
                ), event
    assert parser.stats.errors[BUG] == 0
    assert kinds["liquidation"] > 0, "the capture holds no liquidation the parser reads"
