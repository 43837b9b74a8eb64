"""Response items shared by the REST routes and the live stream: one shape per thing, so that
a ``score`` event of ``/v1/stream`` reads like an item of ``/v1/pressure``, a ``transition``
like one of ``/v1/transitions``, and so on. Times are RFC 3339 UTC strings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ...alerts.model import Alert
from ...detect.liquidity import depth_1pct
from ...events import BookDepth, Event, Liquidation
from ...scores import Pressure, Transition
from .params import rfc3339, rfc3339_or_none

DEPTH_FIGURES: Final = ("depth_1pct_usd", "depth_1pct_change_pct", "depth_1pct_z")
"""The detector's depth features that items carry under the same names."""
FLAGS: Final = ("depth_1pct_exact", "fragile")
"""The detector's 0/1 features that items carry as booleans."""


def depth_and_fragility(features: Mapping[str, float | None]) -> dict[str, Any]:
    """Depth within 1 % of mid against its baseline, and the fragility warning, from a score's
    features: ``None`` for each one the score does not carry (an instrument without a
    followed book, or without liquidity figures at all)."""
    out: dict[str, Any] = {name: features.get(name) for name in DEPTH_FIGURES}
    for name in FLAGS:
        value = features.get(name)
        out[name] = None if value is None else value == 1.0
    return out


def newest_depth_1pct(ev: Event | None) -> dict[str, Any]:
    """``depth_1pct_usd`` and ``depth_1pct_exact`` of an instrument's newest book depth, as
    the detector computes them (:func:`~service.detect.liquidity.depth_1pct`), for an item
    that shows the book whether or not a score carries them; nothing without one."""
    if not isinstance(ev, BookDepth):
        return {}
    usd, exact = depth_1pct(ev)
    return {"depth_1pct_usd": usd, "depth_1pct_exact": exact}


def pressure_item(p: Pressure) -> dict[str, Any]:
    return {
        "venue": p.venue,
        "symbol": p.symbol,
        "asset": p.asset,
        "score": p.score,
        "state": p.state,
        "side": p.side,
        "updated_at": rfc3339(p.updated_ms),
        "since": rfc3339(p.since_ms),
        "forced_share": p.forced_share,
        "data_quality": p.data_quality,
        "features": p.features,
        "reasons": p.reasons,
        **depth_and_fragility(p.features),
    }


def transition_item(stream_id: str, t: Transition) -> dict[str, Any]:
    return {
        "id": stream_id,
        "scope": t.scope,
        "venue": t.venue,
        "symbol": t.symbol,
        "asset": t.asset,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "side": t.side,
        "score": t.score,
        "ts": rfc3339(t.ts_ms),
        "forced_share": t.forced_share,
        "data_quality": t.data_quality,
        "features": t.features,
        "reasons": t.reasons,
    }


def liquidation_item(e: Liquidation) -> dict[str, Any]:
    return {
        "venue": e.venue,
        "symbol": e.symbol,
        "asset": e.base,
        "side": e.side,
        "price": e.price,
        "quantity": e.quantity,
        "quantity_base": e.quantity_base,
        "notional_usd": e.notional_usd,
        "sampled": e.sampled,
        "ts": rfc3339(e.ts_ms),
    }


def alert_item(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "fingerprint": a.fingerprint, "rule": a.rule, "scope": a.scope,
        "key": a.key, "venue": a.venue, "symbol": a.symbol, "asset": a.asset,
        "status": a.status, "state": a.state, "peak_state": a.peak_state, "side": a.side,
        "score": a.score, "reasons": a.reasons, "opened_at": rfc3339(a.opened_ms),
        "updated_at": rfc3339(a.updated_ms), "resolved_at": rfc3339_or_none(a.resolved_ms),
        "receivers": a.receivers,
        "history": [
            {"kind": c.kind.value, "at": rfc3339(c.ts_ms), "state": c.state, "score": c.score}
            for c in a.changes
        ],
    }  # fmt: skip
