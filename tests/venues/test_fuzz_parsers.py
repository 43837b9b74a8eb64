"""Every venue parser on 20,000 hostile frames made from its real captures (see
:mod:`fuzz_support`): nothing escapes ``parse()``, nothing it emits fails the event checks,
and no bad input is mistaken for a parser bug. One test per registered venue (and the tests'
example venue): a new venue is fuzzed as soon as it registers its recordings
(``VenueSpec.recorded``).

``FUZZ_FRAMES`` and ``FUZZ_SEED`` run it longer or from another seed, e.g.
``FUZZ_FRAMES=200000 FUZZ_SEED=7 pytest tests/venues/test_fuzz_parsers.py -s``."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from example_venue import SPEC as EXAMPLE
from fuzz_support import fuzz

from service.validate import REASONS
from service.venues import SPECS
from service.venues.base import BAD_NUMBER
from service.venues.spec import VenueSpec

FRAMES = int(os.environ.get("FUZZ_FRAMES", "20000"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))


@pytest.mark.parametrize("spec", [*SPECS, EXAMPLE], ids=lambda s: s.id)
def test_no_hostile_frame_escapes_or_yields_an_invalid_event(
    captures: Path, spec: VenueSpec
) -> None:
    result = fuzz(captures, spec, FRAMES, seed=SEED + zlib.crc32(spec.id.encode()))
    print(result.summary())
    assert result.frames == FRAMES
    assert result.escapes == {}, result.samples
    assert result.invalid == {}, result.samples
    assert result.drops["bug"] == 0
    # The mutations reached the parser's every layer: frames it could not decode at all,
    # frames too deep for the decoder, and events whose values were dropped.
    assert result.drops["invalid_json"] > FRAMES // 20
    assert result.drops["too_deep"] > FRAMES // 100
    assert sum(result.drops[r] for r in (*REASONS, BAD_NUMBER)) > 0
    assert result.events > 0
