"""ccxt clients whose every URL points at the configured REST base (simulator, testnet, proxy)."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async
import structlog

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
