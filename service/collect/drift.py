"""The passive drift check of a running collector: what ``deleverage check-venues`` checks
live, watched quietly in the service.

Every ``collect.drift_check_s`` (an hour by default) the collector asks its venue's
:class:`DriftMonitor` what it suspects, and shows it in the health snapshot (``/v1/venues``
``drift``, ``deleverage_feed_drift_suspected``):

* ``silent``: a periodic channel (per the venue's documented rate, :mod:`service.venues.shape`)
  produced no event for longer than :attr:`~service.venues.shape.Channel.silent_after_s`
  while the venue was connected for at least as long (an outage is another alert's);
* ``missing_fields``: sampled complete rows of a channel lacked a field its parser needs;
* ``unknown_fields``: sampled rows carried fields the parser does not know.

Frames are sampled so that the check costs almost nothing: the first :data:`SAMPLE_FIRST`
frames of each period, then one in :data:`SAMPLE_EVERY`, each decoded once more and compared
with the channel's fields. Liquidation channels are event-driven: silence there can mean a
quiet market, so it is never called drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import structlog

from ..events import Kind
from ..health import DriftSuspicion
from ..venues.shape import FieldCount, Shape, decode

log = structlog.get_logger(__name__)

SAMPLE_FIRST: Final = 200
SAMPLE_EVERY: Final = 1000


class DriftMonitor:
    """One venue's passive drift check: :meth:`observe` every frame, :meth:`evaluate` once
    a period."""

    def __init__(self, venue: str, shape: Shape) -> None:
        self.venue = venue
        self.shape = shape
        self.frames = 0
        """Frames seen this period (counted by the caller: see :meth:`observe`)."""
        self.next_sample = 1
        """The frame count at which the next frame is inspected."""
        self.sampled = 0
        self.fields: dict[str, FieldCount] = {}
        self.bugs = 0
        """Sampled frames the shape could not look at (a bug: logged once, then counted)."""

    def observe(self, frame: str | bytes) -> None:
        """Count ``frame``, and :meth:`inspect` it when it is sampled. (The collector inlines
        this: ``frames += 1``, and ``inspect`` when ``frames >= next_sample``, a comparison a
        frame instead of a call.)"""
        self.frames += 1
        if self.frames >= self.next_sample:
            self.inspect(frame)

    def inspect(self, frame: str | bytes) -> None:
        """Decode ``frame`` and count its rows' fields; sets the next sample. Never raises:
        the check is advisory, the frame is the parser's to count and drop."""
        n = self.frames
        self.next_sample = n + 1 if n < SAMPLE_FIRST else (n // SAMPLE_EVERY + 1) * SAMPLE_EVERY
        self.sampled += 1
        try:
            seen = self.shape.classify(decode(frame))
            channel = (
                self.shape.channel(seen.channel) if seen.kind == "data" and seen.channel else None
            )
            if channel is not None:
                self.fields.setdefault(channel.name, FieldCount()).add(channel, seen)
        except Exception as exc:  # counted and logged once: the check is advisory only
            self.bugs += 1
            if self.bugs == 1:
                log.error("drift check bug: frame skipped", venue=self.venue, exc_info=exc)

    def evaluate(
        self, now_ms: int, last_event_ms: Mapping[Kind, int], connected_since_ms: int | None
    ) -> list[DriftSuspicion]:
        """What this period suggests (and a new period begins). ``last_event_ms``: the
        receive time of the venue's latest event of each kind; ``connected_since_ms``: since
        when every connection is up (``None``: not all are)."""
        out: list[DriftSuspicion] = []
        for channel in self.shape.channels:
            after_s = channel.silent_after_s
            if after_s is None or connected_since_ms is None:
                continue
            if now_ms - connected_since_ms < after_s * 1000:
                continue  # not connected long enough to tell
            last = max((last_event_ms.get(k, 0) for k in channel.kinds), default=0)
            quiet_s = (now_ms - max(last, connected_since_ms)) / 1000
            if quiet_s >= after_s:
                detail = (
                    f"no event for {quiet_s:.0f} s"
                    + ("" if last else " (none since connected)")
                    + f"; documented: {channel.rate}"
                )
                out.append(DriftSuspicion(channel.name, "silent", detail))
        for name, count in sorted(self.fields.items()):
            if count.missing:
                out.append(
                    DriftSuspicion(name, "missing_fields", _counts(count.missing, count.rows))
                )
            if count.unknown:
                out.append(
                    DriftSuspicion(name, "unknown_fields", _counts(count.unknown, count.rows))
                )
        self.frames = self.sampled = 0
        self.next_sample = 1
        self.fields = {}
        return out


def _counts(fields: Mapping[str, int], rows: int) -> str:
    shown = ", ".join(
        f"{name} ({n} of {rows} sampled rows)" for name, n in sorted(fields.items())[:10]
    )
    return shown + (f" and {len(fields) - 10} more" if len(fields) > 10 else "")
