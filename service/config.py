"""One settings object, built once at start-up and passed in (never imported as a global).

Sources, highest priority first: keyword arguments, environment variables
(``DELEVERAGE_`` prefix, ``__`` between nested keys, e.g.
``DELEVERAGE_VENUES__BINANCE_USDM__SYMBOLS=BTCUSDT,ETHUSDT``), then the YAML files named by
``DELEVERAGE_CONFIG`` (comma separated, later files win) or ``config/default.yaml``, then
the defaults below. Anything invalid stops the service with a message naming the key; the
message never quotes the value (it may be a secret). Whatever would fail at run time is
checked here (URL schemes and ports, Redis URL arguments, webhook secrets, consistent limits,
rule receivers, the MQTT topic prefix), so that ``deleverage check-config`` catches it; what
needs a venue's code (a ccxt exchange that can be polled) is checked next, by
:mod:`.preflight`, which the commands load their settings through.

The settings are a leaf: they import only other settings modules (``config_*``) and the
vocabulary below every package (:mod:`.errors`, :mod:`.events`, :mod:`.scores`,
:mod:`.redact`), so that any package may take them in without a cycle and without loading
the service (``tests/test_import_graph.py`` holds them to it).

Secrets (the Redis URL's credentials, ``mqtt.password``, webhook secrets and Slack/Discord
URLs, secret-looking ``ccxt.config`` keys) are masked in dumps and reprs, and
:meth:`Settings.secret_values` hands them to the log filter (:mod:`.logs`).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import ssl
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .config_alerts import AlertSettings
from .config_sources import describe, read_yaml
from .config_types import (
    Host,
    HttpUrl,
    Redis,
    TopicPrefix,
    WebsocketUrl,
    mapping_secrets,
    masked_mapping,
)
from .errors import ConfigError
from .events import Kind
from .redact import redacted as redacted  # re-exported: the runtime and demo mask URLs with it
from .redact import scrub, url_secrets
from .shard import Shard

ENV_PREFIX = "DELEVERAGE_"
CONFIG_ENV = "DELEVERAGE_CONFIG"
DEFAULT_CONFIG = Path("config/default.yaml")
_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("config_yaml", default=None)

Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    # hide_input_in_errors: a ValidationError's str() never quotes a value (maybe a secret)
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class CcxtSettings(_Section):
    """A venue polled over REST through ccxt's unified API (the long tail): funding, mark and
    open interest every ``poll_interval_s``; no websocket, no liquidations."""

    exchange: str
    """The ccxt exchange id (``bitget``, ``htx``...). It must implement fetchFundingRate(s)
    and fetchOpenInterest(s): checked at start-up, by :mod:`.preflight` (it needs ccxt)."""
    poll_interval_s: Annotated[float, Field(ge=1)] = 60.0
    """One funding/mark poll per interval; per-symbol open-interest calls are spread over it
    (and never faster than ccxt's ``rateLimit`` for the exchange)."""
    funding_interval_h: Annotated[float, Field(gt=0)] = 8.0
    """Funding interval assumed when ccxt's funding structure does not give one."""
    oi_amount_unit: Literal["contracts", "base"] = "contracts"
    """What ccxt's ``openInterestAmount`` counts on this exchange: ``contracts`` (ccxt's
    convention: x contractSize = base coin for linear, USD for inverse) or ``base`` coin
    (e.g. Bitget, whose coin-margined swaps are sized in coin)."""
    config: dict[str, Any] = Field(default_factory=dict, repr=False)
    """Extra ccxt constructor settings, e.g. ``{options: {fetchMarkets: {types: [swap]}}}``
    or a slower ``rateLimit`` (ms); ``enableRateLimit`` is always on. Values under
    secret-looking keys (``apiKey``, ``secret``, ``password``...) are masked in dumps."""

    @field_serializer("config")
    def _mask_config(self, value: dict[str, Any]) -> Any:
        return masked_mapping(value)


class StressSettings(_Section):
    """A venue's leverage-stress polling (ADL risk, insurance funds, long/short ratios, basis;
    ``docs/stress.md``). Only venues with a stress plan poll (Binance USDⓈ-M, Bybit, OKX,
    Gate.io); the key is ignored for the others."""

    enabled: bool = True
    """Off: the venue's stress endpoints are not polled, nor its websocket's stress topics
    subscribed (Bybit's ``adlAlert``); its market data is unaffected."""
    limit_share: Annotated[float, Field(gt=0, le=1)] = 0.25
    """The share of each of the venue's published request limits that stress polling may
    spend (its own budget: Binance's 2400 weight a minute × 0.25 = 600, beside
    ``oi_poll_weight_per_minute``). A plan that asks for more is slowed down, never sent
    over it."""
    every_s: Annotated[float, Field(ge=60)] = 300.0
    """Cadence of the per-symbol polls (long/short ratios, taker volume, basis)."""
    venue_every_s: Annotated[float, Field(ge=1)] | None = None
    """Cadence of the venue-wide calls (ADL risk or alerts, insurance funds); ``None``: the
    plan's (5 min; Bybit's ADL alerts every minute). The demo polls them every few seconds
    to show its cascade."""


class DepthSettings(_Section):
    """A venue's order book depth (``book_depth`` events: USD within 0.5, 1 and 2 % of mid),
    from each native venue module's order book channel (docs/venues.md, "Book depth", names
    each venue's channel, reach and levels); ignored for a ccxt-polled venue.
    Depth is costly for every symbol at once (a book per symbol, ten deltas a second), so it
    covers a set: the given :attr:`symbols`, else the top :attr:`top_n` by open interest."""

    top_n: Annotated[int, Field(ge=0, le=200)] = 20
    """The instruments with the most open interest (USD) get a book; 0: no depth. The ranking
    follows the open interest the collector holds, re-ranked every :attr:`rerank_s`."""
    symbols: list[str] | None = None
    """Native symbols to follow instead of the ranking (still within the venue's
    ``symbols``)."""
    rerank_s: Annotated[float, Field(ge=1)] = 60.0
    """How often the ranking is taken again (a change reconnects only the depth
    connection)."""
    levels: Annotated[int, Field(gt=0)] | None = None
    """Levels a side of the venue's book channel, where it offers a choice (Bybit: 50, 200
    or the deeper one its docs list; Bitget: 1, 5 or 15; Binance: the REST snapshot's
    ``limit``, 5 to 1000; Gate: 50 or 400; BitMEX: the most a side its whole book keeps; OKX
    400, Deribit 10,000 and Hyperliquid 20 only: another value fails at start-up); ``None``:
    the venue module's default (docs/venues.md)."""
    hysteresis: Annotated[float, Field(ge=0, le=1)] = 0.1
    """An instrument outside the set replaces the smallest one inside only when its open
    interest is this much larger (0.1: 10 %): a symbol at the edge does not churn."""

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        return value


class VenueSettings(_Section):
    """One venue. URLs left unset take the venue module's production defaults."""

    enabled: bool = True
    ws_url: WebsocketUrl | None = None
    """Websocket base URL, ``ws://`` or ``wss://`` (for Binance USDⓈ-M: the routed
    ``/market`` base). No credentials: market data is public, and /v1/venues shows it."""
    rest_url: HttpUrl | None = None
    """REST base URL, ``http://`` or ``https://``, used by our own calls and by ccxt (for a
    ccxt-polled venue it replaces the host of every API URL ccxt knows for the exchange)."""
    symbols: list[str] | Literal["all"] = "all"
    """Native symbols (``BTCUSDT``), as the venue names them."""
    oi_poll_weight_per_minute: Annotated[int, Field(gt=0, le=2400)] = 600
    """Share of the venue's REST weight budget that open-interest polling may use."""
    metadata_refresh_s: Seconds = 3600.0
    ccxt: CcxtSettings | None = None
    """Set: the venue is polled through ccxt instead of a native venue module; its name
    need not be a native venue's."""
    stress: StressSettings = Field(default_factory=StressSettings)
    """Leverage-stress polling, on by default where the venue has a plan."""
    volume: bool = True
    """Traded volume per second from the venue's trades channel (one more channel per symbol
    on most venues, Binance's ``aggTrade`` on connections of their own, Deribit's the trades
    it reads for liquidations; docs/venues.md). Off: no trades channel is subscribed for it
    and no volume is stored."""
    depth: DepthSettings = Field(default_factory=DepthSettings)
    """Order book depth, from each native venue module's book channel (docs/venues.md)."""

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "all":
            return [s.strip() for s in value.split(",") if s.strip()]
        return value

    @model_validator(mode="after")
    def _polled_has_no_websocket(self) -> VenueSettings:
        if self.ccxt is not None and self.ws_url is not None:
            raise ValueError("ws_url given for a ccxt-polled venue (it has no websocket)")
        return self


class CollectSettings(_Section):
    watchdog_s: Seconds = 30.0
    """Reconnect when a connection delivers nothing for this long."""
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0
    stable_session_s: Seconds = 60.0
    """A session that lived this long resets the backoff."""
    max_connection_age_s: Seconds = 23.5 * 3600
    """Rotate (make-before-break) before the venue's own 24 h disconnect."""
    open_timeout_s: Seconds = 10.0
    ws_ping_s: Seconds | None = None
    """Websocket protocol pings from the collector, every this many seconds, the connection
    closed (1011) when the pong takes as long; off by default. A pong arrives behind every
    frame sent before it, so a collector that is behind (a cascade at ten times the normal
    rate, Redis slow) would close its own connections and lose what the venue had sent on
    them. Liveness is the watchdog's (``watchdog_s``: no data for that long reconnects) and
    the venues' own keep-alives (their application pings, Binance's server pings)."""
    rest_timeout_s: Seconds = 10.0
    drift_check_s: Seconds = 3600.0
    """How often the passive drift check runs (silent channels, unknown or missing fields:
    ``/v1/venues`` ``drift``, ``deleverage_feed_drift_suspected``)."""
    shard: Shard | None = None
    """``"I/N"``: this process collects only the instruments of shard ``I`` of ``N``
    (``0 <= I < N``; each instrument belongs to one shard by a stable hash of its venue and
    symbol, see ``docs/scaling.md``); ``deleverage run --only collect --shard I/N`` sets it.
    Unset (or ``0/1``): every instrument."""

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: Any) -> Any:
        return Shard.parse(value) if isinstance(value, str) else value

    @field_serializer("shard")
    def _shard_text(self, value: Shard | None) -> str | None:
        return None if value is None else str(value)

    @model_validator(mode="after")
    def _backoff(self) -> CollectSettings:
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s must be at most backoff_max_s")
        return self


