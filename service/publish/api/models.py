"""Response bodies of the v1 API and the ops endpoints. Units are in the field names; times are
RFC 3339 UTC strings with milliseconds.

Routes return plain dicts; FastAPI validates them against these models and serializes them in
pydantic's core in one pass (no intermediate model instances).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ...events import Side
from ...scores import Scope, State
from .params import Timestamp

Ratio = float
"""0 to 1."""


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    """One readiness check."""

    name: str = Field(examples=["venue:binance_usdm"])
    ok: bool
    detail: str = Field(examples=["last message 0.2 s ago"])


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: list[Check]


class DriftItem(BaseModel):
    """A channel the hourly passive drift check suspects of a protocol change."""

    channel: str = Field(examples=["open-interest"])
    reason: Literal["silent", "missing_fields", "unknown_fields"] = Field(
        description="`silent`: no event for longer than the venue's documented rate allows; "
        "`missing_fields`: sampled rows lack a field the parser needs; `unknown_fields`: "
        "sampled rows carry fields the parser does not know."
    )
    detail: str = Field(examples=["no event for 3600 s; documented: every 3 s when it changes"])


class Venue(BaseModel):
    """A venue connection's health, as its collector last reported it."""

    venue: str = Field(examples=["binance_usdm"])
    enabled: bool
    connected: bool
    fresh: bool = Field(
        description="The same test as `/readyz`: recent snapshot, connected, "
        "a message within the watchdog window."
    )
    problem: str | None = Field(description="Why the feed is not fresh.", examples=[None])
    mode: Literal["stream", "polled"] = Field(
        description="`stream`: a native websocket feed; `polled`: REST polls through ccxt "
        "(funding, mark and open interest only)."
    )
    ws_url: str | None = Field(examples=["wss://fstream.binance.com/market"])
    rest_url: str | None = Field(examples=["https://fapi.binance.com"])
    liquidations: Literal["complete", "sampled", "none"] | None = Field(
        description="What the venue's liquidation feed gives: every liquidation, a sample, "
        "or none (polled venues). Null until the venue reports.",
        examples=["complete"],
    )
    liquidations_sampled: bool | None
    poll_interval_s: float | None = Field(
        description="A polled venue's poll interval; null for a stream.", examples=[None]
    )
    connected_since: Timestamp | None
    last_message_at: Timestamp | None
    last_event_at: Timestamp | None
    delay_s: float | None = Field(
        default=None,
        description="How far behind the venue the collector reads: the largest receive time "
        "minus venue time of its marks and tops over the last one or two seconds with data "
        "(the venue's own lag and clock offset included). Null before any.",
        examples=[0.042],
    )
    liquidation_delay_s: float | None = Field(
        default=None,
        description="The same for its liquidations, which travel on a connection of their "
        "own (a venue that batches them adds its period). Null before any.",
        examples=[0.31],
    )
    updated_at: Timestamp | None = Field(description="When the snapshot was written.")
    messages_total: int = Field(examples=[183004])
    events_total: int = Field(examples=[96211])
    reconnects_total: int = Field(examples=[2])
    parse_errors_total: int = Field(examples=[1])
    parse_errors: dict[str, int] = Field(examples=[{"unknown_symbol": 1}])
    oi_polls_total: int = Field(examples=[4210])
    oi_poll_failures_total: int = Field(examples=[3])
    instruments: int = Field(description="Instruments in the venue's metadata.", examples=[512])
    subscribed_symbols: int | None = Field(description="Configured symbols; null means all.")
    last_error: str | None = Field(examples=[None])
    rest_failures: dict[str, int] = Field(
        description="A polled venue's failed REST calls by endpoint.", examples=[{}]
    )
    drift: list[DriftItem] = Field(
        description="What the last passive drift check suspects (every `collect.drift_check_s`, "
        "an hour by default); empty when nothing. `deleverage check-venues` checks live.",
        examples=[[]],
    )
    drift_checked_at: Timestamp | None = Field(
        description="When the passive drift check last ran; null before its first run."
    )
    shards: list[str] = Field(
        description="The collector shards (`I/N`) this health is merged from, worst shard "
        "first in `problem` and `last_error`; empty: one unsharded collector.",
        examples=[[]],
    )


class VenueList(BaseModel):
    items: list[Venue]


