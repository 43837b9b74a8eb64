"""``deleverage check-venues``: whether each enabled venue still speaks the protocol the code
expects, checked live in one short session per venue.

Per venue, with its configured URLs: load the instrument listing over REST; open the
connections the collector would open, for a few symbols (the configured ones, else per kind
of contract the first ones, BTC and ETH first); subscribe as the collector does, wait for
each channel's acknowledgement and first frame; feed every frame to the venue's own parser
(the events it makes) and to its :class:`~service.venues.shape.Shape` (unknown and missing
fields); poll the open interest once where it comes over REST. Every connection sends the
venue's keep-alive as the collector does.

A channel fails when its connection cannot be opened, its subscription is refused or never
acknowledged, a periodic channel sends nothing in time, a complete row lacks a field the
parser needs, or its frames give no event and parse errors. Unknown fields, and an
event-driven channel (liquidations) that stayed quiet, are warnings. Every message names the
venue, the channel and what differed. The results are plain values (:class:`VenueCheck`),
rendered by :mod:`.probe_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ..aio import reap
from ..config import VenueSettings
from ..venues import REGISTRY, SHAPES
from ..venues.base import Connection, Instrument, Parser, Venue, now_ms, ping_text
from ..venues.shape import Channel, FieldCount, Seen, Shape, decode, named_in
from .collector import CONNECTION_ERRORS, REST_ERRORS

log = structlog.get_logger(__name__)

Verdict = Literal["ok", "warn", "fail"]
PER_GROUP: Final = 2
"""Symbols sampled per kind of contract (linear/inverse and quote currency)."""
FAVOURITES: Final = ("BTC", "ETH")
POLL_S: Final = 0.25


@dataclass(slots=True)
class ChannelCheck:
    """One channel's (or REST endpoint's) result."""

    channel: str
    rate: str
    periodic: bool
    rest: bool = False
    connected: bool | None = None
    acknowledged: bool | None = None
    first_frame_s: float | None = None
    frames: int = 0
    events: int = 0
    fields: FieldCount = field(default_factory=FieldCount)
    parse_errors: Counter[str] = field(default_factory=Counter)
    refused: str | None = None
    connect_error: str | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return "fail" if self.problems else "warn" if self.warnings else "ok"

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: failed, or acknowledged with a first frame (an
        event-driven channel that stays quiet is waited for until the check's time is up)."""
        if self.connect_error is not None or self.refused is not None:
            return True
        if self.rest:
            return self.frames > 0 or bool(self.problems)
        return bool(self.acknowledged and self.frames)

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "documented_rate": self.rate,
            "rest": self.rest,
            "connected": self.connected,
            "acknowledged": self.acknowledged,
            "first_frame_after_s": (
                None if self.first_frame_s is None else round(self.first_frame_s, 3)
            ),
            "frames": self.frames,
            "parsed_events": self.events,
            "rows_checked": self.fields.rows,
            "unknown_fields": dict(sorted(self.fields.unknown.items())),
            "missing_fields": dict(sorted(self.fields.missing.items())),
            "parse_errors": dict(sorted(self.parse_errors.items())),
            "verdict": self.verdict,
            "problems": self.problems,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class VenueCheck:
    """One venue's result."""

    venue: str
    instruments: int | None = None
    symbols: list[str] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    channels: list[ChannelCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        verdicts = {c.verdict for c in self.channels}
        if self.problems or "fail" in verdicts:
            return "fail"
        return "warn" if "warn" in verdicts else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "verdict": self.verdict,
            "instruments": self.instruments,
            "symbols": self.symbols,
            "connections": self.connections,
            "channels": [c.to_json() for c in self.channels],
            "problems": self.problems,
            "notes": self.notes,
        }


