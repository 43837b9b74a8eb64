"""The labelled real episodes hold: a change of tuning that loses one fails here.

Runs the real-history suite's quick form on the shared data (each episode on its own data
set's bars from 14 days before its window to a day after; the full form is ``deleverage
evaluate --suite real``, whose verdicts on the episodes are the same). The misses below are
the detector's, reported in docs/evaluation.md with their reason; they are not asserted, so
a tuning that fixes one passes. Assets the labels mark ``not_judgeable`` (the data cannot show
the episode at that resolution, with the reason) are not asserted either.
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
    # Daily bars, Hyperliquid DOGE: open interest in base units fell 21.4 % on the UTC day
    # 04-07, the largest one-day fall of the month before (the previous worst -15.1 %; 4 of
    # 177 days from March to September fell more), 3.2 to 3.9 robust sigmas of its daily
    # changes, with the month's deepest intraday low (-13 %) and the price flat close to
    # close. The detector scores it 0.54 of a threshold (z -2.45 on its scale of 9.8 %, the
    # recent-noise one; the month's plain MAD is 6.5 %). Even on the plain MAD it would be
    # 0.82: on daily bars the 1 d window is the reference, whose threshold is z_enter (4.5).
    # Neither a narrower scale nor real-length thresholds is supported by the tuning set
    # (each breaks 2 % of the tuning calm hours), nor a looser excursion rule (it loses a
    # tuning episode's side); docs/evaluation.md has the figures. Four later unlabelled
    # days fell more. A real miss, without a principled fix.
    ("2025-04-07-tariffs-daily", "DOGE"),
    # Daily bars, Hyperliquid SOL: open interest -6.8 % on 04-06 and -14.4 % on 04-07 (0.6
    # and 1.4 robust sigmas; the month's sigma, ~11 % a day, is swollen by rises: of its 7
    # days over 10 %, one was a fall), the largest one-day fall of the month before, -20.2 %
    # over the two days (the month's worst two-day fall was -13.6 %), with a -10 % intraday
    # low on 04-07 and -12 % on the price the day before. It was marked not judgeable during
    # diagnosis; a second reader (2026-12-04) found the data does show a long unwind, so it
    # is counted as a miss. No window spans two days, and 1.4 sigmas is 1.4 on the plain MAD
    # too: no scale or threshold change the tuning set supports reaches it.
    ("2025-04-07-tariffs-daily", "SOL"),
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
        if not e["flagged"]
        and not e["not_judgeable"]
        and (e["episode"], e["asset"]) not in KNOWN_MISSES
    ]
    assert lost == []


def test_known_misses_and_not_judgeable_assets_do_not_overlap(
    episodes: list[dict[str, Any]],
) -> None:
    unjudged = {(e["episode"], e["asset"]) for e in episodes if e["not_judgeable"]}
    assert unjudged == {
        ("2025-04-07-tariffs", "BTC"),
        ("2025-04-07-tariffs-daily", "BTC"),
        ("2025-04-07-tariffs-daily", "ETH"),
    }
    assert not unjudged & KNOWN_MISSES


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
