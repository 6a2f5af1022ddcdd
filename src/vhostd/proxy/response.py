"""The response half of a client connection, and what both halves share.

ResponseSide holds a connection's state and everything that happens once a request has been
sent: the backend's response relayed to the client (hop-by-hop headers dropped, framing
passed on where it is plain and rewritten where not), a 101 turning both sides into a
tunnel, retries when a backend drops a request before answering, the end of an exchange,
error answers, the connection's single timer and its output buffer. ClientConnection
(client.py) adds the request half on top of it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import httptools

from vhostd.config.model import Backend
from vhostd.proxy.headers import without_named
from vhostd.proxy.linger import Lingering, unread_bytes
from vhostd.proxy.outlet import NO_OUTLET, Outlet
from vhostd.proxy.pages import error_response
from vhostd.proxy.request import Request
from vhostd.proxy.upstream import (
    CHUNKS_BAD,
    CHUNKS_DONE,
    CHUNKS_SLOW,
    CHUNKS_START,
    SCAN_CHUNKS,
    RawBody,
    UpstreamConnection,
)
from vhostd.routing.table import Route

if TYPE_CHECKING:
    from vhostd.proxy.context import ProxyContext

# Reasons for pausing reads from the client; reading resumes when none is left.
# PAUSE_UPSTREAM_FULL (1, from upstream.py): the backend's write buffer is full.
PAUSE_HELD_BODY: Final = 2  # too much body held while no backend is attached yet
PAUSE_QUEUE: Final = 4  # too many pipelined requests waiting

# What the connection's single timer is guarding (see _tick).
IDLE: Final = 0  # between requests: keepalive_timeout
HEAD: Final = 1  # a request head is arriving: client_header_timeout → 408
BUSY: Final = 2  # routing, authenticating, connecting, tunnelling: no deadline of ours
BODY: Final = 5  # a request body is arriving: client_body_timeout between reads → 408
WAIT: Final = 3  # request sent, no response byte yet: first_byte timeout → 504
STREAM: Final = 4  # response arriving: between_bytes timeout → cut

LARGE_PIECE: Final = 32 * 1024  # written beside the pieces before it rather than joined
LAST_CHUNK: Final = b"0\r\n\r\n"
# SO_LINGER on, 0 s: close() sends a reset instead of the end of the stream (see _cut_client)
RESET_ON_CLOSE: Final = struct.pack("ii", 1, 0)


class ResponseSide:
    """State of one client connection, its response path, timer and output."""

    def __init__(self, ctx: ProxyContext) -> None:
        # shared state
        self.ctx = ctx
        self.loop = ctx.loop
        self.settings = ctx.settings
        # per connection
        self.transport: Any = None
        self.outlet = NO_OUTLET  # every write to the client goes through it
        self.client_ip = b""
        self.trusted = False
        self.parser = httptools.HttpRequestParser(self)
        self.parsing: Request | None = None
        # bytes still to come of a body whose head the scanner read: they are passed on
        # as they arrive, without httptools (see ClientConnection._body_arrived)
        self.body_left = 0
        # bytes read after a request that ends the connection, and dropped: a client that
        # sent them may send more, so the close lingers (see _close_answered)
        self.dropped_input = False
        self.queue: deque[Request] = deque()
        self.paused = 0
        self.writing_paused = False
        self.write_paused_at = 0.0
        # One timer per connection, re-armed only when a deadline moves earlier: on a
        # keep-alive connection with default timeouts it is never touched per request.
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.phase = HEAD
        self.deadline = 0.0
        self.closed = False
        self.tunnel: UpstreamConnection | None = None
        self.tunnel_ends = 0  # directions of the tunnel that have ended; at 2 both sides close
        self.tunnel_hold: list[bytes] = []
        self.upgrading = False
        # the gate and Authorization value that last passed on this connection (see _start)
        self.passed_gate: object | None = None
        self.passed_authorization: bytes | None = None
        self.out: list[bytes | memoryview] = []
        self.read_size = 0
        # While httptools reads a client read, the scanner hands on a head with its body, or
        # a request is handed to a backend connection, bytes for the backend wait in
        # `up_out` and leave in one write at the end: a head and the body read with it are
        # one packet to the backend, not two or three (see ClientConnection._send_up).
        self.gathering = False
        self.up_out: list[bytes] = []
        self.up_out_conn: UpstreamConnection | None = None
        # per request (the active exchange)
        self.request: Request | None = None
        self.route: Route | None = None
        self.backend: Backend | None = None
        self.upstream: UpstreamConnection | None = None
        self.failed_backends: set[Backend] = set()
        self.stale_retried = False
        self.last_upstream_read = 0.0
        self.last_client_read = 0.0
        self.response_started = False
        self.response_status = 0
        self.chunk_out = False
        self.until_close = False
        self.no_body = False
        self.close_after = False
        self.response_bytes = 0
        self.started_at = 0.0

    # --- implemented by the request half (ClientConnection) ----------------------------
    def _start(self, request: Request) -> None:
        raise NotImplementedError

    def _forward(self) -> None:
        raise NotImplementedError

    def _connect(self, backend: Backend) -> None:
        raise NotImplementedError

    # --- flow control -------------------------------------------------------------------
    def pause_client_reading(self, reason: int) -> None:
        if not self.paused and not self.closed:
            self.transport.pause_reading()
        self.paused |= reason

    def resume_client_reading(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and not self.closed:
                self.transport.resume_reading()

    # --- the response, from UpstreamConnection -------------------------------------------
    def on_upstream_data(self, conn: UpstreamConnection, data: bytes) -> None:
        if self.tunnel is not None:
            self.outlet.write(data)
            return
        try:
            if conn.raw_left:
                self._relay_raw(conn, data, 0)
            elif conn.chunk_state:
                self._relay_chunks(conn, data, 0)
            elif (body_from := conn.read_head(data)) >= 0:
                if not self.on_upstream_head(conn, conn.status):
                    # no body: this marks the response complete (a byte after it: overflow)
                    self._relay_raw(conn, data, body_from)
                elif conn.chunked:
                    self._start_chunks(conn, data, body_from)
                else:
                    conn.raw_left = conn.length
                    self._relay_raw(conn, data, body_from)
            else:
                conn.feed(data)
        except httptools.HttpParserUpgrade as exc:
            self._open_tunnel(conn, data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            if conn.message_complete or (self.no_body and self.response_started):
                conn.overflow = True  # bytes after a whole response: it stands, not the connection
            elif isinstance(exc.__context__, RawBody):
                self._relay_raw(conn, data, conn.body_from)
            else:
                self._upstream_failed(conn, 502, "The backend sent an invalid response.")
                return
        if conn.message_complete or (self.no_body and self.response_started):
            self._response_complete(conn)
        elif self.route is not None:  # more to come: between-bytes timeout from now
            self.last_upstream_read = self.loop.time()
            if self.phase != STREAM:
                self._enter(STREAM, self.route.site.timeouts.between_bytes)
        if self.out:
            self._flush()

    def on_upstream_head(self, conn: UpstreamConnection, status: int) -> bool:
        """Queue the response head for the client; whether a body is relayed to it."""
        request = self.request
        assert request is not None
        upgrading = status == 101
        if upgrading and request.upgrade is None:
            raise httptools.HttpParserError("101 without an upgrade request")
        self.no_body = request.method == b"HEAD" or status == 204 or status == 304 or upgrading
        close = not request.keep_alive or self.ctx.shutting_down or not request.complete
        out = self.out  # the head, joined with the body by _flush: one write
        out.append(conn.status_line)
        out += without_named(conn.lines, conn.named) if conn.named else conn.lines
        if upgrading:
            out.append(b"Upgrade: %s\r\nConnection: upgrade\r\n" % (conn.upgrade or b""))
        else:
            if conn.length_line is not None:
                out.append(conn.length_line)
            elif not self.no_body:
                self.until_close = not conn.chunked
                if request.version == b"1.1":
                    self.chunk_out = True
                    out.append(b"Transfer-Encoding: chunked\r\n")
                else:
                    close = True
            if close:
                out.append(b"Connection: close\r\n")
            elif request.version == b"1.0":
                out.append(b"Connection: keep-alive\r\n")
        out.append(b"\r\n")
        self.close_after = close
        self.response_status = status
        self.response_started = True
        return not self.no_body

    def _relay_raw(self, conn: UpstreamConnection, data: bytes, start: int) -> None:
        """Pass on the body bytes of `data` from `start`, as they are (large pieces uncopied)."""
        take = min(len(data) - start, conn.raw_left)
        if take > 0:
            self._pass_on(data, start, start + take)
            conn.raw_left -= take
        if conn.raw_left == 0:
            conn.message_complete = True
            if start + take < len(data):
                conn.overflow = True  # bytes after the response: the connection is unusable

    def _pass_on(self, data: bytes, start: int, stop: int) -> None:
        """Queue data[start:stop] for the client as it is."""
        if start == 0 and stop == len(data):
            self.out.append(data)
        elif stop - start < LARGE_PIECE:  # copied by the join in _flush anyway
            self.out.append(data[start:stop])
        else:  # written beside the head without a copy (see _flush)
            self.out.append(memoryview(data)[start:stop])
        self.response_bytes += stop - start

    def _start_chunks(self, conn: UpstreamConnection, data: bytes, start: int) -> None:
        """A chunked body from `start`: an HTTP/1.1 client gets the backend's own chunks,
        their framing checked as they pass; an HTTP/1.0 one gets the body httptools
        decodes, until the connection closes."""
        if self.chunk_out and SCAN_CHUNKS is not None:
            self.chunk_out = False  # (the framing is the backend's: see _relay_chunks)
            conn.chunk_state = CHUNKS_START
            self._relay_chunks(conn, data, start)
        else:
            conn.feed_chunks(data[start:])

    def _relay_chunks(self, conn: UpstreamConnection, data: bytes, start: int) -> None:
        """Pass on the chunked body in `data` from `start` as it is, as far as its framing
        is plain; the rest of a body that is not, httptools decodes and we frame again."""
        assert SCAN_CHUNKS is not None
        if conn.chunk_held:  # a chunk-size line begun in the last read
            data = conn.chunk_held + data[start:]
            start = 0
            conn.chunk_held = b""
        stop, state = SCAN_CHUNKS(data, start, conn.chunk_state)
        if stop > start:
            self._pass_on(data, start, stop)
        conn.chunk_state = max(state, 0)
        if state > 0:
            if stop < len(data):
                conn.chunk_held = data[stop:]
        elif state == CHUNKS_DONE:
            conn.message_complete = True
            if stop < len(data):
                conn.overflow = True  # bytes after the response: the connection is unusable
        elif state == CHUNKS_SLOW:  # an extension, a trailer...: httptools reads on
            self.chunk_out = True
            conn.feed_chunks(data[stop:])
        else:
            assert state == CHUNKS_BAD
            raise httptools.HttpParserError("no CRLF after a chunk's data")

    def on_upstream_body(self, body: bytes) -> None:
        if self.no_body:
            return
        if self.chunk_out:
            size = b"%x\r\n" % len(body)
            self.out.append(size)
            self.out.append(body)
            self.out.append(b"\r\n")
            # the bytes sent, framing included (nginx's $body_bytes_sent), as for the
            # backend's own chunks passed on as they are (_relay_chunks)
            self.response_bytes += len(size) + len(body) + 2
        else:
            self.response_bytes += len(body)
            self.out.append(body)

    def on_upstream_eof(self, conn: UpstreamConnection) -> bool | None:
        if self.tunnel is conn and self.transport.can_write_eof():
            return self._tunnel_direction_ended(self.outlet)
        return None

    def _tunnel_direction_ended(self, toward: Outlet) -> bool | None:
        """One side of the tunnel sent its EOF: the half-close travels on `toward` the
        other; once both directions have ended, both sides close. The result is for
        eof_received (True: keep the side that ended open for the other direction)."""
        toward.write_eof()
        self.tunnel_ends += 1
        if self.tunnel_ends < 2:
            return True
        self.tunnel = None
        self.closed = True
        toward.close()
        return None  # (closes the side that ended last)

    def on_upstream_lost(self, conn: UpstreamConnection, exc: Exception | None) -> None:
        if self.closed:
            return
        if self.tunnel is conn:
            self.tunnel = None
            self.outlet.close()
            return
        if conn is not self.upstream:
            return
        request = self.request
        if not conn.got_bytes:
            if request is not None and request.retryable and self.backend is not None:
                self.phase = BUSY
                self.upstream = None
                if conn.reused and not self.stale_retried:
                    # a pooled connection the backend had closed: retry once on a fresh one
                    self.stale_retried = True
                    self._connect(self.backend)
                    return
                # a replica going away: idempotent requests move to another backend
                self.failed_backends.add(self.backend)
                if self.route is not None and self.route.pick(self.failed_backends):
                    self._forward()
                    if self.out:
                        self._flush()
                    return
            self._upstream_failed(conn, 502, "The backend closed the connection.")
        elif not self.response_started:
            self._upstream_failed(conn, 502, "The backend closed the connection mid-response.")
        elif self.until_close and exc is None:
            self.close_after = self.close_after or not self.chunk_out
            self._response_complete(conn)
        else:  # truncated body: make sure the client sees an incomplete message
            self._cut_client()
        if self.out:
            self._flush()

    def _response_complete(self, conn: UpstreamConnection) -> None:
        request = self.request
        assert request is not None
        if self.chunk_out:
            self.out.append(LAST_CHUNK)
            self.response_bytes += len(LAST_CHUNK)
        self._flush()
        self.upstream = None
        reusable = (
            conn.message_complete or self.no_body
        ) and conn.keep_alive and request.complete and not self.until_close
        reusable = reusable and not conn.overflow and request.upgrade is None
        if reusable and not conn.closed:
            if self.writing_paused:
                conn.transport.resume_reading()
            self.ctx.pool.give_back(conn)
        else:
            conn.close()
        self._end_exchange()

    def _open_tunnel(self, conn: UpstreamConnection, rest: bytes) -> None:
        """101 Switching Protocols: from now on both sides are a byte tunnel."""
        self.phase = BUSY  # a tunnel lives until either side closes
        self.tunnel = conn
        self.upstream = None
        self.upgrading = False
        self._flush()
        if rest:
            self.outlet.write(rest)
        held, self.tunnel_hold = self.tunnel_hold, []
        for chunk in held:
            conn.outlet.write(chunk)
        if self.ctx.access_log is not None:
            self._log()
        self.resume_client_reading(PAUSE_HELD_BODY)

    # --- ending an exchange -----------------------------------------------------------------
    def _end_exchange(self) -> None:
        if self.ctx.access_log is not None:
            self._log()
        if self.close_after or self.upgrading:
            self._close_answered()
            return
        self.request = self.route = self.backend = None
        self.failed_backends.clear()
        self.stale_retried = False
        self.response_started = self.chunk_out = self.until_close = self.no_body = False
        self.response_bytes = 0
        # a body held while this exchange ran may have paused reading; if the next request
        # still holds too much, on_body pauses again (without this, an answer made here,
        # such as a 503, left the connection reading nothing)
        self.resume_client_reading(PAUSE_HELD_BODY)
        if self.queue:
            self.resume_client_reading(PAUSE_QUEUE)
            self._start(self.queue.popleft())
        elif self.ctx.shutting_down:
            self._close_answered()
        elif self.parsing is None:
            self._enter(IDLE, self.settings.keepalive_timeout)
        else:
            self._enter(HEAD, self.settings.client_header_timeout)

    def _close_answered(self) -> None:
        """Close after the last answer: at once, or lingering if the client may still be
        sending (a close with unread bytes would reset the connection, see linger.py)."""
        if self.closed:  # closed already, or lingering: the transport is not ours to close
            return
        self.closed = True
        request = self.request
        sending = (
            self.paused  # (bytes may wait in the socket)
            or (self.parsing is not None and self.parsing is not request)  # a next head
            or self.queue
            or self.dropped_input
            or self.tunnel_hold  # sent behind an Upgrade request that was refused
            or (request is not None and request.has_body and not request.complete)
        )
        if self.transport.is_closing() or not (sending or unread_bytes(self.transport)):
            self.outlet.close()
            return
        self.release()
        Lingering(self.ctx, self.outlet)

    def release(self) -> None:
        """Let go of the connection: its timer, its backend connection, its place in ctx."""
        self.closed = True
        self.ctx.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        upstream = self.tunnel or self.upstream
        self.tunnel = self.upstream = None
        if upstream is not None:
            upstream.abort() if not upstream.message_complete else upstream.close()

    def _respond_error(
        self,
        status: int,
        detail: str,
        *,
        close: bool = False,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        request = self.request
        head_only = request is not None and request.method == b"HEAD"
        if request is not None:
            # an unread body cannot be skipped safely: close instead of reusing
            close = close or (request.has_body and not request.complete) or not request.keep_alive
        close = close or self.ctx.shutting_down
        self.out.append(
            error_response(
                status, detail, keep_alive=not close, head_only=head_only, extra_headers=extra
            )
        )
        self.response_status = status
        self.close_after = close
        self._flush()
        self._end_exchange()

    def _upstream_failed(self, conn: UpstreamConnection, status: int, detail: str) -> None:
        self.phase = BUSY
        self.upstream = None
        conn.abort()
        if self.response_started:
            self._cut_client()
        else:
            self._respond_error(status, detail, close=True)

    def _cut_client(self) -> None:
        """End a response the backend broke off: with a reset, not the end of the stream,
        which would make a body that ends at the close (an HTTP/1.0 client's) look whole."""
        self._flush()
        self.closed = True
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
            except OSError:
                pass  # already gone
        self.outlet.abort()

    # --- the connection timer ---------------------------------------------------------
    def _enter(self, phase: int, timeout: float) -> None:
        """Switch phase with a deadline `timeout` from now; re-arm only if it is earlier."""
        now = self.loop.time()
        self.phase = phase
        self.deadline = now + timeout
        # An idle connection wakes at least every header timeout, so that the HEAD phase
        # that follows never needs an earlier timer than the one already armed.
        fire = min(self.deadline, now + self.settings.client_header_timeout)
        if self.timer is None or fire < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(fire, self._tick)
            self.timer_at = fire

    def _tick(self) -> None:
        self.timer = None
        if self.closed:
            return
        phase = self.phase
        if phase == BUSY:
            return  # the next _enter arms the timer again
        now = self.loop.time()
        deadline = self.deadline
        if phase == STREAM and self.writing_paused:
            deadline = self.write_paused_at + self.settings.send_timeout  # client stopped reading
        elif phase == STREAM and self.route is not None:
            deadline = self.last_upstream_read + self.route.site.timeouts.between_bytes
        elif phase == BODY:
            deadline = self.last_client_read + self.settings.client_body_timeout
        if now < deadline - 0.001:
            self.timer_at = min(deadline, now + self.settings.client_header_timeout)
            self.timer = self.loop.call_at(self.timer_at, self._tick)
            return
        if phase == IDLE:
            self.closed = True
            self.outlet.close()
        elif phase == HEAD:
            if self.parsing is not None:  # a connection that never sent a byte just closes
                self.parsing = None
                self.out.append(error_response(408, "The request took too long to arrive."))
                self._flush()
            self.closed = True
            self.outlet.close()
        elif phase == BODY:
            if self.upstream is not None:
                self.upstream.abort()
                self.upstream = None
            if self.response_started:
                self._cut_client()
            else:
                self._respond_error(408, "The request body stopped arriving.", close=True)
        elif self.upstream is not None:  # WAIT or STREAM
            self._upstream_failed(self.upstream, 504, "The backend did not answer in time.")

    # --- output ------------------------------------------------------------------------
    def _flush(self) -> None:
        out = self.out
        if not out:
            return
        if not self.closed:
            if len(out) == 1:
                self.outlet.write(out[0])
            elif len(out[-1]) >= LARGE_PIECE:
                # a head followed by a large body chunk: one writev, without copying the body
                self.outlet.write_two(b"".join(out[:-1]), out[-1])
            else:
                self.outlet.write(b"".join(out))
        out.clear()

    def _log(self) -> None:
        access_log = self.ctx.access_log
        if access_log is None or self.request is None:
            return
        request = self.request
        access_log.record(
            self.client_ip,
            request,
            self.response_status,
            self.response_bytes,
            self.loop.time() - self.started_at,
            self.route.site.name if self.route else "",
        )