# Depth within 1 % of mid against its baseline, and the fragility warning: the same figures,
# under the same names, as the detector's features (docs/detector.md, "Liquidity"), in the
# pressure, liquidity and asset items.
Depth1PctUsd = Annotated[
    float | None,
    Field(
        description="USD resting within 1 % of mid, bids plus asks, from the newest book depth "
        "(null: the instrument's order book is not followed; in `/v1/pressure`, also while "
        "its newest book is over a minute old).",
        examples=[2.4e7],
    ),
]
Depth1PctExact = Annotated[
    bool | None,
    Field(
        description="Whether the levels received reach 1 % of mid on both sides; false: "
        "`depth_1pct_usd` is a lower bound (the venue sends only its best levels).",
        examples=[True],
    ),
]
Depth1PctChangePct = Annotated[
    float | None,
    Field(
        description="Change of the depth within 1 %'s minute means over the last 15 minutes, "
        "in % (-45.0: 45 % thinner), from complete books only (null until 15 minutes of "
        "them, or without a score).",
        examples=[-45.0],
    ),
]
Depth1PctZ = Annotated[
    float | None,
    Field(
        description="That change (as a log change) against the instrument's earlier "
        "15-minute changes, in robust sigmas (negative: thinning; null until the detector's "
        "baseline holds 20 samples, about 35 minutes).",
        examples=[-7.2],
    ),
]
Fragile = Annotated[
    bool | None,
    Field(
        description="The detector's fragility warning: true when the book is thin or wide "
        "against its own baselines (depth change or top of book 3 sigmas or more below, or "
        "the spread as far above) while open interest falls or builds with at least half the "
        "evidence a state needs: a thin book makes a cascade move price further per dollar "
        "liquidated. A warning beside the state, never a state (null: no score with "
        "liquidity figures).",
        examples=[False],
    ),
]


class PressureItem(BaseModel):
    """The deleveraging pressure of one instrument."""

    venue: str = Field(examples=["binance_usdm"])
    symbol: str = Field(examples=["BTCUSDT"])
    asset: str = Field(examples=["BTC"])
    score: float = Field(ge=0, le=100, description="0 (nothing) to 100 (extreme).", examples=[72.5])
    state: State
    side: Side | None = Field(description="Whose positions are being unwound.")
    updated_at: Timestamp
    since: Timestamp = Field(description="When the current state was entered.")
    forced_share: Ratio | None = Field(
        description="Liquidated notional over the open-interest decline in the window (0-1).",
        examples=[0.64],
    )
    data_quality: Ratio = Field(description="1 when every feed is fresh.", examples=[1.0])
    features: dict[str, float | None] = Field(
        description="The detector's figures behind the score, units in their names; the "
        "liquidity figures among them (`spread_bp`, `book_top_usd`, `depth_1pct_*`, "
        "`volume_1m_*_usd`, their `*_z`, `fragile` 0/1) are also in `/v1/liquidity`.",
        examples=[{"oi_change_base_pct": -3.2, "liq_notional_usd": 41250000.0}],
    )
    reasons: list[str] = Field(examples=[["OI -3.2% in 5m", "longs liquidated: $41.3M"]])
    depth_1pct_usd: Depth1PctUsd = None
    depth_1pct_exact: Depth1PctExact = None
    depth_1pct_change_pct: Depth1PctChangePct = None
    depth_1pct_z: Depth1PctZ = None
    fragile: Fragile = None


class PressureList(BaseModel):
    items: list[PressureItem] = Field(description="Highest score first.")


class _Instrument(BaseModel):
    venue: str = Field(examples=["binance_usdm"])
    symbol: str = Field(examples=["BTCUSDT"])
    asset: str = Field(examples=["BTC"])


class LiquidationItem(_Instrument):
    """A forced close; ``side`` is the side of the liquidated position."""

    side: Side
    price: float = Field(examples=[91234.5])
    quantity: float = Field(description="In the venue's native unit.", examples=[0.5])
    quantity_base: float = Field(examples=[0.5])
    notional_usd: float = Field(examples=[45617.25])
    sampled: bool = Field(description="The venue publishes only a sample of liquidations.")
    ts: Timestamp = Field(description="The venue's event time.")


class LiquidationPage(BaseModel):
    items: list[LiquidationItem] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page.",
        examples=["1795491796123-0~binance_usdm|BTCUSDT"],
    )


class FundingItem(_Instrument):
    funding_rate: float = Field(
        description="Per funding interval (0.0001 = 0.01 %).", examples=[0.0001]
    )
    interval_h: float = Field(examples=[8.0])
    funding_rate_1h: float = Field(examples=[0.0000125])
    funding_rate_annualized: float = Field(
        description="Simple annual rate (1 = 100 %/year).", examples=[0.1095]
    )
    next_funding_at: Timestamp | None
    ts: Timestamp


