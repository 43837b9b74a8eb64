"""Reconnect delays: exponential with full jitter, reset only by a session that lasted.

The reset rule matters: a venue that accepts the connection and drops it at once (a bad
subscription, an IP on its way to a ban) must see our delays grow, not a tight loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float
    max_s: float
    _attempt: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """The delay before the next attempt: uniform in [initial/2, min(max, initial*2**n)]."""
        ceiling = min(self.max_s, self.initial_s * 2 ** min(self._attempt, 32))
        self._attempt += 1
        return self._rng.uniform(min(self.initial_s / 2, ceiling), ceiling)

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
