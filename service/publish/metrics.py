"""The Prometheus exposition: one custom collector over an in-process snapshot.

Values mirror state kept elsewhere (feed counters, latest funding, scores), so they are not
instrumented metrics: :class:`MetricsCollector` builds fresh families from a
:class:`MetricsSource` at each scrape, and never touches the network. Every metric name is
defined here.

Cardinality is bounded by :class:`~service.config.MetricsSettings`: per-symbol series exist
for the allowlist ``symbols`` when set, else for the top ``max_symbols_per_venue`` symbols of
each venue by open interest (USD) (see :mod:`.cardinality`). The liquidation counters of the
other symbols are folded into ``symbol="other"``; their gauges are omitted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..alerts.deliver import ReceiverStats
from ..config import MetricsSettings
from ..detect.assets import build_asset_views
from ..events import (
    DEPTH_BANDS_PCT,
    AdlLevel,
    AdlRisk,
    BookDepth,
    BookTop,
    Event,
    FundingRate,
    InstrumentId,
    InsuranceFund,
    Kind,
    MarkPrice,
    OpenInterest,
    Positioning,
    Side,
    StressEvent,
)
from ..health import HealthSnapshot
from ..histogram import Histogram
from ..scores import Pressure, State
from ..store import poison
from ..store.reader import LiquidationSums
from .api.freshness import feed_problem
from .build import PYTHON_VERSION, VERSION
from .cardinality import Folding, LiqKey, Selection


class MetricsSource(Protocol):
    """What the collector reads at scrape time: in-process state, cheap to read, no I/O."""

    def health(self) -> list[HealthSnapshot]: ...
    def pressures(self) -> list[Pressure]: ...
    def latest(self) -> Mapping[InstrumentId, Mapping[Kind, Event]]:
        """The newest event of each kind per (venue, symbol)."""
        ...

    def liquidation_totals(self) -> Mapping[LiqKey, tuple[int, float]]:
        """(count, notional USD) per (venue, symbol, side) since the process started."""
        ...

    def sink_stats(self) -> Mapping[str, float]:
        """``written_events``, ``written_batches``, ``write_failures``, ``pending``,
        ``oldest_pending_s``, ``events_dropped`` (each optional)."""
        ...


@dataclass(frozen=True, slots=True)
class OutputsSnapshot:
    """The alerting and MQTT side of the process, for /metrics."""

    receivers: list[ReceiverStats]
    alert_events: Mapping[str, int]
    """Notifications decided, by kind."""
    open_alerts: int | None
    """``None`` when this process does not run the alert service."""
    mqtt: Mapping[str, float] | None
    """``connected``, ``connects``, ``connect_failures``, ``scores_published``,
    ``alerts_published``, ``alerts_dropped``, ``alerts_pending``; ``None``: MQTT is off."""


class OutputsSource(Protocol):
    def outputs(self) -> OutputsSnapshot: ...


class ComponentState(Protocol):
    name: str
    up: bool
    restarts: int


class ProcessSource(Protocol):
    """The process's supervised components (:class:`service.supervise.ComponentStatus`)."""

    def components(self) -> Sequence[ComponentState]: ...


class DetectorStats(Protocol):
    """The detector's rounds (:class:`service.detect.runner.Detector`)."""

    rounds_total: int
    scored_total: int
    deferred: int
    round_seconds: Histogram

    @property
    def scoring_cost_s(self) -> float | None: ...

    @property
    def checkpoint_counts(self) -> Mapping[str, int]:
        """Checkpoints by outcome, and ``replayed`` rounds (:mod:`service.detect.resume`)."""
        ...


class StreamStats(Protocol):
    """The live stream's hub (:class:`service.publish.api.stream.hub.Hub`)."""

    @property
    def clients(self) -> int: ...
    @property
    def events_total(self) -> int: ...
    @property
    def clients_dropped_total(self) -> int: ...


@dataclass(frozen=True, slots=True)
class StressSnapshot:
    """One venue's stress polling in this process (a
    :class:`service.collect.stress_run.StressRunner`)."""

    venue: str
    states: Sequence[StressEvent]
    """The newest state per instrument, pool and figure."""
    polls: int
    failures: Mapping[str, int]
    """Failed calls by reason (``http_429``, ``network``, ``timeout``)."""
    drops: Mapping[str, int]
    """What the parsers dropped, by reason."""
    events: int


class StressSource(Protocol):
    """Stress polling of this process: per venue, and its writer's counters (``written``,
    ``write_failures``, ``pending``, ``dropped``)."""

    def stress(self) -> list[StressSnapshot]: ...
    def stress_writer(self) -> Mapping[str, float]: ...


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    doc: str
    type: Literal["counter", "gauge"]
    labels: tuple[str, ...]

    def family(self) -> CounterMetricFamily | GaugeMetricFamily:
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.doc, labels=self.labels)
        return GaugeMetricFamily(self.name, self.doc, labels=self.labels)


def _counter(name: str, doc: str, *labels: str) -> _Spec:
    return _Spec(f"deleverage_{name}", doc, "counter", labels)


def _gauge(name: str, doc: str, *labels: str) -> _Spec:
    return _Spec(f"deleverage_{name}", doc, "gauge", labels)


