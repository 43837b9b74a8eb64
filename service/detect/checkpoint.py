"""The detector's checkpoint: what its windows cannot rebuild (pure; I/O in the runner).

A restarted detector rebuilds its windows from the hand-off streams (:mod:`.runner`), but the
rest of a :class:`~.robust_model.RobustModel` is learned round by round and is not in any
stream: each instrument's baselines (their samples, in order) and when each is sampled next,
its state machine, its last assessment and data quality, its place in the calm rounds (phase,
next look, the urgency flags), its persistence timer; each asset's state machine and last
combination; the market's (its owner only); the order of arrival and each venue's newest
liquidation. A checkpoint holds exactly that, as of one round, so that a detector restored
from it and rebuilt from the streams scores its next round as the one that wrote it would.

Layout (``docs/redis.md``): one :class:`AssetRecord` per asset, ``dlv:{<asset>}:detect:
checkpoint`` (msgpack; the asset's instruments in their order of membership), and one
:class:`Header` per detector (``I/N``, ``0/1`` for a detector of everything), a field of
``dlv:detect:checkpoints``: the round, the assets written with it, the order of the
instruments and what is shared between them. Floats are stored as the bytes of their IEEE
doubles: a restored baseline holds bit for bit the samples it had.

Compatibility: a record whose :data:`VERSION` or settings :func:`fingerprint` (the windows and
the baselines' sizes) differs is ignored, with a warning and a count; so is an asset record
not written with its header's round (a write that half failed). An asset is restored by
whichever shard owns it now, whoever wrote it: a new shard count re-partitions the records.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec

from ..config import DetectorSettings
from ..events import HandoffEvent, Side
from ..scores import State
from .aggregate import Combined, Part
from .baseline import Baseline
from .features import RECENT_MIN_SAMPLES, RECENT_SAMPLES, RECENT_TAIL, Baselines, WindowBaselines
from .scoring import Assessment
from .state import Quality, StateMachine

if TYPE_CHECKING:
    from .robust_model import RobustModel, _Instrument, _Scope

VERSION: Final = 2
"""Bumped whenever a record's layout or meaning changes: an older one is ignored."""


class Machine(msgspec.Struct, array_like=True, frozen=True):
    state: State
    side: Side | None
    since_ms: int
    changed: bool


class WindowRecord(msgspec.Struct, array_like=True, frozen=True):
    """One window's baselines (samples oldest first) and sampling schedule."""

    oi: bytes
    ret: bytes
    liq: bytes
    oi_noise: bytes
    ret_noise: bytes
    last_oi: float | None
    last_ret: float | None
    last_ms: int
    next_ms: int
    next_recent_ms: int


class InstrumentRecord(msgspec.Struct, array_like=True, frozen=True):
    venue: str
    symbol: str
    phase: int
    windows: list[WindowRecord]
    funding: bytes
    premium: bytes
    next_scalar_ms: int
    sampled: int
    machine: Machine
    last: Assessment
    quality: Quality
    dirty: bool
    liq_new: bool
    settled: bool
    next_ms: int
    due_ms: int
    evaluated_ms: int
    pending_ms: int | None
    held: str | None
    warming: str | None


class ScopeRecord(msgspec.Struct, array_like=True, frozen=True):
    machine: Machine
    last: Combined | None
    held: bool
    part: Part | None


class AssetRecord(msgspec.Struct, array_like=True, frozen=True):
    version: int
    fingerprint: str
    round_ms: int
    asset: str
    instruments: list[InstrumentRecord]
    scope: ScopeRecord | None


class Header(msgspec.Struct, frozen=True):
    version: int
    fingerprint: str
    round_ms: int
    shard: str
    """``I/N`` of the detector that wrote it."""
    assets: list[str]
    order: list[tuple[str, str]]
    """The instruments in the model's order (of evaluation)."""
    last_ids: dict[str, str]
    """Per venue, the last hand-off entry folded in before the round."""
    log_id: str
    """The round's entry in the detector's round log (``""``: none)."""
    tracked: int
    foreign: list[tuple[str, str]]
    venue_liq_ms: dict[str, int]
    cost_us: float
    market: ScopeRecord | None


