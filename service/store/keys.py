"""Every Redis key the service reads or writes is built here, and nowhere else.

Prefix ``dlv``; ``{...}`` is the Redis Cluster hash tag. The layout, with types and writers,
is documented in ``docs/redis.md``:

* ``dlv:{<venue>|<symbol>}:<kind>`` (stream): one entry per event of that kind for one
  instrument (field ``e``: the event as JSON), trimmed by time (``MINID ~``);
* ``dlv:{<venue>|<symbol>}:latest`` (hash): field per kind, the newest event as JSON;
* ``dlv:{<venue>|<symbol>}:liquidation_ids`` (sorted set): identities of the liquidations
  stored recently, so a liquidation re-sent by the venue is stored once;
* ``dlv:{<venue>|<symbol>}:last_batch`` (string): the last batch the store script applied,
  so that a retried batch is not written twice;
* ``dlv:{<venue>|<symbol>}:pressure`` (string): the newest pressure score as JSON;
* ``dlv:liquidations`` and ``dlv:{<venue>}:liquidations`` (sorted sets, every score 0): the
  index of the liquidation tape, over every venue and over one: one member per stored
  liquidation, ``<ms>-<seq>~<venue>|<symbol>`` with the stream id's two numbers zero-padded
  to 20 digits, so that the members' byte order is the tape's order (stream id, then
  instrument); written by the store script with the entry, trimmed by time with it. A page
  of ``/v1/liquidations`` reads ``limit`` members of it instead of merging every
  instrument's stream;
* ``dlv:{<venue>}:handoff`` (stream): one entry per written batch (field ``e``: a JSON array
  of that venue's events), what the detector consumes; trimmed by time;
* ``dlv:journal:<writer>`` (hash): a collector process's batch of liquidations whose
  hand-off is not written yet (``b`` its id, ``t`` its time, ``e`` its events), deleted
  with the hand-off: what the process, restarted after a kill, finishes first;
* ``dlv:{<venue>}:health`` (string): the venue connection's health snapshot as JSON;
  ``dlv:{<venue>}:health:shards`` (hash): the same per collector shard (field ``I/N``);
* ``dlv:{alerts}:transitions`` (stream): state transitions of every instrument, trimmed by
  time (tagged with the alert service's keys: it acknowledges them in its ``MULTI``);
  ``dlv:transitions:asset`` and ``dlv:transitions:market``: those of assets and the market;
* ``dlv:pressure:asset`` (hash): field per asset, its cross-venue pressure score as JSON;
  ``dlv:pressure:market`` (string): the market-wide score as JSON;
* ``dlv:scores`` (stream): one entry per detector round (field ``e``: a JSON array of the
  scores of every scope written that round, without their features), trimmed by time: what
  the live stream (``GET /v1/stream``) tails;
* ``dlv:score_history:<asset>`` (stream): an asset's (``*``: the market's) score, state and
  side sampled every ``detector.score_history_s``, trimmed by time: the page's charts;
* ``dlv:market:members`` (hash): with detector shards, field per asset, the asset as a
  member of the market (its evidence, open interest, state) as JSON, written by the shard
  that owns it, read by the market's owner (shard 0); ``dlv:detect:shards`` (hash): field
  ``I/N`` per detector shard, its last round (JSON); consumer groups ``detect:I/N`` on the
  hand-off streams: each detector shard's position;
* ``dlv:{<asset>}:detect:checkpoint`` (string, msgpack): the asset's instruments' baselines
  and states as of its detector's last checkpoint; ``dlv:detect:checkpoints`` (hash): field
  ``I/N`` per detector (``0/1``: one of everything), that checkpoint's header (its round,
  its assets, the order of its instruments); ``dlv:detect:rounds:I/N`` (stream): that
  detector's rounds since its checkpoint before last (field ``r``: time, input position, held
  venues), what a restart replays;
* ``dlv:{<venue>}:stress:latest`` (hash): the venue's newest leverage-stress state per
  instrument, pool and figure (field :func:`stress_field`, value the event as JSON);
  ``dlv:{<venue>}:stress:<stress kind>`` (stream): every stress event of that kind, trimmed
  by time;
* ``dlv:instruments`` and ``dlv:venues`` (sets): every instrument and venue seen;
* ``dlv:{alerts}:<id>`` (string): one alert (its history included) as JSON;
* ``dlv:{alerts}:index`` (sorted set): every alert id, scored by when it opened;
  ``dlv:{alerts}:open`` (set): the ids of the open ones;
* ``dlv:{alerts}:outbox:<receiver>`` (stream): the notifications to deliver to one receiver
  (field ``e``: the alert event as JSON), consumed by a consumer group;
* ``dlv:{alerts}:receiver:<receiver>`` (hash): a receiver's delivery state (``status``,
  ``disabled_reason``, counters); ``dlv:{alerts}:receivers`` (set): every receiver's name.

One hash tag per instrument keeps each instrument's keys in one slot (its pipeline commands
and the store script stay single-slot) while instruments spread over a cluster. Hand-off
streams are tagged per venue so that one detector reads one venue's streams in one ``XREAD``.
The liquidation indexes are the exception: the global one is a single key that every
instrument's store script writes; on a Redis Cluster the script leaves both indexes to a step
of the writer's own (see :mod:`.script` and ``docs/redis.md``).
"""

