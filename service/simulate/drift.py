"""A simulator switched into another protocol shape: what a venue does when it changes its API,
played on the wire so that ``deleverage check-venues`` and the passive drift monitor can be
tested end to end (``deleverage simulate --drift bybit:rename_field=markPrice:markPx``).

One switch serves every venue because it acts on the websocket frames, not on a venue's
protocol code: :class:`ProtocolDrift` rewrites what a client sends (a retired channel: the
server sees a name it does not serve, and refuses or ignores it as that venue does) and what
the server sends (a renamed field; a silenced channel, whose frames are not sent). It is
applied per connection by :meth:`.server.VenueServer._serve` through :class:`DriftProtocol`,
a websockets ``ServerProtocol`` whose text frames pass through the drift. A retired port
needs no switch: a URL where nothing listens.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Final

from websockets.frames import Frame, Opcode
from websockets.protocol import Event
from websockets.server import ServerProtocol
from websockets.typing import BytesLike

RETIRED_SUFFIX: Final = "_retired"
KINDS: Final = ("retire_channel", "rename_field", "silence")


@dataclass(frozen=True, slots=True)
class ProtocolDrift:
    """How a simulated venue departs from the protocol the service expects."""

    retire_channel: str | None = None
    """A channel name the venue no longer serves: in the client's requests it becomes
    ``<name>_retired``, a name the server does not know."""
    rename_field: tuple[str, str] | None = None
    """``(old, new)``: every frame the server sends names the field ``new``, not ``old``."""
    silence: str | None = None
    """A regular expression: the server's frames it matches are not sent (a channel that
    went silent while its subscription is still acknowledged)."""

    @classmethod
    def parse(cls, spec: str) -> ProtocolDrift:
        """``retire_channel=<name>``, ``rename_field=<old>:<new>`` or ``silence=<regex>``.
        Raises ``ValueError`` naming what is wrong."""
        kind, sep, value = spec.partition("=")
        if not sep or not value or kind not in KINDS:
            raise ValueError(f"a drift is one of {', '.join(f'{k}=...' for k in KINDS)}")
        if kind == "retire_channel":
            return cls(retire_channel=value)
        if kind == "rename_field":
            old, colon, new = value.partition(":")
            if not colon or not old or not new:
                raise ValueError("rename_field takes <old>:<new>")
            return cls(rename_field=(old, new))
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"silence takes a regular expression: {exc}") from None
        return cls(silence=value)

    def merge(self, other: ProtocolDrift) -> ProtocolDrift:
        """This drift with ``other``'s switches added (``other`` wins where both set one)."""
        return ProtocolDrift(
            other.retire_channel or self.retire_channel,
            other.rename_field or self.rename_field,
            other.silence or self.silence,
        )

    def incoming(self, data: bytes) -> bytes:
        """A client's frame as the drifted venue reads it."""
        if self.retire_channel is None:
            return data
        name = re.escape(self.retire_channel.encode())
        pattern = rb"(?<![\w-])" + name + rb"(?![\w-])"
        return re.sub(pattern, rb"\g<0>" + RETIRED_SUFFIX.encode(), data)

    def outgoing(self, data: bytes) -> bytes | None:
        """A server's frame as the drifted venue sends it; ``None``: not sent."""
        if self.silence is not None and re.search(self.silence.encode(), data):
            return None
        if self.rename_field is not None:
            old, new = self.rename_field
            data = data.replace(f'"{old}":'.encode(), f'"{new}":'.encode())
        return data


class DriftProtocol(ServerProtocol):
    """A server protocol whose text frames pass through :attr:`drift` both ways."""

    drift: ProtocolDrift

    def send_text(self, data: BytesLike, fin: bool = True) -> None:
        out = self.drift.outgoing(bytes(data))
        if out is not None:
            super().send_text(out, fin)

    def events_received(self) -> list[Event]:
        return [self._drifted(e) for e in super().events_received()]

    def _drifted(self, event: Event) -> Event:
        if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
            return dataclasses.replace(event, data=self.drift.incoming(bytes(event.data)))
        return event


def apply(protocol: ServerProtocol, drift: ProtocolDrift) -> None:
    """Make ``protocol`` (a connection's, after its handshake) play ``drift``."""
    protocol.__class__ = DriftProtocol
    assert isinstance(protocol, DriftProtocol)
    protocol.drift = drift
