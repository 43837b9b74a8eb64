"""Writes the Grafana dashboards beside this file: ``python dashboards/generate.py``.

Built with Grafana's own SDK, the Grafana Foundation SDK (``grafana-foundation-sdk``, the
build for Grafana 11.6, the version the compose stack runs): its typed builders make the
classic dashboard model that Grafana's file provisioning loads (not the v2 resource
format). The helpers below give every panel the same templated datasource, a unit and a
description, and every rate its ``$__rate_interval``. One thing the SDK does not model: a
Prometheus annotation's own fields (``step``, ``titleFormat``, ``tagKeys``...), added to
the annotation after it is built (:func:`_prometheus_annotation`).

``tests/observability`` checks that the committed JSON is what this script writes, and runs
every query below against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, statetimeline, table
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

Json = dict[str, Any]
Pos = tuple[int, int, int, int]
"""(x, y, w, h) on Grafana's 24-column grid."""

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
OUT = Path(__file__).resolve().parent
TAGS = ["deleverage"]

# The asset drill-down's instruments: per-instrument series joined to their asset.
ASSET = 'deleverage_instrument_info{asset="$asset", venue=~"$venue"}'
VENUE = 'venue=~"$venue"'


# -- panels ------------------------------------------------------------------------------------


def target(expr: str, legend: str = "", *, instant: bool = False, ref: str = "A") -> Any:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend).datasource(DATASOURCE)
    return q.instant().format(pm.PromQueryFormat.TABLE) if instant else q.range()


def _common(p: Any, title: str, description: str, unit: str, targets: list[Any], pos: Pos) -> Any:
    x, y, w, h = pos
    p = p.title(title).description(description).unit(unit).datasource(DATASOURCE)
    return p.grid_pos(dm.GridPos(x=x, y=y, w=w, h=h)).targets(targets)


def timeseries(
    title: str, description: str, unit: str, targets: list[Any], pos: Pos, *,
    stacked: bool = False,
) -> Any:  # fmt: skip
    p = _common(ts.Panel(), title, description, unit, targets, pos)
    p = p.fill_opacity(30 if stacked else 0).show_points(cm.VisibilityMode.NEVER).line_width(1)
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL).group("A"))
    legend = cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
    legend = legend.placement(cm.LegendPlacement.BOTTOM).show_legend(True)
    tooltip = cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
    return p.legend(legend).tooltip(tooltip)


def stat_panel(title: str, description: str, unit: str, targets: list[Any], pos: Pos) -> Any:
    p = _common(stat.Panel(), title, description, unit, targets, pos)
    reduce = cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
    return (
        p.reduce_options(reduce)
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .text_mode(cm.BigValueTextMode.AUTO)
    )


