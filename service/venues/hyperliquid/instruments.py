"""Hyperliquid instruments and subscriptions: which perpetuals, asked for how, within the
venue's limits (per IP: 1000 subscriptions, 10 distinct users in user subscriptions), and
the liquidator vaults whose fills are watched."""

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


def _subscribe(subscription: Mapping[str, str]) -> str:
    return json.dumps({"method": "subscribe", "subscription": subscription}, separators=(",", ":"))


def subscribe_messages(coins: Iterable[str], liquidators: Iterable[str]) -> tuple[str, ...]:
    """``userFills`` of each liquidator vault (first: their snapshot recovers a gap soonest),
    then ``activeAssetCtx`` of each coin; within the venue's limits (beyond them, the rest
    is left out with a warning)."""
    users = list(dict.fromkeys(a.lower() for a in liquidators))
    names = list(coins)
    if len(users) > MAX_USERS:
        log.warning(
            "liquidator addresses beyond the venue's limit are not watched",
            venue=VENUE,
            kept=MAX_USERS,
            given=len(users),
        )
        users = users[:MAX_USERS]
    room = MAX_SUBSCRIPTIONS - len(users)
    if len(names) > room:
        log.warning(
            "coins beyond the venue's subscription limit are not streamed",
            venue=VENUE,
            kept=room,
            given=len(names),
        )
        names = names[:room]
    return tuple(
        [_subscribe({"type": "userFills", "user": u}) for u in users]
        + [_subscribe({"type": "activeAssetCtx", "coin": c}) for c in names]
    )