class FundingList(BaseModel):
    items: list[FundingItem]


class OpenInterestItem(_Instrument):
    oi_contracts: float = Field(examples=[81234.0])
    oi_base: float = Field(examples=[81234.0])
    oi_usd: float = Field(description="Valued at the mark price.", examples=[7411400000.0])
    ts: Timestamp


class OpenInterestList(BaseModel):
    items: list[OpenInterestItem] = Field(description="Largest open interest (USD) first.")


class MarkItem(_Instrument):
    mark_price: float = Field(description="In the contract's quote currency.", examples=[91234.5])
    index_price: float | None = Field(examples=[91240.1])
    ts: Timestamp


class MarkList(BaseModel):
    items: list[MarkItem]


class DepthBand(BaseModel):
    """The USD within one band of mid, on each side."""

    band_pct: float = Field(description="The band's half-width, in % of mid.", examples=[1.0])
    bid_usd: float = Field(
        description="USD of the bids priced within the band below mid.", examples=[1.4e7]
    )
    ask_usd: float = Field(examples=[1.1e7])
    bid_exact: bool = Field(
        description="Whether the bids received reach the band's edge; false: `bid_usd` is a "
        "lower bound (the venue sends only its best levels).",
        examples=[False],
    )
    ask_exact: bool = Field(examples=[False])


class LiquidityDepth(BaseModel):
    """An instrument's newest book depth (at most one a second)."""

    mid: float = Field(description="(best bid + best ask) / 2.", examples=[91234.45])
    bands: list[DepthBand] = Field(description="0.5 %, 1 % and 2 % of mid.")
    bid_reach_pct: float = Field(
        description="How far below mid the bids received reach, in % of mid: a band wider "
        "than this is a lower bound.",
        examples=[0.31],
    )
    ask_reach_pct: float = Field(examples=[0.27])
    ts: Timestamp


class LiquidityItem(_Instrument):
    """The newest top of book of one instrument and its newest book depth, and how they
    compare with the instrument's own recent minutes (the detector's figures)."""

    bid_price: float | None = Field(
        description="Best bid, in the quote currency (null, with the other top of book "
        "fields: a followed book whose venue's ticker carries no top of book, OKX).",
        examples=[91234.4],
    )
    ask_price: float | None = Field(examples=[91234.5])
    bid_base: float | None = Field(
        description="Size at the best bid, in base units.", examples=[2.05]
    )
    ask_base: float | None = Field(examples=[15.3])
    bid_usd: float | None = Field(
        description="USD value of the size at the best bid.", examples=[1.9e5]
    )
    ask_usd: float | None = Field(examples=[1.4e6])
    spread_bp: float | None = Field(
        description="(ask - bid) / mid, in basis points.", examples=[0.011]
    )
    spread_z: float | None = Field(
        description="The last complete minute's mean spread against the instrument's "
        "earlier minutes, in robust sigmas (null until the detector's baseline is ready, or "
        "without a score).",
        examples=[4.2],
    )
    book_top_z: float | None = Field(
        description="The same for the USD at the top of the book (bid plus ask; negative: "
        "thinner).",
        examples=[-3.1],
    )
    volume_1m_buy_usd: float | None = Field(
        default=None,
        description="USD bought by takers over the last minute, liquidation fills included "
        "(null: no trade for a minute, or a venue whose trades are not read).",
        examples=[4.2e6],
    )
    volume_1m_sell_usd: float | None = Field(
        default=None, description="USD sold by takers over the last minute.", examples=[6.9e6]
    )
    volume_z: float | None = Field(
        default=None,
        description="The last complete minute's traded USD (its log) against the "
        "instrument's earlier minutes, in robust sigmas (negative: drying up).",
        examples=[-2.4],
    )
    ts: Timestamp = Field(
        description="The top of book's time (the book depth's, for an instrument without one)."
    )
    depth: LiquidityDepth | None = Field(
        default=None,
        description="The USD resting near mid, from the venue's order book, for the "
        "instruments whose book is followed (by default the top 20 by open interest of each "
        "venue); null for the others.",
    )
    depth_1pct_usd: Depth1PctUsd = None
    depth_1pct_exact: Depth1PctExact = None
    depth_1pct_change_pct: Depth1PctChangePct = None
    depth_1pct_z: Depth1PctZ = None
    fragile: Fragile = None


