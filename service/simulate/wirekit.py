"""What every venue simulator's encoder shares: compact JSON text, the recorded listings
kept beside it (``<venue>/simulator/data/``), a ticker's day range, the top of book and the
ordinary trades' tape.

The venues' own wire formats stay in their packages (``service/venues/<name>/simulator/wire.py``);
this module knows nothing of any venue.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import msgspec

if TYPE_CHECKING:
    from .market import Quote

_encode = msgspec.json.Encoder().encode


def encode(obj: Any) -> str:
    """``obj`` as compact JSON text, as the venues send it."""
    return _encode(obj).decode()


def recorded_text(package: str, name: str) -> str:
    """The text of the data file ``name`` of ``package`` (a simulator's ``data/...json``)."""
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def recorded(package: str, name: str) -> Any:
    """The data file ``name`` of ``package``, decoded from JSON."""
    return json.loads(recorded_text(package, name))


@dataclass(slots=True)
class DayRange:
    """The 24 h open, high and low of a simulated last price (from the first push on)."""

    open: float = 0.0
    high: float = 0.0
    low: float = 0.0

    def last(self, mark: float, tick: float) -> float:
        """The last trade price: ``mark`` on the ``tick`` grid, taken into the range."""
        last = round(mark / tick) * tick
        if not self.open:
            self.open = self.high = self.low = last
        self.high, self.low = max(self.high, last), min(self.low, last)
        return last


def book_prices(mark: float, spread_bp: float, tick: float) -> tuple[float, float]:
    """The best bid and ask around ``mark`` ``spread_bp`` apart, on the ``tick`` grid and at
    least one tick apart (the simulated market's top of book, as a venue would quote it)."""
    half = mark * spread_bp / 20_000.0
    bid = math.floor((mark - half) / tick + 1e-9) * tick
    ask = math.ceil((mark + half) / tick - 1e-9) * tick
    return bid, max(ask, bid + tick)


TURNOVER_PER_S: Final = 1e-5
"""What a calm simulated perpetual trades a second, as a share of its open interest: about its
open interest a day (Bybit's and Bitget's majors trade 0.5 to 1.5 times theirs)."""
MAX_TILT: Final = 0.25
"""The takers' lean: at most 75 % of the tape on one side."""


def tape(q: Quote) -> tuple[float, float]:
    """``(taker buy, taker sell)`` base units of one second's ordinary trades of the simulated
    market's ``q`` (its liquidations trade on top, as the taker's close): the calm turnover
    scaled by the book's depth (volume dries up as books thin and leverage unwinds), leaning
    to the buyers while the mark is above the index and to the sellers below. No randomness:
    the scenario's prints and prices are the same with or without a tape."""
    total = q.oi_base * TURNOVER_PER_S * q.depth
    tilt = max(-MAX_TILT, min(MAX_TILT, (q.mark / q.index - 1.0) * 50.0)) if q.index > 0 else 0.0
    return total * (0.5 + tilt), total * (0.5 - tilt)
