"""The one place that decides which :class:`~.base.PressureModel` the service runs.

The runner, the benchmark, ``deleverage evaluate`` and ``deleverage backtest`` all build
their model here, so that they measure the same thing.
"""

from __future__ import annotations

from ..config import DetectorSettings
from .base import PressureModel
from .robust_model import RobustModel


def make_model(settings: DetectorSettings) -> PressureModel:
    """The default pressure model, configured by ``settings``."""
    return RobustModel(settings)


def make_replay_model(settings: DetectorSettings) -> PressureModel:
    """The model for history played faster than real time (``evaluate``, ``backtest``):
    without ``round_budget_ms``, which measures the machine's speed, so that a replay's
    results depend on its data and settings only."""
    return make_model(settings.model_copy(update={"round_budget_ms": 0.0}))