class LiquidityList(BaseModel):
    items: list[LiquidityItem]


class AssetInstrumentItem(BaseModel):
    """One contract of the asset on one venue."""

    venue: str = Field(examples=["bybit"])
    symbol: str = Field(examples=["BTCUSD"])
    oi_usd: float | None = Field(examples=[1.2e9])
    funding_rate_1h: float | None = Field(examples=[0.0000125])
    mark_price: float | None = Field(examples=[91234.5])
    liq_long_usd: float = Field(examples=[4.1e6])
    liq_short_usd: float = Field(examples=[2.0e5])
    stale: bool = Field(description="Left out of the sums: its venue or its data is stale.")
    updated_at: Timestamp | None
    spread_bp: float | None = Field(
        default=None,
        description="Its newest top of book's spread, (ask - bid) / mid in basis points "
        "(null: its venue's ticker carries no book).",
        examples=[0.8],
    )
    book_top_usd: float | None = Field(
        default=None, description="USD at its best bid plus its best ask.", examples=[2.4e6]
    )
    depth_1pct_usd: Depth1PctUsd = None
    depth_1pct_exact: Depth1PctExact = None
    depth_1pct_change_pct: Depth1PctChangePct = None
    depth_1pct_z: Depth1PctZ = None
    fragile: Fragile = None


class AssetItem(BaseModel):
    """One asset across every venue and contract."""

    asset: str = Field(examples=["BTC"])
    oi_usd: float = Field(description="Summed over fresh instruments.", examples=[3.4e10])
    funding_rate_1h: float | None = Field(
        description="Per-hour funding weighted by open interest.", examples=[0.0000104]
    )
    funding_rate_annualized: float | None = Field(examples=[0.0911])
    liq_long_usd: float = Field(description="Longs liquidated within the window.")
    liq_short_usd: float = Field(description="Shorts liquidated within the window.")
    liq_count: int
    window_s: float = Field(description="The span of the liquidation sums.", examples=[3600])
    venues: list[str] = Field(examples=[["binance_usdm", "bybit", "okx"]])
    stale_venues: list[str] = Field(examples=[[]])
    sampled_venues: list[str] = Field(
        description="Venues that publish only a sample of liquidations: sums are a lower bound.",
        examples=[["binance_usdm", "okx"]],
    )
    fragile_instruments: int = Field(
        default=0,
        description="Instruments of the asset whose score carries the fragility warning "
        "(`fragile`: a thin or wide book while open interest moves).",
        examples=[1],
    )
    instruments: list[AssetInstrumentItem]


class AssetList(BaseModel):
    items: list[AssetItem] = Field(description="Largest open interest first.")


class AssetHistoryPoint(BaseModel):
    """One bucket of an asset's history, ending at ``at`` (exclusive)."""

    at: Timestamp
    oi_usd: float | None = Field(
        description="Open interest summed over the instruments, each the newest value stored "
        "before `at` (null: none recent enough).",
        examples=[3.4e10],
    )
    funding_rate_1h: float | None = Field(
        description="Per-hour funding, weighted by open interest.", examples=[0.0000104]
    )
    liq_long_usd: float = Field(description="Longs liquidated within the bucket.")
    liq_short_usd: float = Field(description="Shorts liquidated within the bucket.")
    liq_count: int
    score: float | None = Field(
        description="The asset's score (0-100), the newest sample in the bucket.", examples=[12.5]
    )
    state: State | None
    side: Side | None


class AssetHistory(BaseModel):
    """An asset across venues over a window, in buckets (for charts)."""

    asset: str = Field(examples=["BTC"])
    window_s: int = Field(examples=[14400])
    step_s: int = Field(examples=[120])
    instruments: int = Field(description="Instruments of the asset summed.", examples=[12])
    points: list[AssetHistoryPoint] = Field(description="Oldest first.")


class AlertChangeItem(BaseModel):
    """One notification of an alert: opened, escalated, repeated or resolved."""

    kind: Literal["opened", "escalated", "repeated", "resolved"]
    at: Timestamp
    state: State
    score: float = Field(examples=[91.5])


