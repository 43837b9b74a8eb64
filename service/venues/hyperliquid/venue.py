"""Hyperliquid perpetuals (``hyperliquid``): the main perp dex, USDC-margined, linear, in coin.

Wire protocol (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket):

* One websocket URL, ``wss://api.hyperliquid.xyz/ws`` (connections ``public``,
  ``liquidations`` and ``depth-1``). One subscription per message,
  ``{"method":"subscribe","subscription":{"type":"activeAssetCtx","coin":"BTC"}}``, each
  acked with ``{"channel":"subscriptionResponse","data":{"method":"subscribe",
  "subscription":{...}}}``; a refused one answers ``{"channel":"error","data":"<text>"}``
  (e.g. ``Already subscribed``), counted as ``venue_error``. Limits per IP: 1000
  subscriptions, 10 distinct users in user subscriptions, 2000 messages sent a minute.
* Keep-alive: the server closes a connection it has sent nothing for 60 s; we send
  ``{"method":"ping"}`` every :data:`PING_INTERVAL_S` on each connection, answered
  ``{"channel":"pong"}``: on ``liquidations``, silent for hours in a calm market, the pong is
  what the server sends it.
* Funding, open interest, mark: ``activeAssetCtx`` per coin (chosen over the all-markets
  ``allDexsAssetCtxs``, 170 KB a push for every dex, whose assets are known only by their
  index in ``meta``: a per-coin push names its coin, follows ``symbols``, and costs one
  subscription per coin, ~200 on the main dex). ``funding`` is the rate **per hour**
  (funding settles every hour; the 0.01 %/8 h interest shows as ``0.0000125``),
  ``openInterest`` is in coin (valued here at the same push's ``markPx``), ``oraclePx``
  is the index. The push carries no time: events are stamped with our receive time, and
  each part (mark, funding, open interest) is reported when it changed, at most once per
  :data:`STATE_EVERY_MS` per coin, and unchanged every :data:`STATE_REFRESH_MS`.
* Liquidations: **no public liquidation feed.** The public ``trades`` push has no
  liquidation flag (its ``users`` pair names the buyer and seller, not why they traded).
  Every fill of a liquidation carries a ``liquidation`` object ``{liquidatedUser, markPx,
  method}`` in the fills of *both* counterparties, but fills are per user (``userFills``).
  Liquidations are either ``market`` (the liquidated position is closed by a market order
  against the book, any user being the counterparty) or ``backstop`` (below 2/3 of the
  maintenance margin the liquidator vault takes the position over). So we watch the
  ``userFills`` of the protocol's liquidator vaults (:data:`LIQUIDATOR_ADDRESSES`): every
  backstop liquidation, plus the market liquidations a vault happened to fill, with the
  liquidated user named. What this cannot see: market liquidations filled by anyone else,
  the bulk in ordinary markets. Hence ``sampled=True``. See :func:`liquidated_side` for
  the side; fills without a ``liquidation`` (the vault trading its inherited positions
  out) and forced closes of a vault itself (auto-deleveraging against it, already counted
  when it took the position over) are not liquidations of users and are dropped
  (``filtered``). The ``userFills`` snapshot sent on subscribing re-sends recent fills:
  the trade id is the ``event_id``, and snapshot fills older than
  :data:`SNAPSHOT_MAX_AGE_MS` are dropped (a reconnect recovers its gap; a start does not
  replay the vault's history). The vaults' ``userFills`` are on a connection of their own,
  ``liquidations``, the quiet lane (:attr:`~..base.Connection.quiet`): a collector behind on
  ``public``'s contexts, tops and trades (a cascade at ten times their rate) still reads the
  fills as they come, and the data watchdog leaves that connection, whose fills may be hours
  apart, to its pings.

* Liquidity (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/
  subscriptions, checked 2026-12-06; real frames: tardis-node's recording and the venue's own
  ``hyperliquid-dex/order_book_server``). On ``public``, after the contexts, coin by coin:
  ``bbo`` (``{"coin","time","bbo":[bid, ask]}``, each side ``{"px","sz","n"}`` or ``null``
  for an empty side, ``sz`` in coin; sent only when it changes on a block): the top of book,
  at most once a second per coin (:meth:`HyperliquidParser._bbo`); and, with the ``volume``
  setting, ``trades`` (``[{"coin","side","px","sz","time","hash","tid","users"}]``): ``side``
  is the **taker's** (``B`` bought, ``A`` sold), ``sz`` in coin, summed into traded volume per
  second (:mod:`.._volume`), ``tid`` (a hash of the two orders' ids) the id a repeat is
  dropped by. A trade carries no liquidation flag (see the liquidations above): liquidation
  fills through the book count as volume like any other. On ``depth-1``, for
  :attr:`~..base.Venue.depth_symbols`: ``l2Book`` at :data:`BOOK_SIG_FIGS` significant
  figures, the whole book each push (20 levels a side, every block at least 0.5 s after the
  last), checked and dropped when bad (Bitget's ``books15`` rules, :mod:`.._book`): no
  sequence, nothing to resubscribe. The bands 20 levels do not reach are flagged by the
  event's ``*_reach_pct``. Budget: 1000 subscriptions less the vaults' (on ``liquidations``)
  and the depth set's room (:attr:`Hyperliquid.depth_reserved`); ~230 coins take ~715. The
  limit counts every connection of the IP, so a make-before-break rotation would double
  ``public`` past it (the venue refusing the excess): the collector does not rotate
  Hyperliquid's connections (:attr:`~..base.Venue.rotates`; the venue documents no
  connection age limit), it renews one only when it is lost.

Instruments come from ``POST /info {"type":"meta"}`` (through ccxt's implicit endpoint,
for its rate limit, error mapping and configurable base URL; ccxt's ``load_markets`` would
also load spot and the HIP-3 dexes): the main dex's perpetuals, delisted ones left out.
A coin's quantity is in coin (contract size 1), its price in USDC (treated as USD); ``k``
coins (``kPEPE``) are quoted per 1000 units, like Binance's ``1000PEPEUSDT``, and keep the
venue's name as their base so that quantity x price stays right. Instruments, subscriptions
and the vault list are in :mod:`.instruments`, the typed frames in
:mod:`.frames`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar, Final

import msgspec
import structlog
from ccxt.base.errors import BadResponse

from ...config import VenueSettings
from ...events import Event, Side
from .. import _stamp
from .._book import BOOK_CROSSED, BOOK_UNREADABLE, Book
from ..base import Connection, Instrument, ParseError, Parser
from ..ccxt_markets import CcxtBackedVenue
from . import frames
from .instruments import (
    FUNDING_INTERVAL_H,
    LIQUIDATOR_ADDRESSES,
    MAX_SUBSCRIPTIONS,
    MAX_USERS,
    QUOTE,
    VENUE,
    book_messages,
    fills_messages,
    parse_meta,
    subscribe_messages,
)

__all__ = [
    "FUNDING_INTERVAL_H",
    "LIQUIDATOR_ADDRESSES",
    "MAX_SUBSCRIPTIONS",
    "MAX_USERS",
    "PING",
    "PING_INTERVAL_S",
    "PONG_MARKER",
    "QUOTE",
    "VENUE",
    "Hyperliquid",
    "HyperliquidParser",
    "fills_messages",
    "liquidated_side",
    "next_hour_ms",
    "parse_meta",
    "subscribe_messages",
]

log = structlog.get_logger(__name__)

HOUR_MS: Final = 3_600_000
PING: Final = '{"method":"ping"}'
PONG_MARKER: Final = '"channel":"pong"'
PING_INTERVAL_S: Final = 30.0
"""Half the venue's 60 s idle cut."""
STATE_EVERY_MS: Final = 1000
STATE_REFRESH_MS: Final = 30_000
"""An unchanged part is reported again this often: a quiet market is not a stale feed (the
detector holds a feed silent for 120 s as stale)."""
SNAPSHOT_MAX_AGE_MS: Final = HOUR_MS
WELCOME: Final = "Websocket connection established."
"""A text frame some versions of the server send first (the official SDK skips it)."""
PROTOCOL_CHANNELS: Final = frozenset({"subscriptionResponse", "pong"})
BOOK_LEVELS: Final = 20
"""``l2Book`` levels a side (the venue's default and, on its public API, its only depth)."""
BOOK_SIG_FIGS: Final = 4
"""``nSigFigs`` of the ``l2Book`` subscriptions: levels aggregated to 4 significant figures
(0.01-0.1 % of the price apart), so 20 levels reach 0.2-2 % of mid where the venue's full
precision (BTC: 1 USD) reaches a few basis points; a coarser 3 would put the whole 0.5 %
band in one bucket up to 1 % wide."""
TRADE_MAX_AGE_MS: Final = 10_000
"""A print this much older than its receipt is history, not counted: a new ``trades``
subscription may first send recent prints, which a reconnect has counted already (the ids
are remembered 10-20 s, :mod:`.._volume`)."""
TAKER_BUYS: Final = {"B": True, "A": False}
"""A trade's ``side`` is the taker's."""