class DetectSettings(_Section):
    """How this process's detector shares the work with others (the model's parameters are
    ``detector``)."""

    shard: Shard | None = None
    """``"I/N"``: this process's detector scores only the assets of shard ``I`` of ``N``
    (``0 <= I < N``; each asset belongs to one shard by a stable hash of its name, so that
    its instruments on every venue meet in one detector; shard 0 also combines the market
    from every shard's assets, see ``docs/scaling.md``); ``deleverage run --only detect
    --shard I/N`` sets it. Unset (or ``0/1``): every asset, as one detector."""

    @field_validator("shard", mode="before")
    @classmethod
    def _parse_shard(cls, value: Any) -> Any:
        return Shard.parse(value) if isinstance(value, str) else value

    @field_serializer("shard")
    def _shard_text(self, value: Shard | None) -> str | None:
        return None if value is None else str(value)


DEFAULT_RETENTION_S: Final[dict[Kind, float]] = {
    Kind.LIQUIDATION: 7 * 86400.0,
    Kind.FUNDING: 86400.0,
    Kind.OPEN_INTEREST: 86400.0,
    Kind.MARK: 6 * 3600.0,
    Kind.BOOK_TOP: 6 * 3600.0,
    Kind.VOLUME: 6 * 3600.0,
    Kind.BOOK_DEPTH: 6 * 3600.0,
}


