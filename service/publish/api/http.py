"""The API's HTTP/1.1 protocol: uvicorn's httptools implementation (llhttp, in C), with a bound
on a request's head.

uvicorn picks httptools when it is installed, else h11 (pure Python). In ``bench market`` the
API's requests were a fifth of the service's CPU, most of it HTTP parsing and framing in h11;
with httptools ``/healthz`` served about 40 % more requests and the data endpoints 4-35 %
more at the same CPU, and the collectors fell a third less behind (docs/performance.md,
"The API's HTTP layer").

llhttp puts no bound on a request's head (its request line and headers): a client sending
one without end would have it kept in memory. h11 refuses a head over 16 KB (its largest
incomplete event); :class:`HttpProtocol` does as well: a head over :data:`MAX_HEAD_BYTES` is
answered ``431`` and the connection closed, before it reaches the app. The API takes only
``GET``s, whose query string is capped at 2 KB besides (:mod:`.limits`).

uvicorn's httptools protocol frames a response without a length (the live stream,
``/v1/stream``) in chunks whatever the request's version, and an HTTP/1.0 client cannot
read chunks (RFC 9112 forbids sending them one; nginx proxies in HTTP/1.0 unless told
otherwise). h11 ends such a response by closing the connection instead, as HTTP/1.0 has it:
a connection whose first request line says ``HTTP/1.0`` is handed to uvicorn's h11 protocol
(as uvicorn hands an upgraded connection to its websocket protocol).
"""

from __future__ import annotations

from typing import Any, Final

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES: Final = 16 * 1024
"""The largest request head (request line and headers), as h11's default."""
_MESSAGE: Final = b"Request header fields too large"
TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: " + str(len(_MESSAGE)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _MESSAGE
)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: llhttp stops, and uvicorn answers the parser's error
    through :meth:`HttpProtocol.send_400_response`."""


class HttpProtocol(HttpToolsProtocol):
    """httptools' protocol, refusing a request head over :data:`MAX_HEAD_BYTES`.

    The head's complete lines are counted as the parser hands them over (the request line,
    each header), so a head that arrives whole in one read is refused before it reaches the
    app; the line still open at the end of a read (which the parser keeps until it ends) is
    counted by its bytes, so a line that never ends is refused too. A read holding several
    pipelined requests counts each head on its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = True
        self._head_bytes = 0
        """The head's complete lines handed over by the parser so far."""
        self._open_bytes = 0
        """The bytes of the head's line still open at the end of the last read."""
        self._too_large = False
        self._first: bytearray | None = bytearray()
        """The connection's first bytes, until its first request line is whole (then
        ``None``)."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = self._open_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        first = self._first
        if first is not None:
            seen = len(first)
            first += data
            if first.find(b"\n", seen) < 0:  # the first request line is not whole yet
                if len(first) > MAX_HEAD_BYTES:
                    self._refuse()
                return
            self._first = None
            data = bytes(first)
            if data.split(b"\n", 1)[0].rstrip().endswith(b"HTTP/1.0"):
                self._to_h11(data)
                return
        super().data_received(data)
        if self._head_open and not self.transport.is_closing():
            end = data.rfind(b"\n")  # what follows the read's last line end is the open line
            self._open_bytes = len(data) - end - 1 if end >= 0 else self._open_bytes + len(data)
            if self._head_bytes + self._open_bytes > MAX_HEAD_BYTES:
                self._refuse()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge

    def _to_h11(self, data: bytes) -> None:
        """Hand the connection, and what it sent so far, to uvicorn's h11 protocol."""
        self.connections.discard(self)
        h11 = H11Protocol(self.config, self.server_state, self.app_state, self.loop)
        h11.connection_made(self.transport)
        self.transport.set_protocol(h11)
        h11.data_received(data)

    def _refuse(self) -> None:
        """Answer 431 and close; while an earlier request is answered (pipelined, or a
        stream), close only: a 431 there would read as part of that answer."""
        cycle = self.cycle
        if (cycle is None or cycle.response_complete) and not self.pipeline:
            self.transport.write(TOO_LARGE)
        self.transport.close()