class AlertItem(BaseModel):
    """An alert: one rule firing for one scope key, from opened until resolved."""

    id: str = Field(examples=["9f3c0a1b2c3d4e5f-1795491796123"])
    fingerprint: str = Field(
        description="The alert's identity (rule, scope, key): the same for every occurrence.",
        examples=["9f3c0a1b2c3d4e5f"],
    )
    rule: str = Field(examples=["cascade"])
    scope: Literal["instrument", "asset", "market"]
    key: str = Field(description="`venue|symbol`, the asset, or `*`.", examples=["BTC"])
    venue: str | None = Field(examples=[None])
    symbol: str | None = Field(examples=[None])
    asset: str | None = Field(examples=["BTC"])
    status: Literal["open", "resolved"]
    state: State
    peak_state: State = Field(description="The worst state announced.")
    side: Side | None
    score: float = Field(examples=[91.5])
    reasons: list[str] = Field(examples=[["OI -3.2% in 5m"]])
    opened_at: Timestamp
    updated_at: Timestamp
    resolved_at: Timestamp | None
    receivers: list[str] = Field(examples=[["ops"]])
    history: list[AlertChangeItem]


class AlertList(BaseModel):
    items: list[AlertItem]


class ReceiverItem(BaseModel):
    """A webhook receiver's delivery state. Never its URL's path or its secret."""

    name: str = Field(examples=["ops"])
    kind: Literal["generic", "slack", "discord"]
    host: str = Field(examples=["hooks.slack.com"])
    status: Literal["active", "disabled"]
    disabled_reason: str | None = Field(examples=["HTTP 410 Gone at 2026-11-24T05:31:02Z"])
    delivered_total: int = Field(examples=[12])
    failures_total: int = Field(description="Attempts that did not deliver.", examples=[1])
    dropped_total: int = Field(description="Messages given up on.", examples=[0])
    outbox_depth: int = Field(description="Messages not yet delivered.", examples=[0])
    last_delivered_at: Timestamp | None


class ReceiverList(BaseModel):
    items: list[ReceiverItem]


class TransitionItem(BaseModel):
    """A change of state (or of side) of an instrument, an asset or the market."""

    id: str = Field(description="The stream entry's id.", examples=["1795491796123-0"])
    scope: Scope
    venue: str = Field(description="`*` for asset and market transitions.", examples=["okx"])
    symbol: str = Field(examples=["BTC-USDT-SWAP"])
    asset: str = Field(description="`*` for market transitions.", examples=["BTC"])
    from_state: State
    to_state: State
    side: Side | None = Field(description="Whose positions, in the new state.")
    score: float = Field(ge=0, le=100, examples=[71.3])
    ts: Timestamp = Field(description="When the detector decided the change.")
    forced_share: Ratio | None = Field(examples=[0.42])
    data_quality: Ratio | None = Field(examples=[1.0])
    features: dict[str, float | None] = Field(
        description="The strongest features behind the change.",
        examples=[{"evidence_liq": 3.1, "oi_change_base_pct": -2.4}],
    )
    reasons: list[str] = Field(
        examples=[["long liquidations $41.3M in 1m, z +9.8", "OI -2.40% (base) in 5m, z -6.1"]]
    )


class TransitionPage(BaseModel):
    items: list[TransitionItem] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page.",
        examples=["1795491796123-0"],
    )


# --- the live stream's event payloads (``GET /v1/stream``: the ``data`` of each event) ---


class StreamScore(BaseModel):
    """A ``score`` event: a score of any scope, as the detector wrote it (no features)."""

    scope: Scope
    venue: str = Field(description="`*` for an asset's or the market's.", examples=["bybit"])
    symbol: str = Field(description="`*` for an asset's or the market's.", examples=["BTCUSDT"])
    asset: str = Field(description="`*` for the market's.", examples=["BTC"])
    score: float = Field(ge=0, le=100, examples=[72.5])
    state: State
    side: Side | None
    updated_at: Timestamp
    since: Timestamp
    forced_share: Ratio | None
    data_quality: Ratio
    reasons: list[str] = Field(examples=[["OI -3.2% in 5m", "longs liquidated: $41.3M"]])


class StreamAlert(BaseModel):
    """An ``alert`` event: one notification of an alert."""

    id: str = Field(
        description="The notification's id (the webhook id).",
        examples=["9f3c0a1b2c3d4e5f-1795491796123.1"],
    )
    kind: Literal["opened", "escalated", "repeated", "resolved"]
    at: Timestamp
    alert: AlertItem


class StreamHeartbeat(BaseModel):
    """A ``heartbeat`` event: the stream is alive (every ``api.stream_heartbeat_s``)."""

    at: Timestamp


class StreamNotice(BaseModel):
    """A ``reset`` event (what came after ``Last-Event-ID`` is no longer kept: the current
    scores follow) or a ``dropped`` one (the client fell behind; the stream ends)."""

    reason: str = Field(
        examples=[
            "the client fell behind: 5001 events waiting to be sent, more than 5000; "
            "reconnect with Last-Event-ID to resume"
        ]
    )
    at: Timestamp