V, VS, VSS = ("venue",), ("venue", "symbol"), ("venue", "symbol", "side")
FEED_CONNECTED = _gauge("feed_connected", "1 when the venue's websocket is connected.", *V)
FEED_MESSAGES = _counter("feed_messages_total", "Websocket frames received.", *V)
FEED_EVENTS = _counter("feed_events_total", "Normalized events produced.", *V)
FEED_PARSE_ERRORS = _counter(
    "feed_parse_errors_total", "Frames dropped, by reason.", "venue", "reason"
)
FEED_EVENTS_INVALID = _counter(
    "feed_events_invalid_total", "Events dropped before storage as invalid, by reason.",
    "venue", "reason",
)  # fmt: skip
FEED_DUPLICATES = _counter(
    "feed_duplicates_total",
    "Events dropped as counted already, by kind: liquidation (an identity seen: a re-sent "
    "burst on subscribe, a rotation's overlap), state (a mark, funding, open interest, top, "
    "depth or volume not newer than the last kept), trade (a print whose trade id was summed).",
    "venue", "kind",
)  # fmt: skip
FEED_RECONNECTS = _counter("feed_reconnects_total", "Websocket reconnections.", *V)
FEED_DRIFT = _gauge(
    "feed_drift_suspected",
    "1 for each channel the passive drift check suspects of a protocol change, by reason "
    "(silent, missing_fields, unknown_fields); no series when nothing is suspected.",
    "venue", "channel", "reason",
)  # fmt: skip
FEED_LAST_MESSAGE = _gauge(
    "feed_last_message_timestamp_seconds", "Receive time of the last frame (Unix).", *V
)
FEED_LAST_EVENT = _gauge(
    "feed_last_event_timestamp_seconds", "Receive time of the last normalized event (Unix).", *V
)
FEED_DELAY = _gauge(
    "feed_delay_seconds",
    "Largest receive time minus venue time over the last 1-2 s with data: marks and tops "
    "(channel=state), liquidations (channel=liquidation). A collector behind the venue shows "
    "it here first.",
    "venue", "channel",
)  # fmt: skip
FEED_INSTRUMENTS = _gauge("feed_instruments", "Instruments in the venue's metadata.", *V)
OI_POLLS = _counter("feed_oi_polls_total", "Open-interest REST polls.", *V)
OI_POLL_FAILURES = _counter(
    "feed_oi_poll_failures_total", "Open-interest REST polls that failed.", *V
)
LIQUIDATIONS = _counter(
    "liquidations_total",
    "Liquidations seen since start, by liquidated position side; symbol 'other' folds the "
    "symbols without series of their own.",
    *VSS,
)
LIQUIDATED_NOTIONAL = _counter(
    "liquidated_notional_usd_total", "USD notional of the liquidations counted above.", *VSS
)
FUNDING_RATE = _gauge("funding_rate", "Funding rate per funding interval (ratio, as quoted).", *VS)
FUNDING_RATE_HOURLY = _gauge("funding_rate_per_hour", "Funding rate per hour (ratio).", *VS)
FUNDING_INTERVAL = _gauge("funding_interval_seconds", "Length of the funding interval.", *VS)
FUNDING_NEXT = _gauge("funding_next_timestamp_seconds", "Next funding time (Unix).", *VS)
OI_USD = _gauge("open_interest_usd", "Open interest valued at the mark price, in USD.", *VS)
OI_BASE = _gauge("open_interest_base", "Open interest in units of the base asset.", *VS)
MARK_PRICE = _gauge("mark_price", "Mark price, in the contract's quote currency.", *VS)
INDEX_PRICE = _gauge("index_price", "Index price, in the contract's quote currency.", *VS)
BOOK_DEPTH_USD = _gauge(
    "book_depth_usd",
    "USD resting within a band of mid (band: 0.005, 0.01, 0.02 of mid) on one side, for the "
    "instruments whose order book is followed; a lower bound where the band is wider than "
    "deleverage_book_depth_reach_ratio.",
    "venue",
    "symbol",
    "side",
    "band",
)
BOOK_DEPTH_REACH = _gauge(
    "book_depth_reach_ratio",
    "How far from mid the book levels received reach on one side (0.01 = 1 % of mid).",
    "venue",
    "symbol",
    "side",
)
SPREAD = _gauge(
    "book_spread_ratio",
    "Spread of the top of the book: (ask - bid) / mid (0.0001 = 1 basis point).",
    *VS,
)
BOOK_TOP_USD = _gauge(
    "book_top_usd",
    "USD resting at the best bid and at the best ask.",
    "venue",
    "symbol",
    "side",
)
VOLUME_1M_USD = _gauge(
    "volume_1m_usd",
    "USD traded over the last minute by taker side (buy: takers bought), liquidation fills "
    "included (the detector's figure).",
    "venue",
    "symbol",
    "side",
)
PRESSURE_SCORE = _gauge(
    "pressure_score",
    "Deleveraging pressure score: 0 (nothing happening) to 100 (extreme); a score, not a ratio.",
    *VS,
)
PRESSURE_STATE = _gauge(
    "pressure_state",
    "1 for the instrument's current state (calm, building, unwinding, cascade), 0 for the others.",
    "venue",
    "symbol",
    "state",
)
PRESSURE_QUALITY = _gauge(
    "pressure_data_quality_ratio", "1 when every feed behind the score is fresh (0-1).", *VS
)
PRESSURE_SIDE = _gauge(
    "pressure_side",
    "1 for the side whose positions are being unwound (long, short), 0 for the other; both 0 "
    "when no side is named.",
    "venue",
    "symbol",
    "side",
)
PRESSURE_OI_CHANGE = _gauge(
    "pressure_open_interest_change_ratio",
    "Score feature: open-interest change over the detector's window, in base units (ratio).",
    *VS,
)
PRESSURE_LIQUIDATED_OI = _gauge(
    "pressure_liquidated_open_interest_ratio",
    "Score feature: liquidated notional over the window divided by open interest, USD (ratio).",
    *VS,
)
PRESSURE_FORCED_SHARE = _gauge(
    "pressure_forced_share_ratio",
    "Score feature: liquidated notional as a share of the open-interest decline (0-1).",
    *VS,
)
PRESSURE_MARK_RETURN = _gauge(
    "pressure_mark_return_ratio",
    "Score feature: mark price return over the detector's window (ratio).",
    *VS,
)
PRESSURE_DEPTH_CHANGE = _gauge(
    "pressure_depth_change_ratio",
    "Liquidity feature: change of the USD within 1 % of mid (bids plus asks, minute means) "
    "over the last 15 minutes, from complete books (-0.45 = 45 % thinner).",
    *VS,
)
PRESSURE_FRAGILE = _gauge(
    "pressure_fragile",
    "1 while the detector warns that the instrument's book is fragile (thin or wide against its "
    "baselines while open interest moves), else 0; a warning beside the state, never a state.",
    *VS,
)
INSTRUMENT_INFO = _gauge(
    "instrument_info",
    "1 for each instrument with series of its own; joins venue and symbol to the asset.",
    "venue",
    "symbol",
    "asset",
)
ASSET_OI_USD = _gauge(
    "asset_open_interest_usd", "Open interest of the asset summed over fresh venues, USD.", "asset"
)
ASSET_FUNDING_HOURLY = _gauge(
    "asset_funding_rate_per_hour",
    "Funding per hour across venues, weighted by open interest (ratio).",
    "asset",
)
ASSET_LIQUIDATED_NOTIONAL = _counter(
    "asset_liquidated_notional_usd_total",
    "USD notional of the asset's liquidations across venues since start, by position side "
    "(sampled venues make it a lower bound).",
    "asset",
    "side",
)
ASSET_STALE_VENUES = _gauge(
    "asset_stale_venues", "Venues listing the asset whose feed is stale.", "asset"
)
ASSET_FRAGILE = _gauge(
    "asset_fragile_instruments",
    "Instruments of the asset (every venue, every scored contract) whose book the detector "
    "calls fragile.",
    "asset",
)
STORE_EVENTS = _counter("store_events_written_total", "Events written to Redis.")
STORE_BATCHES = _counter("store_batches_written_total", "Pipelined batches written to Redis.")
STORE_FAILURES = _counter("store_write_failures_total", "Redis batch writes that failed (retried).")
STORE_PENDING = _gauge("store_pending_events", "Events waiting to be written to Redis.")
STORE_OLDEST = _gauge(
    "store_oldest_pending_seconds",
    "How long the oldest event waiting to be written to Redis has waited (0 when none waits).",
)
STORE_DROPPED = _counter(
    "store_events_dropped_total", "Events the writer could not encode (a bug upstream): dropped."
)
STORE_DECODE_ERRORS = _counter(
    "store_decode_errors_total",
    "Entries read from Redis that could not be used and were skipped, by what they should have "
    "been and why (undecodable, invalid, wrong_type).",
    "what",
    "reason",
)
COMPONENT_UP = _gauge(
    "component_up", "1 while the supervised component runs, 0 while it waits to restart.",
    "component",
)  # fmt: skip
COMPONENT_RESTARTS = _counter(
    "component_restarts_total", "Times the component failed and was restarted.", "component"
)
DETECTOR_ROUNDS = _counter("detector_rounds_total", "Evaluation rounds of the detector.")
DETECTOR_SCORED = _counter(
    "detector_scored_total", "Instrument scores computed (one per instrument a round scored)."
)
DETECTOR_DEFERRED = _gauge(
    "detector_deferred_instruments",
    "Instruments due in the last round that its budget left for the next (round_budget_ms).",
)
DETECTOR_COST = _gauge(
    "detector_scoring_cost_seconds", "CPU the model measures scoring one instrument costs."
)
DETECTOR_CHECKPOINTS = _counter(
    "detector_checkpoints_total",
    "Detector checkpoints by outcome: written, failed (a write), restored or ignored (at a start).",
    "outcome",
)
DETECTOR_REPLAYED = _counter(
    "detector_replayed_rounds_total", "Rounds after its checkpoint a restarted detector replayed."
)
CHECKPOINT_OUTCOMES: Final = ("written", "failed", "restored", "ignored")
DETECTOR_ROUND_SECONDS: Final = "deleverage_detector_round_seconds"
STREAM_CLIENTS = _gauge("stream_clients", "Clients connected to /v1/stream.")
STREAM_EVENTS = _counter(
    "stream_events_total", "Events the live stream's hub read from Redis and fanned out."
)
STREAM_DROPPED = _counter(
    "stream_clients_dropped_total", "Stream clients dropped because they fell behind."
)
R = ("receiver",)
ALERT_EVENTS = _counter(
    "alert_notifications_total", "Alert notifications decided, by kind (opened...).", "kind"
)
ALERTS_OPEN = _gauge("alerts_open", "Alerts open now.")
ALERT_DELIVERED = _counter(
    "alert_deliveries_total", "Alert notifications delivered (2xx) to the receiver.", *R
)
ALERT_FAILURES = _counter(
    "alert_delivery_failures_total", "Delivery attempts that did not get a 2xx answer.", *R
)
ALERT_DROPPED = _counter(
    "alert_dropped_total",
    "Alert notifications given up (too many attempts, too old, or trimmed while pending).",
    *R,
)
ALERT_OUTBOX = _gauge(
    "alert_outbox_depth", "Notifications in the receiver's outbox not yet settled.", *R
)
ALERT_RECEIVER_ENABLED = _gauge(
    "alert_receiver_enabled", "1 while the receiver is enabled, 0 once disabled (HTTP 410).", *R
)
ALERT_LATENCY: Final = "deleverage_alert_delivery_latency_seconds"
MQTT_CONNECTED = _gauge("mqtt_connected", "1 while connected to the MQTT broker.")
MQTT_CONNECTS = _counter("mqtt_connects_total", "Successful connections to the MQTT broker.")
MQTT_CONNECT_FAILURES = _counter(
    "mqtt_connect_failures_total", "Failed or lost connections to the MQTT broker."
)
MQTT_SCORES = _counter(
    "mqtt_scores_published_total", "Retained score and liquidity messages published."
)
MQTT_ALERTS = _counter("mqtt_alerts_published_total", "Alert messages acknowledged by the broker.")
MQTT_ALERTS_DROPPED = _counter(
    "mqtt_alerts_dropped_total", "Alert messages dropped while the broker was unreachable."
)
MQTT_ALERTS_PENDING = _gauge("mqtt_alerts_pending", "Alert messages waiting for the broker.")
OUTPUT_SPECS: Final = (
    ALERT_EVENTS, ALERTS_OPEN, ALERT_DELIVERED, ALERT_FAILURES, ALERT_DROPPED, ALERT_OUTBOX,
    ALERT_RECEIVER_ENABLED, MQTT_CONNECTED, MQTT_CONNECTS, MQTT_CONNECT_FAILURES, MQTT_SCORES,
    MQTT_ALERTS, MQTT_ALERTS_DROPPED, MQTT_ALERTS_PENDING,
)  # fmt: skip
VP = ("venue", "pool", "asset")
STRESS_INSURANCE_USD = _gauge(
    "stress_insurance_fund_usd",
    "Insurance pool balance in USD, for the venue's largest pools (at most 10 per venue).",
    *VP,
)
STRESS_INSURANCE_TOTAL_USD = _gauge(
    "stress_insurance_fund_total_usd",
    "Sum of the venue's insurance pools with a USD value (every pool).",
    *V,
)
STRESS_ADL_LEVEL_MAX = _gauge(
    "stress_adl_level_max",
    "Highest ADL risk level among the venue's instruments: 1 low, 2 medium, 3 high, 4 active.",
    *V,
)
STRESS_ADL_INSTRUMENTS = _gauge(
    "stress_adl_instruments", "Instruments of the venue at each ADL risk level.", "venue", "level"
)
STRESS_LONG_SHORT = _gauge(
    "stress_long_short_ratio",
    "Long/short ratio by metric (accounts, top_accounts, top_positions, taker_volume), for the "
    "symbols with series of their own (or the currency of a per-currency figure).",
    "venue", "symbol", "metric",
)  # fmt: skip
STRESS_POLLS = _counter("stress_polls_total", "Stress REST calls made.", *V)
STRESS_POLL_FAILURES = _counter(
    "stress_poll_failures_total", "Stress REST calls that failed, by reason.", "venue", "reason"
)
STRESS_DROPS = _counter(
    "stress_parse_errors_total", "Stress bodies or rows dropped by the parser, by reason.",
    "venue", "reason",
)  # fmt: skip
STRESS_EVENTS = _counter("stress_events_total", "Stress events produced.", *V)
STRESS_WRITTEN = _counter("stress_events_written_total", "Stress events written to Redis.")
STRESS_WRITE_FAILURES = _counter(
    "stress_write_failures_total", "Stress writes to Redis that failed (retried)."
)
STRESS_PENDING = _gauge("stress_pending_events", "Stress events waiting to be written.")
STRESS_SPECS: Final = (
    STRESS_INSURANCE_USD, STRESS_INSURANCE_TOTAL_USD, STRESS_ADL_LEVEL_MAX,
    STRESS_ADL_INSTRUMENTS, STRESS_LONG_SHORT, STRESS_POLLS, STRESS_POLL_FAILURES, STRESS_DROPS,
    STRESS_EVENTS, STRESS_WRITTEN, STRESS_WRITE_FAILURES, STRESS_PENDING,
)  # fmt: skip
MAX_POOLS_PER_VENUE: Final = 10
DETECTOR_SPECS: Final = (
    DETECTOR_ROUNDS, DETECTOR_SCORED, DETECTOR_DEFERRED, DETECTOR_COST, DETECTOR_CHECKPOINTS,
    DETECTOR_REPLAYED,
)  # fmt: skip
SPECS: Final = (
    FEED_CONNECTED, FEED_MESSAGES, FEED_EVENTS, FEED_PARSE_ERRORS, FEED_EVENTS_INVALID,
    FEED_DUPLICATES,
    FEED_RECONNECTS, FEED_DRIFT,
    FEED_LAST_MESSAGE, FEED_LAST_EVENT, FEED_DELAY, FEED_INSTRUMENTS, OI_POLLS,
    OI_POLL_FAILURES, LIQUIDATIONS, LIQUIDATED_NOTIONAL, FUNDING_RATE, FUNDING_RATE_HOURLY,
    FUNDING_INTERVAL, FUNDING_NEXT, OI_USD, OI_BASE, MARK_PRICE, INDEX_PRICE, SPREAD, BOOK_TOP_USD,
    BOOK_DEPTH_USD, BOOK_DEPTH_REACH,
    PRESSURE_SCORE, PRESSURE_STATE,
    PRESSURE_QUALITY, PRESSURE_SIDE, PRESSURE_OI_CHANGE, PRESSURE_LIQUIDATED_OI,
    PRESSURE_FORCED_SHARE, PRESSURE_MARK_RETURN, PRESSURE_DEPTH_CHANGE, PRESSURE_FRAGILE,
    VOLUME_1M_USD, INSTRUMENT_INFO, ASSET_OI_USD, ASSET_FUNDING_HOURLY, ASSET_LIQUIDATED_NOTIONAL,
    ASSET_STALE_VENUES, ASSET_FRAGILE, STORE_EVENTS, STORE_BATCHES, STORE_FAILURES, STORE_PENDING,
    STORE_OLDEST,
    STORE_DECODE_ERRORS, STORE_DROPPED, COMPONENT_UP, COMPONENT_RESTARTS, STREAM_CLIENTS,
    STREAM_EVENTS, STREAM_DROPPED,
)  # fmt: skip
BUILD_INFO: Final = "deleverage_build"
SHARD_INFO: Final = "deleverage_collect_shard"
STALE_AFTER_S: Final = 60.0
"""A venue or instrument silent for this long is left out of the asset sums."""

