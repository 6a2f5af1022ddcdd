"""A connection's way out: bytes go straight into its socket while its transport holds none,
and, under load, a loop turn's writes go out together.

uvloop's transport.write() costs several times the user-space half of the write(2) it makes
(proxy/_sendnow.c says where). While the transport has nothing queued and is not closing,
bytes can go to the kernel directly without overtaking any; what the kernel does not take
goes through the transport, which keeps the order, applies back-pressure (pause_writing) and
reports errors. Every write to a connection goes through its Outlet, so the Outlet knows
when the transport may hold bytes.

With a WriteBatch, the first write of a loop turn goes out at once and the turn's later
small ones wait until its callbacks have run, then go out one after the other. wrk, the
origin or a browser on another core is then woken once for several answers rather than for
each: on a virtual machine each wake-up of a sleeping core is an interrupt the hypervisor
handles (bench/README.md, "Session 10"). Whatever ends a connection (close, abort,
write_eof) goes through its Outlet too, which writes what it holds first.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# Larger writes never wait for the batch: held until the turn ends, the reads they came
# from pile up in the heap, which malloc then grows and trims (brk) every turn.
HOLD_BELOW: Final = 32 * 1024


def direct_fd(transport: Any) -> int:
    """The socket to write `transport`'s bytes into directly, or -1: always through it."""
    kind = type(transport)
    if WRITE_NOW is None or kind.__module__ != "uvloop.loop":
        return -1
    if kind.__name__ not in _DIRECT_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


class WriteBatch:
    """A loop turn's writes: the first goes out at once, the rest wait until every callback
    of the turn has run (call_soon: before the loop next waits for events), then go out
    together. A lone request is not delayed; under load the answers of a turn arrive
    together."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open = False  # a write went out this turn: the ones after it wait
        self.outlets: list[Outlet] = []  # holding bytes, in the order they began to

    def first_write(self) -> bool:
        """Whether a write now is the turn's first (it goes out at once); opens the turn."""
        if self.open:
            return False
        self.loop.call_soon(self.write_out)
        self.open = True  # (not if call_soon raised: a closed loop)
        return True

    def write_out(self) -> None:
        self.open = False
        outlets = self.outlets
        self.outlets = []
        for outlet in outlets:
            try:
                outlet.flush()
            except Exception as exc:  # one connection's error must not keep the others' bytes
                self.loop.call_exception_handler(
                    {"message": "writing to a connection failed", "exception": exc}
                )
                with contextlib.suppress(Exception):
                    outlet.transport.abort()  # as uvloop does when a protocol callback raises


class Outlet:
    """The writes to one connection: bytes, or memoryviews of bytes (their length counts
    bytes, as the kernel's does). Without a batch every write goes out at once."""

    def __init__(self, transport: Any, batch: WriteBatch | None = None) -> None:
        self.transport = transport
        self.fd = direct_fd(transport)  # -1: every write through the transport
        # the transport was given bytes since it was last seen empty: it may still hold some
        self.queued = False
        self.ended = False  # write_eof(): nothing more may be written
        # only direct writes wait: through the transport (TLS) every write stays as it was
        self.batch = batch if self.fd >= 0 else None
        self.held: list[bytes | memoryview] = []  # for the batch, in order

    def _waits(self, size: int) -> bool:
        """Whether `size` bytes wait for the batch (False: they go now, after what is held)."""
        batch = self.batch
        if batch is None or self.ended:
            return False
        if size >= HOLD_BELOW:  # held, large reads pile up in the heap until the turn ends
            self.flush()
            return False
        if self.held:
            return True
        if batch.first_write():
            return False
        batch.outlets.append(self)
        return True

    def flush(self) -> None:
        """Write what the outlet holds."""
        held = self.held
        if not held:
            return
        if self.transport.is_closing():
            # closed under us: by uvloop after the peer's EOF, still sending what it holds
            # (these go behind it), or gone with the connection (the transport drops them)
            pieces = list(held)
            held.clear()
            try:
                self.transport.writelines(pieces)
            except RuntimeError:  # the transport is closed already: nobody to read them
                pass
            return
        if len(held) == 1:
            data = held[0]
            held.clear()
            self._send(data)
        elif len(held) == 2:
            head, body = held
            held.clear()
            self._send_two(head, body)
        else:  # all small (HOLD_BELOW): one copy is cheaper than the transport's writev
            data = b"".join(held)
            held.clear()
            self._send(data)

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
        if self._waits(len(data)):
            self.held.append(data)
        else:
            self._send(data)

    def write_two(self, head: bytes, body: bytes | memoryview) -> None:
        """`head` then `body` (large: one writev, never copied into one piece)."""
        if self._waits(len(head) + len(body)):
            self.held.append(head)
            self.held.append(body)
        else:
            self._send_two(head, body)

    def writelines(self, pieces: list[bytes]) -> None:
        """Pieces of a large body: one writev through the transport, none copied."""
        self.flush()
        self.queued = True
        self.transport.writelines(pieces)

    def write_eof(self) -> None:
        """The half-close, after what the transport still holds. The transport shuts the
        socket a loop turn later and is_closing() stays False, so the Outlet stops writing
        directly itself: a later write() raises, as the transport's does."""
        self.flush()
        self.ended = True
        self.transport.write_eof()

    def close(self) -> None:
        """Close after what is held and what the transport still holds."""
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        """Reset now: what is held goes into the socket as it would have (the peer may read
        it before the reset), what the transport holds is dropped."""
        self.flush()
        self.transport.abort()

    def _send(self, data: bytes | memoryview) -> None:
        if self._direct():
            sent: int = WRITE_NOW(self.fd, data)
            if sent == len(data):
                return
            if sent > 0:
                data = memoryview(data)[sent:]
        self.queued = True
        self.transport.write(data)

    def _send_two(self, head: bytes | memoryview, body: bytes | memoryview) -> None:
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


NO_OUTLET: Final = Outlet(None)  # a connection's until it is made