class StoreSettings(_Section):
    retention_s: dict[Kind, Seconds] = Field(default_factory=lambda: dict(DEFAULT_RETENTION_S))
    """Time-based retention of each event stream (trimmed with ``MINID ~``); a kind left out
    keeps its default (a configuration written before a kind existed still loads)."""
    liquidation_dedup_s: Seconds = 86400.0
    """How long a liquidation's identity is remembered to drop re-sent copies."""
    stress_retention_s: Seconds = 86400.0
    """Retention of the stress history streams (``dlv:{<venue>}:stress:<kind>``), and how long
    a stress state without a newer one stays in the venue's latest hash."""
    handoff_retention_s: Seconds = 3600.0
    """Retention of the per-venue hand-off streams that the detector consumes."""
    flush_max_events: Annotated[int, Field(gt=0)] = 20_000
    """Largest batch written in one pipeline."""
    flush_max_instruments: Annotated[int, Field(gt=0)] = 300
    """Most instruments in one batch (one store-script call each) while the writer keeps up:
    bounds how long one batch keeps the event loop and Redis busy, and so how long a
    liquidation waits behind tickers (liquidations are written first). A queue that falls
    behind is written in batches of up to ten times this (``docs/redis.md``, "Bigger batches
    when behind")."""
    max_pending_events: Annotated[int, Field(gt=0)] = 500_000
    """Above this many unwritten events the collectors wait for Redis (no drops)."""

    @field_validator("retention_s")
    @classmethod
    def _all_kinds(cls, value: dict[Kind, float]) -> dict[Kind, float]:
        return {**DEFAULT_RETENTION_S, **value}