def thresholds(*steps: tuple[float | None, str]) -> Any:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def value_map(texts: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Values shown as text in a colour: ``{"0": ("calm", "green"), ...}``."""
    options = {
        value: dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, (text, color)) in enumerate(texts.items())
    }
    return [dm.ValueMap(options=options)]


def score_colors() -> Any:
    return thresholds((None, "green"), (30, "yellow"), (50, "orange"), (80, "red"))


STATE_NAMES = {"0": ("calm", "green"), "1": ("building", "blue"),
               "2": ("unwinding", "orange"), "3": ("cascade", "red")}  # fmt: skip
STATE_NUMBER = (
    'sum without (state) (deleverage_pressure_state{state="building"})'
    ' + 2 * sum without (state) (deleverage_pressure_state{state="unwinding"})'
    ' + 3 * sum without (state) (deleverage_pressure_state{state="cascade"})'
)
"""The state as a number (0 calm, 1 building, 2 unwinding, 3 cascade) per instrument."""


# -- dashboards --------------------------------------------------------------------------------


def query_variable(name: str, label: str, query: str, *, multi: bool) -> Any:
    v = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": f"{name}-variable"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
        .regex("")
    )
    if multi:
        v = v.all_value(".*").current(dm.VariableOption(text=["All"], value=["$__all"]))
    return v


TRANSITIONS: Json = {
    "name": "State transitions",
    "iconColor": "orange",
    "expr": (
        "(changes(deleverage_pressure_state[$__rate_interval]) > 0)"
        " and (deleverage_pressure_state == 1)"
    ),
    "step": "15s",
    "titleFormat": "{{venue}} {{symbol}} → {{state}}",
    "tagKeys": "venue,symbol,state",
    "textFormat": "",
    "useValueForTime": False,
}
"""An annotation where an instrument entered a state (within the last rate interval)."""


def dashboard(
    uid: str, title: str, description: str, panels: list[Any], variables: list[Any],
    annotations: list[Json] | None = None,
) -> Json:  # fmt: skip
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("utc")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .readonly()
        .version(1)
        .link(
            db.DashboardLink("deleverage")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
        .annotation(
            db.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .built_in(1)
            .type("dashboard")
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
        )
        .with_variable(db.DatasourceVariable("datasource").label("Data Source").type("prometheus"))
    )
    for a in annotations or []:
        d = d.annotation(
            db.AnnotationQuery().name(a["name"]).datasource(DATASOURCE).enable(True)
            .hide(False).icon_color(a["iconColor"]).expr(a["expr"])
        )  # fmt: skip
    for v in variables:
        d = d.with_variable(v)
    for i, p in enumerate(panels, start=1):
        d = d.with_row(p.id(i)) if isinstance(p, db.Row) else d.with_panel(p.id(i))
    out: Json = json.loads(JSONEncoder(sort_keys=False).encode(d.build()))
    for a in out["annotations"]["list"]:
        _prometheus_annotation(a, annotations or [])
    return out


def _prometheus_annotation(built: Json, specs: list[Json]) -> None:
    """The fields of a Prometheus annotation that the SDK's model has no room for."""
    for spec in specs:
        if built["name"] == spec["name"]:
            built.update({k: v for k, v in spec.items() if k not in built})


def row(title: str, y: int) -> Any:
    """A row header across the grid at ``y`` (expanded: its panels follow it at top level)."""
    return db.Row(title).grid_pos(dm.GridPos(x=0, y=y, w=24, h=1))


ADL_LEVELS = {"1": ("low", "green"), "2": ("medium", "yellow"), "3": ("high", "orange"),
              "4": ("active", "red")}  # fmt: skip
"""The ADL risk scale of docs/stress.md, as ``deleverage_stress_adl_level_max`` holds it."""
FUND = "deleverage_stress_insurance_fund_total_usd"


def stress_row(y: int) -> list[Any]:
    """Leverage stress per venue (docs/stress.md): insurance funds and their drawdown, the ADL
    risk level and how many instruments are at each level, long/short ratios. The change is
    taken against the fund's highest balance of the last hour, as the "fund down 20 % in 1 h"
    alert rule does."""
    return [
        row("Leverage stress: insurance funds, auto-deleveraging, positioning", y),
        timeseries(
            "Insurance funds (USD)",
            "Each venue's insurance pools with a USD value, summed (Binance USD-M, Bybit, "
            "OKX, as polled): what pays for bankruptcies before auto-deleveraging.",
            "currencyUSD",
            [target(FUND, "{{venue}}")],
            (0, y + 1, 12, 8),
        ),
        timeseries(
            "Insurance fund change from its 1 h high",
            "The venue's funds now against their highest balance within the last hour (0: at "
            "the high; -0.2 is the alert rule's threshold). A fund paying for a cascade falls "
            "here first.",
            "percentunit",
            [target(f"{FUND} / max_over_time({FUND}[1h]) - 1", "{{venue}}")],
            (12, y + 1, 12, 8),
        )
        .max(0)
        .thresholds(thresholds((None, "red"), (-0.2, "orange"), (-0.05, "green"))),
        _common(
            statetimeline.Panel(),
            "ADL risk level by venue",
            "The highest auto-deleveraging risk among each venue's instruments, on one scale: "
            "low, medium, high, active (the venue's trigger holds). Binance rates it; Bybit's "
            "is its PnL drawdown against the trigger ratio.",
            "none",
            [target("deleverage_stress_adl_level_max", "{{venue}}")],
            (0, y + 9, 12, 8),
        )
        .mappings(value_map(ADL_LEVELS))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8),
        timeseries(
            "Instruments per ADL level",
            "How many instruments of each venue are at each ADL risk level above low (the "
            "breadth of the risk: one symbol high, or the whole venue).",
            "short",
            [
                target('deleverage_stress_adl_instruments{level!="low"}', "{{venue}} {{level}}"),
            ],
            (12, y + 9, 12, 8),
            stacked=True,
        ).decimals(0),
        timeseries(
            "Long/short ratio",
            "Long over short by venue, symbol and metric (accounts, top accounts, top "
            "positions, taker volume), for the symbols with series of their own. 1: even; "
            "an extreme on either side is crowded positioning.",
            "none",
            [target("deleverage_stress_long_short_ratio", "{{venue}} {{symbol}} {{metric}}")],
            (0, y + 17, 24, 8),
        ),
    ]


