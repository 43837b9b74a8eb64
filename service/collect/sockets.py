"""The collectors' sockets: a bounded kernel receive buffer, so picows' read buffer stays
bounded too.

picows reads into one buffer per connection, hands the transport all of its free space,
and doubles the buffer after any read that fills it past 90 %; it never shrinks it. The
kernel's receive buffer is autotuned up to ``net.ipv4.tcp_rmem``'s maximum (32 MB on the
bench machine): when the event loop falls behind, the kernel buffers what the venue sends
meanwhile, the next read takes all of it, and picows' buffer doubles to hold it. ``bench
market`` saw 30 buffers grow to 8 MB, 70 MB of the service's RSS that stayed. Every frame
of such a read is also parsed at once into the connection's receive queue (its
``max_queue`` pauses reading only after the read): that many frames in flight, too.

:func:`socket_factory` opens the connection's socket with ``SO_RCVBUF`` set to
:data:`RCVBUF_BYTES` before it connects (what the kernel then keeps is fixed: Linux
doubles the value for its bookkeeping and turns autotuning off for the socket), so a read
takes at most that, and picows' buffer grows to about twice that at most, or to what the
largest frame needs (picows grows it for a frame as before). Nothing is lost: what is not
read stays with the sender, and TCP's window holds the sender back, as it did when the
autotuned buffer was full; the collector already relies on that when the store is behind
(it stops reading, :meth:`~service.store.writer.EventSink.wait_for_room`). A smaller buffer
holds less of a stall on our side before the venue's side has to; at the venues' rates
(hundreds of KB a second at most on one connection) it still holds seconds of it, and the
window does not limit a connection's throughput below megabytes a second at a 100 ms
round trip.

picows takes the factory through its ``socket_factory`` argument (``ws_connect``'s, passed
through by its ``websockets`` API); with a proxy configured, it is the proxy's socket.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

from picows import WSParsedURL

RCVBUF_BYTES: Final = 256 * 1024
"""The kernel receive buffer asked for (Linux keeps twice this, half of it or more for
data): one read takes at most about this much, and picows' buffer stays at about 1 MB at
most per connection, against 8 MB seen with the autotuned buffer."""


async def socket_factory(url: WSParsedURL) -> socket.socket:
    """A socket connected to ``url``'s host and port, with ``SO_RCVBUF`` set to
    :data:`RCVBUF_BYTES` before it connected. Tries the host's addresses in the resolver's
    order (as ``loop.create_connection`` does, without its concurrent attempts); raises the
    last address's ``OSError`` if none connects."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(url.host, url.port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {url.host!r}")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
        else:
            return sock
    raise error