def sample_symbols(
    markets: Mapping[str, Instrument], settings: VenueSettings, per_group: int = PER_GROUP
) -> list[str]:
    """The configured symbols that are listed, or per kind of contract (linear or inverse,
    quote currency) its first ``per_group``, BTC and ETH first."""
    if settings.symbols != "all":
        return sorted(s for s in settings.symbols if s in markets)
    groups: dict[tuple[bool, str], list[Instrument]] = {}
    for inst in markets.values():
        groups.setdefault((inst.linear, inst.quote), []).append(inst)

    def rank(i: Instrument) -> tuple[int, str]:
        base = FAVOURITES.index(i.base) if i.base in FAVOURITES else len(FAVOURITES)
        return (base, i.symbol)

    return sorted(s.symbol for g in groups.values() for s in sorted(g, key=rank)[:per_group])


def connect_error(exc: BaseException, url: str) -> str:
    """What a failed connection means, for an operator."""
    if isinstance(exc, InvalidStatus):
        code = exc.response.status_code
        return f"the handshake was refused with HTTP {code} at {url} (a retired path?)"
    if isinstance(exc, socket.gaierror):
        return f"the host of {url} does not resolve"
    if isinstance(exc, TimeoutError):
        return f"no answer from {url} in time"
    refused = isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError)
        and (exc.errno == errno.ECONNREFUSED or "Connect call failed" in str(exc))
    )
    if refused:
        return f"connection refused at {url}: nothing listens there (a retired port or host?)"
    return f"cannot connect to {url}: {type(exc).__name__}: {exc}"[:300]


class _Run:
    """One venue's check in progress: its channels, the requests sent, the parser."""

    def __init__(self, venue: Venue, shape: Shape, parser: Parser, started: float) -> None:
        self.venue, self.shape, self.parser, self.started = venue, shape, parser, started
        self.checks: dict[str, ChannelCheck] = {}
        self.sent: dict[str, dict[str, frozenset[str]]] = {}
        """Connection name -> request id -> the channels it subscribed (per connection: a
        venue's connections number their requests each from 1, as Binance's do)."""
        self.refusals: list[str] = []
        """Refusals no channel could be told from."""

    def check(self, channel: Channel) -> ChannelCheck:
        c = self.checks.get(channel.name)
        if c is None:
            c = self.checks[channel.name] = ChannelCheck(
                channel.name, channel.rate, channel.every_s is not None, channel.rest
            )
        return c

    @property
    def settled(self) -> bool:
        return all(c.settled for c in self.checks.values())

    def on_frame(self, frame: str | bytes, opened: float, now: float, conn: str) -> None:
        seen = self.shape.classify(decode(frame))
        errors_before = Counter(self.parser.stats.errors)
        events = self.parser.parse(frame, now_ms())
        if seen.kind == "data" and seen.channel is not None:
            channel = self.shape.channel(seen.channel)
            if channel is None or channel.name not in self.checks:
                return
            c = self.checks[channel.name]
            if c.acknowledged is None and c.refused is None:
                c.acknowledged = True  # pushed: subscribed, whatever the answer said
            c.frames += 1
            c.events += len(events)
            if c.first_frame_s is None:
                c.first_frame_s = now - opened
            c.fields.add(channel, seen)
            c.parse_errors.update(Counter(self.parser.stats.errors) - errors_before)
        elif seen.kind in ("ack", "refused"):
            self._answer(seen, conn)

    def _answer(self, seen: Seen, conn: str) -> None:
        names = self.shape.answer_channels(seen, self.sent.get(conn, {}))
        if seen.kind == "refused" and not names:
            names = set(named_in(seen.detail, self.checks))
        if seen.kind == "refused" and not names:
            self.refusals.append(seen.detail)
        for name in names & set(self.checks):
            if seen.kind == "ack":
                self.checks[name].acknowledged = True
            elif self.checks[name].refused is None:
                self.checks[name].refused = seen.detail or "refused"