class DetectorSettings(_Section):
    """The pressure model (``docs/detector.md`` explains each parameter)."""

    window_s: Seconds = 300.0
    """The reference window: the unsuffixed features (``oi_change_base_pct``...) are over it,
    and every other window is a multiple of it (``window_factors``)."""
    window_factors: list[Annotated[float, Field(gt=0)]] = [0.2, 1.0, 3.0, 12.0, 48.0, 288.0]
    """The windows as multiples of ``window_s``: by default 1 m, 5 m, 15 m, 1 h, 4 h, 1 d (in
    real time, whatever the data: a window shorter than the data's spacing is not used)."""
    liquidation_window_factors: list[Annotated[float, Field(gt=0)]] = [0.2, 1.0, 3.0]
    """Liquidation bursts count in the windows from the smallest to the largest of these
    multiples of the *reference* window (the shortest measurable window of at least
    ``window_s``: 5 m live, so 1 m to 15 m; 1 h on hourly bars; 1 d on daily bars)."""
    eval_interval_s: Seconds = 1.0
    round_budget_ms: Annotated[float, Field(ge=0)] = 30.0
    """CPU time one round may take (0: no limit), so that a round stays short however many
    instruments are listed: the model measures what scoring one instrument costs and scores
    as many as fit, the most urgent first (those not calm, new liquidations, never scored,
    feeds turning stale, then calm instruments due for their regular look), the longest
    waiting first within each, with a quarter of the room kept for the longest waiting of
    all. The rest keep their last score and wait for the next round. A venue that turns held
    is applied at once, outside the limit. The round's choice of what to score counts in
    the budget, and so does its asset and market step (as long as the last round's)."""
    max_evaluations_per_round: Annotated[int, Field(ge=0)] = 0
    """A fixed limit on the instruments scored in one round (0: none; only
    ``round_budget_ms``). With both, the smaller wins."""
    stale_after_s: Seconds = 120.0
    """A symbol with no data for this long is reported stale, never calm."""
    baseline_lookback_s: Seconds = 86400.0
    """How far back the robust baselines (median and MAD) of each feature look, at least."""
    baseline_lookback_windows: Annotated[float, Field(gt=0)] = 30.0
    """...and at least this many of the window's own length (a 1 d window's baseline looks
    30 days back, a 4 h window's 5 days), so a long window has enough independent samples."""
    baseline_max_samples: Annotated[int, Field(ge=8, le=4096)] = 288
    """Samples kept per baseline: a window is sampled every ``max(window / 4, lookback /
    max_samples)``; windows longer than the lookback keep 32 samples."""
    baseline_min_samples: Annotated[int, Field(ge=3)] = 20
    """Below this many samples a baseline uses its prior (median 0, scale ``prior_scale`` x
    the floor)."""
    burn_in_samples: Annotated[int, Field(ge=0)] = 20
    """No state is reported until the reference window's baselines hold this many samples
    (``warming up until ...``; a warm start fills them at once). 0: states from the first
    evaluation, on the priors."""
    prior_scale: Annotated[float, Field(ge=1)] = 2.0
    z_enter: Annotated[float, Field(gt=0)] = 4.5
    """A robust z-score (in MAD sigmas) that counts as one unit of evidence: the score
    reaches ``enter_score`` (50) at one unit."""
    flush_z_enter: Annotated[float, Field(gt=0)] = 2.5
    """Open interest falling while the price moves (a long flush or short covering): one
    unit of evidence when both reach this robust z (the rarer joint event needs less)."""
    liq_z_enter: Annotated[float, Field(gt=0)] = 4.5
    """The same for liquidation bursts (log intensity)."""
    oi_floor_pct: Annotated[float, Field(gt=0)] = 0.05
    """Floor of the robust sigma of the OI change (base units, %) over ``window_s``; other
    windows scale it by the square root of their length."""
    price_floor_pct: Annotated[float, Field(gt=0)] = 0.1
    """Floor of the robust sigma of the mark return (%) over ``window_s`` (square-root
    scaled)."""
    liq_floor_bp: Annotated[float, Field(gt=0)] = 0.5
    """Liquidated notional (bp of OI per ``window_s``, scaled with the window) added before
    taking the log: amounts well below it cannot make a burst."""
    liq_log_floor: Annotated[float, Field(gt=0)] = 0.5
    """Floor of the robust sigma of the log liquidation intensity."""
    liq_min_active_s: Annotated[int, Field(ge=1)] = 3
    """Seconds with liquidations in a window before its burst counts (one print is no burst)."""
    funding_floor_1h: Annotated[float, Field(gt=0)] = 5e-6
    """Floor of the robust sigma of the per-hour funding rate (5e-6/h = 0.004 %/8 h)."""
    premium_floor_bp: Annotated[float, Field(gt=0)] = 2.0
    """Floor of the robust sigma of the premium (mark vs index, bp)."""
    confirm_gain_price: Annotated[float, Field(ge=0)] = 0.15
    """How much a price move in the unwinding direction (the quadrant) adds to OI evidence."""
    confirm_gain_funding: Annotated[float, Field(ge=0)] = 0.1
    confirm_gain_premium: Annotated[float, Field(ge=0)] = 0.1
    forced_share_cascade: Annotated[float, Field(gt=0, le=1)] = 0.25
    """Liquidations as a share of the OI decline from which a burst is a cascade."""
    adl_hold_s: Seconds = 600.0
    """A published ADL level counts this long after it was received (the venues publish
    every second to every few minutes; the stress poller asks every ``stress.every_s``)."""
    sampled_saturation_cascade: Annotated[float, Field(gt=0, le=1)] = 0.5
    """On a sampled liquidation feed (Binance: one print per symbol per second), the share of
    seconds with a print from which a burst is a cascade (its forced share is a lower bound)."""
    sampled_weight: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Weight of an instrument whose liquidation feed is sampled, in its asset's score."""
    market_breadth_enter: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of assets under pressure that alone puts the market under pressure."""
    market_min_assets: Annotated[int, Field(ge=1)] = 3
    """Fewer assets than this: breadth does not count."""
    enter_score: Annotated[float, Field(gt=0, le=100)] = 50.0
    exit_score: Annotated[float, Field(ge=0, le=100)] = 30.0
    min_dwell_s: Annotated[float, Field(ge=0)] = 30.0
    """A non-calm state lasts at least this long (and a side as long) before it changes."""
    enter_persist_s: Annotated[float, Field(ge=0)] = 20.0
    """Leaving calm on open-interest evidence alone needs the candidate to last this long (a
    liquidation burst leaves at once)."""
    transitions_retention_s: Seconds = 7 * 86400.0
    """Time-based retention of the transitions streams (trimmed with ``MINID ~``)."""
    scores_retention_s: Seconds = 600.0
    """Retention of the stream of every round's scores (``dlv:scores``: the live stream's
    source; a client resuming after longer gets the current scores instead)."""
    score_history_s: Seconds = 60.0
    """Each asset's (and the market's) score is sampled this often for the charts."""
    score_history_retention_s: Seconds = 86400.0
    """Retention of those samples."""
    checkpoint_interval_s: Annotated[float, Field(ge=0)] = 300.0
    """How often the detector writes its checkpoint (baselines, states, schedule: what its
    windows cannot rebuild, ``docs/detector.md``, "Restarts"), after a round's writes; 0:
    never (and no round log). A restart resumes the last one and replays the rounds logged
    after it: the interval bounds that replay and the round log, not what is lost. A
    checkpoint costs ~40 kB and ~0.2 ms of the loop per instrument once its baselines are
    full."""
    checkpoint_max_age_s: Seconds = 86400.0
    """A checkpoint older than this is ignored (its baselines are as stale as the priors)."""
    warmup: bool = True
    """Fill the baselines from the venues' open-interest and funding history at start-up."""
    warmup_history_s: Seconds = 86400.0
    """How far back the warm start asks."""
    warmup_max_symbols: Annotated[int, Field(ge=0)] = 50
    """Instruments warmed per venue, largest open interest first."""
    warmup_max_requests: Annotated[int, Field(ge=1)] = 200
    """REST requests per venue for the warm start (rate-limited by ccxt)."""
    warmup_timeout_s: Seconds = 120.0
    """The warm start of one venue gives up after this long (what it has is kept)."""

    @model_validator(mode="after")
    def _hysteresis(self) -> DetectorSettings:
        if self.exit_score >= self.enter_score:
            raise ValueError("exit_score must be below enter_score")
        if 1.0 not in self.window_factors:
            raise ValueError("window_factors must contain 1 (the reference window_s)")
        if self.baseline_min_samples > self.baseline_max_samples:
            raise ValueError("baseline_min_samples must be at most baseline_max_samples")
        return self

    def lookback_s(self, window_s: float) -> float:
        """How far back the baseline of a window of ``window_s`` looks."""
        return max(self.baseline_lookback_s, self.baseline_lookback_windows * window_s)

    def windows_s(self) -> list[float]:
        """The windows in seconds, shortest first."""
        return sorted({self.window_s * f for f in self.window_factors})


