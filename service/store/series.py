"""Time series of one asset across venues, for charts: open interest, funding, liquidations
by side and the detector's score, in buckets of equal length over a window.

Open interest and funding are *sampled*: per instrument and bucket, the newest event stored
at or before the bucket's end (one ``XREVRANGE … COUNT 1`` each, so the cost is bounded by
instruments x buckets, not by how often a venue sends), left out when older than
``max_age_ms``. Liquidations are *summed* per bucket (at most
:data:`MAX_LIQUIDATIONS_READ` per instrument). The score is the newest sample of
``keys.score_history(asset)`` in each bucket. Unusable entries are skipped and counted
(:mod:`.poison`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..events import FundingRate, InstrumentId, Kind, Liquidation, OpenInterest, Side
from ..scores import State
from . import keys
from .poison import decode_or_record, entry_field, readable, usable_event

MAX_LIQUIDATIONS_READ: Final = 20_000
"""Liquidations read per instrument: bounds one request's work (the newest are kept)."""


class ScoreSample(msgspec.Struct, frozen=True):
    score: float
    state: State
    side: Side | None = None


_SAMPLE: Final = msgspec.json.Decoder(ScoreSample)


@dataclass(slots=True)
class Bucket:
    """One bucket, ending at ``end_ms`` (exclusive) and ``step`` long."""

    end_ms: int
    oi_usd: float | None = None
    funding_rate_1h: float | None = None
    liq_long_usd: float = 0.0
    liq_short_usd: float = 0.0
    liq_count: int = 0
    score: ScoreSample | None = None


def bucket_ends(until_ms: int, step_ms: int, count: int) -> list[int]:
    """``count`` bucket ends, oldest first, the last at ``until_ms``."""
    return [until_ms - (count - 1 - i) * step_ms for i in range(count)]


async def asset_series(
    client: aioredis.Redis,
    asset: str,
    pairs: Sequence[InstrumentId],
    ends_ms: Sequence[int],
    step_ms: int,
    max_age_ms: int,
) -> list[Bucket]:
    """The buckets ending at ``ends_ms`` (ascending) of the instruments ``pairs``."""
    buckets = [Bucket(end) for end in ends_ms]
    if not buckets:
        return buckets
    since_ms = ends_ms[0] - step_ms
    await _sampled(client, pairs, buckets, max_age_ms)
    await _liquidations(client, pairs, buckets, since_ms, step_ms)
    await _scores(client, asset, buckets, since_ms, step_ms)
    return buckets


async def _sampled(
    client: aioredis.Redis, pairs: Sequence[InstrumentId], buckets: list[Bucket], max_age_ms: int
) -> None:
    kinds = (Kind.OPEN_INTEREST, Kind.FUNDING)
    async with client.pipeline(transaction=False) as pipe:
        for pair in pairs:
            for kind in kinds:
                key = keys.events(*pair, kind)
                for b in buckets:
                    pipe.xrevrange(key, f"({b.end_ms}-0", "-", count=1)
        replies = iter(await pipe.execute(raise_on_error=False))
    oi_sum = [0.0] * len(buckets)
    oi_seen = [False] * len(buckets)
    weighted = [0.0] * len(buckets)
    weights = [0.0] * len(buckets)
    plain: list[list[float]] = [[] for _ in buckets]
    for pair in pairs:
        oi_at: list[float | None] = []
        for kind in kinds:
            key = keys.events(*pair, kind)
            for i, b in enumerate(buckets):
                event = _newest(next(replies), kind, key, pair, b.end_ms - max_age_ms)
                if kind is Kind.OPEN_INTEREST:
                    oi = event.oi_usd if isinstance(event, OpenInterest) else None
                    oi_at.append(oi)
                    if oi is not None:
                        oi_sum[i] += oi
                        oi_seen[i] = True
                elif isinstance(event, FundingRate):
                    weight = oi_at[i]
                    if weight:
                        weighted[i] += event.funding_rate_1h * weight
                        weights[i] += weight
                    plain[i].append(event.funding_rate_1h)
    for i, b in enumerate(buckets):
        b.oi_usd = oi_sum[i] if oi_seen[i] else None
        if weights[i] > 0:
            b.funding_rate_1h = weighted[i] / weights[i]
        elif plain[i]:
            b.funding_rate_1h = sum(plain[i]) / len(plain[i])


def _newest(reply: Any, kind: Kind, key: str, pair: InstrumentId, oldest_ms: int) -> Any:
    """The event of a ``COUNT 1`` reply, when usable and recent enough."""
    if not reply or not readable(reply, kind.value, key):
        return None
    event = usable_event(entry_field(reply[0][1], "e"), kind.value, key, pair)
    if event is None or event.recv_ms < oldest_ms:
        return None
    return event


async def _liquidations(
    client: aioredis.Redis, pairs: Sequence[InstrumentId], buckets: list[Bucket], since_ms: int,
    step_ms: int,
) -> None:  # fmt: skip
    until_ms = buckets[-1].end_ms
    async with client.pipeline(transaction=False) as pipe:
        for pair in pairs:
            key = keys.events(*pair, Kind.LIQUIDATION)
            pipe.xrevrange(key, f"({until_ms}-0", f"{since_ms}-0", count=MAX_LIQUIDATIONS_READ)
        replies = await pipe.execute(raise_on_error=False)
    for pair, rows in zip(pairs, replies, strict=True):
        key = keys.events(*pair, Kind.LIQUIDATION)
        if not rows or not readable(rows, Kind.LIQUIDATION.value, key):
            continue
        for entry_id, fields in rows:
            liq = usable_event(entry_field(fields, "e"), Kind.LIQUIDATION.value, key, pair)
            if not isinstance(liq, Liquidation):
                continue
            b = buckets[_index(_id_ms(entry_id), since_ms, step_ms, len(buckets))]
            b.liq_count += 1
            if liq.side is Side.LONG:
                b.liq_long_usd += liq.notional_usd
            else:
                b.liq_short_usd += liq.notional_usd


async def _scores(
    client: aioredis.Redis, asset: str, buckets: list[Bucket], since_ms: int, step_ms: int
) -> None:
    key = keys.score_history(asset)
    try:
        rows: Any = await client.xrange(key, f"{since_ms}-0", f"({buckets[-1].end_ms}-0")
    except ResponseError as exc:
        readable(exc, "score_history", key)
        return
    for entry_id, fields in rows:
        raw = entry_field(fields, "e")
        sample = None if raw is None else decode_or_record(_SAMPLE, raw, "score_history", key)
        if sample is not None and 0 <= sample.score <= 100:
            buckets[_index(_id_ms(entry_id), since_ms, step_ms, len(buckets))].score = sample


def _index(ms: int, since_ms: int, step_ms: int, n: int) -> int:
    return min(n - 1, max(0, (ms - since_ms) // step_ms))


def _id_ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])