async def check_venue(
    name: str, settings: VenueSettings, *, timeout_s: float, per_group: int = PER_GROUP
) -> VenueCheck:
    """Check one venue within about ``timeout_s`` seconds. Never raises on what the venue
    does (a failure is a result)."""
    result = VenueCheck(name)
    shape = SHAPES.get(name)
    if shape is None or name not in REGISTRY:
        result.problems.append(f"{name}: no native venue of that name (polled venues are skipped)")
        return result
    deadline = time.monotonic() + timeout_s
    lister = REGISTRY[name](settings)
    try:
        async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
            markets = await lister.load_markets(timeout_s)
    except (*REST_ERRORS, TimeoutError) as exc:
        result.problems.append(
            f"{name}: the instrument listing at {lister.rest_url} failed: "
            f"{type(exc).__name__}: {exc}"[:400]
        )
        for channel in shape.channels:
            check = ChannelCheck(channel.name, channel.rate, channel.every_s is not None)
            check.rest, check.connected = channel.rest, False
            check.problems.append(f"{name} {channel.name}: not checked: no instrument listing")
            result.channels.append(check)
        return result
    finally:
        await lister.close()
    result.instruments = len(markets)
    result.symbols = sample_symbols(markets, settings, per_group)
    if not result.symbols:
        result.problems.append(f"{name}: none of the configured symbols is listed")
        return result
    venue = REGISTRY[name](settings.model_copy(update={"symbols": result.symbols}))
    if venue.retired is not None:
        result.notes.append(f"retired: {venue.retired}")
    run = _Run(venue, shape, venue.new_parser(markets, None), time.monotonic())
    try:
        await _check_connections(run, venue.connections(markets), result, deadline)
    finally:
        await venue.close()
    _verdicts(run, result, timeout_s)
    return result


async def _check_connections(
    run: _Run, connections: list[Connection], result: VenueCheck, deadline: float
) -> None:
    by_connection: dict[str, set[str]] = {}
    for conn in connections:
        names: set[str] = set()
        for message in conn.subscribe:
            request, channels = run.shape.requested(message)
            names |= channels
            if request is not None:
                run.sent.setdefault(conn.name, {})[request] = channels
        by_connection[conn.name] = names
        for n in names:
            channel = run.shape.channel(n)
            if channel is not None:
                run.check(channel)
    rest = [c for c in run.shape.channels if c.rest and run.venue.oi_over_rest]
    for channel in rest:
        check = run.check(channel)
        check.connected = True  # the listing came over the same REST API
    tasks = [
        asyncio.create_task(_session(run, conn, by_connection[conn.name], result, deadline))
        for conn in connections
    ]
    tasks += [asyncio.create_task(_poll_rest(run, ch, deadline)) for ch in rest]
    await asyncio.gather(*tasks)


async def _session(
    run: _Run, conn: Connection, names: set[str], result: VenueCheck, deadline: float
) -> None:
    record: dict[str, Any] = {"name": conn.name, "url": conn.url, "connected": False, "error": None}
    result.connections.append(record)
    checks = [run.checks[n] for n in sorted(names) if n in run.checks]
    try:
        async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
            ws = await connect(
                conn.url, open_timeout=max(0.1, deadline - time.monotonic()),
                max_size=run.venue.max_frame_bytes, compression=None, close_timeout=1.0,
                additional_headers=list(conn.headers) or None,
            )  # fmt: skip
    except (*CONNECTION_ERRORS, TimeoutError) as exc:
        record["error"] = connect_error(exc, conn.url)
        for c in checks:
            c.connected, c.connect_error = False, record["error"]
        return
    record["connected"] = True
    for c in checks:
        c.connected = True if c.connected is None else c.connected
    opened = time.monotonic()
    pinger = asyncio.create_task(_keep_alive(ws, conn))
    try:
        for message in conn.subscribe:
            await ws.send(message)
        await _read(run, ws, opened, deadline, conn.name)
    except (ConnectionClosed, WebSocketException, OSError) as exc:
        record["error"] = f"the connection closed during the check: {exc}"[:300]
        result.notes.append(f"{run.venue.id} {conn.name}: {record['error']}")
    finally:
        await reap(pinger)
        await ws.close()


async def _read(run: _Run, ws: ClientConnection, opened: float, deadline: float, conn: str) -> None:
    while (now := time.monotonic()) < deadline and not run.settled:
        try:
            async with asyncio.timeout(min(POLL_S, max(0.0, deadline - now))):
                frame = await ws.recv()
        except TimeoutError:
            continue
        run.on_frame(frame, opened, time.monotonic(), conn)


