"""Numbers as venues send them: JSON numbers, or decimal text, read so that no value a venue
sends can raise anything but :class:`~.base.ParseError` or reach a parser's state as a NaN
or an infinity.

* :data:`Finite` is the type of a wire struct's float field: msgspec checks its bounds in C
  while it decodes, so ``"NaN"``, ``"inf"`` (accepted as numbers in lax mode) and numbers
  beyond a float's range fail the decoding like any other schema error (the parser counts
  the frame as ``invalid_<channel>``), at no measurable cost.
* :func:`number`, :func:`optional_number` and :func:`integer` read the fields kept as text
  (where the exact text matters, e.g. for an event id): anything that is not a finite
  number raises :class:`~.base.ParseError` with ``bad_number`` or ``non_finite``, including
  a 400-digit integer (``float()`` raises ``OverflowError`` on it).

What a value *means* (a size must not be negative, a price must be positive) is checked on
the events, in :mod:`service.validate`.
"""

from __future__ import annotations

import math
from typing import Annotated, Final

import msgspec

from .base import BAD_NUMBER, NON_FINITE, ParseError

MAX_WIRE_NUMBER: Final = 1e300
"""Any finite float a venue can mean is far inside ``±1e300``; NaN fails both bounds."""

Finite = Annotated[float, msgspec.Meta(ge=-MAX_WIRE_NUMBER, le=MAX_WIRE_NUMBER)]
"""A float field that decodes only from a finite number (or its text, in lax mode)."""

MAX_INTEGER_DIGITS: Final = 30
"""Digits of an integer read from text (epoch milliseconds have 13): longer text is no
time or count a venue sends, and Python's ``int()`` is quadratic in the digits."""


def number(value: str | float) -> float:
    """``value`` (text or a JSON number) as a finite float; raises :class:`ParseError`
    (``bad_number``: not a number, or an integer too large for a float; ``non_finite``)."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ParseError(BAD_NUMBER) from None
    if not math.isfinite(x):
        raise ParseError(NON_FINITE)
    return x


def optional_number(value: str | float | None) -> float | None:
    """:func:`number`, with ``None`` and ``""`` (no value, e.g. a dated future's funding
    rate) read as ``None``."""
    if value is None or value == "":
        return None
    return number(value)


def integer(value: str | int) -> int:
    """``value`` (decimal text or a JSON integer) as an int; raises :class:`ParseError`
    (``bad_number``) on anything else, and on text of more than
    :data:`MAX_INTEGER_DIGITS` characters."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or len(value) > MAX_INTEGER_DIGITS:
        raise ParseError(BAD_NUMBER)
    try:
        return int(value)
    except ValueError:
        raise ParseError(BAD_NUMBER) from None