from __future__ import annotations

from typing import Final

from ..events import AdlRisk, Basis, InsuranceFund, Kind, Positioning, StressEvent, StressKind

PREFIX: Final = "dlv"
SEP: Final = "|"

INSTRUMENTS: Final = f"{PREFIX}:instruments"
VENUES: Final = f"{PREFIX}:venues"
ALERTS_TAG: Final = "{alerts}"
"""The hash tag of the alert service's keys and of its input, the instrument transitions:
one slot (one owner on a cluster), so that its ``MULTI`` (alerts, outboxes and the ``XACK`` of
the transitions) stays a transaction on a Redis Cluster."""
TRANSITIONS: Final = f"{PREFIX}:{ALERTS_TAG}:transitions"
"""Instrument transitions (what the alerts consume)."""
ASSET_TRANSITIONS: Final = f"{PREFIX}:transitions:asset"
MARKET_TRANSITIONS: Final = f"{PREFIX}:transitions:market"
ASSET_PRESSURE: Final = f"{PREFIX}:pressure:asset"
MARKET_PRESSURE: Final = f"{PREFIX}:pressure:market"
LIQUIDATION_INDEX: Final = f"{PREFIX}:liquidations"
"""Every venue's liquidation positions, in tape order (see :func:`liquidation_position`)."""
SCORES: Final = f"{PREFIX}:scores"
"""Every round's scores (all scopes), for the live stream."""
MARKET_MEMBERS: Final = f"{PREFIX}:market:members"
"""Detector shards: each asset as a member of the market (field: asset), for shard 0."""
DETECT_SHARDS: Final = f"{PREFIX}:detect:shards"
"""Detector shards: each one's last round (field ``I/N``)."""
DETECT_CHECKPOINTS: Final = f"{PREFIX}:detect:checkpoints"
"""Each detector's checkpoint header (field ``I/N``; ``0/1``: a detector of everything)."""
DETECT_CONSUMER: Final = "detector"
"""The one consumer of a detector shard's group (one process per shard)."""


def detect_group(shard: str) -> str:
    """The consumer group of detector shard ``I/N`` on every hand-off stream."""
    return f"detect:{shard}"


def detect_checkpoint(asset: str) -> str:
    """An asset's part of its detector's checkpoint (:mod:`service.detect.checkpoint`)."""
    return f"{PREFIX}:{{{asset}}}:detect:checkpoint"


def detect_rounds(shard: str) -> str:
    """Detector ``I/N``'s round log: the rounds since its last checkpoints (to replay)."""
    return f"{PREFIX}:detect:rounds:{shard}"


def score_history(asset: str) -> str:
    """An asset's sampled scores (``*``: the market's)."""
    return f"{PREFIX}:score_history:{asset}"


def transitions(scope: str) -> str:
    """The transitions stream of a scope: ``instrument``, ``asset`` or ``market``."""
    return {"instrument": TRANSITIONS, "asset": ASSET_TRANSITIONS,
            "market": MARKET_TRANSITIONS}[scope]  # fmt: skip


def instrument_id(venue: str, symbol: str) -> str:
    """The member of :data:`INSTRUMENTS` and the hash tag of an instrument's keys."""
    return f"{venue}{SEP}{symbol}"


def split_instrument(member: str) -> tuple[str, str]:
    venue, _, symbol = member.partition(SEP)
    return venue, symbol


def events(venue: str, symbol: str, kind: Kind) -> str:
    return f"{PREFIX}:{{{venue}{SEP}{symbol}}}:{kind.value}"


def events_key_parts(kind: Kind) -> tuple[str, str]:
    """``(prefix, suffix)`` such that ``prefix + instrument_id(v, s) + suffix`` is
    ``events(v, s, kind)`` (for a script that builds stream keys from index members)."""
    return f"{PREFIX}:{{", f"}}:{kind.value}"


def latest(venue: str, symbol: str) -> str:
    return f"{PREFIX}:{{{venue}{SEP}{symbol}}}:latest"


def liquidation_ids(venue: str, symbol: str) -> str:
    """Sorted set of the liquidation identities stored recently (score: when), for dedup."""
    return f"{PREFIX}:{{{venue}{SEP}{symbol}}}:liquidation_ids"


def last_batch(venue: str, symbol: str) -> str:
    """The id (and answer) of the last batch the store script applied: makes retries safe."""
    return f"{PREFIX}:{{{venue}{SEP}{symbol}}}:last_batch"