class Round(msgspec.Struct, array_like=True, frozen=True):
    """One round that wrote scores, as the round log keeps it: enough to run it again on
    the same input (a restart replays the rounds after its checkpoint)."""

    round_ms: int
    last_ids: dict[str, str]
    """Per venue, the last hand-off entry folded in before it."""
    holds: dict[str, str]
    """The venues held in it, with the reason."""


_ENCODER = msgspec.msgpack.Encoder()
_ROUND = msgspec.msgpack.Decoder(Round)
_HEADER = msgspec.msgpack.Decoder(Header)
_ASSET = msgspec.msgpack.Decoder(AssetRecord)
T = TypeVar("T")


class Incompatible(ValueError):
    """A record that cannot be used: undecodable, another version or other settings."""


def fingerprint(s: DetectorSettings) -> str:
    """What a baseline's meaning and size depend on: records of other settings are ignored."""
    layout = (
        s.windows_s(), s.baseline_lookback_s, s.baseline_lookback_windows,
        s.baseline_max_samples, s.baseline_min_samples, s.liq_floor_bp, s.window_s,
        RECENT_SAMPLES, RECENT_MIN_SAMPLES, RECENT_TAIL,
    )  # fmt: skip
    return hashlib.blake2b(repr(layout).encode(), digest_size=8).hexdigest()


def encode(record: Header | AssetRecord | Round) -> bytes:
    return _ENCODER.encode(record)


def decode_header(raw: bytes, fp: str) -> Header:
    """A header, or :class:`Incompatible` (with the reason)."""
    header = _decoded(_HEADER, raw, "undecodable")
    _check(header.version, header.fingerprint, fp)
    return header


def decode_round(raw: bytes) -> Round:
    return _decoded(_ROUND, raw, "undecodable round")


def decode_asset(raw: bytes, fp: str) -> AssetRecord:
    record = _decoded(_ASSET, raw, "undecodable")
    _check(record.version, record.fingerprint, fp)
    return record


def _decoded(decoder: msgspec.msgpack.Decoder[T], raw: bytes, what: str) -> T:
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Incompatible(f"{what}: {exc}") from None


def _check(version: int, fp: str, want: str) -> None:
    if version != VERSION:
        raise Incompatible(f"version {version}, this detector reads {VERSION}")
    if fp != want:
        raise Incompatible("written with other windows or baseline sizes")


# -- capture ---------------------------------------------------------------------------------


def capture(
    model: RobustModel,
    round_ms: int,
    shard: str,
    last_ids: Mapping[str, str],
    fp: str,
    log_id: str = "",
) -> tuple[Header, list[AssetRecord]]:
    """The model's state after the round at ``round_ms`` (its own assets)."""
    scopes = model._assets
    records = []
    for asset, insts in model._members.items():
        scope = _scope(scopes[asset]) if asset in scopes else None
        records.append(
            AssetRecord(VERSION, fp, round_ms, asset, list(map(_instrument, insts)), scope)
        )
    header = Header(
        VERSION, fp, round_ms, shard,
        assets=[r.asset for r in records],
        order=[(v, s) for v, symbols in model._by_venue.items() for s in symbols],
        last_ids=dict(last_ids),
        log_id=log_id,
        tracked=model._tracked,
        foreign=sorted(model._foreign),
        venue_liq_ms=dict(model._venue_liq_ms),
        cost_us=model._cost_us,
        market=_scope(model._market) if model.own_market or shard.startswith("0/") else None,
    )  # fmt: skip
    return header, records


def _samples(b: Baseline) -> bytes:
    """A baseline's samples in its own precision (single or double: :func:`_load` reads them
    back with the same baseline's type)."""
    return b.samples().tobytes()


def _machine(m: StateMachine) -> Machine:
    return Machine(m.state, m.side, m.since_ms, m.changed)


def _instrument(inst: _Instrument) -> InstrumentRecord:
    b, h = inst.baselines, inst.history
    windows = [_window(w) for w in b.windows]
    return InstrumentRecord(
        h.venue, h.symbol, inst.phase, windows, _samples(b.funding), _samples(b.premium),
        b.next_scalar_ms, b.sampled, _machine(inst.machine), inst.last, inst.quality,
        inst.dirty, inst.liq_new, inst.settled, inst.next_ms, inst.due_ms, inst.evaluated_ms,
        inst.pending_ms, inst.held, inst.warming,
    )  # fmt: skip


