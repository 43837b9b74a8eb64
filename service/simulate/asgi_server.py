"""An ASGI app served by uvicorn inside the running event loop, on a port of our choosing.

``uvicorn.Server.serve()`` installs SIGINT/SIGTERM handlers and re-raises the signals when it
returns, which fights the host process's own shutdown; this wrapper drives the server's
``startup``/``main_loop``/``shutdown`` steps itself and never touches signals or logging
configuration. Port 0 picks a free port; :attr:`port` tells which.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp


class AsgiServer:
    """One uvicorn server for ``app``. ``await start()``, then ``await stop()``."""

    def __init__(self, app: ASGIApp, *, graceful_s: int = 1) -> None:
        self.app = app
        self.graceful_s = graceful_s
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind ``host:port`` and serve; returns the bound port."""
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            lifespan="off",
            ws="none",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=self.graceful_s,
        )
        config.load()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.listen(config.backlog)
        sock.setblocking(False)
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server, self._sock = server, sock
        self._loop_task = asyncio.create_task(server.main_loop(), name="simulate-asgi-server")
        self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop accepting, close open connections, wait (up to ``graceful_s``) for them."""
        server, sock, task = self._server, self._sock, self._loop_task
        self._server = self._sock = self._loop_task = None
        if server is None:
            return
        server.should_exit = True
        if task is not None:  # only refreshes the Date header: no need to wait for its tick
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await server.shutdown(sockets=[sock] if sock is not None else None)
