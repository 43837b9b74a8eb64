"""A REST-only Bitget on loopback, for the venues polled through ccxt: ccxt's ``bitget``
client pointed at :attr:`CcxtBitgetSimulator.rest_base_url` loads the recorded contracts and
polls funding, mark and open interest from the shared simulated market.

Two linear (USDT-FUTURES) and two inverse (COIN-FUTURES) swaps by default, all sized in base
coin as on Bitget. Endpoints and test hooks: :mod:`.ccxt_bitget_rest`
(:meth:`fail`, :attr:`requests`, :attr:`served`).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Final, Self

from .asgi_server import AsgiServer
from .ccxt_bitget_rest import RECORDED, BitgetRest, contract
from .clock import MarketClock
from .market import Market, SymbolSpec
from .scenario import DEFAULT_SCENARIO, Scenario, get_scenario

SPECS: Final[tuple[SymbolSpec, ...]] = (
    SymbolSpec("BTCUSDT", "BTC", 60_000.0, 30_000.0, 0.001),
    SymbolSpec("ETHUSDT", "ETH", 3_000.0, 500_000.0, 0.01),
    SymbolSpec("SOLUSDT", "SOL", 150.0, 4_000_000.0, 1.0),
    SymbolSpec("XRPUSDT", "XRP", 0.6, 300_000_000.0, 1.0),
    SymbolSpec("BTCUSD", "BTC", 60_000.0, 5_000.0, 0.001),
    SymbolSpec("ETHUSD", "ETH", 3_000.0, 80_000.0, 0.1),
)
"""Every swap of :data:`~.ccxt_bitget_rest.RECORDED`: starting price, open interest (coin)."""
DEFAULT_SYMBOLS: Final = ("BTCUSDT", "ETHUSDT", "BTCUSD", "ETHUSD")


class CcxtBitgetSimulator:
    """``async with CcxtBitgetSimulator() as sim: ...``; point ccxt at :attr:`rest_base_url`."""

    def __init__(
        self,
        scenario: Scenario | str = DEFAULT_SCENARIO,
        *,
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        seed: int = 0,
        time_scale: float = 1.0,
        start_s: float = 0.0,
        clock: MarketClock | None = None,
    ) -> None:
        """``clock``: share another server's market (started and stopped by its owner); its
        symbols that :data:`RECORDED` has are served."""
        self._own_clock = clock is None
        if clock is None:
            sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
            market = Market(sc, symbols=symbols, specs=SPECS, seed=seed, start_s=start_s)
            clock = MarketClock(market, time_scale=time_scale)
        self.clock = clock
        self.market = clock.market
        served = {s: contract(s) for s in self.market.symbols if s in RECORDED}
        if not served:
            raise ValueError(f"none of {self.market.symbols} is a recorded Bitget swap")
        self.rest = BitgetRest(served, self.market.quote)
        self._http = AsgiServer(self.rest.app)
        self.ws_base_url = ""
        """No websocket: polled venues have none."""
        self.rest_base_url = ""

    async def start(self, host: str = "127.0.0.1", ws_port: int = 0, rest_port: int = 0) -> Self:
        """Serve REST on ``host:rest_port`` (0: any free port); ``ws_port`` is ignored."""
        port = await self._http.start(host, rest_port)
        netloc = f"[{host}]" if ":" in host else host
        self.rest_base_url = f"http://{netloc}:{port}"
        if self._own_clock:
            self.clock.start()
        return self

    async def stop(self) -> None:
        await self._http.stop()
        if self._own_clock:
            await self.clock.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def fail(self, path_contains: str, count: int = 1, status: int = 500) -> None:
        self.rest.fail(path_contains, count, status)

    @property
    def requests(self) -> list[tuple[float, str]]:
        return self.rest.requests

    def mark(self, symbol: str) -> float:
        return self.market.mark(symbol)

    def oi_base(self, symbol: str) -> float:
        return self.market.oi_base(symbol)