async def _keep_alive(ws: ClientConnection, conn: Connection) -> None:
    if conn.ping is None or not conn.ping_interval_s:
        return
    while True:
        await asyncio.sleep(conn.ping_interval_s)
        with contextlib.suppress(*CONNECTION_ERRORS):
            await ws.send(ping_text(conn) or "")


async def _poll_rest(run: _Run, channel: Channel, deadline: float) -> None:
    """The open interest of the first sampled symbol with a mark, once, over REST."""
    check = run.checks[channel.name]
    while time.monotonic() < deadline:
        marks = run.parser.last_mark
        symbol = next((s for s in sorted(marks) if s in run.parser.markets), None)
        if symbol is not None:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(0.1, deadline - started)):
                    event = await run.venue.fetch_open_interest(
                        run.parser.markets[symbol], marks[symbol]
                    )
            except (*REST_ERRORS, TimeoutError, NotImplementedError) as exc:
                check.problems.append(
                    f"{run.venue.id} {channel.name} (REST): the poll for {symbol} failed: "
                    f"{type(exc).__name__}: {exc}"[:300]
                )
                return
            check.frames, check.events = 1, 1 if event.oi_usd > 0 else 0
            check.first_frame_s = time.monotonic() - run.started
            return
        await asyncio.sleep(POLL_S)
    check.problems.append(
        f"{run.venue.id} {channel.name} (REST): not polled: no mark price arrived to value it"
    )


def _verdicts(run: _Run, result: VenueCheck, timeout_s: float) -> None:
    for c in run.checks.values():
        _judge(c, f"{run.venue.id} {c.channel}", run.refusals, timeout_s)
    result.channels = [run.checks[n] for n in _order(run.shape, run.checks)]


def _judge(c: ChannelCheck, where: str, refusals: list[str], timeout_s: float) -> None:
    """Fill ``c``'s problems (failures) and warnings, each naming ``where``."""
    if c.connect_error is not None:
        c.problems.append(f"{where}: {c.connect_error}")
    elif c.refused is not None:
        c.problems.append(f"{where}: the subscription was refused: {c.refused}")
    elif not c.rest and not c.acknowledged:
        c.acknowledged = False
        also = f"; the venue refused: {' | '.join(refusals)}" if refusals else ""
        c.problems.append(f"{where}: no acknowledgement within {timeout_s:g} s{also}")
    if c.connect_error is None and c.refused is None and not c.frames and not c.rest:
        if c.periodic and not c.problems:
            c.problems.append(f"{where}: no frame within {timeout_s:g} s (documented: {c.rate})")
        elif c.acknowledged:
            c.warnings.append(f"{where}: acknowledged, no frame in time (documented: {c.rate})")
    unknown = _counts(c.fields.unknown, c.fields.rows)
    if c.fields.missing:
        also = f"; fields it does not know: {unknown}" if unknown else ""
        missing = _counts(c.fields.missing, c.fields.rows)
        c.problems.append(f"{where}: fields the parser needs are missing: {missing}{also}")
    elif unknown:
        c.warnings.append(f"{where}: fields the parser does not know: {unknown}")
    if c.frames and not c.events and c.parse_errors:
        reasons = ", ".join(f"{r} x{n}" for r, n in sorted(c.parse_errors.items()))
        c.problems.append(f"{where}: {c.frames} frame(s) gave no event; parse errors: {reasons}")


def _order(shape: Shape, checks: Iterable[str]) -> list[str]:
    present = set(checks)
    return [c.name for c in shape.channels if c.name in present]


def _counts(fields: Mapping[str, int], rows: int) -> str:
    return ", ".join(f"{name} ({n} of {rows} rows)" for name, n in sorted(fields.items()))


async def check_venues(
    venues: Mapping[str, VenueSettings], *, timeout_s: float, per_group: int = PER_GROUP
) -> list[VenueCheck]:
    """Check ``venues`` at once, each within about ``timeout_s``; sorted by venue."""
    results = await asyncio.gather(
        *(check_venue(n, vs, timeout_s=timeout_s, per_group=per_group) for n, vs in venues.items())
    )
    return sorted(results, key=lambda r: r.venue)
