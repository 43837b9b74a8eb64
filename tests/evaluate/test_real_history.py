"""The labelled real episodes hold: a change of tuning that loses one fails here.

Runs the real-history suite's quick form on the shared data (each episode on its own data
set's bars from 14 days before its window to a day after; the full form is ``deleverage
evaluate --suite real``, whose verdicts on the episodes are the same). The misses below are
the detector's, reported in docs/evaluation.md with their reason; they are not asserted, so
a tuning that fixes one passes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from service.config import DetectorSettings
from service.evaluate.real import load_labels, run_real

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("DELEVERAGE_SHARED_DATA", REPO.parent / "shared" / "data"))
KNOWN_MISSES = {
    # Hyperliquid's BTC open interest in base units did not fall over the window (-2 %):
    # the -11 % of 04-07 01:00-09:00 undoes a +13 % jump the evening before
    ("2025-04-07-tariffs", "BTC"),
    # daily bars: OI -13 % in the day with z -3.7, 0.8 of a threshold (the close-to-close
    # price -6 % hides the intraday -21 %)
    ("2024-08-05-yen-carry-daily", "SOL"),
    # daily bars: Hyperliquid's open interest in base units over the UTC days 04-06 and
    # 04-07 moved within its daily noise (the hourly falls reverted within the day)
    ("2025-04-07-tariffs-daily", "BTC"),
    ("2025-04-07-tariffs-daily", "ETH"),
    ("2025-04-07-tariffs-daily", "SOL"),
    ("2025-04-07-tariffs-daily", "DOGE"),
}


@pytest.fixture(scope="module")
def episodes() -> list[dict[str, Any]]:
    if not (DATA / "real_intraday").is_dir():
        pytest.fail(f"shared data not found at {DATA} (set DELEVERAGE_SHARED_DATA)")
    summary = run_real(DetectorSettings(), load_labels(), DATA, lead_days=14)
    return list(summary["episodes"])


def test_every_labelled_episode_is_judged(episodes: list[dict[str, Any]]) -> None:
    labels = load_labels()
    want = {(e.id, a) for e in labels.episodes for a in e.assets}
    assert {(e["episode"], e["asset"]) for e in episodes} == want
    assert want >= KNOWN_MISSES


def test_labelled_episodes_are_flagged_with_their_side_at_the_asset_scope(
    episodes: list[dict[str, Any]],
) -> None:
    lost = [
        (e["episode"], e["asset"], e["side"], e["peak"])
        for e in episodes
        if not e["flagged"] and (e["episode"], e["asset"]) not in KNOWN_MISSES
    ]
    assert lost == []


def test_2025_10_10_is_a_long_cascade_by_the_close_of_the_21_00_bar(
    episodes: list[dict[str, Any]],
) -> None:
    crash = [e for e in episodes if e["episode"] == "2025-10-10-tariff-cascade"]
    assert {e["asset"] for e in crash} == {"BTC", "ETH", "SOL", "DOGE", "HYPE"}
    for e in crash:
        assert (e["flagged"], e["peak"], e["side"]) == (True, "cascade", "long"), e
        # the bar 21:00-22:00 is known at 22:00; the detector calls it then (+ its settle)
        assert e["delay_s"] is not None
        assert e["delay_s"] <= 3600 + 60