Families = dict[_Spec, CounterMetricFamily | GaugeMetricFamily]


class MetricsCollector(Collector):
    """Exports a :class:`MetricsSource` (register it on a ``CollectorRegistry``)."""

    def __init__(
        self,
        source: MetricsSource,
        settings: MetricsSettings,
        outputs: OutputsSource | None = None,
        process: ProcessSource | None = None,
        stream: Callable[[], StreamStats | None] | None = None,
        detector: DetectorStats | None = None,
        shard: str | None = None,
        stress: StressSource | None = None,
    ) -> None:
        """``shard``: this process's collector shard (``I/N``), exported as an info metric."""
        self._source = source
        self._shard = shard
        self._detector = detector
        self._stress = stress
        self._outputs = outputs
        self._process = process
        self._stream = stream
        self._lock = threading.Lock()
        self._selection = Selection(settings)
        self._folding = Folding()
        self._max_assets = settings.max_assets

    def describe(self) -> Iterable[Metric]:
        """The families without samples: registration must not read the source."""
        families: list[Metric] = [spec.family() for spec in SPECS]
        if self._outputs is not None:
            families += [spec.family() for spec in OUTPUT_SPECS]
            families.append(_latency_family())
        if self._detector is not None:
            families += [spec.family() for spec in DETECTOR_SPECS]
            families.append(_round_family())
        if self._stress is not None:
            families += [spec.family() for spec in STRESS_SPECS]
        if self._shard is not None:
            families.append(InfoMetricFamily(SHARD_INFO, "Collector shard."))
        return [*families, InfoMetricFamily(BUILD_INFO, "Build.")]

    def collect(self) -> Iterator[Metric]:
        """The families in :data:`SPECS` order, then the optional ones. Each family is yielded
        as soon as what fills it is built (the per-instrument series, the assets' view, the
        scores: tens of milliseconds each at 3,000 instruments), so that a caller that
        iterates with pauses (``/metrics``, :func:`~.api.routes.metrics.render`) lets the
        event loop run between those steps; iterated in one go it is the same exposition."""
        families: Families = {spec: spec.family() for spec in SPECS}
        given = 0  # SPECS[:given] are yielded

        def upto(spec: _Spec | None) -> list[Metric]:
            """The families before ``spec`` (all that are left: ``None``) not yet yielded."""
            nonlocal given
            end = len(SPECS) if spec is None else SPECS.index(spec)
            out: list[Metric] = [families[s] for s in SPECS[given:end]]
            given = max(given, end)
            return out

        latest = self._source.latest()
        totals = self._source.liquidation_totals()
        with self._lock:  # two scrapes at once must not interleave the selection's state
            selected = self._selection.choose(latest, ((v, s) for v, s, _ in totals))
            liquidations = self._folding.fold(totals, selected)
        for labels, count, usd in liquidations:
            families[LIQUIDATIONS].add_metric(labels, count)
            families[LIQUIDATED_NOTIONAL].add_metric(labels, usd)
        health = self._source.health()
        _feeds(families, health)
        yield from upto(FUNDING_RATE)  # the feeds and the liquidation counters
        _market(families, latest, selected)  # (the instruments' info too: after the scores)
        yield from upto(PRESSURE_SCORE)
        pressures = self._source.pressures()
        _pressure(families, pressures, selected)
        yield from upto(ASSET_OI_USD)
        _assets(families, latest, totals, health, self._max_assets, pressures)
        _store(families, self._source.sink_stats())
        if self._process is not None:
            for c in self._process.components():
                families[COMPONENT_UP].add_metric([c.name], 1.0 if c.up else 0.0)
                families[COMPONENT_RESTARTS].add_metric([c.name], c.restarts)
        hub = self._stream() if self._stream is not None else None
        if hub is not None:
            families[STREAM_CLIENTS].add_metric([], hub.clients)
            families[STREAM_EVENTS].add_metric([], hub.events_total)
            families[STREAM_DROPPED].add_metric([], hub.clients_dropped_total)
        yield from upto(None)
        if self._outputs is not None:
            yield from _outputs(self._outputs.outputs())
        if self._detector is not None:
            yield from _detector(self._detector)
        if self._stress is not None:
            assets: dict[str, set[str]] = {}
            for pair in selected & set(latest):
                for ev in latest[pair].values():
                    assets.setdefault(pair[0], set()).add(ev.base)
            yield from _stress(self._stress, selected, assets)
        if self._shard is not None:
            # The feed metrics of a shard's process are its own instruments' (Prometheus
            # tells the shards apart by their instance; sum by venue for the whole).
            yield InfoMetricFamily(SHARD_INFO, "This process's collector shard (I/N).",
                                   {"shard": self._shard})  # fmt: skip
        yield InfoMetricFamily(
            BUILD_INFO, "The running build.", {"version": VERSION, "python": PYTHON_VERSION}
        )


