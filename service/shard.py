"""Which shard owns what: a collector shard an instrument (``collect.shard: "I/N"``), a
detector shard an asset (``detect.shard: "I/N"``); ``--shard I/N`` sets the one its process runs.

Every instrument (venue, native symbol) belongs to exactly one of ``N`` shards, decided by a
stable hash of ``<venue>|<symbol>`` alone: no coordination, no shared state, the same answer
in every process, on every machine and across restarts (never Python's ``hash()``, which is
salted per process). A shard subscribes to, polls and writes only its own instruments, so two
shards never write the same instrument's keys.

The hash is BLAKE2b (64 bits) of the instrument's id, bucketed by Lamping and Veach's jump
consistent hash ("A Fast, Minimal Memory, Consistent Hash Algorithm", 2014): going from ``N``
to ``N + 1`` shards moves only about ``1 / (N + 1)`` of the instruments (those the new shard
takes), where ``hash % N`` would move almost all of them. Ownership of a venue's future
listings needs nothing either: a new symbol hashes to its shard the moment it is listed.

A detector shard owns assets (``BTC``) the same way, by the hash of the asset's name alone
(:func:`asset_owner`), so that an asset's instruments on every venue meet in one detector.

Part of the vocabulary below every package (the settings parse ``collect.shard`` and
``detect.shard`` into a :class:`Shard`): it imports nothing of the service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

MAX_SHARDS: Final = 1024
"""More collector processes than any deployment needs; a typo's bound (``0/20000``)."""
_MASK64: Final = (1 << 64) - 1
_LCG: Final = 2862933555777941757


def instrument_hash(venue: str, symbol: str) -> int:
    """A 64-bit hash of the instrument, the same in every process."""
    digest = hashlib.blake2b(f"{venue}|{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def asset_hash(asset: str) -> int:
    """A 64-bit hash of an asset's name (``BTC``), the same in every process."""
    return int.from_bytes(hashlib.blake2b(asset.encode(), digest_size=8).digest(), "big")


def jump(key: int, buckets: int) -> int:
    """The bucket (``0 <= b < buckets``) of a 64-bit ``key``: jump consistent hash."""
    b, j = -1, 0
    while j < buckets:
        b = j
        key = (key * _LCG + 1) & _MASK64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


def owner(venue: str, symbol: str, count: int) -> int:
    """The index of the shard (of ``count``) that owns the instrument."""
    return jump(instrument_hash(venue, symbol), count)


def asset_owner(asset: str, count: int) -> int:
    """The index of the detector shard (of ``count``) that owns the asset."""
    return jump(asset_hash(asset), count)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` of ``count`` (``0 <= index < count``); written ``index/count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"the shard count must be between 1 and {MAX_SHARDS}")
        if not 0 <= self.index < self.count:
            raise ValueError(
                "the shard index must be at least 0 and below the shard count "
                "(I/N with 0 <= I < N: 0/2 and 1/2 for two shards)"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` as a shard; ``ValueError`` (saying what is wrong) otherwise."""
        index, slash, count = text.strip().partition("/")
        if not slash or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError("must be I/N, two whole numbers: shard I of N (0/2, 1/2...)")
        return cls(int(index), int(count))

    @property
    def sharded(self) -> bool:
        """More than one shard (``0/1`` is the whole, as without a shard)."""
        return self.count > 1

    def owns(self, venue: str, symbol: str) -> bool:
        return self.count == 1 or owner(venue, symbol, self.count) == self.index

    def owns_asset(self, asset: str) -> bool:
        """Whether this detector shard scores ``asset`` (its instruments on every venue)."""
        return self.count == 1 or asset_owner(asset, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
