"""The JSON bodies of the retained score topics. Pure: pressures in, ``{topic: bytes}`` out.

Every body carries ``"v": 1`` (its schema version) and times in ms since the epoch
(``updated_ms``). Instrument bodies are the detector's :class:`Pressure` as is. An asset or
market body carries the detector's own score of that scope (``score``, ``state``, ``side``,
``since_ms``, ``reasons``: open-interest weighted across venues, the same score the alerts
and the API read; ``"basis": "detector"``) and, for context, the instruments under it: the
highest score, how many are in each state, and the highest-scored one. Until the detector has
scored a scope (its first rounds), the worst instrument stands in (``"basis":
"instruments"``; ``calm`` < ``building`` < ``unwinding`` < ``cascade``). A liquidity body
(:func:`liquidity_body`) is one instrument's liquidity figures from its score, under their
own topic so that a subscriber to liquidity alone gets a small, fixed shape. See
``docs/mqtt.md`` for samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from ...scores import Pressure, Scope, State
from .topics import Topics

SCHEMA: Final = 1
SCOPE_SCHEMA: Final = 2
"""Asset and market bodies: 2 since their state is the detector's scope score (1: the worst
instrument's)."""
SEVERITY: Final = {State.CALM: 0, State.BUILDING: 1, State.UNWINDING: 2, State.CASCADE: 3}

_encode = msgspec.json.Encoder(order="sorted").encode


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON (keys sorted, so equal bodies are equal bytes)."""
    return _encode(body)


def instrument_body(p: Pressure) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(p)
    body["v"] = SCHEMA
    return body


LIQUIDITY_FIGURES: Final = (
    "spread_bp", "spread_z", "book_top_usd", "book_top_z", "depth_1pct_usd",
    "depth_1pct_change_pct", "depth_1pct_z", "volume_1m_buy_usd", "volume_1m_sell_usd",
    "volume_z",
)  # fmt: skip
"""The detector's liquidity features a liquidity body carries as numbers (null when absent)."""
LIQUIDITY_FLAGS: Final = ("depth_1pct_exact", "fragile")
"""Its 0/1 features, carried as booleans."""


def liquidity_body(p: Pressure) -> dict[str, Any] | None:
    """One instrument's liquidity (the detector's figures, docs/detector.md "Liquidity"):
    ``None`` when its score carries none (no top of book, depth or volume from its venue;
    the detector reports ``fragile`` for every instrument with any of them)."""
    f = p.features
    if not any(name in f for name in (*LIQUIDITY_FIGURES, *LIQUIDITY_FLAGS)):
        return None
    body: dict[str, Any] = {name: f.get(name) for name in LIQUIDITY_FIGURES}
    for name in LIQUIDITY_FLAGS:
        value = f.get(name)
        body[name] = None if value is None else value == 1.0
    return body | {
        "v": SCHEMA, "venue": p.venue, "symbol": p.symbol, "asset": p.asset,
        "updated_ms": p.updated_ms,
    }  # fmt: skip


def summary_body(pressures: list[Pressure], scope: Pressure | None = None) -> dict[str, Any]:
    """The body of an asset or the market: ``scope`` is the detector's score of it (``None``
    before its first: the worst of ``pressures`` stands in), ``pressures`` the instruments
    under it (non-empty)."""
    top = max(pressures, key=lambda p: (p.score, SEVERITY[p.state]))
    counts = dict.fromkeys((s.value for s in State), 0)
    for p in pressures:
        counts[p.state.value] += 1
    body: dict[str, Any] = {
        "v": SCOPE_SCHEMA,
        "score_max": top.score,
        "instruments": len(pressures),
        "states": counts,
        "top": {"venue": top.venue, "symbol": top.symbol, "score": top.score},
    }
    if scope is None:
        basis, source = "instruments", max(pressures, key=lambda p: (SEVERITY[p.state], p.score))
        updated_ms = max(p.updated_ms for p in pressures)
    else:
        basis, source, updated_ms = "detector", scope, scope.updated_ms
    return body | {
        "basis": basis,
        "score": source.score,
        "state": source.state.value,
        "side": source.side.value if source.side else None,
        "since_ms": source.since_ms,
        "reasons": source.reasons,
        "updated_ms": updated_ms,
    }


def retained_messages(
    topics: Topics, pressures: Iterable[Pressure], scopes: Iterable[Pressure] = ()
) -> dict[str, bytes]:
    """Every retained message: per instrument (``pressures``) its score and its liquidity
    (when its score carries any), per asset and the market (from ``scopes``, the detector's
    asset and market scores, with the instruments as context). An asset or market with no
    instrument scored has no message."""
    out: dict[str, bytes] = {}
    by_asset: dict[str, list[Pressure]] = defaultdict(list)
    everything: list[Pressure] = []
    for p in pressures:
        out[topics.instrument(p.venue, p.symbol)] = encode(instrument_body(p))
        liquidity = liquidity_body(p)
        if liquidity is not None:
            out[topics.liquidity(p.venue, p.symbol)] = encode(liquidity)
        by_asset[p.asset].append(p)
        everything.append(p)
    asset_scores: dict[str, Pressure] = {}
    market: Pressure | None = None
    for p in scopes:
        if p.scope is Scope.ASSET:
            asset_scores[p.asset] = p
        elif p.scope is Scope.MARKET:
            market = p
    for asset, group in by_asset.items():
        body = summary_body(group, asset_scores.get(asset))
        body["asset"] = asset
        body["venues"] = sorted({p.venue for p in group})
        out[topics.asset(asset)] = encode(body)
    if everything:
        body = summary_body(everything, market)
        body["assets"] = len(by_asset)
        out[topics.market] = encode(body)
    return out
