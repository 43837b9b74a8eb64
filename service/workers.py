"""The API as several worker processes, for a load one event loop cannot serve.

``deleverage run --only api`` with ``api.workers`` above 1: this process binds the API's
socket once and becomes the supervisor of that many worker processes (uvicorn's
:class:`~uvicorn.supervisors.Multiprocess`: it starts them, replaces one that dies or stops
answering its health pings, and stops them all on SIGTERM or SIGINT). Every worker is an
API-only :class:`~service.runtime.Runtime` built from the same configuration files and
environment; the kernel spreads the connections over the workers that accept on the shared
socket. The API keeps no state a worker could disagree on: each worker answers from its own
snapshot of Redis, refreshed every ``api.snapshot_s``, so any worker answers what any other
does, within that refresh. ``/metrics`` on a worker is that worker's own (requests, stream
clients); the collectors', the detector's and the alerts' metrics are on their processes.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog
import uvicorn
from uvicorn.supervisors import Multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .config import Settings

log = structlog.get_logger(__name__)

CONFIG_ENV: Final = "DELEVERAGE_API_WORKER_CONFIG"
"""What the supervisor hands its workers: the configuration files, a JSON list of paths
(the environment's own ``DELEVERAGE_*`` settings reach them as they are)."""


def serve(settings: Settings, config_files: list[Path]) -> None:
    """Bind the API's socket, then supervise ``api.workers`` workers until SIGTERM or SIGINT
    (blocks)."""
    from .publish.api.http import HttpProtocol

    api = settings.api
    os.environ[CONFIG_ENV] = json.dumps([str(p.resolve()) for p in config_files])
    config = uvicorn.Config(
        f"{__name__}:app",
        factory=True,
        host=api.host,
        port=api.port,
        workers=api.workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=HttpProtocol,
    )
    sock = config.bind_socket()
    # as in the single process (runtime._serve_api): what a client that stops reading holds
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, api.send_buffer_bytes)
    host, port = sock.getsockname()[:2]
    log.info("api workers starting", workers=api.workers, url=f"http://{host}:{port}")
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
    log.info("api workers stopped")


def app() -> FastAPI:
    """One worker's API (uvicorn calls it in the worker, inside its event loop)."""
    from .logs import configure
    from .preflight import load_checked
    from .process import settle_heap, tune_gc
    from .runtime import Component, Runtime

    files = [Path(p) for p in json.loads(os.environ.get(CONFIG_ENV, "[]"))]
    settings = load_checked(files or None)
    configure(settings.log_level, settings.log_format, secrets=settings.secret_values())
    tune_gc()
    runtime = Runtime(settings, {Component.API})
    settle_heap("api worker built")
    log.info("api worker ready", pid=os.getpid())
    return runtime.app