def liquidity_row(y: int, of_asset: Callable[[str], str]) -> list[Any]:
    """The asset's liquidity by venue and contract: the top of book, the traded volume, the
    book's depth (the followed books: the top 20 by open interest of each venue, by default)
    and the detector's fragility warning. Spreads widen, the top and the depth thin and volume dries
    up as leverage unwinds, before a cascade moves price further per dollar liquidated
    (docs/detector.md, "Liquidity")."""
    return [
        row("Liquidity: top of book, volume, depth, fragility", y),
        timeseries(
            "Spread",
            "(ask - bid) / mid of each instrument's best bid and ask (0.01 % = 1 basis point). "
            "A spread that widens while open interest falls: liquidity is leaving with the "
            "leverage.",
            "percentunit",
            [target(of_asset("deleverage_book_spread_ratio"), "{{venue}} {{symbol}}")],
            (0, y + 1, 12, 8),
        ).min(0),
        timeseries(
            "Top of book (USD)",
            "USD resting at the best bid plus the best ask: a thinning book takes a larger "
            "price move per dollar liquidated.",
            "currencyUSD",
            [
                target(
                    of_asset("sum by (venue, symbol) (deleverage_book_top_usd)"),
                    "{{venue}} {{symbol}}",
                )
            ],
            (12, y + 1, 12, 8),
        ).min(0),
        timeseries(
            "Traded volume, last minute (USD)",
            "What takers bought (buy) and sold (sell) over the last minute, liquidation fills "
            "included: volume that dries up while open interest falls is liquidity leaving; "
            "one side's surge is a flow that moves price.",
            "currencyUSD",
            [target(of_asset("deleverage_volume_1m_usd"), "{{venue}} {{symbol}} {{side}}")],
            (0, y + 9, 12, 8),
        ).min(0),
        timeseries(
            "Depth within 1 % of mid (USD)",
            "USD resting within 1 % of mid on each side, for the followed books (the top by "
            "open interest): a thinning book takes a larger move per dollar liquidated. A "
            "lower bound where the venue's levels stop short of 1 % "
            "(deleverage_book_depth_reach_ratio).",
            "currencyUSD",
            [
                target(
                    of_asset('deleverage_book_depth_usd{band="0.01"}'),
                    "{{venue}} {{symbol}} {{side}}",
                )
            ],
            (12, y + 9, 12, 8),
        ).min(0),
        _common(
            statetimeline.Panel(),
            "Fragile books",
            "The detector's fragility warning per instrument: fragile while its book is thin "
            "or wide against its own baselines (depth within 1 % or the top of book 3 sigmas "
            "below, or the spread as far above) as open interest falls or builds. A thin book "
            "makes a cascade move price further per dollar liquidated; a warning beside the "
            'state, never a state (docs/detector.md, "Fragility").',
            "none",
            [target(of_asset("deleverage_pressure_fragile"), "{{venue}} {{symbol}}")],
            (0, y + 17, 18, 7),
        )
        .mappings(value_map(FRAGILE_NAMES))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8),
        stat_panel(
            "Fragile instruments",
            "How many of the asset's scored instruments, on every venue, the detector calls "
            "fragile now.",
            "none",
            [target('deleverage_asset_fragile_instruments{asset="$asset"}', "fragile")],
            (18, y + 17, 6, 7),
        )
        .decimals(0)
        .thresholds(thresholds((None, "green"), (1, "orange"))),
    ]