def latest_key_parts() -> tuple[str, str]:
    """``(prefix, suffix)`` such that ``prefix + instrument_id(v, s) + suffix`` is
    ``latest(v, s)``."""
    return f"{PREFIX}:{{", "}:latest"


def liquidation_ids_key_parts() -> tuple[str, str]:
    """``(prefix, suffix)`` such that ``prefix + instrument_id(v, s) + suffix`` is
    ``liquidation_ids(v, s)``."""
    return f"{PREFIX}:{{", "}:liquidation_ids"


def last_batch_key_parts() -> tuple[str, str]:
    """``(prefix, suffix)`` such that ``prefix + instrument_id(v, s) + suffix`` is
    ``last_batch(v, s)``."""
    return f"{PREFIX}:{{", "}:last_batch"


def pressure_key_parts() -> tuple[str, str]:
    """``(prefix, suffix)`` such that ``prefix + instrument_id(v, s) + suffix`` is
    ``pressure(v, s)``."""
    return f"{PREFIX}:{{", "}:pressure"


def pressure(venue: str, symbol: str) -> str:
    return f"{PREFIX}:{{{venue}{SEP}{symbol}}}:pressure"


def liquidation_index(venue: str | None = None) -> str:
    """The liquidation index of one venue, or of every venue (``None``)."""
    return LIQUIDATION_INDEX if venue is None else f"{PREFIX}:{{{venue}}}:liquidations"


POSITION_DIGITS: Final = 20
"""Digits of each number of a stream id in an index member (2**64 - 1 has 20)."""


def liquidation_position(ms: int, seq: int, member: str) -> str:
    """The index member of the liquidation stored under stream id ``ms-seq`` for the
    instrument ``member`` (:func:`instrument_id`): byte order is (stream id, instrument)."""
    return f"{ms:0{POSITION_DIGITS}d}-{seq:0{POSITION_DIGITS}d}~{member}"


def handoff(venue: str) -> str:
    return f"{PREFIX}:{{{venue}}}:handoff"


def journal(writer: str) -> str:
    """The liquidation batch in flight of the writer named ``writer`` (a collector process:
    ``collect``, or ``collect:I/N`` for a shard), until its hand-off is written (hash)."""
    return f"{PREFIX}:journal:{writer}"


def health(venue: str) -> str:
    """An unsharded collector's health snapshot of ``venue`` (string)."""
    return f"{PREFIX}:{{{venue}}}:health"


def shard_health(venue: str) -> str:
    """The collector shards' health snapshots of ``venue`` (hash, field ``I/N`` per shard)."""
    return f"{PREFIX}:{{{venue}}}:health:shards"


ALERTS_INDEX: Final = f"{PREFIX}:{ALERTS_TAG}:index"
ALERTS_OPEN: Final = f"{PREFIX}:{ALERTS_TAG}:open"
ALERT_EVENTS: Final = f"{PREFIX}:{ALERTS_TAG}:events"
"""Every alert notification, for the live stream."""
RECEIVERS: Final = f"{PREFIX}:{ALERTS_TAG}:receivers"
ALERTS_GROUP: Final = "alerts"
"""Consumer group of the alert service on :data:`TRANSITIONS`."""
OUTBOX_GROUP: Final = "deliver"
"""Consumer group of the delivery loops on each :func:`outbox`."""


def alert(alert_id: str) -> str:
    return f"{PREFIX}:{ALERTS_TAG}:{alert_id}"


def outbox(receiver: str) -> str:
    return f"{PREFIX}:{ALERTS_TAG}:outbox:{receiver}"


def receiver(name: str) -> str:
    return f"{PREFIX}:{ALERTS_TAG}:receiver:{name}"


def stress_latest(venue: str) -> str:
    """A venue's newest stress state per :func:`stress_field` (hash; tagged per venue)."""
    return f"{PREFIX}:{{{venue}}}:stress:latest"


def stress_events(venue: str, kind: StressKind) -> str:
    """Every stress event of ``kind`` of one venue (stream, trimmed by time)."""
    return f"{PREFIX}:{{{venue}}}:stress:{kind.value}"


def stress_field(event: StressEvent) -> str:
    """The field of :func:`stress_latest` that ``event`` replaces: one per instrument (ADL
    risk), per pool and asset (insurance), per instrument, metric and period (positioning),
    per instrument and contract (basis)."""
    match event:
        case AdlRisk():
            return f"adl_risk{SEP}{event.symbol}"
        case InsuranceFund():
            return f"insurance{SEP}{event.pool}{SEP}{event.asset}"
        case Positioning():
            return f"positioning{SEP}{event.symbol}{SEP}{event.metric.value}{SEP}{event.period_s}"
        case Basis():
            return f"basis{SEP}{event.symbol}{SEP}{event.contract}"
