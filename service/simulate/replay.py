"""Recorded frames from a captures file, to be sent again exactly as they were received.

A captures file is JSONL: one envelope per line whose ``raw`` field is the message text
(see ``shared/captures/README.md``). Only frames a venue server can replay are kept: the
caller picks them with a predicate on the decoded message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    raw: str
    """The message text, byte for byte as recorded."""
    kind: str
    """The capture's ``kind`` (``liquidation``, ``mark_index``, ...)."""
    message: Any
    """``raw`` decoded."""


def load_frames(path: str | Path, keep: Callable[[Any], bool]) -> list[RecordedFrame]:
    """The frames of ``path`` whose decoded message satisfies ``keep``, in file order.

    Raises ``ValueError`` naming the line of an envelope that is not JSON or lacks ``raw``.
    """
    out: list[RecordedFrame] = []
    with Path(path).open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                env = json.loads(line)
                raw = env["raw"]
                message = json.loads(raw)
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a captures envelope: {exc}") from exc
            if keep(message):
                out.append(RecordedFrame(raw, str(env.get("kind", "")), message))
    return out


def cycle(frames: list[RecordedFrame]) -> Iterator[RecordedFrame]:
    """The frames in order, forever (nothing if there are none)."""
    while frames:
        yield from frames