class ApiSettings(_Section):
    host: Host = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    """0: any free port."""
    max_limit: Annotated[int, Field(gt=0)] = 1000
    default_limit: Annotated[int, Field(gt=0)] = 100
    """At most ``max_limit``."""
    send_buffer_bytes: Annotated[int, Field(ge=4096, le=1 << 26)] = 262_144
    """The kernel send buffer of each API connection (``SO_SNDBUF``, fixed): bounds what a
    client that stops reading holds."""
    stream_max_clients: Annotated[int, Field(gt=0)] = 1000
    """Clients of ``GET /v1/stream`` at once per process; beyond, 503."""
    stream_queue_events: Annotated[int, Field(ge=10)] = 5000
    """Events waiting for one stream client; a client with more is dropped (told why)."""
    stream_max_lag_s: Seconds = 30.0
    """How long an event may wait to be sent to one stream client; a client that lags
    further behind is dropped (told why), whatever the event rate."""
    stream_heartbeat_s: Seconds = 15.0
    """A ``heartbeat`` event this often on every stream."""
    stream_replay_s: Seconds = 300.0
    """How far back a stream client may resume (``Last-Event-ID``), at most
    ``stream_replay_events`` events; older: the current scores instead."""
    stream_replay_events: Annotated[int, Field(ge=100)] = 50000
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """API worker processes. Above 1, ``deleverage run --only api`` binds the port once and
    supervises that many API-only workers sharing it (``docs/scaling.md``); the API then runs
    in no other process."""
    snapshot_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    """The data endpoints and ``/metrics`` answer from a snapshot read (or rendered) at most
    this long ago, refreshed in the background; 0: read per request."""

    @model_validator(mode="after")
    def _limits(self) -> ApiSettings:
        if self.default_limit > self.max_limit:
            raise ValueError("default_limit must be at most max_limit")
        return self


