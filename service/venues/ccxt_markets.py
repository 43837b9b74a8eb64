"""ccxt clients whose every URL points at the configured REST base (simulator, testnet, proxy)."""

from __future__ import annotations

from typing import Any, ClassVar

import ccxt.async_support as ccxt_async
import structlog

from ..config import VenueSettings
from .base import Venue

log = structlog.get_logger(__name__)


def _rebase(urls: Any, hosts: tuple[str, ...], base: str) -> Any:
    if isinstance(urls, str):
        for host in hosts:
            if urls.startswith(host):
                return base + urls[len(host) :]
        return urls
    if isinstance(urls, dict):
        return {k: _rebase(v, hosts, base) for k, v in urls.items()}
    return urls


def ccxt_client(exchange_id: str, hosts: tuple[str, ...], rest_url: str) -> Any:
    """An async ccxt client with rate limiting on and ``hosts`` replaced by ``rest_url``."""
    client = getattr(ccxt_async, exchange_id)({"enableRateLimit": True})
    client.urls["api"] = _rebase(client.urls["api"], hosts, rest_url.rstrip("/"))
    return client


async def close_quietly(client: Any) -> None:
    try:
        await client.close()
    except Exception as exc:  # noqa: BLE001 - closing must not mask the real shutdown cause
        log.debug("ccxt close failed", error=str(exc))


class CcxtBackedVenue(Venue):
    """A venue whose REST calls go through one lazily created ccxt client, pointed at the
    configured REST base and closed with the venue."""

    ccxt_id: ClassVar[str]
    ccxt_hosts: ClassVar[tuple[str, ...]]
    """The production hosts that ``rest_url`` replaces in every ccxt URL."""
    ccxt_options: ClassVar[dict[str, Any]] = {}
    """Set on the client's ``options`` (e.g. OKX: fetch swaps only)."""

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self._client: Any = None

    def _ccxt(self) -> Any:
        if self._client is None:
            self._client = ccxt_client(self.ccxt_id, self.ccxt_hosts, self.rest_url)
            self._client.options.update(self.ccxt_options)
        return self._client

    def _ccxt_within(self, timeout_s: float) -> Any:
        """The client, its requests now timing out after ``timeout_s`` (a listing's budget)."""
        client = self._ccxt()
        client.timeout = int(timeout_s * 1000)
        return client

    async def close(self) -> None:
        if self._client is not None:
            await close_quietly(self._client)
            self._client = None
