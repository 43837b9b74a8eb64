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
