"""Hyperliquid instruments and subscriptions: which perpetuals, asked for how, within the
venue's limits (per IP: 1000 subscriptions, 10 distinct users in user subscriptions, 2000
messages sent a minute: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/
rate-limits-and-user-limits, checked 2026-12-06), and the liquidator vaults whose fills are
watched."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
import structlog

from ..base import Instrument
from . import frames

log = structlog.get_logger(__name__)

VENUE: Final = "hyperliquid"
QUOTE: Final = "USDC"
FUNDING_INTERVAL_H: Final = 1.0
MAX_SUBSCRIPTIONS: Final = 1000
MAX_USERS: Final = 10

LIQUIDATOR_ADDRESSES: Final[tuple[str, ...]] = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",  # HLP Liquidator (an HLP child vault)
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",  # HLP Liquidator 2
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",  # HLP Liquidator 3
    "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308",  # HLP Liquidator 4
    "0x63c621a33714ec48660e32f2374895c8026a3a00",  # "Liquidator" protocol vault
)
"""The vaults whose fills are watched for liquidations: the HLP child vaults named
"HLP Liquidator" 1-4 and the older "Liquidator" protocol vault (names as ``vaultDetails``
gives them; the first is the one every source cites). Five of the ten users allowed."""


def parse_meta(payload: Any) -> list[Instrument]:
    """The listed perpetuals of a ``meta`` answer (or of ``metaAndAssetCtxs``, whose first
    element it is). Raises ``ValueError`` on an unexpected shape."""
    if isinstance(payload, (bytes, str)):
        payload = json.loads(payload)
    if isinstance(payload, list) and payload:
        payload = payload[0]
    meta = msgspec.convert(payload, frames.Meta, strict=False)
    return [
        Instrument(
            venue=VENUE,
            symbol=a.name,
            base=a.name,
            quote=QUOTE,
            linear=True,
            contract_size=1.0,
            funding_interval_h=FUNDING_INTERVAL_H,
        )
        for a in meta.universe
        if not a.isDelisted
    ]


def _subscribe(subscription: Mapping[str, Any]) -> str:
    return json.dumps({"method": "subscribe", "subscription": subscription}, separators=(",", ":"))


def watched_users(liquidators: Iterable[str]) -> list[str]:
    """The liquidator addresses whose ``userFills`` are subscribed: lower-cased, each once,
    at most :data:`MAX_USERS` (the rest left out with a warning)."""
    users = list(dict.fromkeys(a.lower() for a in liquidators))
    if len(users) > MAX_USERS:
        log.warning(
            "liquidator addresses beyond the venue's limit are not watched",
            venue=VENUE,
            kept=MAX_USERS,
            given=len(users),
        )
        users = users[:MAX_USERS]
    return users


def fills_messages(liquidators: Iterable[str]) -> tuple[str, ...]:
    """``userFills`` of each watched liquidator vault (:func:`watched_users`): the
    liquidations' connection."""
    return tuple(_subscribe({"type": "userFills", "user": u}) for u in watched_users(liquidators))


def subscribe_messages(
    coins: Iterable[str],
    liquidators: Iterable[str],
    *,
    bbo: bool = False,
    trades: bool = False,
    reserved: int = 0,
) -> tuple[str, ...]:
    """``activeAssetCtx`` of each coin, then, coin by coin, its ``bbo`` (when ``bbo``) and
    ``trades`` (when ``trades``): all within the venue's limits, less the liquidator vaults'
    ``userFills`` (:func:`fills_messages`, on a connection of their own: the limit counts
    every connection of the IP) and ``reserved`` subscriptions kept for the order books
    (:func:`book_messages`). Beyond them, the rest is left out with a warning: the contexts
    last (they carry funding, open interest and mark), the liquidity channels first."""
    names = list(coins)
    room = MAX_SUBSCRIPTIONS - reserved - len(watched_users(liquidators))
    if len(names) > room:
        log.warning(
            "coins beyond the venue's subscription limit are not streamed",
            venue=VENUE,
            kept=room,
            given=len(names),
        )
        names = names[: max(0, room)]
    room -= len(names)
    kinds = [k for k, on in (("bbo", bbo), ("trades", trades)) if on]
    liquidity = [(k, c) for c in names for k in kinds]
    if len(liquidity) > room:
        log.warning(
            "liquidity channels beyond the venue's subscription limit are left out",
            venue=VENUE,
            kept=max(0, room),
            given=len(liquidity),
        )
        liquidity = liquidity[: max(0, room)]
    return tuple(
        [_subscribe({"type": "activeAssetCtx", "coin": c}) for c in names]
        + [_subscribe({"type": k, "coin": c}) for k, c in liquidity]
    )


def book_subscription(coin: str, sig_figs: int | None) -> dict[str, Any]:
    """The ``l2Book`` subscription of ``coin``, its levels aggregated to ``sig_figs``
    significant figures (``None``: the venue's full precision)."""
    sub: dict[str, Any] = {"type": "l2Book", "coin": coin}
    if sig_figs is not None:
        sub["nSigFigs"] = sig_figs
    return sub


def book_messages(
    coins: Iterable[str], sig_figs: int | None, method: str = "subscribe"
) -> tuple[str, ...]:
    """``method`` (``subscribe``, ``unsubscribe``) of the ``l2Book`` of each of ``coins``."""
    return tuple(
        json.dumps(
            {"method": method, "subscription": book_subscription(c, sig_figs)},
            separators=(",", ":"),
        )
        for c in coins
    )
