"""Run the simulators until cancelled: the body of ``deleverage simulate``.

Every venue's server plays the same scenario (each over its own seeded market, so the
regimes line up across venues while prices and sizes differ a little, as they do). Ports
are either fixed (``base_port``: venue *i* in the order of the ``simulators`` given listens on
``base_port + 2i`` for its websocket and ``+ 2i + 1`` for REST) or chosen by the system
(``base_port=0``), in which case ``urls_file`` tells where each venue listens. Started with
a lifeline (:mod:`service.lifeline`), they stop when the process that started them is gone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import structlog

from ..lifeline import until_orphaned
from .drift import ProtocolDrift
from .scenario import DEFAULT_SCENARIO, Scenario, get_scenario

log = structlog.get_logger(__name__)


class VenueSimulator(Protocol):
    ws_base_url: str
    rest_base_url: str
    drift: ProtocolDrift | None

    async def start(self, host: str = ..., ws_port: int = ..., rest_port: int = ...) -> Self: ...
    async def stop(self) -> None: ...


SimulatorFactory = Callable[[Scenario, int, float], VenueSimulator]
"""``(scenario, seed, time_scale)`` -> a venue's simulator, not started."""


async def run_forever(
    simulators: Mapping[str, SimulatorFactory],
    host: str = "127.0.0.1",
    base_port: int = 0,
    scenario: str = DEFAULT_SCENARIO,
    time_scale: float = 1.0,
    seed: int = 0,
    *,
    venues: Sequence[str] | None = None,
    urls_file: Path | None = None,
    drifts: Mapping[str, ProtocolDrift] | None = None,
) -> None:
    """Start the simulators, log (and write) their URLs, and serve until cancelled.
    ``simulators``: venue id -> factory, in the order that fixes the ports
    (``service.venues.SIMULATORS``, derived from the venues' specs). ``drifts``: venues that
    depart from their protocol (:mod:`.drift`).

    Raises ``KeyError`` for an unknown scenario or venue and ``OSError`` when a port cannot
    be bound.
    """
    sc = get_scenario(scenario)
    names = list(venues or simulators)
    unknown = [n for n in names if n not in simulators]
    if unknown:
        raise KeyError(f"no simulator for {unknown}; available: {sorted(simulators)}")
    sims: dict[str, VenueSimulator] = {}
    try:
        for name in names:
            i = list(simulators).index(name)
            ws_port, rest_port = (base_port + 2 * i, base_port + 2 * i + 1) if base_port else (0, 0)
            sim = simulators[name](sc, seed + i, time_scale)
            sim.drift = (drifts or {}).get(name)
            if sim.drift is not None:
                log.warning("simulator drifted from its protocol", venue=name, drift=sim.drift)
            sims[name] = await sim.start(host, ws_port, rest_port)
        urls = {n: {"ws_url": s.ws_base_url, "rest_url": s.rest_base_url} for n, s in sims.items()}
        for name, u in urls.items():
            log.info(
                "simulator running",
                venue=name,
                scenario=sc.name,
                cycle_s=sc.duration_s,
                time_scale=time_scale,
                **u,
            )
        if urls_file is not None:
            _write_atomically(urls_file, urls)
        await until_orphaned()
        log.info("simulators stopping: the process that started them is gone")
    finally:
        for sim in sims.values():
            await sim.stop()


def _write_atomically(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