class MetricsSettings(_Section):
    max_symbols_per_venue: Annotated[int, Field(gt=0)] = 50
    """Per-symbol series are exported for the top symbols by open interest only."""
    max_assets: Annotated[int, Field(gt=0)] = 50
    """Per-asset series (the cross-venue view) for the top assets by open interest."""
    symbols: list[str] | None = None
    """An explicit allowlist of symbols for per-symbol series (overrides the top-N)."""


class MqttSettings(_Section):
    """The MQTT output (off unless ``host`` is set). Secrets are :class:`SecretStr`."""

    host: Host | None = None
    """The broker's host name or address; ``None`` (the default) turns MQTT off."""
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: str | None = None
    """``None``: ``deleverage-<hostname>-<pid>`` (two publishers must not share an id)."""
    username: str | None = None
    password: SecretStr | None = None
    """Needs ``username``; from the environment (``DELEVERAGE_MQTT__PASSWORD``), not a file."""
    tls: bool = False
    tls_ca_file: Path | None = None
    """CA bundle for the broker's certificate (loaded at start-up); ``None``: the system's
    trust store."""
    topic_prefix: TopicPrefix = "deleverage/v1"
    """Heads every topic; its last level is the schema version of the topics and bodies."""
    alert_qos: Literal[0, 1, 2] = 1
    score_qos: Literal[0, 1, 2] = 1
    """QoS of the retained scores: 1 so that a published score is known to be on the broker
    (they change every few seconds at most: the PUBACKs cost little)."""
    publish_interval_s: Seconds = 5.0
    """How often the retained scores are refreshed (only topics whose body changed)."""
    keepalive_s: Annotated[int, Field(ge=5, le=65535)] = 30
    timeout_s: Seconds = 10.0
    """Connect and publish (PUBACK) timeout."""
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0
    stable_session_s: Seconds = 60.0
    """A connection that lived this long resets the reconnect backoff."""
    max_pending_alerts: Annotated[int, Field(gt=0)] = 1000
    """Alerts kept while the broker is unreachable; beyond it the oldest are dropped (counted)."""

    @property
    def enabled(self) -> bool:
        return self.host is not None

    def identifier(self) -> str:
        return self.client_id or f"deleverage-{socket.gethostname()}-{os.getpid()}"

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        if self.password is not None and self.username is None:
            raise ValueError("password given without username")
        if self.tls_ca_file is not None and not self.tls:
            raise ValueError("tls_ca_file given but tls is off")
        if self.tls_ca_file is not None:
            try:  # as the publisher will (a bad CA file would fail only then)
                ssl.create_default_context(cafile=str(self.tls_ca_file))
            except ssl.SSLError as exc:
                reason = exc.reason or "not a PEM CA bundle"
                raise ValueError(f"tls_ca_file cannot be loaded: {reason}") from None
            except OSError as exc:
                raise ValueError(f"tls_ca_file cannot be loaded: {exc.strerror}") from None
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class Settings(BaseSettings):
    """Everything the service can be told."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    redis_url: Redis | None = None
    """Redis to use (``redis://``, ``rediss://`` or ``unix://``, checked as redis-py will use
    it; a Redis Cluster: ``redis+cluster://host:port``, see ``docs/redis.md``). ``None``:
    ``run`` uses redis://127.0.0.1:6379/0, ``demo`` starts its own."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    """The event loop of ``run`` and ``demo``: the standard library's, or uvloop (libuv; the
    ``uvloop`` extra). ``bench wire --loop`` measures both: the standard loop was as cheap
    or cheaper with the picows client (docs/performance.md), hence the default."""
    venues: dict[str, VenueSettings] = Field(
        default_factory=lambda: {"binance_usdm": VenueSettings()}
    )
    collect: CollectSettings = CollectSettings()
    detect: DetectSettings = DetectSettings()
    store: StoreSettings = StoreSettings()
    detector: DetectorSettings = DetectorSettings()
    api: ApiSettings = ApiSettings()
    metrics: MetricsSettings = MetricsSettings()
    mqtt: MqttSettings = MqttSettings()
    alerts: AlertSettings = AlertSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        data = _yaml_data.get()  # set by load_settings; read here for a bare Settings()
        yaml_files = InitSettingsSource(
            settings_cls, read_yaml(_config_files()) if data is None else data
        )
        return (init_settings, env_settings, yaml_files)

    @model_validator(mode="after")
    def _event_loop_installed(self) -> Settings:
        if self.event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError(
                "event_loop: uvloop is not installed (pip install 'deleverage[uvloop]'; not "
                "on Windows); or set event_loop: asyncio"
            )
        return self

    @model_validator(mode="after")
    def _polled_venues_stay_fresh(self) -> Settings:
        for name, venue in self.venues.items():
            if venue.ccxt is not None and venue.ccxt.poll_interval_s >= self.detector.stale_after_s:
                raise ValueError(
                    f"venues.{name}.ccxt.poll_interval_s ({venue.ccxt.poll_interval_s:g}) must "
                    f"be below detector.stale_after_s ({self.detector.stale_after_s:g}): the "
                    "detector would read the venue as stale between polls"
                )
        return self

    @model_validator(mode="after")
    def _detector_can_rebuild(self) -> Settings:
        needed = self.detector.window_s + self.detector.stale_after_s
        if self.store.handoff_retention_s < needed:
            raise ValueError(
                f"store.handoff_retention_s ({self.store.handoff_retention_s:g}) must cover "
                f"detector.window_s + detector.stale_after_s ({needed:g}): a restarted "
                "detector rebuilds its window from the hand-off streams"
            )
        return self

    @field_serializer("redis_url")
    def _mask_password(self, url: Any) -> str | None:
        return None if url is None else redacted(url)

    def enabled_venues(self) -> dict[str, VenueSettings]:
        return {name: v for name, v in self.venues.items() if v.enabled}

    def secret_values(self) -> list[str]:
        """Every secret these settings hold, as text may show it: for the log filter."""
        found = url_secrets(self.redis_url) if self.redis_url is not None else []
        if self.mqtt.password is not None:
            found.append(self.mqtt.password.get_secret_value())
        for receiver in self.alerts.receivers:
            found += receiver.secret_values()
        for venue in self.venues.values():
            if venue.ccxt is not None:
                found += mapping_secrets(venue.ccxt.config)
        return found


def _config_files(files: list[Path] | None = None) -> list[Path]:
    if files is not None:
        return files
    named = os.environ.get(CONFIG_ENV)
    if named:
        return [Path(p.strip()) for p in named.split(",") if p.strip()]
    return [DEFAULT_CONFIG] if DEFAULT_CONFIG.exists() else []


def load_settings(
    known_venues: set[str] | None = None, files: list[Path] | None = None, **overrides: Any
) -> Settings:
    """Build and validate the settings; raise :class:`ConfigError` naming the bad key (and
    never quoting a value).

    ``files`` replaces the YAML files otherwise named by ``DELEVERAGE_CONFIG``; keyword
    ``overrides`` win over everything (the demo points the venues at its simulator so).
    """
    token = _yaml_data.set(read_yaml(_config_files(files)))
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    except SettingsError as exc:  # the environment holds a value that is not valid JSON
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(scrub(f"invalid configuration: {exc}{cause}")) from None
    finally:
        _yaml_data.reset(token)
    if known_venues is not None:
        unknown = sorted(
            name for name, v in settings.venues.items() if name not in known_venues and not v.ccxt
        )
        if unknown:
            raise ConfigError(
                f"venues.{unknown[0]}: unknown venue (known: {', '.join(sorted(known_venues))}; "
                "or poll it through ccxt with ccxt.exchange: <ccxt exchange id>)"
            )
    return settings