def _window(w: WindowBaselines) -> WindowRecord:
    return WindowRecord(
        _samples(w.oi), _samples(w.ret), _samples(w.liq), _samples(w.oi_noise),
        _samples(w.ret_noise), w.last_oi, w.last_ret, w.last_ms, w.next_ms, w.next_recent_ms,
    )  # fmt: skip


def _scope(scope: _Scope) -> ScopeRecord:
    return ScopeRecord(_machine(scope.machine), scope.last, scope.held, scope.part)


# -- restore ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Resumed:
    """What :func:`resume` applied; :meth:`passed` finishes it during the rebuild."""

    round_ms: int
    last_ids: dict[str, str]
    """Per venue, the entry after which the checkpoint's round came."""
    assets: int = 0
    instruments: int = 0
    flags: dict[str, list[tuple[_Instrument, bool, bool]]] = field(default_factory=dict)
    """Per venue, each restored instrument's urgency flags (new data, new liquidation) as of
    the round: the rebuild folds in the entries before it again, which set them."""
    rounds: list[Round] | None = None
    """The rounds to replay after it (``None``: no replay, the entries are folded in as
    the rebuild reads them)."""
    buffer: list[tuple[str, str, list[HandoffEvent]]] = field(default_factory=list)
    """With a replay: the entries after the checkpoint's round, read by the rebuild,
    folded in by the replay round by round."""

    def after(self, venue: str, stream_id: str, key: Callable[[str], tuple[int, int]]) -> bool:
        """Whether the rebuild's entry comes after the checkpoint's round (its flags are
        applied then, before the entry is folded in)."""
        if key(stream_id) <= key(self.last_ids.get(venue, "0")):
            return False
        if venue in self.flags:
            self.passed(venue)
        return True

    def passed(self, venue: str) -> None:
        """The rebuild has folded in ``venue``'s entries up to the checkpoint's round."""
        for inst, dirty, liq_new in self.flags.pop(venue, ()):
            inst.dirty, inst.liq_new = dirty, liq_new

    def finish(self) -> None:
        """The rebuild is done (a venue without entries after the round included)."""
        for venue in list(self.flags):
            self.passed(venue)


def resume(
    model: RobustModel,
    header: Header,
    records: Iterable[AssetRecord],
    owns: Callable[[str], bool],
    *,
    recent: bool,
    market: bool,
) -> Resumed:
    """Apply a checkpoint's records of the assets the model ``owns`` (before the rebuild;
    after the stored states' restore, unless the rounds after it are replayed). ``recent``:
    the round is within the span the rebuild reads, so the state that refers to the windows
    (states, schedule, flags, last assessments) is restored too; otherwise only the
    baselines and the order of arrival.
    ``market``: the model owns the market (the header's market scope is restored)."""
    out = Resumed(header.round_ms, dict(header.last_ids))
    for record in records:
        if not owns(record.asset) or record.round_ms != header.round_ms:
            continue
        members = []
        for rec in record.instruments:
            symbols = model._by_venue.setdefault(rec.venue, {})
            inst = symbols.get(rec.symbol)
            if inst is None:
                inst = symbols[rec.symbol] = model._track(rec.venue, rec.symbol, record.asset)
            _apply_instrument(inst, rec, recent)
            if recent:
                out.flags.setdefault(rec.venue, []).append((inst, rec.dirty, rec.liq_new))
            members.append(inst)
            out.instruments += 1
        others = [i for i in model._members.get(record.asset, []) if i not in members]
        model._members[record.asset] = members + others
        if recent and record.scope is not None:
            _apply_scope(model._assets.setdefault(record.asset, model._scope()), record.scope)
        out.assets += 1
    if out.instruments:
        _reorder(model, header.order)
    model._tracked = max(model._tracked, header.tracked)
    model._foreign.update((v, s) for v, s in header.foreign)
    for venue, ms in header.venue_liq_ms.items():
        model._venue_liq_ms[venue] = max(ms, model._venue_liq_ms.get(venue, ms))
    model._cost_us = header.cost_us
    if recent and market and header.market is not None:
        _apply_scope(model._market, header.market)
    return out