FRAGILE_NAMES = {"0": ("steady", "green"), "1": ("fragile", "orange")}


def market_overview() -> Json:
    top = "topk(15, deleverage_pressure_score)"
    panels = [
        stat_panel(
            "Market pressure score",
            "Instrument scores weighted by open interest (USD), 0-100: 50 means one threshold "
            "of the detector is reached. Recording rule market:deleverage_pressure_score:"
            "oi_weighted.",
            "none",
            [target("market:deleverage_pressure_score:oi_weighted", "score")],
            (0, 0, 6, 6),
        )
        .min(0)
        .max(100)
        .decimals(0)
        .thresholds(score_colors()),
        stat_panel(
            "Breadth: instruments deleveraging",
            "Share of the scored instruments that are unwinding or in a cascade.",
            "percentunit",
            [target("market:deleverage_pressure_deleveraging_per_instrument:ratio", "share")],
            (6, 0, 6, 6),
        )
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "green"), (0.1, "orange"))),
        timeseries(
            "Market pressure score",
            "The open-interest-weighted score over time (0-100).",
            "none",
            [target("market:deleverage_pressure_score:oi_weighted", "market score")],
            (12, 0, 12, 6),
        )
        .min(0)
        .max(100),
        _common(
            table.Panel(),
            "Instruments under most pressure",
            "The 15 highest-scoring instruments now, with their asset, state and the side "
            "whose positions are being unwound (empty when no side is named).",
            "none",
            [
                target(
                    f"{top} * on (venue, symbol) group_left (asset) deleverage_instrument_info",
                    instant=True,
                ),
                target(
                    f"(deleverage_pressure_state == 1) and on (venue, symbol) {top}",
                    instant=True,
                    ref="B",
                ),
                target(
                    f"(deleverage_pressure_side == 1) and on (venue, symbol) {top}",
                    instant=True,
                    ref="C",
                ),
            ],
            (0, 6, 12, 10),
        )
        .show_header(True)
        .sort_by([cb.TableSortByFieldState().display_name("score").desc(True)])
        .decimals(0)
        .thresholds(score_colors())
        .transformations(
            [
                dm.DataTransformerConfig(id_val="merge", options={}),
                dm.DataTransformerConfig(
                    id_val="organize",
                    options={
                        "excludeByName": {
                            "Time": True,
                            "Value #B": True,
                            "Value #C": True,
                            "job": True,
                            "instance": True,
                        },
                        "indexByName": {"asset": 0, "venue": 1, "symbol": 2, "state": 3, "side": 4},
                        "renameByName": {"Value #A": "score"},
                    },
                ),
            ]
        ),
        timeseries(
            "Instruments by state",
            "How many instruments are in each state (breadth). Recording rule "
            "state:deleverage_pressure_state:sum.",
            "short",
            [target("state:deleverage_pressure_state:sum", "{{state}}")],
            (12, 6, 12, 10),
            stacked=True,
        ).decimals(0),
        timeseries(
            "Liquidations by side (USD/s)",
            "Liquidated notional per second, by the side of the positions liquidated, over all "
            "venues (Binance publishes a sample: a lower bound). Recording rule "
            "side:deleverage_liquidated_notional_usd:rate1m.",
            "currencyUSD",
            [target("side:deleverage_liquidated_notional_usd:rate1m", "{{side}}")],
            (0, 16, 12, 8),
            stacked=True,
        ),
        timeseries(
            "Liquidations by venue and side (USD/s)",
            "Liquidated notional per second by venue and position side.",
            "currencyUSD",
            [
                target(
                    "sum by (venue, side) "
                    "(rate(deleverage_liquidated_notional_usd_total[$__rate_interval]))",
                    "{{venue}} {{side}}",
                )
            ],
            (12, 16, 12, 8),
            stacked=True,
        ),
        timeseries(
            "Open-interest change over 5 min, by venue",
            "Change of the venue's open interest (USD, selected instruments) over the last 5 "
            "minutes, as a share of its current value. A falling price shrinks USD open "
            "interest by itself; the asset drill-down shows the change in base units.",
            "percentunit",
            [target("venue:deleverage_open_interest_usd_change:ratio5m", "{{venue}}")],
            (0, 24, 12, 8),
        ),
        timeseries(
            "Open interest by venue (USD)",
            "Open interest of the instruments with series of their own, valued at the mark.",
            "currencyUSD",
            [target("venue:deleverage_open_interest_usd:sum", "{{venue}}")],
            (12, 24, 12, 8),
            stacked=True,
        ),
        _common(
            heatmap.Panel(),
            "Funding per hour across venues",
            "Funding rate per hour of the 20 largest instruments by open interest, one row per "
            "venue and symbol: positive (longs pay) in red, negative (shorts pay) in blue.",
            "percentunit",
            [
                target(
                    "deleverage_funding_rate_per_hour"
                    " and on (venue, symbol) topk(20, deleverage_open_interest_usd)",
                    "{{venue}} {{symbol}}",
                )
            ],
            (0, 32, 24, 10),
        )
        .calculate(False)
        .cell_gap(1)
        .cell_values(heatmap.CellValues().unit("percentunit"))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.SCHEME)
            .scheme("RdBu")
            .reverse(True)
            .steps(64)
            .exponent(0.5)
            .fill("dark-orange")
        )
        .rows_frame(heatmap.RowsHeatmapOptions())
        .y_axis(heatmap.YAxisConfig().axis_placement(cm.AxisPlacement.LEFT))
        .show_legend()
        .mode(cm.TooltipDisplayMode.SINGLE)
        .show_value(cm.VisibilityMode.NEVER),
        *stress_row(42),
    ]
    return dashboard(
        "deleverage-market",
        "deleverage: market overview",
        "Is leverage being unwound across the market, on which side, and where.",
        panels,
        [],
        [TRANSITIONS],
    )


