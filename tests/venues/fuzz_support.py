"""Hostile frames for every venue parser: the real captures, each venue's recorded instrument
list, and a seeded mutator that turns a real frame into what a broken or hostile venue could
send (bad numbers, type swaps, missing keys, truncation, deep nesting, garbage, nothing).

:func:`fuzz` feeds one parser ``n`` frames (about one in five left intact, so the parser's
state builds up and the mutations reach the code past the first lookups) and reports what
came out: exceptions that escaped ``parse()``, events that fail
:func:`service.validate.problem`, and the parser's drops by reason.
"""

from __future__ import annotations

import json
import random
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.config import VenueSettings
from service.validate import problem
from service.venues import SPECS
from service.venues.base import Parser
from service.venues.recorded import Recorded
from service.venues.spec import VenueSpec

RECV_MS = 1_780_000_000_000
"""The receive time given to the parser (2026-05-28): after every captured frame."""
MAX_SEED_BYTES = 16_384
"""Captured frames larger than this are not mutated (Hyperliquid's 96 KB all-markets
push, which the service never subscribes to): they would cost most of the time budget."""


# -- captures and instruments ------------------------------------------------------------------


def spec_of(venue: VenueSpec | str) -> VenueSpec:
    """A registered venue's spec by its id, or the spec given (the tests' example venue)."""
    if isinstance(venue, VenueSpec):
        return venue
    return next(s for s in SPECS if s.id == venue)


def recorded(venue: VenueSpec | str) -> Recorded:
    spec = spec_of(venue)
    assert spec.recorded is not None, f"{spec.id} registers no recordings (VenueSpec.recorded)"
    return spec.recorded


def capture_frames(captures: Path, venue: VenueSpec | str) -> list[str]:
    """The frames a venue sent in its capture file (not the client's requests)."""
    return recorded(venue).frames(captures)


def new_parser(captures: Path, venue: VenueSpec | str) -> Parser:
    """The venue's own parser (``Venue.new_parser``) on the instruments of its recorded
    listing, every symbol wanted."""
    spec = spec_of(venue)
    return spec.venue(VenueSettings()).new_parser(dict(recorded(spec).markets(captures)), None)


# -- the mutator -------------------------------------------------------------------------------

_HOLE = "\x00hole\x00"
_HOLE_JSON = json.dumps(_HOLE)
BIG_INT = "1" + "0" * 400
"""A 400-digit integer: a Python int, and an OverflowError in ``float()``."""
RAW_TOKENS = (
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", BIG_INT, "-" + BIG_INT, "1e-400",
    "-0", "0", "-1", "-12.5", "99999999999999999999", "1E+308", "[]", "{}", "null", "true",
    "false", '""', '"x"', '"NaN"', '"nan"', '"Infinity"', '"-Infinity"', '"inf"', '"-inf"',
    '"1e400"', f'"{BIG_INT}"', '"-1"', '"-0.5"', '"0"', '"1_000"', '" 12 "', '"0x10"',
    '"1e5"', '"12abc"', '[1]', '{"a":1}', '"\\u0000"', '"' + "9" * 5000 + '"',
)  # fmt: skip
"""What replaces a value: bad numbers as JSON tokens and as strings, negatives, huge and
tiny numbers, non-numeric strings, and every other JSON type."""
PREFERRED = 0.7
"""How often a mutation starts from a frame that gives events when intact: those lead the
mutation past the envelope and the instrument lookup, into the values."""
EMPTY = ("", " ", "null", "[]", "{}", "0", '""', "\n", "true", "[null]", "[{}]")


