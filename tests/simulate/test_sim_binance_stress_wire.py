"""The Binance simulator's stress bodies follow its scenario: in ``long_unwind`` the insurance
fund drains through the cascade and the unwind and refills in the recovery, and the ADL
rating of the affected assets rises to ``high`` in the cascade, ``medium`` in the unwind."""

from __future__ import annotations

import pytest

from service.simulate.scenario import SCENARIOS
from service.venues.binance.simulator import stress_wire as sw

FULL = sw.INSURANCE_BALANCE_USDT
SCENARIO = SCENARIOS["long_unwind"]  # calm 20 s, cascade 40 s, unwind 60 s, recovery 40 s


@pytest.mark.parametrize(
    ("t_s", "drained", "btc", "sol"),
    [
        (10.0, 0.0, "low", "low"),  # calm
        (50.0, 0.006 * 30, "high", "low"),  # 30 s into the cascade of BTC and ETH
        (80.0, 0.006 * 40 + 0.001 * 20, "medium", "low"),  # 20 s into the unwind
        (140.0, 0.30 - 0.0075 * 20, "low", "low"),  # 20 s into the recovery
        (159.9, 0.30 - 0.0075 * 39.9, "low", "low"),  # all 30 % back by the cycle's end
    ],
)
def test_the_fund_and_the_rating_follow_the_phases(
    t_s: float, drained: float, btc: str, sol: str
) -> None:
    at = SCENARIO.phase_at(t_s)
    assert sw.insurance_balance(SCENARIO, at) == pytest.approx(FULL * (1 - drained))
    assert sw.adl_rating(at, "BTC") == btc
    assert sw.adl_rating(at, "ETH") == btc  # ETH is in the cascade too (milder)
    assert sw.adl_rating(at, "SOL") == sol


def test_the_fund_never_drains_past_its_floor() -> None:
    long_cascade = SCENARIOS["flash_cascade"]
    lowest = min(
        sw.insurance_balance(long_cascade, long_cascade.phase_at(t / 2))
        for t in range(int(long_cascade.duration_s * 2))
    )
    assert lowest >= FULL * (1 - sw.MAX_DRAIN) - 1e-6
    body = sw.insurance_pool(["ETHUSDT", "BTCUSDT"], 1_760_000_000_000, lowest)
    assert body["assets"][0]["marginBalance"] == f"{lowest:.8f}"
    assert body["symbols"] == ["BTCUSDT", "ETHUSDT"]