def asset_drilldown() -> Json:
    def of_asset(metric: str) -> str:
        return f"{metric} and on (venue, symbol) {ASSET}"

    liq_rate = "rate(deleverage_liquidated_notional_usd_total[$__rate_interval])"
    panels = [
        timeseries(
            "Mark price",
            "Mark price of each of the asset's instruments, in its quote currency (USD or USDT).",
            "currencyUSD",
            [target(of_asset("deleverage_mark_price"), "{{venue}} {{symbol}}")],
            (0, 0, 12, 8),
        ),
        _common(
            statetimeline.Panel(),
            "State",
            "The detector's state of each instrument: calm, building (leverage growing), "
            "unwinding (positions closing) or cascade (forced liquidations dominate).",
            "none",
            [target(of_asset(f"({STATE_NUMBER})"), "{{venue}} {{symbol}}")],
            (12, 0, 12, 8),
        )
        .mappings(value_map(STATE_NAMES))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8),
        timeseries(
            "Open interest (USD)",
            "Open interest of the asset's instruments, and the asset's total over fresh venues.",
            "currencyUSD",
            [
                target(of_asset("deleverage_open_interest_usd"), "{{venue}} {{symbol}}"),
                target('deleverage_asset_open_interest_usd{asset="$asset"}', "total", ref="B"),
            ],
            (0, 8, 12, 8),
        ),
        timeseries(
            "Liquidations by side (USD/s)",
            "Liquidated notional per second of the asset's instruments, by venue and position "
            "side.",
            "currencyUSD",
            [
                target(
                    f"sum by (venue, side) ({liq_rate} and on (venue, symbol) {ASSET})",
                    "{{venue}} {{side}}",
                ),
            ],
            (12, 8, 12, 8),
            stacked=True,
        ),
        timeseries(
            "Funding per hour",
            "Funding rate per hour of each instrument, and the asset's rate weighted by open "
            "interest.",
            "percentunit",
            [
                target(of_asset("deleverage_funding_rate_per_hour"), "{{venue}} {{symbol}}"),
                target(
                    'deleverage_asset_funding_rate_per_hour{asset="$asset"}', "weighted", ref="B"
                ),
            ],
            (0, 16, 12, 8),
        ),
        timeseries(
            "Pressure score",
            "The detector's score per instrument, 0-100 (50: one threshold reached).",
            "none",
            [target(of_asset("deleverage_pressure_score"), "{{venue}} {{symbol}}")],
            (12, 16, 12, 8),
        )
        .min(0)
        .max(100)
        .thresholds(score_colors()),
        timeseries(
            "Feature: open-interest change (base units)",
            "Open interest in base units, now vs the start of the detector's window: price "
            "moves do not change it.",
            "percentunit",
            [
                target(
                    of_asset("deleverage_pressure_open_interest_change_ratio"),
                    "{{venue}} {{symbol}}",
                )
            ],
            (0, 24, 8, 8),
        ),
        timeseries(
            "Feature: liquidated share of open interest",
            "Liquidated notional over the detector's window divided by open interest (USD).",
            "percentunit",
            [
                target(
                    of_asset("deleverage_pressure_liquidated_open_interest_ratio"),
                    "{{venue}} {{symbol}}",
                )
            ],
            (8, 24, 8, 8),
        ),
        timeseries(
            "Feature: forced share and mark return",
            "Forced share: liquidated notional as a share of the open-interest decline (absent "
            "when open interest did not fall). Mark return over the detector's window.",
            "percentunit",
            [
                target(
                    of_asset("deleverage_pressure_forced_share_ratio"),
                    "forced {{venue}} {{symbol}}",
                ),
                target(
                    of_asset("deleverage_pressure_mark_return_ratio"),
                    "return {{venue}} {{symbol}}",
                    ref="B",
                ),
            ],
            (16, 24, 8, 8),
        ),
        timeseries(
            "Data quality",
            "1 when every feed behind an instrument's score is fresh; lower when a feed is "
            "missing or stale.",
            "percentunit",
            [
                target(of_asset("deleverage_pressure_data_quality_ratio"), "{{venue}} {{symbol}}"),
            ],
            (0, 32, 24, 6),
        ).min(0),
        *liquidity_row(38, of_asset),
    ]
    variables = [
        query_variable(
            "asset", "Asset", "label_values(deleverage_instrument_info, asset)", multi=False
        ),
        query_variable(
            "venue",
            "Venue",
            'label_values(deleverage_instrument_info{asset="$asset"}, venue)',
            multi=True,
        ),
    ]
    return dashboard(
        "deleverage-asset",
        "deleverage: asset drill-down",
        "One asset across venues and contracts: price, open interest, liquidations, funding, "
        "and the features behind the score.",
        panels,
        variables,
        [TRANSITIONS],
    )