def _feeds(f: Families, snapshots: list[HealthSnapshot]) -> None:
    for s in snapshots:
        v = [s.venue]
        f[FEED_CONNECTED].add_metric(v, 1.0 if s.connected else 0.0)
        f[FEED_MESSAGES].add_metric(v, s.messages_total)
        f[FEED_EVENTS].add_metric(v, s.events_total)
        f[FEED_RECONNECTS].add_metric(v, s.reconnects_total)
        f[OI_POLLS].add_metric(v, s.oi_polls_total)
        f[OI_POLL_FAILURES].add_metric(v, s.oi_poll_failures_total)
        f[FEED_INSTRUMENTS].add_metric(v, s.instruments)
        for reason, count in sorted(s.parse_errors.items()):
            f[FEED_PARSE_ERRORS].add_metric([s.venue, reason], count)
        for reason, count in sorted(s.events_invalid.items()):
            f[FEED_EVENTS_INVALID].add_metric([s.venue, reason], count)
        for kind, count in sorted(s.duplicates.items()):
            f[FEED_DUPLICATES].add_metric([s.venue, kind], count)
        for d in s.drift:
            f[FEED_DRIFT].add_metric([s.venue, d.channel, d.reason], 1.0)
        if s.last_message_ms is not None:
            f[FEED_LAST_MESSAGE].add_metric(v, s.last_message_ms / 1000)
        if s.last_event_ms is not None:
            f[FEED_LAST_EVENT].add_metric(v, s.last_event_ms / 1000)
        if s.delay_ms is not None:
            f[FEED_DELAY].add_metric([s.venue, "state"], s.delay_ms / 1000)
        if s.liquidation_delay_ms is not None:
            f[FEED_DELAY].add_metric([s.venue, "liquidation"], s.liquidation_delay_ms / 1000)


