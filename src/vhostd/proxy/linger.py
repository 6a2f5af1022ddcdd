"""Lingering close: ending a connection without destroying its last answer.

When a connection ends while the client is still sending (the rest of a body that was
refused, bytes behind a request that closes the connection), closing the socket at once
makes the kernel answer the unread bytes with a reset, and a reset throws away whatever of
the answer has not reached the client yet. So, as nginx's `lingering_close` does, the
connection is shut for writing only (the answer then ends with FIN), and what still arrives
is read and dropped until the client closes, `lingering_timeout` passes without a read, or
`lingering_time` has passed in all.
"""

from __future__ import annotations

import fcntl
import struct
import termios
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vhostd.proxy.context import ProxyContext
    from vhostd.proxy.outlet import Outlet


def unread_bytes(transport: Any) -> int:
    """How many received bytes the kernel holds that nobody has read (0 if unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0])
    except OSError:
        return 0


class Lingering:
    """The protocol of a connection in its lingering close; it takes over the transport
    from the ClientConnection that answered last (which has let go of it)."""

    def __init__(self, ctx: ProxyContext, outlet: Outlet) -> None:
        self.ctx = ctx
        transport = self.transport = outlet.transport
        self.loop = ctx.loop
        self.timeout = ctx.settings.lingering_timeout
        self.last_read = self.loop.time()
        self.ends_at = self.last_read + ctx.settings.lingering_time
        ctx.connections.add(self)
        transport.set_protocol(self)
        outlet.write_eof()  # after what is still buffered: the answer ends cleanly
        transport.resume_reading()
        self.timer = self.loop.call_at(self._deadline(), self._tick)

    def _deadline(self) -> float:
        return min(self.ends_at, self.last_read + self.timeout)

    def _tick(self) -> None:
        deadline = self._deadline()
        if self.loop.time() < deadline - 0.001:
            self.timer = self.loop.call_at(deadline, self._tick)
        else:
            self.transport.close()

    # --- asyncio protocol ---------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()  # and the bytes are dropped

    def eof_received(self) -> bool | None:
        return None  # the client is done too: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.ctx.connections.discard(self)
        self.timer.cancel()

    def pause_writing(self) -> None:
        pass  # only the end of an answer is left to write; nothing to hold back

    def resume_writing(self) -> None:
        pass

    def shutdown(self) -> None:
        pass  # a graceful stop lets it end by itself, within lingering_timeout