_ORDER_SIDES: Final = frozenset({"B", "A"})


def liquidated_side(order_side: str, owner_liquidated: bool) -> Side | None:
    """The side of the position liquidated in a fill whose owner's order side is
    ``order_side`` (``B`` buy, ``A`` sell). The owner is the liquidated user itself
    (``owner_liquidated``: a sell closes its long) or its counterparty, a liquidator vault
    or a maker (it buys what a liquidated long sells, or takes a long over: a buy means a
    long was liquidated). ``None`` for an unknown side."""
    if order_side not in _ORDER_SIDES:
        return None
    sells = order_side == "A"
    return Side.LONG if sells == owner_liquidated else Side.SHORT


def next_hour_ms(ts_ms: int) -> int:
    """The next funding settlement after ``ts_ms``: funding is paid on the hour."""
    return (ts_ms // HOUR_MS + 1) * HOUR_MS


class HyperliquidParser(Parser):
    """Parses ``activeAssetCtx``, ``bbo``, ``trades``, ``l2Book`` and ``userFills`` pushes
    (and ``user`` fills, the same fills without their owner), acks, pongs and error frames."""

    def __init__(
        self,
        venue: str,
        markets: Mapping[str, Instrument],
        wanted: set[str] | None,
        liquidators: Iterable[str] = LIQUIDATOR_ADDRESSES,
    ) -> None:
        super().__init__(venue, markets, wanted)
        self.liquidators = frozenset(a.lower() for a in liquidators)
        self.state_every_ms = STATE_EVERY_MS
        self.state_refresh_ms = STATE_REFRESH_MS
        self.snapshot_max_age_ms = SNAPSHOT_MAX_AGE_MS
        self._reported: dict[tuple[str, str], tuple[int, tuple[float, ...]]] = {}
        """(coin, part) -> when it was last reported, and its values then."""
        self.tops: dict[str, tuple[int, float, float, float, float]] = {}
        """Per coin, the ``bbo`` not reported yet: its time, bid, bid size, ask, ask size."""
        self.top_reported_ms: dict[str, int] = {}
        """Per coin, when (receive time) its top of book was last reported."""

    def _parse(self, frame: str | bytes, recv_ms: int) -> list[Event]:
        if frame in (WELCOME, WELCOME.encode()):
            return []
        if (env := self._decoded(frames.envelope, frame)) is None:
            return []
        channel = env.channel
        if channel in PROTOCOL_CHANNELS:
            return []
        if channel == "error":
            self.stats.error(self.venue, "venue_error", frame)
            return []
        try:
            if channel == "activeAssetCtx":
                return self._ctx(frames.active_asset_ctx.decode(env.data), recv_ms)
            if channel == "userFills":
                uf = frames.user_fills.decode(env.data)
                return self._fills(uf.fills, uf.user.lower() or None, uf.isSnapshot, recv_ms)
            if channel == "user":
                return self._fills(frames.user_events.decode(env.data).fills, None, False, recv_ms)
            if channel == "bbo":
                return self._bbo(frames.bbo.decode(env.data), recv_ms, frame)
            if channel == "trades":
                return self._trades(frames.trades.decode(env.data), recv_ms)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, f"invalid_{channel}", frame)
            return []
        if channel == "l2Book":
            return self._book(env.data, recv_ms, frame)
        # allDexsAssetCtxs, activeSpotAssetCtx...: never subscribed
        self.stats.error(self.venue, "unknown_channel", channel or frame)
        return []

    def _bbo(self, m: frames.Bbo, recv_ms: int, frame: str | bytes) -> list[Event]:
        """The coin's best bid and ask, reported at most once a second (receive time); a
        change within the second waits (:attr:`tops`) for the coin's next ``bbo`` or
        ``activeAssetCtx`` push. A side ``null`` (an empty side) or missing: no top to
        report until both are quoted again."""
        if (inst := self._instrument(m.coin, m)) is None:
            return []
        sides = m.bbo
        bid = sides[0] if sides else None
        ask = sides[1] if len(sides) > 1 else None
        if bid is None or ask is None:
            self.tops.pop(m.coin, None)
            return []
        if not (0 < bid.px < ask.px and bid.sz >= 0 and ask.sz >= 0):
            self.stats.error(self.venue, "invalid_bbo", frame)
            return []
        self.tops[m.coin] = (m.time, bid.px, bid.sz, ask.px, ask.sz)
        return self._top_due(m.coin, inst, recv_ms)

    def _top_due(self, coin: str, inst: Instrument, recv_ms: int) -> list[Event]:
        """The coin's pending top of book, when one is waiting and a second has passed since
        the last one reported."""
        top = self.tops.get(coin)
        last = self.top_reported_ms.get(coin)
        if top is None or (last is not None and recv_ms - last < self.state_every_ms):
            return []
        del self.tops[coin]
        self.top_reported_ms[coin] = recv_ms
        return [_stamp.book_top(self.venue, inst, top[0], recv_ms, *top[1:])]

    def _trades(self, rows: list[frames.Trade], recv_ms: int) -> list[Event]:
        """Each print into its coin's second of traded volume; the seconds it closes. Prints
        older than :data:`TRADE_MAX_AGE_MS` are history (filtered); a frame nobody asked for
        (volume off) is filtered too."""
        volumes = self.volumes
        if volumes is None:
            self.stats.filtered += 1
            return []
        out: list[Event] = []
        for t in rows:
            if (inst := self._instrument(t.coin, t)) is None:
                continue
            buy = TAKER_BUYS.get(t.side)
            if buy is None or t.px <= 0 or t.sz < 0:  # one bad row: keep the rest
                self.stats.error(self.venue, "invalid_trades", t)
                continue
            if recv_ms - t.time > TRADE_MAX_AGE_MS:
                self.stats.filtered += 1
                continue
            # tid: a hash of the two orders' ids, unique per coin within the ids' window
            closed = volumes.add(inst, t.time, buy, t.sz, t.px, recv_ms, t.tid)
            if closed is not None:
                out.append(closed)
        return out

    def _book(self, data: msgspec.Raw, recv_ms: int, frame: str | bytes) -> list[Event]:
        """A whole book (``l2Book``): checked every push, its depth when one is due. A bad
        level or a crossed book drops the push, counted; the next one replaces it."""
        try:
            m = frames.book.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self.stats.error(self.venue, BOOK_UNREADABLE, frame)
            return []
        if (inst := self._instrument(m.coin, m.coin)) is None:
            return []
        bids, asks = m.levels
        book = Book(0)
        try:
            book.apply([(x.px, x.sz) for x in bids], [(x.px, x.sz) for x in asks])
        except ParseError as exc:
            self.stats.error(self.venue, exc.reason, frame)
            return []
        if book.bids and book.asks and max(book.bids) >= min(book.asks):
            self.stats.error(self.venue, BOOK_CROSSED, frame)
            return []
        book.reported_ms = self.depth_reported_ms.get(m.coin, book.reported_ms)
        if not book.due(m.time):
            return []
        depth = book.depth(self.venue, inst, m.time, recv_ms, BOOK_LEVELS)
        if depth is None:  # a side empty: no mid until it is quoted again
            return []
        self.depth_reported_ms[m.coin] = m.time
        return [depth]

    def _due(self, coin: str, part: str, values: tuple[float, ...], now_ms: int) -> bool:
        """Whether ``part`` is to be reported: changed since it was last reported, at least
        :attr:`state_every_ms` ago, or unchanged for :attr:`state_refresh_ms`. If so it
        counts as reported now."""
        last = self._reported.get((coin, part))
        if last is not None:
            elapsed = now_ms - last[0]
            changed = last[1] != values and elapsed >= self.state_every_ms
            if not changed and elapsed < self.state_refresh_ms:
                return False
        self._reported[(coin, part)] = (now_ms, values)
        return True

    def _ctx(self, m: frames.ActiveAssetCtx, recv_ms: int) -> list[Event]:
        if (inst := self._instrument(m.coin, m)) is None:
            return []
        c, coin = m.ctx, m.coin
        self.last_mark[coin] = c.markPx
        # The push carries no time: its events take the time it was received.
        out: list[Event] = []
        if self._due(coin, "mark", (c.markPx, c.oraclePx or 0.0), recv_ms):
            out.append(_stamp.mark(self.venue, inst, recv_ms, recv_ms, c.markPx, c.oraclePx))
        if self._due(coin, "funding", (c.funding,), recv_ms):
            out.append(
                _stamp.funding(
                    self.venue,
                    inst,
                    recv_ms,
                    recv_ms,
                    c.funding,
                    inst.funding_interval_h,
                    next_hour_ms(recv_ms),
                )
            )
        if self._due(coin, "open_interest", (c.openInterest,), recv_ms):
            out.append(
                _stamp.open_interest(
                    self.venue,
                    inst,
                    recv_ms,
                    recv_ms,
                    c.openInterest / inst.contract_size,
                    c.markPx,
                )
            )
        if coin in self.tops:  # a bbo change that waited: the context pushes every block
            out.extend(self._top_due(coin, inst, recv_ms))
        return out

    def _fills(
        self, fills: list[frames.Fill], owner: str | None, snapshot: bool, recv_ms: int
    ) -> list[Event]:
        """Liquidations among one user's fills. ``owner``: whose fills (``None`` on the
        ``user`` channel, where a ``Liquidated …`` direction tells the owner's own)."""
        out: list[Event] = []
        for f in fills:
            liq = f.liquidation
            victim = liq.liquidatedUser.lower() if liq is not None else ""
            if liq is None or victim in self.liquidators:
                self.stats.filtered += 1  # a vault's own trade, or its forced close (ADL)
                continue
            if snapshot and recv_ms - f.time > self.snapshot_max_age_ms:
                self.stats.filtered += 1  # history, not a gap to recover
                continue
            if (inst := self._instrument(f.coin, f)) is None:
                continue
            own = victim == owner if owner is not None else f.dir.startswith("Liquidated")
            side = liquidated_side(f.side, own)
            if side is None:
                self.stats.error(self.venue, "invalid_side", f)
                continue
            eid = str(f.tid)  # the trade's id: the same in a snapshot re-send
            out.append(_stamp.liquidation(
                self.venue, inst, f.time, recv_ms, side,
                price=f.px, quantity=f.sz, sampled=True, event_id=eid,
            ))  # fmt: skip
        return out