def _market(
    f: Families, latest: Mapping[InstrumentId, Mapping[Kind, Event]], selected: set[InstrumentId]
) -> None:
    for pair in sorted(selected & set(latest)):
        events, labels = latest[pair], list(pair)
        asset = next((e.base for e in events.values()), None)
        if asset is not None:
            f[INSTRUMENT_INFO].add_metric([*labels, asset], 1.0)
        funding = events.get(Kind.FUNDING)
        if isinstance(funding, FundingRate):
            f[FUNDING_RATE].add_metric(labels, funding.funding_rate)
            f[FUNDING_RATE_HOURLY].add_metric(labels, funding.funding_rate_1h)
            f[FUNDING_INTERVAL].add_metric(labels, funding.interval_h * 3600)
            if funding.next_funding_ms is not None:
                f[FUNDING_NEXT].add_metric(labels, funding.next_funding_ms / 1000)
        oi = events.get(Kind.OPEN_INTEREST)
        if isinstance(oi, OpenInterest):
            f[OI_USD].add_metric(labels, oi.oi_usd)
            f[OI_BASE].add_metric(labels, oi.oi_base)
        mark = events.get(Kind.MARK)
        if isinstance(mark, MarkPrice):
            f[MARK_PRICE].add_metric(labels, mark.mark_price)
            if mark.index_price is not None:
                f[INDEX_PRICE].add_metric(labels, mark.index_price)
        book = events.get(Kind.BOOK_TOP)
        if isinstance(book, BookTop):
            f[SPREAD].add_metric(labels, book.spread_bp * 1e-4)
            f[BOOK_TOP_USD].add_metric([*labels, "bid"], book.bid_usd)
            f[BOOK_TOP_USD].add_metric([*labels, "ask"], book.ask_usd)
        depth = events.get(Kind.BOOK_DEPTH)
        if isinstance(depth, BookDepth):
            _depth(f, labels, depth)


