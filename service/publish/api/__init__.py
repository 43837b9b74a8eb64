"""The versioned REST API: ``create_app`` builds it; ``mount_metrics`` adds ``/metrics``."""

from __future__ import annotations

from .app import create_app, end_streams
from .routes.metrics import mount_metrics

__all__ = ["create_app", "end_streams", "mount_metrics"]
