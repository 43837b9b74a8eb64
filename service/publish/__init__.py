"""Outputs: the versioned REST API (:mod:`.api`) and the Prometheus exposition (:mod:`.metrics`)."""

from __future__ import annotations

from .api import create_app, mount_metrics
from .metrics import MetricsCollector, MetricsSource

__all__ = ["MetricsCollector", "MetricsSource", "create_app", "mount_metrics"]