class Hyperliquid(CcxtBackedVenue):
    id: ClassVar[str] = VENUE
    parser_class: ClassVar[type[Parser]] = HyperliquidParser
    default_ws_url: ClassVar[str] = "wss://api.hyperliquid.xyz/ws"
    default_rest_url: ClassVar[str] = "https://api.hyperliquid.xyz"
    liquidations_sampled: ClassVar[bool] = True
    max_frame_bytes: ClassVar[int] = 4 * 2**20
    """A ``userFills`` snapshot re-sends a vault's recent fills (up to 2,000, ~500 B each)."""
    liquidators: ClassVar[tuple[str, ...]] = LIQUIDATOR_ADDRESSES
    ccxt_id: ClassVar[str] = "hyperliquid"
    ccxt_hosts: ClassVar[tuple[str, ...]] = ("https://api.{hostname}",)
    reads_trades: ClassVar[bool] = True
    default_depth_levels: ClassVar[int] = BOOK_LEVELS
    rotates: ClassVar[bool] = False
    """1,000 subscriptions per IP across its connections: a rotation's overlap would double
    ``public``'s ~715 past it (https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/
    api/rate-limits-and-user-limits, checked 2026-12-06; no connection age limit there)."""

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        levels = settings.depth.levels
        if levels is not None and levels != BOOK_LEVELS:
            raise ValueError(
                f"venues.{self.id}.depth.levels: {levels}; Hyperliquid's l2Book sends "
                f"{BOOK_LEVELS} levels a side"
            )

    @property
    def depth_reserved(self) -> int:
        """Subscriptions kept for the order books: as many as the depth set may hold
        (``depth.symbols``, else ``depth.top_n``), whatever it holds now, so that a new
        ranking never changes the ``public`` connection's subscriptions."""
        if not self.depth_levels:
            return 0
        depth = self.settings.depth
        return len(depth.symbols) if depth.symbols else depth.top_n

    def connections(self, markets: Mapping[str, Instrument]) -> list[Connection]:
        """``liquidations``: the vaults' ``userFills``, the quiet lane
        (:attr:`Connection.quiet`: hours may pass without a backstop liquidation; the
        ``{"method":"ping"}`` every :data:`PING_INTERVAL_S` is what keeps it within the
        venue's 60 s idle cut); ``public``: each coin's context, top of book (``bbo``) and,
        with volume, its ``trades``; ``depth-1``: the ``l2Book`` of :attr:`depth_symbols`,
        so a change of that set reconnects nothing else. The subscriptions of all three are
        within the IP's 1,000 (:func:`.subscribe_messages` keeps room for the other two)."""
        public = subscribe_messages(
            self.subscribed(markets),
            self.liquidators,
            bbo=True,
            trades=self.volume,
            reserved=self.depth_reserved,
        )
        out = [
            self._connection("public", public),
            self._connection("liquidations", fills_messages(self.liquidators), quiet=True),
        ]
        mine = sorted(s for s in self.depth_symbols if s in markets)[: self.depth_reserved]
        if self.depth_levels and mine:
            out.append(self._connection("depth-1", book_messages(mine, BOOK_SIG_FIGS)))
        return out

    def _connection(self, name: str, subscribe: tuple[str, ...], quiet: bool = False) -> Connection:
        return Connection(
            name,
            self.ws_url,
            subscribe,
            ping=PING,
            ping_interval_s=PING_INTERVAL_S,
            pong=PONG_MARKER,
            quiet=quiet,
        )

    def new_parser(self, markets: Mapping[str, Instrument], wanted: set[str] | None) -> Parser:
        return self.with_volumes(HyperliquidParser(self.id, markets, wanted, self.liquidators))

    async def load_markets(self, timeout_s: float) -> dict[str, Instrument]:
        client = self._ccxt_within(timeout_s)
        raw = await client.publicPostInfo({"type": "meta"})
        try:
            listed = parse_meta(raw)
        except (ValueError, TypeError) as exc:  # msgspec.ValidationError included
            raise BadResponse(f"{self.id} meta: {exc}") from exc
        return {inst.symbol: inst for inst in listed}