def _nest(inner: str, depth: int, rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


@dataclass
class _Seed:
    text: str
    tree: Any
    slots: list[tuple[Any, Any]]
    """(container, key) of every value in the tree, containers included."""
    dicts: list[dict[str, Any]]
    texts: list[tuple[Any, Any]]
    """The slots that hold a string."""


def _seed(text: str) -> _Seed:
    try:
        tree = json.loads(text)
    except ValueError:
        return _Seed(text, None, [], [], [])
    slots: list[tuple[Any, Any]] = []
    dicts: list[dict[str, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            dicts.append(node)
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        for key, value in items:
            slots.append((node, key))
            stack.append(value)
    texts = [(c, k) for c, k in slots if isinstance(c[k], str)]
    return _Seed(text, tree, slots, dicts, texts)


class Mutator:
    """Seeded mutations of real frames. Each call to :meth:`mutate` applies one family:

    ``value`` (one to three values replaced by :data:`RAW_TOKENS`), ``text`` (a string
    edited: cut, extended, upper-cased, repeated, emptied), ``type_swap`` (a value
    replaced by a container or a container by a scalar), ``delete`` (keys removed),
    ``truncate``, ``deep`` (a value, or the frame, nested 100 to 100,000 levels),
    ``garbage`` (random bytes, alone or around the frame), ``empty``."""

    FAMILIES = ("value", "value", "value", "text", "type_swap", "delete", "truncate", "deep",
                "garbage", "empty")  # fmt: skip

    def __init__(self, frames: list[str], seed: int, preferred: Sequence[str] = ()) -> None:
        self.rng = random.Random(seed)
        self.seeds = [_seed(f) for f in frames if len(f) <= MAX_SEED_BYTES]
        self.preferred = [_seed(f) for f in preferred if len(f) <= MAX_SEED_BYTES]
        if not self.seeds:
            raise ValueError("no frame to mutate")

    def mutate(self) -> tuple[str, str | bytes]:
        """(family, frame)."""
        rng = self.rng
        pool = self.preferred if self.preferred and rng.random() < PREFERRED else self.seeds
        seed = rng.choice(pool)
        family = rng.choice(self.FAMILIES)
        if family in ("value", "type_swap", "delete") and not seed.slots:
            family = "truncate"
        if family == "text" and not seed.texts:
            family = "value"
        if family == "value":
            frame: str | bytes = self._replace(seed, rng.randint(1, 3), RAW_TOKENS)
        elif family == "text":
            container, key = rng.choice(seed.texts)
            text: str = container[key]
            edit = rng.choice((text[:-1], text[1:], text + "x", text.upper(), text.lower(),
                               text * 50, "", text.replace(".", ","), "\u00e9" + text))  # fmt: skip
            frame = self._replace(seed, 1, (json.dumps(edit),), [(container, key)])
        elif family == "type_swap":
            frame = self._replace(seed, 1, ("[]", "{}", "null", "true", "[[]]", '{"":[]}', "7"))
        elif family == "delete":
            frame = self._delete(seed)
        elif family == "truncate":
            frame = seed.text[: rng.randrange(len(seed.text) or 1)]
        elif family == "deep":
            depth = rng.choice((100, 500, 999, 1000, 1001, 5000, 100_000))
            if seed.slots and rng.random() < 0.7:
                frame = self._replace(seed, 1, (_nest("1", depth, rng),))
            else:
                frame = _nest(seed.text, depth, rng)
        elif family == "garbage":
            junk = rng.randbytes(rng.randint(1, 300))
            where = rng.random()
            body = seed.text.encode()
            frame = junk if where < 0.4 else (junk + body if where < 0.7 else body + junk)
        else:
            frame = rng.choice(EMPTY)
        if isinstance(frame, str) and rng.random() < 0.3:
            frame = frame.encode()  # a binary websocket frame
        return family, frame

    def _replace(
        self,
        seed: _Seed,
        count: int,
        tokens: tuple[str, ...],
        chosen: list[tuple[Any, Any]] | None = None,
    ) -> str:
        rng = self.rng
        chosen = chosen or [rng.choice(seed.slots) for _ in range(count)]
        saved = [(c, k, c[k]) for c, k in chosen]
        raws = []
        for container, key in chosen:
            container[key] = _HOLE
            raws.append(rng.choice(tokens))
        try:
            text = json.dumps(seed.tree, separators=(",", ":"))
        finally:
            for container, key, value in reversed(saved):
                container[key] = value
        for raw in raws:
            text = text.replace(_HOLE_JSON, raw, 1)
        return text

    def _delete(self, seed: _Seed) -> str:
        rng = self.rng
        if not seed.dicts:
            return seed.text[:-1]
        d = rng.choice(seed.dicts)
        saved = list(d.items())
        for key in rng.sample(list(d), k=min(len(d), rng.randint(1, 3))):
            del d[key]
        try:
            return json.dumps(seed.tree, separators=(",", ":"))
        finally:
            d.clear()
            d.update(saved)


# -- the run -----------------------------------------------------------------------------------


@dataclass
class FuzzResult:
    venue: str
    frames: int = 0
    mutated: int = 0
    events: int = 0
    escapes: Counter[str] = field(default_factory=Counter)
    """Exceptions that escaped ``parse()``, by type."""
    invalid: Counter[str] = field(default_factory=Counter)
    """Emitted events that fail :func:`service.validate.problem`, by reason."""
    drops: Counter[str] = field(default_factory=Counter)
    """The parser's own count of dropped frames, by reason."""
    families: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    """A frame and traceback (escapes) or event (invalid events) per kind, for the report."""
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.venue}: {self.frames} frames ({self.mutated} mutated) in "
            f"{self.seconds:.2f} s, {self.events} events, escapes {dict(self.escapes)}, "
            f"invalid {dict(self.invalid)}, drops {dict(sorted(self.drops.items()))}"
        )


def productive(captures: Path, venue: VenueSpec | str, frames: list[str]) -> list[str]:
    """The frames that give events when a fresh parser reads them all, twice in order (the
    second pass sees the state the first built: snapshots, marks, partials)."""
    parser = new_parser(captures, venue)
    out: dict[str, None] = {}
    for frame in frames + frames:
        if parser.parse(frame, RECV_MS):
            out[frame] = None
    return list(out)


def fuzz(
    captures: Path, venue: VenueSpec | str, n: int, seed: int, intact: float = 0.2
) -> FuzzResult:
    """Feed ``n`` frames to a fresh parser of ``venue``: real ones with probability
    ``intact``, else mutated ones."""
    parser = new_parser(captures, venue)
    frames = capture_frames(captures, venue)
    mutator = Mutator(frames, seed, productive(captures, venue, frames))
    rng = mutator.rng
    out = FuzzResult(spec_of(venue).id)
    started = time.perf_counter()
    for _ in range(n):
        frame: str | bytes
        if rng.random() < intact:
            family, frame = "intact", rng.choice(frames)
        else:
            family, frame = mutator.mutate()
            out.mutated += 1
        out.families[family] += 1
        out.frames += 1
        try:
            events = parser.parse(frame, RECV_MS)
        except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
            name = type(exc).__name__
            out.escapes[name] += 1
            out.samples.setdefault(f"escape:{name}", f"{frame[:300]!r}\n{traceback.format_exc()}")
            continue
        out.events += len(events)
        for ev in events:
            reason = problem(ev)
            if reason is not None:
                out.invalid[reason] += 1
                out.samples.setdefault(f"invalid:{reason}", f"{frame[:300]!r}\n{ev!r}")
    out.seconds = time.perf_counter() - started
    out.drops = Counter(parser.stats.errors)
    return out
