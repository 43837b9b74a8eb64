"""What every venue module provides: instrument metadata, the wire protocol, a pure parser.

A venue module is the only place that knows its venue's URLs, frames and units. The
connection loop in :mod:`service.collect` is shared by all venues and talks to a venue only
through :class:`Venue`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, TypeVar, final

import msgspec
import structlog

from ..config import VenueSettings
from ..events import Event, OpenInterest, StressEvent
from ..shard import Shard
from ..validate import all_valid, problem
from ._volume import TRADE, Volumes
from .history import Budget, History

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Instrument:
    """Metadata of one contract, enough to turn its quantities into base units and USD."""

    venue: str
    symbol: str
    base: str
    quote: str
    linear: bool
    """Linear: quantity in base coin (or contracts x base per contract), valued at the price.
    Inverse: quantity in contracts worth ``contract_size`` USD each."""
    contract_size: float = 1.0
    funding_interval_h: float = 8.0

    def notional_usd(self, quantity: float, price: float) -> float:
        """USD value of ``quantity`` native units at ``price``."""
        if self.linear:
            return quantity * self.contract_size * price
        return quantity * self.contract_size

    def base_units(self, quantity: float, price: float) -> float:
        """``quantity`` native units in base coin."""
        if self.linear:
            return quantity * self.contract_size
        return quantity * self.contract_size / price if price > 0 else 0.0


BUG: Final = "bug"
"""The drop reason of a frame whose parsing raised something no parser expects."""
TOO_DEEP: Final = "too_deep"
"""A frame nested deeper than the decoder follows (msgspec stops at the interpreter's
recursion limit, about 1,000 levels less the caller's depth; real frames have fewer than
ten). The decoder's own bound costs nothing per frame; the parsers have no recursion of
their own, so a ``RecursionError`` can only come from there."""
BAD_NUMBER: Final = "bad_number"
NON_FINITE: Final = "non_finite"
INVALID_JSON: Final = "invalid_json"
"""The drop reason of a frame that is not JSON (every venue's parser uses it: the fuzz tests
and the operators' alerts on ``deleverage_parse_errors_total`` count on one name)."""
INVALID_FRAME: Final = "invalid_frame"
"""JSON, but not of the venue's envelope."""
UNKNOWN_INSTRUMENT: Final = "unknown_instrument"
MAX_BUG_TYPES_LOGGED: Final = 32
SAMPLE_CHARS: Final = 300


class ParseError(ValueError):
    """A frame (or a row of one) that a parser cannot read. Raised inside a parser, it is
    caught by :meth:`Parser.parse`, which drops the frame and counts ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class ParseStats:
    """Counts of what a parser dropped, by reason. Logged once per reason (a bug: once per
    exception type), then only counted."""

    errors: Counter[str] = field(default_factory=Counter)
    filtered: int = 0
    duplicates: Counter[str] = field(default_factory=Counter)
    """What was dropped as counted already, by kind (:data:`~._volume.TRADE`: a print whose
    trade id was summed): no error, so counted apart."""
    _bugs_logged: set[str] = field(default_factory=set, init=False, repr=False)

    def duplicate(self, kind: str) -> None:
        self.duplicates[kind] += 1

    def error(self, venue: str, kind: str, frame: object) -> None:
        self.errors[kind] += 1
        if self.errors[kind] == 1:
            log.warning("dropped a frame", venue=venue, reason=kind, frame=_sample(frame))

    def bug(self, venue: str, exc: Exception, frame: object) -> None:
        """A parser raised ``exc``, which no frame should make it raise: counted as
        :data:`BUG`, logged with its traceback the first time each exception type is seen."""
        self.errors[BUG] += 1
        name = type(exc).__name__
        if name not in self._bugs_logged and len(self._bugs_logged) < MAX_BUG_TYPES_LOGGED:
            self._bugs_logged.add(name)
            log.error(
                "parser bug: frame dropped", venue=venue, error=f"{name}: {exc}"[:300],
                frame=_sample(frame), exc_info=exc,
            )  # fmt: skip


def _sample(frame: object) -> str:
    """The start of ``frame`` (or of the part of it that was dropped) for a log line."""
    if isinstance(frame, msgspec.Raw):
        frame = bytes(frame)
    if isinstance(frame, (bytes, str)):
        frame = frame[:SAMPLE_CHARS]
    return str(frame)[:SAMPLE_CHARS]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


T = TypeVar("T")


class Parser(ABC):
    """Turns one websocket frame into normalized events. Pure: no I/O, no clock.

    A parser keeps what the venue's protocol makes it keep (for instance the latest mark
    price, to value open interest). A frame it cannot read is counted in :attr:`stats` and
    dropped: :meth:`parse` never raises (see there).
    """

    def __init__(self, venue: str, markets: Mapping[str, Instrument], wanted: set[str] | None):
        self.venue = venue
        self.markets = markets
        self.wanted = wanted
        self.stats = ParseStats()
        self.last_mark: dict[str, float] = {}
        self.volumes: Volumes | None = None
        """Set (by :meth:`Venue.new_parser`) when the venue's trade prints are summed into
        traded volume per second (:mod:`._volume`); its closed seconds join the events of
        :meth:`parse`."""
        self.stress: list[StressEvent] = []
        """Stress events found in frames (a venue that pushes its ADL state on the
        websocket): the collector takes them for the stress writer (:meth:`take_stress`)."""
        self.depth_reported_ms: dict[str, int] = {}
        """When each book's depth was last reported (venue time), shared by the sessions of
        a venue's depth connections (:meth:`Venue.session_parser`): a book that replaces a
        dropped one (a resubscription, a rotation's successor) reports no sooner than a
        second after the last."""
        self.resync: set[str] = set()
        """Symbols whose local order book was dropped (a gap in its updates, counted): the
        collector asks the venue for a fresh snapshot on the connection that delivered the
        frame (:meth:`Venue.resubscribe`) and clears the set."""

    @final
    def parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        """Events in ``frame``, received at ``recv_ms``; never raises.

        The failure policy of every venue's frames, in one place: the venue's
        :meth:`_parse` counts what it recognizes as unreadable and returns nothing, or
        raises :class:`ParseError` (counted under its reason); a frame nested too deep for
        the decoder is counted as :data:`TOO_DEEP`; any other exception is a parser bug,
        counted as :data:`BUG` and logged with its traceback once per exception type. In
        each case the frame is dropped and the connection goes on. An event that fails
        :func:`service.validate.problem` (a NaN, a negative size...) is dropped and
        counted under the problem's name; the frame's other events are kept."""
        try:
            events = self._parse(frame, recv_ms)
        except ParseError as exc:
            self.stats.error(self.venue, exc.reason, frame)
            events = []
        except RecursionError:
            self.stats.error(self.venue, TOO_DEEP, frame)
            events = []
        except MemoryError:  # the process, not the frame: not ours to swallow
            raise
        except Exception as exc:  # noqa: BLE001 - counted and logged: the policy above
            self.stats.bug(self.venue, exc, frame)
            events = []
        volumes = self.volumes
        if volumes is not None and recv_ms >= volumes.next_due_ms:
            events.extend(volumes.due(recv_ms))  # seconds closed by the clock (any frame)
        return events if all_valid(events) else self._without_invalid(events, frame)

    @final
    def book_snapshot(self, symbol: str, payload: object, recv_ms: int) -> list[Event]:
        """A venue's order book snapshot of ``symbol`` fetched over REST because this parser
        asked for it (:attr:`resync`, on a venue whose :attr:`Venue.snapshots_over_rest`):
        its events (the book's depth, once the buffered updates that follow it are
        applied). Never raises: the failure policy of :meth:`parse`."""
        try:
            events = self._book_snapshot(symbol, payload, recv_ms)
        except ParseError as exc:
            self.stats.error(self.venue, exc.reason, payload)
            events = []
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - counted and logged: parse's policy
            self.stats.bug(self.venue, exc, payload)
            events = []
        return events if all_valid(events) else self._without_invalid(events, symbol)

    def _book_snapshot(self, symbol: str, payload: object, recv_ms: int) -> list[Event]:
        """The venue's reading of a REST book snapshot (see :meth:`book_snapshot`)."""
        return []

    def flush_volumes(self, recv_ms: int) -> list[Event]:
        """The traded volume of the seconds still open, closed now (the collector stopping),
        checked as :meth:`parse` checks a frame's events."""
        if self.volumes is None:
            return []
        events: list[Event] = list(self.volumes.flush(recv_ms))
        return events if all_valid(events) else self._without_invalid(events, "flush")

    def take_stress(self) -> list[StressEvent]:
        """The stress events parsed since the last call."""
        out, self.stress = self.stress, []
        return out

    def _without_invalid(self, events: list[Event], frame: str | bytes) -> list[Event]:
        out: list[Event] = []
        for ev in events:
            reason = problem(ev)
            if reason is None:
                out.append(ev)
            else:
                self.stats.error(self.venue, reason, frame)
        return out

    @abstractmethod
    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        """The venue's decoding of ``frame``: its events, or ``[]`` after counting what it
        dropped in :attr:`stats`; may raise :class:`ParseError`."""

    def _decoded(self, decoder: msgspec.json.Decoder[T], frame: str | bytes) -> T | None:
        """``frame`` decoded by ``decoder`` (the venue's envelope), or ``None`` counted as
        :data:`INVALID_JSON` (not JSON) or :data:`INVALID_FRAME` (JSON of another shape)."""
        try:
            return decoder.decode(frame)
        except msgspec.ValidationError:
            self.stats.error(self.venue, INVALID_FRAME, frame)
        except msgspec.DecodeError:
            self.stats.error(self.venue, INVALID_JSON, frame)
        return None

    def _instrument(self, symbol: str, payload: object = None, n: int = 1) -> Instrument | None:
        """The metadata of ``symbol``, or ``None`` when it is not one we collect. Without
        metadata it is counted as :data:`UNKNOWN_INSTRUMENT` (``payload`` logged) when a
        ``payload`` is given (a venue that sends only what we subscribed to: a listing since
        the last refresh), else as filtered (a venue whose channels also carry contracts we do
        not list); when it is not configured, as filtered (``n``: the events dropped)."""
        inst = self.markets.get(symbol)
        if inst is None and payload is not None:
            self.stats.error(self.venue, UNKNOWN_INSTRUMENT, payload)
            return None
        if inst is None or (self.wanted is not None and symbol not in self.wanted):
            self.stats.filtered += n
            return None
        return inst


@dataclass(frozen=True, slots=True)
class Connection:
    """One websocket connection a venue needs: where, what to send after connecting, and the
    application-level keep-alive, for venues that want one (protocol pings are answered by
    the websockets library)."""

    name: str
    """Stable within a venue (``market``, ``linear``, ``inverse-2``...): health and logs."""
    url: str
    subscribe: tuple[str, ...]
    ping: str | Callable[[], str] | None = None
    """The keep-alive message, or a function called for each one (a venue that wants a
    new request id every time: Deribit). The object is built anew for each connection."""
    ping_interval_s: float | None = None
    pong: str | None = None
    """A substring that marks the venue's answer to our ping. Such frames do not count as
    data for the watchdog: a feed that only answers pings has stalled."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra HTTP headers of the websocket handshake (Gate.io's ``X-Gate-Size-Decimal``)."""
    quiet: bool = False
    """A priority lane: the venue's liquidations alone (or nearly), so that a collector
    behind on the busy connections (tickers, books, trades: a cascade at ten times the rate)
    still reads them as they come, and a venue that closes a slow connection closes a busy
    one. Such a connection may be silent for minutes in a calm market, so the watchdog does
    not close it for want of data: the collector pings it at the websocket protocol level
    instead (:data:`~service.collect.collector.QUIET_PING_S`; light, its pongs are not
    queued behind a backlog), and a rotation's successor takes over once it has answered
    its subscription."""
    own_parser: bool = False
    """Each session of this connection parses with a parser of its own
    (:meth:`Venue.session_parser`): its frames carry state tied to the session (an order
    book's update ids), which a rotation's overlap of two sessions would otherwise mix."""


def ping_text(conn: Connection) -> str | None:
    """The next keep-alive message of ``conn`` (``None``: it sends none)."""
    ping = conn.ping
    return ping() if callable(ping) else ping


class Venue(ABC):
    """A venue's protocol and metadata. One instance per configured venue."""

    id: ClassVar[str]
    default_ws_url: ClassVar[str]
    default_rest_url: ClassVar[str]
    liquidations_sampled: ClassVar[bool]
    retired: ClassVar[str | None] = None
    """Set when the venue no longer operates: why, since when, and the source. Such a
    venue is disabled in ``config/default.yaml``; enabled explicitly (against a simulator,
    a replay) it runs, with a warning at start-up."""
    rotates: ClassVar[bool] = True
    """Whether the collector renews a connection before ``collect.max_connection_age_s``
    (make-before-break: the successor subscribes while the old one still reads). Off for a
    venue that documents no connection age limit and counts subscriptions across an IP's
    connections (Hyperliquid), where the overlap would double them past the limit; such a
    connection is renewed only when it is lost."""
    max_frame_bytes: ClassVar[int] = 2**20
    """The largest websocket frame accepted (a larger one closes the connection, which
    reconnects): 1 MiB, about ten times the largest frame a venue sends in normal operation
    (Binance's all-market mark-price array, ~700 symbols, ~110 KB). Venues that send large
    snapshots on subscribe raise it."""

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.ws_url = str(settings.ws_url or self.default_ws_url).rstrip("/")
        self.rest_url = str(settings.rest_url or self.default_rest_url).rstrip("/")
        self._warned: list[str] = []
        self.shard: Shard | None = None
        """Set (by the runtime, from ``collect.shard``): only this shard's instruments are
        wanted, so subscribed, parsed and polled (:mod:`service.shard`)."""
        self.depth_symbols: frozenset[str] = frozenset()
        """The symbols whose order book is followed (``book_depth``), set by the collector
        from ``depth.symbols`` or its open-interest ranking (:mod:`service.collect.depth`);
        only a venue with :attr:`depth_levels` reads them."""

    def wanted(self, markets: Mapping[str, Instrument]) -> set[str] | None:
        """The configured symbols (``None`` for all), checked against the venue's markets;
        with a :attr:`shard`, those of them it owns (a set, possibly empty)."""
        shard = self.shard
        if self.settings.symbols == "all":
            if shard is None or not shard.sharded:
                return None
            return {s for s in markets if shard.owns(self.id, s)}
        unknown = sorted(s for s in self.settings.symbols if s not in markets)
        if unknown and unknown != self._warned:
            self._warned = unknown  # once per change, not at every reconnect
            log.warning(
                "configured symbols not listed by the venue", venue=self.id, symbols=unknown
            )
        if shard is None or not shard.sharded:
            return set(self.settings.symbols)
        return {s for s in self.settings.symbols if shard.owns(self.id, s)}

    def subscribed(self, markets: Mapping[str, Instrument]) -> list[str]:
        """The symbols to subscribe to, for venues without all-market streams."""
        wanted = self.wanted(markets)
        return sorted(s for s in markets if wanted is None or s in wanted)

    @abstractmethod
    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """The connections to keep open, given the current instrument metadata."""

    default_depth_levels: ClassVar[int] = 0
    """The levels a side the venue's order book channel sends by default (0: the module
    reads no order book)."""

    @property
    def depth_levels(self) -> int:
        """The levels a side of the order books subscribed (``depth.levels``, else the
        module's default); 0: no depth (the module reads none, or ``depth.top_n`` is 0 and
        no ``depth.symbols`` are given)."""
        depth = self.settings.depth
        if not self.default_depth_levels or (depth.top_n == 0 and not depth.symbols):
            return 0
        return depth.levels or self.default_depth_levels

    def session_parser(self, shared: Parser) -> Parser:
        """A parser for one session of an :attr:`~Connection.own_parser` connection: a new
        one (books of its own), counting what it drops in ``shared``'s stats and sharing the
        time of each book's last depth report."""
        parser = self.new_parser(shared.markets, shared.wanted)
        parser.stats = shared.stats
        parser.depth_reported_ms = shared.depth_reported_ms  # one a second, whatever the sessions
        return parser

    def resubscribe(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """The messages that make the venue send a fresh order book snapshot of
        ``symbols`` (see :attr:`Parser.resync`)."""
        return ()

    snapshots_over_rest: ClassVar[bool] = False
    """True when a book's snapshot comes over REST, not on the websocket (Binance's diff
    depth): the collector answers :attr:`Parser.resync` with :meth:`fetch_book_snapshot`,
    handed to :meth:`Parser.book_snapshot`, instead of :meth:`resubscribe`."""

    async def fetch_book_snapshot(self, symbol: str) -> object:
        """``symbol``'s order book snapshot over REST, as the venue answers it (see
        :attr:`snapshots_over_rest`)."""
        raise NotImplementedError(f"{self.id} sends its book snapshots on the websocket")

    parser_class: ClassVar[type[Parser]]
    """The venue's parser, built by :meth:`new_parser`."""

    reads_trades: ClassVar[bool] = False
    """True when the venue's module reads a trades channel, so that it can sum traded volume
    (:mod:`._volume`), subject to the venue's ``volume`` setting (:attr:`volume`)."""

    @property
    def volume(self) -> bool:
        """Whether traded volume is collected: the module reads trades and the venue's
        settings want it."""
        return self.reads_trades and self.settings.volume

    def new_parser(self, markets: Mapping[str, Instrument], wanted: set[str] | None) -> Parser:
        """A fresh parser for one connection's frames."""
        return self.with_volumes(self.parser_class(self.id, markets, wanted))

    def with_volumes(self, parser: Parser) -> Parser:
        """``parser``, summing traded volume when the venue collects it (:attr:`volume`);
        a print it drops is counted in the stats the parser has then (a session's parser
        gets its shared parser's: :meth:`session_parser`)."""
        if self.volume:
            parser.volumes = Volumes(
                self.id,
                lambda reason, detail: parser.stats.error(self.id, reason, detail),
                lambda: parser.stats.duplicate(TRADE),
            )
        return parser

    @abstractmethod
    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        """The venue's perpetual instruments by native symbol (through ccxt where it helps)."""

    async def fetch_open_interest(self, inst: Instrument, mark: float) -> OpenInterest:
        """One instrument's open interest over REST, valued at ``mark``; for venues whose
        :attr:`oi_over_rest` is true (their websocket does not stream it)."""
        raise NotImplementedError(f"{self.id} streams its open interest")

    @property
    def oi_over_rest(self) -> bool:
        return False

    has_history: ClassVar[bool] = False
    """True when :meth:`fetch_history` can serve the detector's warm start."""

    async def fetch_history(
        self, inst: Instrument, since_ms: int, until_ms: int, budget: Budget
    ) -> History:
        """Open interest over ``[since_ms, until_ms]`` and recent funding of ``inst`` (see
        :mod:`.history`), each request taken from ``budget``."""
        raise NotImplementedError(f"{self.id} serves no history")

    async def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release REST clients."""
