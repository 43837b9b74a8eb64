"""Is a venue's feed fresh? Shared by ``/readyz`` and ``/v1/venues``."""

from __future__ import annotations

from typing import Final

from ...health import HealthSnapshot

SNAPSHOT_MAX_AGE_MS: Final = 10_000
"""The collector writes its snapshot every second; ten missed writes mean it is gone."""


def feed_problem(snapshot: HealthSnapshot | None, now_ms: int, watchdog_s: float) -> str | None:
    """Why the venue's feed is not fresh, or ``None`` when it is."""
    if snapshot is None:
        return "no health snapshot"
    age_ms = now_ms - snapshot.updated_ms
    if age_ms > SNAPSHOT_MAX_AGE_MS:
        return f"health snapshot is {age_ms / 1000:.1f} s old"
    if not snapshot.connected:
        return f"not connected ({snapshot.last_error or 'no error recorded'})"
    if snapshot.last_message_ms is None:
        return "no message received yet"
    silent_ms = now_ms - snapshot.last_message_ms
    if snapshot.poll_interval_s is not None:  # polled: an answer per interval at least
        limit_s = max(watchdog_s, 2 * snapshot.poll_interval_s)
        if silent_ms > limit_s * 1000:
            return f"last REST answer {silent_ms / 1000:.1f} s ago (limit {limit_s:g} s)"
        return None
    if silent_ms > watchdog_s * 1000:
        return f"last message {silent_ms / 1000:.1f} s ago (watchdog {watchdog_s:g} s)"
    return None
