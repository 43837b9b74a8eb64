"""Numbers as the reasons print them (pure)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=256)
def span_text(seconds: float) -> str:
    """``300`` -> ``"5m"``, ``90`` -> ``"90s"``, ``3600`` -> ``"1h"``, ``86400`` -> ``"1d"``,
    ``1.6`` -> ``"1.6s"``."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{seconds / 86400:g}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:.3g}s"


def usd_text(usd: float) -> str:
    """``4_100_000`` -> ``"$4.1M"``, ``625_000`` -> ``"$625k"``."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(usd) >= scale:
            value = usd / scale
            return f"${value:.0f}{unit}" if abs(value) >= 100 else f"${value:.1f}{unit}"
    return f"${usd:.0f}"