_BANDS: Final = tuple(str(b / 100) for b in DEPTH_BANDS_PCT)
"""The ``band`` label values: the bands as fractions of mid (``0.005``...)."""


def _depth(f: Families, labels: list[str], d: BookDepth) -> None:
    for side, usd, reach in (
        ("bid", (d.bid_usd_0p5, d.bid_usd_1, d.bid_usd_2), d.bid_reach_pct),
        ("ask", (d.ask_usd_0p5, d.ask_usd_1, d.ask_usd_2), d.ask_reach_pct),
    ):
        for band, value in zip(_BANDS, usd, strict=True):
            f[BOOK_DEPTH_USD].add_metric([*labels, side, band], value)
        f[BOOK_DEPTH_REACH].add_metric([*labels, side], reach / 100)


def _pressure(f: Families, pressures: list[Pressure], selected: set[InstrumentId]) -> None:
    for p in sorted(pressures, key=lambda p: (p.venue, p.symbol)):
        if (p.venue, p.symbol) not in selected:
            continue
        labels = [p.venue, p.symbol]
        f[PRESSURE_SCORE].add_metric(labels, p.score)
        f[PRESSURE_QUALITY].add_metric(labels, p.data_quality)
        for state in State:
            f[PRESSURE_STATE].add_metric([*labels, state.value], 1.0 if p.state == state else 0.0)
        for side in Side:
            f[PRESSURE_SIDE].add_metric([*labels, side.value], 1.0 if p.side == side else 0.0)
        for spec, feature, scale in _FEATURES:
            value = p.features.get(feature)
            if value is not None:
                f[spec].add_metric(labels, value * scale)
        for taker, feature in (("buy", "volume_1m_buy_usd"), ("sell", "volume_1m_sell_usd")):
            value = p.features.get(feature)
            if value is not None:
                f[VOLUME_1M_USD].add_metric([*labels, taker], value)


