"""A data endpoint's answer, kept with the view it came from: a repeated ``GET`` of the same
target is answered with the same bytes, without the framework.

The data endpoints answer from the snapshot (:mod:`.snapshot`), and a route whose answer is a
function of the view alone renders it once per view (:meth:`~.snapshot.View.json`): the hot
queries of ``/v1/pressure``, ``/v1/assets/{asset}``, ``/v1/funding``, ``/v1/venues``,
``/v1/liquidations``... Each request still went through FastAPI's middleware, routing and
dependency resolution to be handed those bytes: in ``bench market`` (the whole market, the API
under ``wrk``), a sample of the service (py-spy, 3,635 samples) had a quarter of it in the
API's requests, of which 7 % of the process in the responses' socket writes and about 15 %
in the framework around the routes (``solve_dependencies`` alone 6 %); the routes' own work
was under 1 % (docs/performance.md, "Answers kept with their view").

:class:`ViewAnswers` (ASGI middleware, outside the app's own and its routing; FastAPI's error,
telemetry and body-limit layers are outside it) follows each ``GET``:
when its route answered ``200`` with bytes made by :meth:`~.snapshot.View.json` (it says so
through :data:`~.snapshot.ANSWERING`) and sent them whole, the response (status, headers,
body) is kept under the request's target: its raw path and query string, as received.
The same target asked again while that view is still the one
:meth:`~.snapshot.Snapshots.get` would answer from (:meth:`~.snapshot.Snapshots.fresh`) is
answered with the kept response: the bytes the route would have made, since it would have
taken the same view and found the same rendering kept in it. A target whose answer depends
on anything else (a filter read from Redis, a cursor, ``/metrics``, ``/healthz``, the
stream), a problem (4xx, 5xx), another method, or a view past its bound go through the app
as before. Kept answers are dropped as soon as a newer view is current, and bounded per view
(:data:`MAX_TARGETS`, :data:`MAX_BYTES`: a client varying its query string cannot grow them
past that; beyond, targets are answered through the app, as before). A response whose body
comes in parts (the stream) is passed on as it goes, nothing of it held. A kept answer is
sent as copies (a layer outside, such as a compression middleware added later, may change
the messages it is given). With FastAPI's own OpenTelemetry on (an SDK configured), a kept
answer's span has no ``http.route``: routing is what sets it.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .snapshot import ANSWERING, Answering, Snapshots, View

NEVER_KEPT: Final = (b"/v1/stream",)
"""Paths that are never a view's answer, passed straight through: the live stream (its
clients' every event would otherwise go through one more call)."""
MAX_TARGETS: Final = 256
"""Targets kept per view (each a path and query string answered from the view alone)."""
MAX_BYTES: Final = 32 * 1024 * 1024
"""Bodies kept per view (most are the view's own renderings, kept by it anyway)."""


class ViewAnswers:
    """ASGI middleware: repeated ``GET``\\ s answered from the answers kept with the current
    view (see the module doc). ``hits`` and ``kept`` count, for tests and tools."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._view: View | None = None
        self._kept: dict[bytes, tuple[Message, Message]] = {}
        self._bytes = 0
        self.hits = 0
        self.kept = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        get = scope["type"] == "http" and scope["method"] == "GET"
        raw_path: bytes | None = scope.get("raw_path") if get else None  # (optional in ASGI)
        if raw_path is not None and raw_path.startswith(NEVER_KEPT):
            raw_path = None
        snapshots = scope.get("state", {}).get("snapshots") if raw_path is not None else None
        view = snapshots.fresh() if isinstance(snapshots, Snapshots) else None
        if raw_path is None or view is None:  # not followed, or no snapshot within its bound
            await self._through(scope, receive, send)
            return
        if view is not self._view:
            self._view, self._kept, self._bytes = view, {}, 0
        target = raw_path + b"?" + scope.get("query_string", b"")
        kept = self._kept.get(target)
        if kept is not None:
            self.hits += 1
            start, body = kept  # copies: a layer outside may change what it is sent
            await send(_copy(start))
            await send(_copy(body))
            return
        await self._answer(scope, receive, send, view, target)

    async def _through(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, unfollowed. uvicorn starts a connection's next request from within the
        last ``send`` of the one before, so in a copy of its context: not a followed one's."""
        token = ANSWERING.set(None)
        try:
            await self.app(scope, receive, send)
        finally:
            ANSWERING.reset(token)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, view: View, target: bytes
    ) -> None:
        """Through the app; the response kept when it is ``view``'s answer, sent whole."""
        answering = Answering()
        sent: list[Message] | None = []

        async def follow(message: Message) -> None:
            nonlocal sent
            if sent is not None:
                if len(sent) == 2 or message.get("more_body", False):
                    sent = None  # a body in parts (the stream): never kept, nothing held
                else:  # a copy: a layer outside may change what it is sent
                    sent.append(_copy(message))
            await send(message)

        token = ANSWERING.set(answering)
        try:
            await self.app(scope, receive, follow)
        finally:
            ANSWERING.reset(token)
        if answering.view is not view or view is not self._view or sent is None or len(sent) != 2:
            return  # not from this view alone (or a newer view is current already)
        start, body = sent
        data = answering.body
        if data is None:
            return
        size = len(data)
        if (
            start["type"] != "http.response.start"
            or start.get("status") != 200
            or body["type"] != "http.response.body"
            or body.get("more_body", False)
            or target in self._kept  # (two first requests of it at once)
            or len(self._kept) >= MAX_TARGETS
            or self._bytes + size > MAX_BYTES
            or body.get("body") is not data  # the view's bytes, not another answer
        ):
            return
        self._kept[target] = (start, body)
        self._bytes += size
        self.kept += 1


def _copy(message: Message) -> Message:
    """``message`` as a new dict (and a start's headers as a new list)."""
    if "headers" in message:
        return {**message, "headers": list(message["headers"])}
    return {**message}
