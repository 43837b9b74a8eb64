"""The versioned REST API: ``create_app`` builds it; ``mount_metrics`` adds ``/metrics``."""

from __future__ import annotations

from .app import create_app
from .routes.metrics import mount_metrics

__all__ = ["create_app", "mount_metrics"]