def _reorder(model: RobustModel, order: list[tuple[str, str]]) -> None:
    """The instruments in the checkpoint's order (of evaluation), those it lacks after."""
    old = model._by_venue
    new: dict[str, dict[str, _Instrument]] = {}
    for venue, symbol in order:
        inst = old.get(venue, {}).get(symbol)
        if inst is not None:
            new.setdefault(venue, {})[symbol] = inst
    for venue, symbols in old.items():
        for symbol, inst in symbols.items():
            new.setdefault(venue, {}).setdefault(symbol, inst)
    model._by_venue = new


def _load(b: Baseline, raw: bytes) -> None:
    b.load(array(b.typecode, raw))


def _apply_instrument(inst: _Instrument, rec: InstrumentRecord, recent: bool) -> None:
    b: Baselines = inst.baselines
    if len(rec.windows) != len(b.windows):
        raise Incompatible("another number of windows")
    for w, r in zip(b.windows, rec.windows, strict=True):
        for baseline, raw in ((w.oi, r.oi), (w.ret, r.ret), (w.liq, r.liq),
                              (w.oi_noise, r.oi_noise), (w.ret_noise, r.ret_noise)):  # fmt: skip
            _load(baseline, raw)
        w.next_ms, w.next_recent_ms = r.next_ms, r.next_recent_ms
        w.last_oi, w.last_ret, w.last_ms = r.last_oi, r.last_ret, r.last_ms
        if not recent:  # the windows' last changes are not those the rebuild will see
            w.last_oi = w.last_ret = None
    _load(b.funding, rec.funding)
    _load(b.premium, rec.premium)
    b.next_scalar_ms, b.sampled = rec.next_scalar_ms, rec.sampled
    inst.phase = rec.phase
    if not recent:
        return
    _apply_machine(inst.machine, rec.machine)
    inst.last, inst.quality = rec.last, rec.quality
    inst.settled, inst.next_ms, inst.due_ms = rec.settled, rec.next_ms, rec.due_ms
    inst.evaluated_ms, inst.pending_ms = rec.evaluated_ms, rec.pending_ms
    inst.held, inst.warming = rec.held, rec.warming


def _apply_machine(m: StateMachine, rec: Machine) -> None:
    m.state, m.side, m.since_ms, m.changed = rec.state, rec.side, rec.since_ms, rec.changed


def _apply_scope(scope: _Scope, rec: ScopeRecord) -> None:
    _apply_machine(scope.machine, rec.machine)
    scope.last, scope.held, scope.part = rec.last, rec.held, rec.part


# -- which checkpoint ------------------------------------------------------------------------


def choose(
    raw: Mapping[str, bytes], me: str, fp: str, now_ms: int, max_age_ms: int
) -> tuple[list[Header], list[tuple[str, str]]]:
    """The headers to restore from (oldest first) and those ignored, ``(I/N, why)``.

    This detector's own (``me``, ``I/N``) when it is usable; else, after a change of the
    shard count (or from a detector of everything to shards, and back), every usable
    header of the newest deployment (the other ``N`` whose round is the newest): each asset
    is restored by its new owner from the header that wrote it."""
    usable: list[Header] = []
    ignored: list[tuple[str, str]] = []
    for name, value in sorted(raw.items()):
        try:
            header = decode_header(value, fp)
        except Incompatible as exc:
            ignored.append((name, str(exc)))
            continue
        if now_ms - header.round_ms > max_age_ms:
            ignored.append((name, f"{(now_ms - header.round_ms) / 1000:.0f} s old"))
            continue
        usable.append(header)
    mine = [h for h in usable if h.shard == me]
    if mine or not usable:
        return mine, ignored
    newest = max(usable, key=lambda h: h.round_ms)
    count = newest.shard.partition("/")[2]
    return sorted((h for h in usable if h.shard.partition("/")[2] == count),
                  key=lambda h: h.round_ms), ignored  # fmt: skip
