"""Connections to backends and the keep-alive pool that holds them between requests.

An UpstreamConnection reads a response's head in one call when it is a simple one
(proxy/_headscan.c) and otherwise parses with httptools, handing every event to the client
connection it currently serves (`exchange`); between requests it sits idle in the pool. A
pooled connection that the backend closes is dropped as soon as the loop sees the close;
bytes arriving on an idle connection also drop it, since no request is waiting for them.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

import httptools

from vhostd.config.model import Backend
from vhostd.proxy.headers import (
    CHUNKED,
    CONNECTION,
    LENGTH,
    PASS,
    RESPONSE_HEADERS,
    UPGRADE,
    connection_named,
)
from vhostd.proxy.outlet import NO_OUTLET, Outlet, WriteBatch

if TYPE_CHECKING:
    from vhostd.proxy.client import ClientConnection

UPSTREAM_IDLE_TIMEOUT: Final = 55.0  # below the 60 s that most backends keep idle connections
# The pool is swept every quarter of it; a connection idle for 3 whole sweeps (41-55 s) is
# closed. Counting sweeps instead of reading the clock keeps give_back() free of a call.
SWEEP_S: Final = UPSTREAM_IDLE_TIMEOUT / 4
SWEEPS_IDLE: Final = 3
PAUSE_UPSTREAM_FULL: Final = 1  # the reason a client's reads pause while this side cannot keep up


def _insecure_tls() -> ssl.SSLContext:
    # Backends are on the same machine or a private network; like nginx's default
    # (proxy_ssl_verify off) we encrypt without verifying their certificates.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def load_scanner(name: str, module: str = "_headscan") -> Any:
    """A function of a C scanner (proxy/_headscan.c, proxy/_chunks.c), or None when it is
    not built (no C compiler): then every head and body goes through httptools."""
    try:
        scanners = importlib.import_module(f"vhostd.proxy.{module}")
    except ImportError:
        return None
    return getattr(scanners, name)


ScannedResponse = tuple[int, int, bool, int, "bytes | None", bytes, bytes, bool]
# (data) -> the parts of the response head it begins with, or None: feed httptools
SCAN_RESPONSE: Final[Callable[[bytes], ScannedResponse | None] | None] = load_scanner(
    "scan_response"
)
# (data, start, state) -> (where to stop, state to go on from): see proxy/_chunks.c
SCAN_CHUNKS: Final[Callable[[bytes, int, int], tuple[int, int]] | None] = load_scanner(
    "scan_chunks", "_chunks"
)
# The state a body's first scan starts from; a scan ends with a state (> 0: more to come) or:
CHUNKS_START: Final = 1
CHUNKS_DONE: Final = 0  # the body ended
CHUNKS_SLOW: Final = -1  # httptools reads the rest
CHUNKS_BAD: Final = -2  # no CRLF after a chunk's data
# A head that only says "chunked": put before the rest of a body that the C chunk scanner
# (proxy/_chunks.c) leaves to httptools, it gives a fresh parser the framing to read it with.
RESUME_CHUNKED: Final = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

RAW_BODY_MIN: Final = 16 * 1024  # smaller bodies go through the parser
RAW_BODY_MIN_DIGITS: Final = len(str(RAW_BODY_MIN))
NOTHING_NAMED: Final[frozenset[bytes]] = frozenset()  # no header made hop-by-hop by Connection


class RawBody(Exception):
    """Raised in on_headers_complete to stop llhttp where a raw-relayed body begins."""


class UpstreamConnection:
    """An asyncio protocol (duck-typed: a native class cannot subclass asyncio.Protocol)."""

    __slots__ = (
        "pool",
        "backend",
        "transport",
        "outlet",
        "parser",
        "exchange",
        "reused",
        "lines",
        "content_length",
        "chunked",
        "upgrade",
        "named",
        "reason",
        "status_line",
        "length_line",
        "message_complete",
        "interim",
        "overflow",
        "keep_alive",
        "got_bytes",
        "idle_since",
        "idle_stack",
        "closed",
        "chunk",
        "head_in_chunk",
        "raw_left",
        "body_from",
        "status",
        "length",
        "chunk_state",
        "chunk_held",
        "resumed",
    )

    def __init__(self, pool: UpstreamPool, backend: Backend) -> None:
        self.pool = pool
        self.backend = backend
        self.transport: Any = None
        self.outlet = NO_OUTLET  # every write to the backend goes through it
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: ClientConnection | None = None
        self.reused = False
        # the response being parsed: headers for the client serialised as they arrive
        self.lines: list[bytes] = []
        self.content_length: bytes | None = None
        self.chunked = False
        self.upgrade: bytes | None = None
        self.named: frozenset[bytes] = NOTHING_NAMED
        self.reason = b""
        # the status and Content-Length lines for the client: made by the head scanner, or
        # from reason and content_length in on_headers_complete
        self.status_line = b""
        self.length_line: bytes | None = None
        self.message_complete = False
        self.interim = False  # a 1xx being parsed: not the final response
        self.overflow = False  # bytes after the final response: never reuse
        self.keep_alive = False
        self.got_bytes = False
        self.idle_since = 0  # the pool's sweep count when it went idle
        self.idle_stack: list[UpstreamConnection] | None = None
        self.closed = False
        # A large Content-Length body is relayed as the bytes that arrive, not through
        # httptools' on_body (which copies every piece): see on_headers_complete.
        self.chunk = b""  # the bytes being parsed, while they are
        self.head_in_chunk = False  # they began a response (no 1xx before it)
        self.raw_left = 0  # body bytes still to relay unparsed
        self.body_from = 0  # where the body starts in `chunk` once the head is read
        self.status = 0  # of a head read by read_head()
        self.length = 0  # its Content-Length (-1: none)
        # A chunked body relayed as it arrives, its framing checked by SCAN_CHUNKS: where
        # the scan stands (0: not relaying one) and the start of a chunk-size line cut off
        # by the end of the last read, kept until the rest of the line arrives.
        self.chunk_state = 0
        self.chunk_held = b""
        self.resumed = False  # httptools reads the rest of a body after RESUME_CHUNKED

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.outlet = Outlet(transport, self.pool.writes)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # unsolicited bytes on an idle connection: unusable
            self.close()
            return
        exchange.on_upstream_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.on_upstream_lost(self, exc)

    def eof_received(self) -> bool | None:
        self.outlet.flush()  # uvloop closes the transport on return: what is held goes first
        if self.exchange is not None:
            return self.exchange.on_upstream_eof(self)
        return None

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_client_reading(PAUSE_UPSTREAM_FULL)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_client_reading(PAUSE_UPSTREAM_FULL)

    def begin(self, exchange: ClientConnection) -> None:
        """Serve `exchange`: the next bytes from the backend start its response."""
        self.exchange = exchange
        self.message_complete = self.overflow = self.got_bytes = self.resumed = False
        self.raw_left = self.chunk_state = 0
        self.chunk_held = b""

    def read_head(self, data: bytes) -> int:
        """Where the body starts in `data` if it begins with a whole, simple response head
        (set `status`, `length` and what httptools' callbacks would have); else -1: feed()."""
        if SCAN_RESPONSE is None or self.got_bytes:
            return -1
        head = SCAN_RESPONSE(data)
        if head is None:
            return -1
        (
            body_from, self.status, self.keep_alive, self.length,
            self.length_line, self.status_line, kept, self.chunked,
        ) = head  # fmt: skip
        self.got_bytes = True
        self.lines = [kept]
        self.upgrade = None
        self.named = NOTHING_NAMED
        return body_from

    def feed(self, data: bytes) -> None:
        """Parse response bytes; raises httptools' errors (HttpParserUpgrade on a 101, a
        callback error caused by RawBody where a large body starts, see on_headers_complete)."""
        self.head_in_chunk = not self.got_bytes  # these bytes begin the response
        self.got_bytes = True
        self.chunk = data
        try:
            self.parser.feed_data(data)
        finally:
            self.chunk = b""  # only ever needed while its head is parsed

    def feed_chunks(self, data: bytes) -> None:
        """Parse the rest of a chunked body with httptools; `data` starts at a chunk-size
        line (where SCAN_CHUNKS stopped, or where the body starts)."""
        self.resumed = True
        self.parser = httptools.HttpResponseParser(self)
        self.feed(RESUME_CHUNKED + data)

    # --- httptools callbacks ------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.message_complete:  # a second response to one request: a broken backend
            self.overflow = True
            return
        # also after a 1xx interim response: the final response starts clean
        self.lines = []
        self.content_length = None
        self.chunked = False
        self.upgrade = None
        self.named = NOTHING_NAMED
        self.reason = b""
        self.status_line = b""
        self.length_line = None

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.overflow:
            return
        rule = RESPONSE_HEADERS.rule(name)
        if rule == PASS:
            lines = self.lines  # pieces, joined once per response
            lines.append(name)
            lines.append(b": ")
            lines.append(value)
            lines.append(b"\r\n")
        elif rule == LENGTH:
            self.content_length = value
        elif rule == CHUNKED:
            self.chunked = True
        elif rule == UPGRADE:
            self.upgrade = value
        elif rule == CONNECTION:
            self.named |= connection_named(value)

    def on_headers_complete(self) -> None:
        if self.overflow or self.resumed:  # (RESUME_CHUNKED: the real head was read before)
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.interim = True  # 100/102/103: the final response follows
            self.head_in_chunk = False  # the final head is not the first in these bytes
            return
        # llhttp forgets this once the message is complete, so read it now
        self.keep_alive = self.parser.should_keep_alive()
        # the lines the head scanner makes for its heads (read_head), made here for these
        self.status_line = b"HTTP/1.1 %d %s\r\n" % (status, self.reason)
        if self.content_length is not None and not self.chunked:
            self.length_line = b"Content-Length: %s\r\n" % self.content_length
        exchange = self.exchange
        if exchange is None or not exchange.on_upstream_head(self, status):
            return
        length = self.content_length
        if length is None or self.chunked or not self.head_in_chunk:
            return
        if len(length) < RAW_BODY_MIN_DIGITS:
            return  # below RAW_BODY_MIN without converting it: most responses are small
        size = int(length)
        end = self.chunk.find(b"\r\n\r\n")
        if size >= RAW_BODY_MIN and end != -1:
            self.raw_left = size
            self.body_from = end + 4
            # this parser stops here with an error: the next response gets a fresh one
            self.parser = httptools.HttpResponseParser(self)
            raise RawBody

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None and not self.overflow:
            self.exchange.on_upstream_body(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
        elif not self.overflow:
            self.message_complete = True

    # --- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.exchange = None
            if self.transport is not None:
                self.outlet.close()
            self.pool.forget(self)

    def abort(self) -> None:
        self.exchange = None
        if self.transport is not None:
            self.outlet.abort()
        self.closed = True
        self.pool.forget(self)


class UpstreamPool:
    """Idle keep-alive connections per backend, most recently used first."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        keep_per_backend: int = 32,
        writes: WriteBatch | None = None,
    ) -> None:
        self.loop = loop
        # the loop's write batch (None: every write goes out at once); the client
        # connections reach it here too, through ctx.pool
        self.writes = writes
        self.keep_per_backend = keep_per_backend
        self.idle: dict[Backend, list[UpstreamConnection]] = {}
        self._tls: ssl.SSLContext | None = None
        # One sweep for the whole pool instead of a timer per idle connection.
        self._sweep: asyncio.TimerHandle | None = None
        self.sweeps = 0

    def take(self, backend: Backend) -> UpstreamConnection | None:
        stack = self.idle.get(backend)
        while stack:
            conn = stack.pop()
            if conn.closed or conn.transport.is_closing():
                continue
            conn.reused = True
            return conn
        return None

    def give_back(self, conn: UpstreamConnection) -> None:
        conn.exchange = None
        if conn.closed:
            return
        stack = conn.idle_stack
        if stack is None:  # looked up once per connection: hashing a Backend is not free
            stack = conn.idle_stack = self.idle.setdefault(conn.backend, [])
        if len(stack) >= self.keep_per_backend:
            conn.close()
            return
        if not conn.message_complete:
            # a HEAD response leaves llhttp expecting a body: start it afresh
            conn.parser = httptools.HttpResponseParser(conn)
        conn.idle_since = self.sweeps
        stack.append(conn)
        if self._sweep is None:
            self._sweep = self.loop.call_later(SWEEP_S, self._close_stale)

    def _close_stale(self) -> None:
        self._sweep = None
        self.sweeps += 1
        cutoff = self.sweeps - SWEEPS_IDLE
        remaining = 0
        for stack in list(self.idle.values()):
            for conn in [c for c in stack if c.idle_since <= cutoff]:
                conn.close()
            remaining += len(stack)
        if remaining:
            self._sweep = self.loop.call_later(SWEEP_S, self._close_stale)

    def close_idle_except(self, live: set[Backend]) -> None:
        """After a route change: idle connections to backends no route uses are closed.

        A container that went away may not have closed them cleanly; reusing one would
        send a request into a dead address and wait for the first-byte timeout.
        """
        for backend, stack in self.idle.items():
            if backend not in live:
                for conn in list(stack):
                    conn.close()

    def forget(self, conn: UpstreamConnection) -> None:
        stack = conn.idle_stack
        if stack and conn in stack:
            stack.remove(conn)

    async def connect(self, backend: Backend, timeout: float) -> UpstreamConnection:
        """Open a new connection; raises OSError or asyncio.TimeoutError."""
        tls: ssl.SSLContext | None = None
        if backend.scheme == "https":
            if self._tls is None:
                self._tls = _insecure_tls()
            tls = self._tls
        _, protocol = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: cast(asyncio.BaseProtocol, UpstreamConnection(self, backend)),
                backend.host,
                backend.port,
                ssl=tls,
                server_hostname=backend.host if tls else None,
            ),
            timeout,
        )
        return cast(UpstreamConnection, protocol)

    def close_all(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for stack in self.idle.values():
            for conn in list(stack):
                conn.close()
        self.idle.clear()
