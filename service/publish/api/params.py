"""Time and query parameters: RFC 3339 or epoch milliseconds in, RFC 3339 UTC out.

Query parameters ``since`` and ``until`` accept either form; a bad value is a pydantic
error on that parameter, so it reaches the client as a 422 problem naming it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import Query
from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from ...scores import State
from ...store.pages import MAX_CURSOR_CHARS

_EPOCH_MS = re.compile(r"[0-9]{1,15}")
"""Up to 15 digits: epoch milliseconds up to the year 33658, well inside ``datetime``."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME_CHARS: Final = 64
TIME_EXAMPLES: Final = ["2026-11-24T03:43:16.123Z", "1795491796123"]


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as an RFC 3339 UTC string with milliseconds (``...T03:43:16.123Z``)."""
    seconds, millis = divmod(ts_ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def rfc3339_or_none(ts_ms: int | None) -> str | None:
    return None if ts_ms is None else rfc3339(ts_ms)


def parse_time(value: Any) -> int | None:
    """An RFC 3339 date-time with an offset, or epoch milliseconds, as epoch milliseconds."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.upper()) if len(text) <= _MAX_TIME_CHARS else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise PydanticCustomError(
            "timestamp",
            "expected an RFC 3339 date-time with an offset (2026-11-24T03:43:16.123Z) "
            "or epoch milliseconds",
        )
    ms = (parsed - _EPOCH) // timedelta(milliseconds=1)
    if ms < 0:
        raise PydanticCustomError("timestamp", "expected a time from 1970-01-01T00:00:00Z on")
    return ms


EpochMs = Annotated[
    int | None,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": "^[0-9]{1,15}$"},
            ],
            "examples": TIME_EXAMPLES,
        }
    ),
]

Since = Annotated[
    EpochMs,
    Query(description="Oldest time included: RFC 3339 or epoch milliseconds."),
]
Until = Annotated[
    EpochMs,
    Query(description="Newest time included: RFC 3339 or epoch milliseconds."),
]
MAX_NAME_CHARS: Final = 64
"""Venue ids, symbols and assets are far shorter (Deribit's options: about 25 characters)."""

VenueQuery = Annotated[
    str | None,
    Query(description="Only this venue.", max_length=MAX_NAME_CHARS, examples=["binance_usdm"]),
]
SymbolQuery = Annotated[
    str | None,
    Query(description="Only this native symbol.", max_length=MAX_NAME_CHARS, examples=["BTCUSDT"]),
]
AssetQuery = Annotated[
    str | None,
    Query(
        description="Only this base asset (case-insensitive).",
        max_length=MAX_NAME_CHARS,
        examples=["BTC"],
    ),
]
StateQuery = Annotated[State | None, Query(description="Only instruments in this state.")]
MinScoreQuery = Annotated[
    float | None, Query(ge=0, le=100, description="Only scores at or above this (0-100).")
]
LimitQuery = Annotated[
    int | None,
    Query(
        ge=1,
        description="Most items returned; defaults to `api.default_limit`, at most "
        "`api.max_limit` (over it: 422).",
    ),
]
LIQUIDATION_CURSOR_EXAMPLE: Final = "1795491796123-0~binance_usdm|BTCUSDT"
TRANSITION_CURSOR_EXAMPLE: Final = "1795491796123-0"
LiquidationCursorQuery = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page (anything else: 422).",
        max_length=MAX_CURSOR_CHARS,
        examples=[LIQUIDATION_CURSOR_EXAMPLE],
    ),
]
TransitionCursorQuery = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page (anything else: 422).",
        max_length=MAX_CURSOR_CHARS,
        examples=[TRANSITION_CURSOR_EXAMPLE],
    ),
]

Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-24T03:43:16.123Z"]),
]
"""An RFC 3339 UTC time with milliseconds, in responses."""