_FEATURES: Final = (
    (PRESSURE_OI_CHANGE, "oi_change_base_pct", 0.01),
    (PRESSURE_LIQUIDATED_OI, "liq_bp_of_oi", 0.0001),
    (PRESSURE_FORCED_SHARE, "forced_share", 1.0),
    (PRESSURE_MARK_RETURN, "mark_return_pct", 0.01),
    (PRESSURE_DEPTH_CHANGE, "depth_1pct_change_pct", 0.01),
    (PRESSURE_FRAGILE, "fragile", 1.0),
)
"""Score features exported, with the factor from the feature's unit to a ratio."""


def _store(f: Families, stats: Mapping[str, float]) -> None:
    for key, spec in (
        ("written_events", STORE_EVENTS),
        ("written_batches", STORE_BATCHES),
        ("write_failures", STORE_FAILURES),
        ("pending", STORE_PENDING),
        ("oldest_pending_s", STORE_OLDEST),
        ("events_dropped", STORE_DROPPED),
    ):
        if key in stats:
            f[spec].add_metric([], stats[key])
    # Counted by this process's readers (the API's, the detector's): see store/poison.py.
    for (what, reason), n in sorted(poison.counts().items()):
        f[STORE_DECODE_ERRORS].add_metric([what, reason], n)


def _assets(
    f: Families,
    latest: Mapping[InstrumentId, Mapping[Kind, Event]],
    totals: Mapping[LiqKey, tuple[int, float]],
    health: list[HealthSnapshot],
    max_assets: int,
    pressures: list[Pressure],
) -> None:
    """The asset view: the top ``max_assets`` assets by open interest; how many of each one's
    scored instruments are fragile (``pressures``: every instrument's, selected or not)."""
    now = int(time.time() * 1000)
    sums: dict[InstrumentId, list[float]] = {}
    for (venue, symbol, side), (_, usd) in totals.items():
        sums.setdefault((venue, symbol), [0.0, 0.0])[0 if side is Side.LONG else 1] += usd
    liq = {k: LiquidationSums(v[0], v[1]) for k, v in sums.items()}
    stale = [h.venue for h in health if feed_problem(h, now, STALE_AFTER_S) is not None]
    views = build_asset_views(
        latest, liq, stale, now_ms=now, stale_after_s=STALE_AFTER_S, window_s=0.0
    )
    top = sorted(views.values(), key=lambda v: -v.oi_usd)[:max_assets]
    fragile: dict[str, int] = {}
    for p in pressures:
        if p.features.get("fragile") == 1.0:
            fragile[p.asset] = fragile.get(p.asset, 0) + 1
    for view in sorted(top, key=lambda v: v.asset):
        a = [view.asset]
        f[ASSET_OI_USD].add_metric(a, view.oi_usd)
        if view.funding_rate_1h is not None:
            f[ASSET_FUNDING_HOURLY].add_metric(a, view.funding_rate_1h)
        f[ASSET_LIQUIDATED_NOTIONAL].add_metric([view.asset, "long"], view.liq_long_usd)
        f[ASSET_LIQUIDATED_NOTIONAL].add_metric([view.asset, "short"], view.liq_short_usd)
        f[ASSET_STALE_VENUES].add_metric(a, len(view.stale_venues))
        f[ASSET_FRAGILE].add_metric(a, fragile.get(view.asset, 0))


