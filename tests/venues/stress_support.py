"""What the leverage-stress parser tests share: the fixture bodies (docs examples, see
fixtures/stress/README.md) and instruments built for the symbols they name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.venues.base import Instrument

FIXTURES = Path(__file__).parent / "fixtures" / "stress"


def body(name: str) -> bytes:
    """The raw bytes of fixture ``name`` (what the venue sent, as the parsers receive it)."""
    return (FIXTURES / name).read_bytes()


def doc(name: str) -> Any:
    """Fixture ``name`` decoded by the standard library (for expected values: a second
    reading, independent of the parsers' msgspec)."""
    return json.loads(body(name))


def linear(venue: str, symbol: str, base: str, quote: str = "USDT") -> Instrument:
    return Instrument(venue=venue, symbol=symbol, base=base, quote=quote, linear=True)


def markets(venue: str, symbols: dict[str, str]) -> dict[str, Instrument]:
    """Linear instruments of ``venue``: symbol -> base."""
    return {s: linear(venue, s, b) for s, b in symbols.items()}
