"""A local Gate futures server on loopback: the real v4 websocket and REST protocol, fake market.

Websocket (``ws_base_url`` = ``ws://<host>:<port>/v4/ws``): ``/v4/ws/usdt`` and
``/v4/ws/btc`` (other paths: 404). Each answers ``subscribe``/``unsubscribe`` of
``futures.tickers`` and ``futures.public_liquidates`` and the ``futures.ping`` request as the
venue does (see :mod:`.wire`):

* ``futures.tickers``: every ``push_interval_s`` one ``update`` per subscribed simulated
  contract (no snapshot at subscription, as the venue);
* ``futures.public_liquidates`` (``!all`` or contracts): in the current format
  (``liquidation_format="aggregated"``) every liquidation of a contract over
  ``liquidation_interval_s`` in one array, pushed early at 20; in the ``"legacy"`` format
  (before 2026-08-20) at most one per contract and interval, ``time`` in seconds, the rest
  never sent. Sizes are whole signed contracts, as text when the client's handshake carried
  ``X-Gate-Size-Decimal: 1``.

REST: see :mod:`.rest`. Test hooks (from :class:`~service.simulate.server.VenueServer`):
:meth:`drop_connections`, :meth:`stall` (liquidations meanwhile wait), :attr:`clients`;
ground truth: :meth:`mark`, :meth:`oi_base`, :attr:`prints` (every liquidation of the
market), :attr:`pushed` (those sent to at least one subscriber), :meth:`row`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final, Literal, Unpack

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.http11 import Request, Response

from ....simulate.asgi_server import AsgiServer
from ....simulate.clock import wall_ms
from ....simulate.market import LiquidationPrint
from ....simulate.scenario import DEFAULT_SCENARIO, Scenario
from ....simulate.server import MarketOptions, SessionClient, VenueServer
from . import wire
from .rest import GateRest

WS_PREFIX: Final = "/v4/ws/"


@dataclass(slots=True, eq=False)
class _Client(SessionClient[wire.Session]):
    decimal_sizes: bool


def _settle(path: str) -> str | None:
    settle = path.split("?")[0].removeprefix(WS_PREFIX)
    return settle if settle in wire.SETTLES else None


class GateSimulator(VenueServer[_Client]):
    """Gate futures on loopback. ``async with GateSimulator() as sim: ...``."""

    SPECS = wire.GATE_SPECS
    TEMPLATE = "DOGE_USDT"

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        push_interval_s: float = 0.5,
        liquidation_interval_s: float = 1.0,
        liquidation_format: Literal["aggregated", "legacy"] = "aggregated",
        list_only_simulated: bool = False,
        **market: Unpack[MarketOptions],
    ) -> None:
        """``market``: the market's keywords (:class:`~service.simulate.server.MarketOptions`).
        ``list_only_simulated``: the contract lists hold only the simulated contracts."""
        super().__init__(scenario, specs=wire.GATE_SPECS, ws_path="/v4/ws", **market)
        listings = {s: self._grow(wire.load_contracts(s), "name") for s in wire.SETTLES}
        collected = wire.contracts(listings)
        self.contracts = {s: collected[s] for s in self.market.symbols if s in collected}
        if list_only_simulated:
            listings = {
                s: [r for r in rows if r["name"] in self.contracts] for s, rows in listings.items()
            }
        self.listed = {s: frozenset(r["name"] for r in rows) for s, rows in listings.items()}
        self.rest = GateRest(listings, market=self.market, contracts=self.contracts)
        self.books = {s: wire.TickerBook(c) for s, c in self.contracts.items()}
        self.push_interval_s = push_interval_s
        self.liquidation_interval_s = liquidation_interval_s
        self.legacy = liquidation_format == "legacy"
        self.pushed: list[LiquidationPrint] = []
        """Liquidations sent to at least one subscriber."""
        self._pending: defaultdict[str, list[LiquidationPrint]] = defaultdict(list)
        self.clock.add_listener(self._offer)
        self._http = AsgiServer(self.rest.app)

    def _loops(self) -> list[Coroutine[Any, Any, None]]:
        return [
            self._on_grid(self.push_interval_s, self._push_tickers),
            self._on_grid(self.liquidation_interval_s, self._flush_liquidations),
        ]

    def row(self, p: LiquidationPrint, *, decimal_sizes: bool = False) -> dict[str, Any]:
        """The row that carries ``p`` (when it was sent)."""
        c = self.contracts[p.symbol]
        return wire.liquidation_row(p, c, decimal_sizes=decimal_sizes, legacy=self.legacy)

    def wire_ids(self, p: LiquidationPrint) -> list[tuple[str, str]]:
        """No id on the wire: time (in ms; the legacy rows give seconds), size and price, as
        sent to a client that asks for decimal sizes, as the collector does."""
        row = self.row(p, decimal_sizes=True)
        ts = row["time"] if row["time"] > 10**11 else row["time"] * 1000
        return [(p.symbol, f"{ts}:{row['size']}:{row['price']}")]

    def unsent(self) -> list[LiquidationPrint]:
        """Liquidations waiting for the next flush (not sent yet)."""
        return [p for batch in self._pending.values() for p in batch]

    # -- websocket -------------------------------------------------------------------------

    def _check_path(self, conn: ServerConnection, request: Request) -> Response | None:
        if _settle(request.path) is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    async def _handle(self, conn: ServerConnection) -> None:
        request = conn.request
        settle = _settle(request.path if request else "/")
        if settle is None:  # pragma: no cover - refused by _check_path
            return
        decimal = request is not None and request.headers.get("X-Gate-Size-Decimal") == "1"
        client = _Client(conn, wire.Session(settle, self.listed[settle]), decimal)
        with self._tracked(client):
            async for message in conn:
                for reply in client.session.handle(message, wall_ms()):
                    await conn.send(reply)

    def _push_tickers(self, ts: int) -> None:
        for name, book in self.books.items():
            to = [c.conn for c in self._clients if name in c.session.tickers]
            if to:
                ticker = book.ticker(self.market.quote(name))
                broadcast(to, wire.frame(wire.TICKERS, "update", [ticker], ts))

    def _offer(self, prints: list[LiquidationPrint]) -> None:
        for p in prints:
            if p.symbol not in self.contracts:
                continue
            batch = self._pending[p.symbol]
            batch.append(p)
            if not self.legacy and len(batch) >= wire.BATCH_MAX and not self.stalled:
                self._pending[p.symbol] = []
                self._push(p.symbol, batch, wall_ms())  # a full batch goes at once

    def _flush_liquidations(self, _tick_ms: int) -> None:
        if not self._pending:
            return
        now, pending = wall_ms(), self._pending  # rows carry their send time, not the grid's
        self._pending = defaultdict(list)
        for name, prints in pending.items():
            kept = wire.legacy_sample(prints) if self.legacy else prints
            for i in range(0, len(kept), wire.BATCH_MAX):
                self._push(name, kept[i : i + wire.BATCH_MAX], now)

    def _push(self, name: str, prints: list[LiquidationPrint], now: int) -> None:
        settle = self.contracts[name].settle
        to = [c for c in self._clients if c.session.settle == settle]
        to = [c for c in to if c.session.wants_liquidations(name)]
        if not to:
            return  # nobody subscribed: not sent (they stay in the ground truth)
        for decimal in (False, True):
            conns = [c.conn for c in to if c.decimal_sizes is decimal]
            if conns:
                rows = [self.row(p, decimal_sizes=decimal) for p in prints]
                broadcast(conns, wire.frame(wire.LIQUIDATES, "update", rows, now))
        self.pushed.extend(prints)