def collector_health() -> Json:
    def per_venue_rate(metric: str) -> str:
        return f"sum by (venue) (rate({metric}{{{VENUE}}}[$__rate_interval]))"

    zero = f"sum by (venue) (0 * deleverage_feed_connected{{{VENUE}}})"
    panels = [
        stat_panel(
            "Connected",
            "1 when the venue's websocket is connected.",
            "none",
            [target(f"deleverage_feed_connected{{{VENUE}}}", "{{venue}}")],
            (0, 0, 12, 5),
        ).mappings(value_map({"0": ("down", "red"), "1": ("up", "green")})),
        stat_panel(
            "Service scraped",
            "1 when Prometheus scrapes the service's /metrics (job deleverage).",
            "none",
            [target('up{job="deleverage"}', "{{instance}}")],
            (12, 0, 6, 5),
        ).thresholds(thresholds((None, "red"), (1, "green"))),
        stat_panel(
            "Instruments listed",
            "Instruments in each venue's metadata.",
            "short",
            [target(f"deleverage_feed_instruments{{{VENUE}}}", "{{venue}}")],
            (18, 0, 6, 5),
        ),
        timeseries(
            "Frames received per second",
            "Websocket frames per second, by venue. Recording rule "
            "venue:deleverage_feed_messages:rate1m.",
            "cps",
            [target(f"venue:deleverage_feed_messages:rate1m{{{VENUE}}}", "{{venue}}")],
            (0, 5, 12, 8),
        ),
        timeseries(
            "Events per second",
            "Normalized events (funding, mark, open interest, liquidations) per second.",
            "cps",
            [target(per_venue_rate("deleverage_feed_events_total"), "{{venue}}")],
            (12, 5, 12, 8),
        ),
        timeseries(
            "Last frame age",
            "Seconds since the venue's last frame; the DeleverageFeedStale alert fires above "
            "120 s.",
            "s",
            [
                target(
                    f"time() - deleverage_feed_last_message_timestamp_seconds{{{VENUE}}}",
                    "{{venue}}",
                )
            ],
            (0, 13, 12, 8),
        ).thresholds(thresholds((None, "green"), (30, "orange"), (120, "red"))),
        timeseries(
            "Reconnects",
            "Websocket reconnections per rate interval.",
            "short",
            [
                target(
                    f"sum by (venue) (increase(deleverage_feed_reconnects_total{{{VENUE}}}"
                    "[$__rate_interval]))",
                    "{{venue}}",
                )
            ],
            (12, 13, 12, 8),
        ),
        timeseries(
            "Parse errors per second",
            "Frames dropped as unparseable, per second (0 when a venue has had none).",
            "cps",
            [
                target(
                    f"{per_venue_rate('deleverage_feed_parse_errors_total')} or {zero}",
                    "{{venue}}",
                )
            ],
            (0, 21, 12, 8),
        ),
        timeseries(
            "Open-interest polls per second",
            "REST polls of open interest, and those that failed.",
            "cps",
            [
                target(per_venue_rate("deleverage_feed_oi_polls_total"), "{{venue}} polls"),
                target(
                    per_venue_rate("deleverage_feed_oi_poll_failures_total"),
                    "{{venue}} failures",
                    ref="B",
                ),
            ],
            (12, 21, 12, 8),
        ),
        timeseries(
            "Redis writes per second",
            "Events and pipelined batches written to Redis per second, and failed batch writes "
            "(retried).",
            "cps",
            [
                target(
                    "sum(rate(deleverage_store_events_written_total[$__rate_interval]))", "events"
                ),
                target(
                    "sum(rate(deleverage_store_batches_written_total[$__rate_interval]))",
                    "batches",
                    ref="B",
                ),
                target(
                    "sum(rate(deleverage_store_write_failures_total[$__rate_interval]))",
                    "failures",
                    ref="C",
                ),
            ],
            (0, 29, 12, 8),
        ),
        timeseries(
            "Redis backlog",
            "Events waiting to be written to Redis: it grows when Redis is slow or down.",
            "short",
            [target("deleverage_store_pending_events", "pending")],
            (12, 29, 6, 8),
        ),
        timeseries(
            "Oldest unwritten event",
            "How long the oldest event waiting to be written to Redis has waited: how stale the "
            "latest state in Redis and the detector's input are. /readyz fails above 2 s; the "
            "alert DeleverageStoreBehind fires above 10 s for 2 minutes.",
            "s",
            [target("max(deleverage_store_oldest_pending_seconds)", "oldest")],
            (18, 29, 6, 8),
        ),
        timeseries(
            "Alert deliveries per second",
            "Alert notifications delivered (2xx) per second by receiver, and failed attempts "
            "(retried with backoff).",
            "cps",
            [
                target(
                    "sum by (receiver) (rate(deleverage_alert_deliveries_total[$__rate_interval]))",
                    "{{receiver}} delivered",
                ),
                target(
                    "sum by (receiver) (rate(deleverage_alert_delivery_failures_total"
                    "[$__rate_interval]))",
                    "{{receiver}} failed",
                    ref="B",
                ),
            ],
            (0, 37, 12, 8),
        ),
        timeseries(
            "Alert outbox and latency",
            "Notifications waiting in each receiver's outbox, and the 90th percentile of the "
            "time from an alert's decision to its delivery.",
            "short",
            [
                target("deleverage_alert_outbox_depth", "{{receiver}} waiting"),
                target(
                    "histogram_quantile(0.9, sum by (le, receiver) "
                    "(rate(deleverage_alert_delivery_latency_seconds_bucket[$__rate_interval])))",
                    "{{receiver}} p90 latency (s)",
                    ref="B",
                ),
            ],
            (12, 37, 12, 8),
        ),
        timeseries(
            "Detector round duration",
            "The 50th and 99th percentile of one evaluation round (the model's CPU): it stays "
            "near detector.round_budget_ms plus the asset and market step at any scale.",
            "s",
            [
                target(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(deleverage_detector_round_seconds_bucket[$__rate_interval])))",
                    "p99",
                ),
                target(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(deleverage_detector_round_seconds_bucket[$__rate_interval])))",
                    "p50",
                    ref="B",
                ),
            ],
            (0, 45, 12, 8),
        ),
        timeseries(
            "Detector scores per second and deferred instruments",
            "Instrument scores computed per second, and the instruments the last round's "
            "budget left for the next (above 0 for long: calm instruments are looked at "
            "less often than every 5 s).",
            "short",
            [
                target("sum(rate(deleverage_detector_scored_total[$__rate_interval]))", "scored/s"),
                target("sum(deleverage_detector_deferred_instruments)", "deferred", ref="B"),
            ],
            (12, 45, 12, 8),
        ),
        timeseries(
            "Read delay",
            "How far behind each venue the collector reads: receive time minus the venue's "
            "time, the worst of the last seconds, of the marks and tops (the busy "
            "connections) and of the liquidations (their own lane). It grows when the "
            "process is short of CPU or Redis is slow, before anything is lost.",
            "s",
            [
                target(
                    f'deleverage_feed_delay_seconds{{{VENUE}, channel="state"}}',
                    "{{venue}} marks, tops",
                ),
                target(
                    f'deleverage_feed_delay_seconds{{{VENUE}, channel="liquidation"}}',
                    "{{venue}} liquidations",
                    ref="B",
                ),
            ],
            (0, 53, 24, 8),
        ).thresholds(thresholds((None, "green"), (1, "orange"), (10, "red"))),
    ]
    variables = [
        query_variable(
            "venue", "Venue", "label_values(deleverage_feed_connected, venue)", multi=True
        )
    ]
    return dashboard(
        "deleverage-collector",
        "deleverage: collector health",
        "Per venue: connection, frame and event rates, staleness, reconnects, parse errors; "
        "Redis writes; alert delivery; the detector's rounds.",
        panels,
        variables,
    )


DASHBOARDS: dict[str, Callable[[], Json]] = {
    "market-overview.json": market_overview,
    "asset-drilldown.json": asset_drilldown,
    "collector-health.json": collector_health,
}


def render(build: Callable[[], Json]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (OUT / name).write_text(render(build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