STREAM_PAYLOADS: dict[str, type[BaseModel]] = {
    "score": StreamScore,
    "transition": TransitionItem,
    "alert": StreamAlert,
    "liquidation": LiquidationItem,
    "heartbeat": StreamHeartbeat,
    "reset": StreamNotice,
    "dropped": StreamNotice,
}
"""Each event type of the stream and the model of its ``data``."""


class StressInsurance(BaseModel):
    """One insurance pool's balance in one asset, and its change."""

    pool: str = Field(examples=["BTCUSDT"])
    asset: str = Field(description="The currency of `balance`.", examples=["USDT"])
    symbols: list[str] = Field(examples=[["BTCUSDT", "ETHUSDT"]])
    balance: float = Field(description="In `asset`; negative: a pool in deficit.")
    balance_usd: float | None = Field(
        description="The venue's USD value, stablecoins at par; null when neither is known.",
        examples=[7.9e8],
    )
    change_1h_usd: float | None = Field(
        description="`balance_usd` now less the oldest stored within the last hour (null: no "
        "earlier value, or no USD value).",
        examples=[-1.6e8],
    )
    change_1h_pct: float | None = Field(
        description="`change_1h_usd` in percent of that oldest value.", examples=[-20.0]
    )
    venue_change: float | None = Field(
        description="The change the venue publishes with the balance (OKX `amt`), in `asset`."
    )
    updated_at: Timestamp


class StressAdl(BaseModel):
    """An instrument's auto-deleveraging risk on the one scale, its native value beside it."""

    symbol: str = Field(examples=["BTCUSDT"])
    asset: str = Field(examples=["BTC"])
    level: int = Field(
        ge=1, le=4, description="1 low, 2 medium, 3 high, 4 active (docs/stress.md)."
    )
    level_name: Literal["low", "medium", "high", "active"]
    native: str = Field(description="The venue's own value.", examples=["high", "-0.56"])
    native_kind: str = Field(examples=["rating", "pnl_drawdown_ratio"])
    trigger: float | None = Field(description="The venue's trigger for `native`, if any.")
    updated_at: Timestamp


class StressPositioning(BaseModel):
    """A long/short figure over one period."""

    symbol: str = Field(description="The instrument, or the currency (OKX).", examples=["BTCUSDT"])
    asset: str = Field(examples=["BTC"])
    metric: Literal["accounts", "top_accounts", "top_positions", "taker_volume"]
    period_s: int = Field(examples=[300])
    long_short_ratio: float = Field(examples=[1.85])
    long_share: float | None = Field(description="0 to 1.", examples=[0.649])
    updated_at: Timestamp


class StressBasis(BaseModel):
    """A futures price against its index."""

    symbol: str = Field(examples=["BTCUSDT"])
    asset: str = Field(examples=["BTC"])
    contract: str = Field(examples=["perpetual"])
    futures_price: float
    index_price: float
    basis: float = Field(description="`futures_price - index_price`.")
    basis_rate: float = Field(description="`basis / index_price`.")
    annualized_rate: float | None = Field(description="Null for a perpetual.")
    updated_at: Timestamp


class StressVenue(BaseModel):
    """What one venue publishes of leverage stress, as last polled."""

    venue: str = Field(examples=["binance_usdm"])
    adl_level_max: int | None = Field(
        description="The highest ADL level among the venue's instruments (null: none rated).",
        examples=[2],
    )
    insurance: list[StressInsurance]
    adl: list[StressAdl]
    positioning: list[StressPositioning]
    basis: list[StressBasis]


class StressList(BaseModel):
    items: list[StressVenue] = Field(description="Sorted by venue; venues with no data left out.")


class AssetStress(BaseModel):
    """An asset's leverage-stress figures across venues (docs/stress.md)."""

    adl_level_max: int | None = Field(
        description="The highest ADL level among the asset's instruments on every venue "
        "(1 low to 4 active; null: none rated).",
        examples=[3],
    )
    venues: list[StressVenue] = Field(
        description="Per venue with data, sorted: the ADL risk of the asset's instruments, "
        "the insurance pools that cover them (its own, and shared pools listing one of its "
        "instruments), long/short figures and basis."
    )


class AssetDetail(AssetItem):
    """One asset across every venue and contract, with its leverage-stress figures."""

    stress: AssetStress
