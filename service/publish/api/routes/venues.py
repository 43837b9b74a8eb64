"""``GET /v1/venues``: each venue connection's health."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter

from ....config import Settings, VenueSettings
from ....health import HealthSnapshot
from ..deps import SettingsDep, ViewDep
from ..freshness import feed_problem
from ..models import VenueList
from ..params import rfc3339, rfc3339_or_none
from ..problems import responses
from ..snapshot import View

router = APIRouter(tags=["venues"])


@router.get(
    "/venues",
    response_model=VenueList,
    summary="Health of every venue connection",
    description="Every venue that has reported health, plus enabled venues that have not "
    "reported yet (shown as not connected). Sorted by venue.",
    responses=responses(503),
)
async def list_venues(view: ViewDep, settings: SettingsDep) -> Any:
    # Freshness is judged as of the snapshot's read (at most ``api.snapshot_s`` ago).
    return view.json("venues", VenueList, partial(_venues, view, settings))


def _venues(view: View, settings: Settings) -> dict[str, Any]:
    stored = view.health
    now_ms = view.read_ms
    watchdog_s = settings.collect.watchdog_s
    items = {v: _venue(snapshot, now_ms, watchdog_s) for v, snapshot in stored.items()}
    for name, venue in settings.enabled_venues().items():
        if name not in items:
            items[name] = _never_reported(name, venue, feed_problem(None, now_ms, watchdog_s))
    return {"items": [items[v] for v in sorted(items)]}


def _venue(s: HealthSnapshot, now_ms: int, watchdog_s: float) -> dict[str, Any]:
    problem = feed_problem(s, now_ms, watchdog_s)
    return {
        "venue": s.venue,
        "enabled": s.enabled,
        "connected": s.connected,
        "fresh": problem is None,
        "problem": problem,
        "mode": s.mode,
        "ws_url": s.ws_url or None,
        "rest_url": s.rest_url,
        "liquidations": _liquidations(s),
        "liquidations_sampled": None if s.mode == "polled" else s.liquidations_sampled,
        "poll_interval_s": s.poll_interval_s,
        "connected_since": rfc3339_or_none(s.connected_since_ms),
        "last_message_at": rfc3339_or_none(s.last_message_ms),
        "last_event_at": rfc3339_or_none(s.last_event_ms),
        "delay_s": None if s.delay_ms is None else s.delay_ms / 1000,
        "liquidation_delay_s": (
            None if s.liquidation_delay_ms is None else s.liquidation_delay_ms / 1000
        ),
        "updated_at": rfc3339(s.updated_ms),
        "messages_total": s.messages_total,
        "events_total": s.events_total,
        "reconnects_total": s.reconnects_total,
        "parse_errors_total": s.parse_errors_total,
        "parse_errors": s.parse_errors,
        "oi_polls_total": s.oi_polls_total,
        "oi_poll_failures_total": s.oi_poll_failures_total,
        "instruments": s.instruments,
        "subscribed_symbols": s.subscribed_symbols,
        "last_error": s.last_error,
        "rest_failures": s.rest_failures,
        "drift": [{"channel": d.channel, "reason": d.reason, "detail": d.detail} for d in s.drift],
        "drift_checked_at": rfc3339_or_none(s.drift_checked_ms),
        "shards": s.shards,
    }


def _liquidations(s: HealthSnapshot) -> str:
    if s.mode == "polled":
        return "none"
    return "sampled" if s.liquidations_sampled else "complete"


def _never_reported(name: str, venue: VenueSettings, problem: str | None) -> dict[str, Any]:
    return {
        "venue": name,
        "enabled": venue.enabled,
        "connected": False,
        "fresh": False,
        "problem": problem,
        "mode": "stream" if venue.ccxt is None else "polled",
        "ws_url": None if venue.ws_url is None else str(venue.ws_url),
        "rest_url": None if venue.rest_url is None else str(venue.rest_url),
        "liquidations": None if venue.ccxt is None else "none",
        "liquidations_sampled": None,
        "poll_interval_s": None if venue.ccxt is None else venue.ccxt.poll_interval_s,
        "connected_since": None,
        "last_message_at": None,
        "last_event_at": None,
        "delay_s": None,
        "liquidation_delay_s": None,
        "updated_at": None,
        "messages_total": 0,
        "events_total": 0,
        "reconnects_total": 0,
        "parse_errors_total": 0,
        "parse_errors": {},
        "oi_polls_total": 0,
        "oi_poll_failures_total": 0,
        "instruments": 0,
        "subscribed_symbols": None if venue.symbols == "all" else len(venue.symbols),
        "last_error": None,
        "rest_failures": {},
        "drift": [],
        "drift_checked_at": None,
        "shards": [],
    }
