"""The JSON bodies of the retained score topics. Pure: pressures in, ``{topic: bytes}`` out.

Every body carries ``"v": 1`` (its schema version) and times in ms since the epoch
(``updated_ms``). Instrument bodies are the detector's :class:`Pressure` as is; the asset and
market bodies summarise the instruments under them: the highest score, the worst state
(``calm`` < ``building`` < ``unwinding`` < ``cascade``), how many instruments are in each
state, and the instrument with the highest score. See ``docs/mqtt.md`` for samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from ...scores import Pressure, State
from .topics import Topics

SCHEMA: Final = 1
SEVERITY: Final = {State.CALM: 0, State.BUILDING: 1, State.UNWINDING: 2, State.CASCADE: 3}

_encode = msgspec.json.Encoder(order="sorted").encode


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON (keys sorted, so equal bodies are equal bytes)."""
    return _encode(body)


def instrument_body(p: Pressure) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(p)
    body["v"] = SCHEMA
    return body


def summary_body(pressures: list[Pressure]) -> dict[str, Any]:
    """The summary of a non-empty group of instruments (an asset or the whole market)."""
    top = max(pressures, key=lambda p: (p.score, SEVERITY[p.state]))
    worst = max(pressures, key=lambda p: (SEVERITY[p.state], p.score))
    counts = dict.fromkeys((s.value for s in State), 0)
    for p in pressures:
        counts[p.state.value] += 1
    return {
        "v": SCHEMA,
        "score_max": top.score,
        "state": worst.state.value,
        "side": worst.side.value if worst.side else None,
        "instruments": len(pressures),
        "states": counts,
        "top": {"venue": top.venue, "symbol": top.symbol, "score": top.score},
        "updated_ms": max(p.updated_ms for p in pressures),
    }


def retained_messages(topics: Topics, pressures: Iterable[Pressure]) -> dict[str, bytes]:
    """Every retained score message for ``pressures``: per instrument, per asset, market."""
    out: dict[str, bytes] = {}
    by_asset: dict[str, list[Pressure]] = defaultdict(list)
    everything: list[Pressure] = []
    for p in pressures:
        out[topics.instrument(p.venue, p.symbol)] = encode(instrument_body(p))
        by_asset[p.asset].append(p)
        everything.append(p)
    for asset, group in by_asset.items():
        body = summary_body(group)
        body["asset"] = asset
        body["venues"] = sorted({p.venue for p in group})
        out[topics.asset(asset)] = encode(body)
    if everything:
        body = summary_body(everything)
        body["assets"] = len(by_asset)
        out[topics.market] = encode(body)
    return out