def _stress(
    source: StressSource, selected: set[InstrumentId], assets: Mapping[str, set[str]]
) -> Iterator[Metric]:
    """Stress figures with bounded labels: the largest pools, ADL levels per venue, ratios of
    the selected symbols (and of per-currency figures of their assets)."""
    f: Families = {spec: spec.family() for spec in STRESS_SPECS}
    for snap in sorted(source.stress(), key=lambda s: s.venue):
        v = [snap.venue]
        f[STRESS_POLLS].add_metric(v, snap.polls)
        f[STRESS_EVENTS].add_metric(v, snap.events)
        for reason, n in sorted(snap.failures.items()):
            f[STRESS_POLL_FAILURES].add_metric([snap.venue, reason], n)
        for reason, n in sorted(snap.drops.items()):
            f[STRESS_DROPS].add_metric([snap.venue, reason], n)
        pools = [
            e for e in snap.states if isinstance(e, InsuranceFund) and e.balance_usd is not None
        ]
        if pools:
            f[STRESS_INSURANCE_TOTAL_USD].add_metric(v, sum(p.balance_usd or 0.0 for p in pools))
        largest = sorted(pools, key=lambda p: -abs(p.balance_usd or 0.0))[:MAX_POOLS_PER_VENUE]
        for p in sorted(largest, key=lambda p: (p.pool, p.asset)):
            f[STRESS_INSURANCE_USD].add_metric([snap.venue, p.pool, p.asset], p.balance_usd or 0.0)
        adl = [e for e in snap.states if isinstance(e, AdlRisk)]
        if adl:
            f[STRESS_ADL_LEVEL_MAX].add_metric(v, max(int(e.level) for e in adl))
            for level in AdlLevel:
                n = sum(1 for e in adl if e.level is level)
                f[STRESS_ADL_INSTRUMENTS].add_metric([snap.venue, level.name.lower()], n)
        venue_assets = assets.get(snap.venue, set())
        for e in snap.states:
            if not isinstance(e, Positioning):
                continue
            if (snap.venue, e.symbol) in selected or (
                e.symbol == e.base and e.base in venue_assets
            ):
                f[STRESS_LONG_SHORT].add_metric(
                    [snap.venue, e.symbol, e.metric.value], e.long_short_ratio
                )
    stats = source.stress_writer()
    for key, spec in (
        ("written", STRESS_WRITTEN), ("write_failures", STRESS_WRITE_FAILURES),
        ("pending", STRESS_PENDING),
    ):  # fmt: skip
        if key in stats:
            f[spec].add_metric([], stats[key])
    yield from f.values()


def _round_family() -> HistogramMetricFamily:
    return HistogramMetricFamily(
        DETECTOR_ROUND_SECONDS, "How long each evaluation round of the detector took."
    )


def _detector(d: DetectorStats) -> Iterator[Metric]:
    f: Families = {spec: spec.family() for spec in DETECTOR_SPECS}
    f[DETECTOR_ROUNDS].add_metric([], d.rounds_total)
    f[DETECTOR_SCORED].add_metric([], d.scored_total)
    f[DETECTOR_DEFERRED].add_metric([], d.deferred)
    counts = d.checkpoint_counts
    for outcome in CHECKPOINT_OUTCOMES:  # every outcome from the start: rate() sees the first
        f[DETECTOR_CHECKPOINTS].add_metric([outcome], counts.get(outcome, 0))
    f[DETECTOR_REPLAYED].add_metric([], counts.get("replayed", 0))
    cost = d.scoring_cost_s
    if cost is not None:
        f[DETECTOR_COST].add_metric([], cost)
    yield from (fam for spec, fam in f.items() if spec is not DETECTOR_COST or cost is not None)
    rounds = _round_family()
    rounds.add_metric([], d.round_seconds.cumulative(), sum_value=d.round_seconds.sum_s)
    yield rounds


def _latency_family() -> HistogramMetricFamily:
    return HistogramMetricFamily(
        ALERT_LATENCY,
        "From an alert's decision to its delivery to the receiver (2xx), per notification.",
        labels=R,
    )


def _outputs(snap: OutputsSnapshot) -> Iterator[Metric]:
    f: Families = {spec: spec.family() for spec in OUTPUT_SPECS}
    latency = _latency_family()
    for kind, n in sorted(snap.alert_events.items()):
        f[ALERT_EVENTS].add_metric([kind], n)
    if snap.open_alerts is not None:
        f[ALERTS_OPEN].add_metric([], snap.open_alerts)
    for r in snap.receivers:
        labels = [r.name]
        f[ALERT_DELIVERED].add_metric(labels, r.delivered)
        f[ALERT_FAILURES].add_metric(labels, r.failures)
        f[ALERT_DROPPED].add_metric(labels, r.dropped)
        f[ALERT_OUTBOX].add_metric(labels, r.outbox_depth)
        f[ALERT_RECEIVER_ENABLED].add_metric(labels, 1.0 if r.enabled else 0.0)
        latency.add_metric(labels, r.latency.cumulative(), sum_value=r.latency.sum_s)
    if snap.mqtt is not None:
        for key, spec in (
            ("connected", MQTT_CONNECTED), ("connects", MQTT_CONNECTS),
            ("connect_failures", MQTT_CONNECT_FAILURES), ("scores_published", MQTT_SCORES),
            ("alerts_published", MQTT_ALERTS), ("alerts_dropped", MQTT_ALERTS_DROPPED),
            ("alerts_pending", MQTT_ALERTS_PENDING),
        ):  # fmt: skip
            f[spec].add_metric([], snap.mqtt[key])
    mqtt_specs = {s for s in OUTPUT_SPECS if s.name.startswith("deleverage_mqtt_")}
    yield from (fam for spec, fam in f.items() if snap.mqtt is not None or spec not in mqtt_specs)
    yield latency
