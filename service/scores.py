"""The detector's output, shared with the store, the API, the metrics and the alerts.

Vocabulary below every package that passes it on (as :mod:`.events` is for the venues'
output): the store keeps these values and the settings name states, so they cannot live in
:mod:`.detect`, which reads from the store.

State names are fixed: ``calm``, ``building`` (leverage growing), ``unwinding`` (positions
closing: a gradual deleveraging), ``cascade`` (forced liquidations dominate). ``side`` is
whose positions are being unwound (``long`` or ``short``) or ``None``.

Scores and transitions have a :class:`Scope`: one instrument (``venue`` and ``symbol``), one
asset across venues (``venue`` and ``symbol`` are :data:`ANY`) or the whole market (``asset``
is :data:`ANY` too). Fields added after the first version have defaults, so that values
stored by an older version still decode.
"""

from __future__ import annotations

import enum

import msgspec

from .events import Side

ANY = "*"
"""``venue``/``symbol`` (and ``asset``) of an asset (market) score."""
WARMING = "warming up until"
"""The reason that starts a score still in its burn-in (no state reported yet)."""


class Scope(enum.StrEnum):
    """What a score, a transition or an alert is about (one vocabulary for the detector,
    the API and the alert rules)."""

    INSTRUMENT = "instrument"
    """One venue's symbol."""
    ASSET = "asset"
    """A base asset across venues and contracts: the detector's open-interest-weighted
    combination of its instruments."""
    MARKET = "market"
    """Every asset: the detector's combination of the assets, with breadth."""


class State(enum.StrEnum):
    CALM = "calm"
    BUILDING = "building"
    UNWINDING = "unwinding"
    CASCADE = "cascade"


class Pressure(msgspec.Struct, frozen=True, kw_only=True):
    """The pressure score of one instrument at ``updated_ms``."""

    venue: str
    symbol: str
    asset: str
    score: float
    """0 (nothing happening) to 100 (extreme)."""
    state: State
    side: Side | None
    updated_ms: int
    since_ms: int
    """When the current state was entered."""
    forced_share: float | None
    """Liquidated notional as a share of the open-interest decline over the window (0-1)."""
    data_quality: float
    """1 when every feed is fresh; lower when a feed is missing or stale."""
    features: dict[str, float | None]
    """The values behind the score, units in the names (e.g. ``oi_change_base_pct``)."""
    reasons: list[str] = []
    """Short human-readable reasons, the strongest first, e.g. ``"OI -3.2% (base) in 5m"``."""
    scope: Scope = Scope.INSTRUMENT


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """A change of state of one instrument, asset or market, with the reasons (the alerts
    consume the instrument ones)."""

    venue: str
    symbol: str
    asset: str
    from_state: State
    to_state: State
    side: Side | None
    score: float
    ts_ms: int
    reasons: list[str] = []
    scope: Scope = Scope.INSTRUMENT
    forced_share: float | None = None
    data_quality: float | None = None
    features: dict[str, float | None] = {}
    """The strongest features behind the change (a subset of the score's)."""


encode = msgspec.json.Encoder().encode
decode_pressure = msgspec.json.Decoder(Pressure).decode
decode_transition = msgspec.json.Decoder(Transition).decode
