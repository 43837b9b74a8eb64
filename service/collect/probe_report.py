"""The report of ``deleverage check-venues``: a table (venue x channel) with the problems
under it, or JSON. Pure: results in, text out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from .probe import ChannelCheck, VenueCheck

COLUMNS: Final = (
    "venue", "channel", "connected", "acknowledged", "first frame", "events", "unknown fields",
    "verdict",
)  # fmt: skip


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "NO"


def _row(venue: str, c: ChannelCheck) -> tuple[str, ...]:
    first = "-" if c.first_frame_s is None else f"{c.first_frame_s:.1f} s"
    name = f"{c.channel} (REST)" if c.rest else c.channel
    acknowledged = "-" if c.rest else _yes_no(c.acknowledged)
    unknown = str(len(c.fields.unknown)) if c.fields.rows else "-"
    return (venue, name, _yes_no(c.connected), acknowledged, first, str(c.events), unknown,
            c.verdict.upper())  # fmt: skip


def table(results: Sequence[VenueCheck]) -> str:
    """The results as a text table, then every problem and warning, one a line."""
    rows: list[tuple[str, ...]] = [COLUMNS]
    for r in results:
        listed = r.instruments is not None
        rows.append((r.venue, "instruments (REST)", _yes_no(listed), "-", "-",
                     str(r.instruments or 0), "-", "OK" if listed else "FAIL"))  # fmt: skip
        rows += [_row(r.venue, c) for c in r.channels]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [
        p for r in results for p in (*r.problems, *(q for c in r.channels for q in c.problems))
    ]
    warnings = [w for r in results for c in r.channels for w in c.warnings]
    notes = [f"{r.venue}: {n}" for r in results for n in r.notes]
    for title, items in (("FAILED", failures), ("warnings", warnings), ("notes", notes)):
        if items:
            lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    verdicts = {r.verdict for r in results}
    summary = "FAIL" if "fail" in verdicts else "ok (with warnings)" if "warn" in verdicts else "ok"
    lines += ["", f"{len(results)} venue(s) checked: {summary}"]
    return "\n".join(lines)


def as_json(results: Sequence[VenueCheck]) -> str:
    ok = all(r.verdict != "fail" for r in results)
    return json.dumps({"ok": ok, "venues": [r.to_json() for r in results]}, indent=2)
