"""A connection's way out: bytes go straight into its socket while its transport holds none.

uvloop's transport.write() costs several times the user-space half of the write(2) it makes
(proxy/_sendnow.c says where). While the transport has nothing queued and is not closing,
bytes can go to the kernel directly without overtaking any; what the kernel does not take
goes through the transport, which keeps the order, applies back-pressure (pause_writing) and
reports errors. Every write to a connection goes through its Outlet, so the Outlet knows
when the transport may hold bytes.
"""

from __future__ import annotations

import importlib
from typing import Any, Final


def _load_write_now() -> Any:
    try:
        return importlib.import_module("vhostd.proxy._sendnow").write_now
    except ImportError:  # not built (no C compiler): every write goes through the transport
        return None


# (fd, data[, more]) -> bytes the kernel took, 0 (would block) or -1 (an error)
WRITE_NOW: Final = _load_write_now()
# Transports whose socket carries the bytes as they are (not TLS) and whose buffer
# get_write_buffer_size() reports whole: uvloop's TCP and Unix stream transports.
_DIRECT_TRANSPORTS: Final = frozenset({"TCPTransport", "UnixTransport"})


def direct_fd(transport: Any) -> int:
    """The socket to write `transport`'s bytes into directly, or -1: always through it."""
    kind = type(transport)
    if WRITE_NOW is None or kind.__module__ != "uvloop.loop":
        return -1
    if kind.__name__ not in _DIRECT_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


class Outlet:
    """The writes to one connection: bytes, or memoryviews of bytes (their length counts
    bytes, as the kernel's does)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.fd = direct_fd(transport)  # -1: every write through the transport
        # the transport was given bytes since it was last seen empty: it may still hold some
        self.queued = False
        self.ended = False  # write_eof(): nothing more may be written

    def _direct(self) -> bool:
        """Whether the next bytes may go straight into the socket."""
        if self.fd < 0 or self.ended:
            return False
        transport = self.transport
        # not closing: the socket is still open (uvloop closes it after connection_lost)
        # and nothing is meant to be written any more
        if transport.is_closing():
            return False
        if self.queued:
            if transport.get_write_buffer_size():
                return False
            self.queued = False
        return True

    def write(self, data: bytes | memoryview) -> None:
        if self._direct():
            sent: int = WRITE_NOW(self.fd, data)
            if sent == len(data):
                return
            if sent > 0:
                data = memoryview(data)[sent:]
        self.queued = True
        self.transport.write(data)

    def write_two(self, head: bytes, body: bytes | memoryview) -> None:
        """`head` then `body` (large: one writev, never copied into one piece)."""
        if self._direct():
            sent: int = WRITE_NOW(self.fd, head, body)
            if sent == len(head) + len(body):
                return
            if sent >= len(head):
                self.queued = True
                self.transport.write(memoryview(body)[sent - len(head) :])
                return
            if sent > 0:
                head = head[sent:]
        self.queued = True
        self.transport.writelines((head, body))

    def write_eof(self) -> None:
        """The half-close, after what the transport still holds. The transport shuts the
        socket a loop turn later and is_closing() stays False, so the Outlet stops writing
        directly itself: a later write() raises, as the transport's does."""
        self.ended = True
        self.transport.write_eof()

    def writelines(self, pieces: list[bytes]) -> None:
        """Pieces of a large body: one writev through the transport, none copied."""
        self.queued = True
        self.transport.writelines(pieces)


NO_OUTLET: Final = Outlet(None)  # a connection's until it is made
