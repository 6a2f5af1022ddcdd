"""The request half of a client connection: parse requests, route them, send them on.

One asyncio protocol per connection, fed by httptools callbacks. Requests are answered in
order; pipelined requests wait in `queue` with their bodies held (bounded: reading pauses
while too much is held). Reading from one side pauses while the other side's write buffer
is full, in both directions. Output produced while handling one read is written at once.
The response half, the timer and the shared state are ResponseSide's (response.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import httptools

from vhostd.config.model import Backend
from vhostd.proxy.headers import forwarding_tail, trusted_forwarding, without_named
from vhostd.proxy.outlet import Outlet
from vhostd.proxy.request import Rejection, Request
from vhostd.proxy.response import (
    BODY,
    BUSY,
    HEAD,
    IDLE,
    LARGE_PIECE,
    PAUSE_HELD_BODY,
    PAUSE_QUEUE,
    STREAM,
    WAIT,
    ResponseSide,
)
from vhostd.proxy.upstream import UpstreamConnection, load_scanner
from vhostd.routing.table import Route

HOLD_LIMIT: Final = 256 * 1024
QUEUE_LIMIT: Final = 16
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"

ScannedRequest = tuple[
    int, bytes, bytes, bytes, bool, "bytes | None", "bytes | None", bytes, int, int
]
# (data, start, max_headers, max_head_size, trusted) -> the head's parts, or None: feed httptools
SCAN_REQUEST: Final[Callable[[bytes, int, int, int, bool], ScannedRequest | None] | None] = (
    load_scanner("scan_request")
)

class ClientConnection(ResponseSide):
    """An asyncio protocol (duck-typed: a native class cannot subclass asyncio.Protocol)."""

    # --- connection lifecycle -----------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.outlet = Outlet(transport, self.ctx.pool.writes)
        peer = transport.get_extra_info("peername")
        ip = peer[0] if peer else "unix"
        self.client_ip = ip.encode()
        self.trusted = ip in self.ctx.trusted_proxies
        self.forward_tail = forwarding_tail(self.client_ip, self.ctx.listen_port)
        self.ctx.connections.add(self)
        self._enter(HEAD, self.settings.client_header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.release()

    def eof_received(self) -> bool | None:
        self.outlet.flush()  # uvloop closes the transport on return: what is held goes first
        tunnel = self.tunnel
        if tunnel is not None and tunnel.transport.can_write_eof():
            return self._tunnel_direction_ended(tunnel.outlet)
        return None

    def pause_writing(self) -> None:
        self.writing_paused = True
        self.write_paused_at = self.loop.time()
        upstream = self.tunnel or self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.phase == STREAM:  # our own pause is not the backend stalling
            self.last_upstream_read = self.loop.time()
        upstream = self.tunnel or self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.resume_reading()
        if self.ctx.shutting_down and self.request is None and not self.queue:
            self._close_answered()

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.outlet.write(data)
            return
        if self.upgrading:  # bytes after an Upgrade request, before the backend agreed
            self.tunnel_hold.append(data)
            self.pause_client_reading(PAUSE_HELD_BODY)
            return
        if self.phase == BODY:
            self.last_client_read = self.loop.time()
        # the rest of a body whose head the scanner read, then the heads it reads whole;
        # what is left (a head cut short, or one the scanner leaves) goes to httptools
        taken = self._body_arrived(data) if self.body_left else 0
        if taken < len(data) and self.parsing is None and SCAN_REQUEST is not None:
            taken = self._take_simple_heads(data, taken)
        if taken:
            if taken == len(data):
                if self.out:
                    self._flush()
                return
            data = data[taken:]
        in_head = self.parsing  # a head started in an earlier read: count its raw bytes
        self.read_size = len(data)
        self.gathering = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            if self.tunnel is not None:
                if rest:
                    self.tunnel.outlet.write(rest)
            else:
                self.upgrading = True
                if rest:
                    self.tunnel_hold.append(rest)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Rejection):
                self._reject(cause)
            else:
                raise
        except httptools.HttpParserError as exc:
            self._reject(Rejection(400, f"Malformed request: {exc}."))
        else:
            parsing = self.parsing
            if parsing is not None and parsing.head_size >= 0:  # a head still incomplete
                if parsing is in_head:
                    parsing.head_size += len(data)
                    if parsing.head_size > self.settings.max_head_size:
                        self._reject(Rejection(431, "Request head too large."))
                elif self.phase == HEAD:  # it began in this read: now its deadline matters
                    self._enter(HEAD, self.settings.client_header_timeout)
        finally:
            self._stop_gathering()
        if self.out:
            self._flush()

    def _take_simple_heads(self, data: bytes, start: int) -> int:
        """Take the requests in `data` from `start` that the C scanner reads (common
        methods, no body or a Content-Length body, see _headscan.c), in the same steps as
        httptools' callbacks; return where httptools takes over (len(data): nothing left,
        or nothing more to read, or a body goes on in later reads)."""
        assert SCAN_REQUEST is not None
        settings = self.settings
        while start < len(data) and not self.closed:
            head = SCAN_REQUEST(
                data, start, settings.max_headers, settings.max_head_size, self.trusted
            )
            if head is None:
                break
            start, method, target, version, keep_alive, host, authorization, kept, count, length = (
                head
            )
            self.on_message_begin()
            request = self.parsing
            assert request is not None
            request.method, request.target, request.version = method, target, version
            request.keep_alive, request.authorization = keep_alive, authorization
            request.host, request.host_count = host, (0 if host is None else 1)
            request.lines = [kept]
            request.header_count = count
            request.head_size = -1
            if length >= 0:
                request.content_length = length
            try:
                # no Upgrade header (the scanner leaves those); a Host it returns is valid
                request.validate(False, host_checked=True)
            except Rejection as rejection:
                self._reject(rejection)
                return len(data)  # as with httptools: nothing after a refused head is read
            if not keep_alive and start + max(length, 0) < len(data):
                self.dropped_input = True  # what follows it is not read (see below)
            if length <= 0:
                self._head_complete(request)
            else:
                body = data[start : start + length]
                if not self._take_body(request, body):
                    return len(data)
                start += len(body)
                if len(body) < length:  # the rest comes in later reads: _body_arrived
                    self.body_left = length - len(body)
                    return start
            self.on_message_complete()
            if not keep_alive:  # the connection ends with its answer: read nothing after it
                return len(data)
        return len(data) if self.closed else start

    def _take_body(self, request: Request, body: bytes) -> bool:
        """A scanned head and the body (or its start) read with it: forwarded in one
        write. False if refused."""
        self.gathering = True
        try:
            self._head_complete(request)
            if body:
                self.on_body(body)
        except Rejection as rejection:  # (httptools would raise it from the callback)
            self._reject(rejection)
            return False
        finally:
            self._stop_gathering()
        return True

    def _body_arrived(self, data: bytes) -> int:
        """More of a body whose head the scanner read, counted down by its Content-Length
        as httptools would: how much of `data` it was."""
        take = min(len(data), self.body_left)
        self.body_left -= take
        try:
            self.on_body(data if take == len(data) else data[:take])
        except Rejection as rejection:
            self.body_left = 0
            self._reject(rejection)
            return len(data)  # as with httptools: nothing after a refused body is read
        if not self.body_left:
            request = self.parsing
            if take < len(data) and request is not None and not request.keep_alive:
                self.dropped_input = True  # what follows it is not read (see below)
            self.on_message_complete()
            if request is not None and not request.keep_alive:
                return len(data)  # the connection ends with its answer: read nothing after it
        return take

    # --- httptools request callbacks ----------------------------------------------------
    def on_message_begin(self) -> None:
        self.parsing = Request()
        if self.phase == IDLE:
            # slowloris guard; its deadline is set at the end of the read if still needed
            self.phase = HEAD

    def on_url(self, url: bytes) -> None:
        request = self.parsing
        assert request is not None
        request.target += url
        if len(request.target) > self.settings.max_head_size:
            raise Rejection(414, "Request target too long.")

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.parsing
        assert request is not None
        if request.header_count >= self.settings.max_headers:
            raise Rejection(431, "Too many request headers.")
        request.add_header(name, value)

    def on_headers_complete(self) -> None:
        request = self.parsing
        assert request is not None
        parser = self.parser
        request.method = parser.get_method()
        version = parser.get_http_version()
        request.version = b"1.1" if version == "1.1" else version.encode()
        request.keep_alive = parser.should_keep_alive()
        limit = self.settings.max_head_size
        if request.head_size + self.read_size > limit:  # else the head cannot be larger
            size = len(request.target) + request.header_bytes
            if size > limit:
                raise Rejection(431, "Request head too large.")
        request.head_size = -1  # head done: stop counting raw bytes
        # (llhttp's Connection: upgrade check matters only when there is an Upgrade header)
        request.validate(request.upgrade is not None and parser.should_upgrade())
        self._head_complete(request)

    def _head_complete(self, request: Request) -> None:
        """A request head is read and valid: it becomes the exchange, or waits its turn."""
        if self.request is None:
            self._start(request)
        else:
            self.queue.append(request)
            if len(self.queue) >= QUEUE_LIMIT:
                self.pause_client_reading(PAUSE_QUEUE)

    def on_body(self, body: bytes) -> None:
        if self.closed:  # answered already (a 413 from the head's length): nothing to refuse twice
            return
        request = self.parsing
        assert request is not None
        request.body_size += len(body)
        limit = self.route.site.max_body_size if self.route and request is self.request else None
        if limit is not None and request.body_size > limit:
            raise Rejection(413, "Request body too large.")
        if request is self.request and self.upstream is not None:
            self._send_body(self.upstream, body, request.chunked)
        else:
            request.body.append(body)
            request.body_buffered += len(body)
            if request.body_buffered > HOLD_LIMIT:
                self.pause_client_reading(PAUSE_HELD_BODY)

    def on_message_complete(self) -> None:
        request = self.parsing
        assert request is not None
        request.complete = True
        self.parsing = None
        if request is self.request and self.phase == BODY:
            self.phase = BUSY
        elif self.request is None and self.phase == HEAD and not self.queue:
            # answered locally before its end was parsed: now the connection is idle
            self._enter(IDLE, self.settings.keepalive_timeout)
        if request is self.request and self.upstream is not None:
            self._request_sent(self.upstream)

    # --- routing ------------------------------------------------------------------------
    def _start(self, request: Request) -> None:
        """Make `request` the active exchange: route, authenticate, then connect."""
        self.request = request
        if request.has_body:
            self._enter(BODY, self.settings.client_body_timeout)
            self.last_client_read = self.loop.time()
        else:
            self.phase = BUSY
        if self.ctx.access_log is not None:
            self.started_at = self.loop.time()
        if request.rejection is not None:
            self._respond_error(request.rejection.status, request.rejection.detail, close=True)
            return
        table = self.ctx.pipeline.route_table
        host = request.host or b""
        entry = table.lookup_host(host)
        if entry is None:
            name = host.decode("latin-1") or "(none)"
            self._respond_error(503, f"No site is configured for host {name}.")
            return
        route = entry.match(request.target)
        if route is None:
            self._respond_error(404, "No site is configured for this path.")
            return
        self.route = route
        if not route.backends:
            reason = route.site.unavailable_reason or "no backend is available"
            self._respond_error(503, f"Site {route.site.name}: {reason}.")
            return
        limit = route.site.max_body_size
        if limit is not None and max(request.content_length or 0, request.body_size) > limit:
            self._respond_error(413, "Request body too large.", close=True)
            return
        gate: Any = route.auth
        passed = gate is self.passed_gate and request.authorization == self.passed_authorization
        if gate is not None and not passed:
            verdict = gate.check(request.authorization, self.client_ip.decode())
            if not isinstance(verdict, int):
                self._await_auth(request, verdict)
                return
            if not self._auth_passed(verdict):
                return
        self._forward()

    def _await_auth(self, request: Request, verdict: asyncio.Future[int]) -> None:
        # (its own method: a lambda in _start would make mypyc build a closure for every
        # request, checked or not)
        self.pause_client_reading(PAUSE_HELD_BODY)
        verdict.add_done_callback(lambda done: self._auth_done(request, done))

    def _auth_done(self, request: Request, done: asyncio.Future[int]) -> None:
        if self.closed or request is not self.request:
            return
        self.resume_client_reading(PAUSE_HELD_BODY)
        try:
            verdict = done.result()
        except Exception:
            verdict = 500
        if self._auth_passed(verdict):
            self._forward()
        if self.out:
            self._flush()

    def _auth_passed(self, verdict: int) -> bool:
        if verdict == 200:
            # The next request on this connection with the same gate and credentials passes
            # without a check. A gate is rebuilt whenever its htpasswd file changes, so a
            # removed user or changed password is never let through by this.
            self.passed_gate = self.route.auth if self.route else None
            self.passed_authorization = self.request.authorization if self.request else None
            return True
        gate: Any = self.route.auth if self.route else None
        if verdict == 401 and gate is not None:
            self._respond_error(
                401, "This site needs a login.", extra=((b"WWW-Authenticate", gate.www_authenticate),)
            )
        elif verdict == 429 and gate is not None:
            wait = str(gate.retry_after(self.client_ip.decode())).encode()
            self._respond_error(
                429,
                "Too many failed logins; try again later.",
                close=True,
                extra=((b"Retry-After", wait),),
            )
        else:
            self._respond_error(500, "The login could not be checked.")
        return False

    def _forward(self) -> None:
        request = self.request
        route = self.route
        assert request is not None and route is not None
        if request.expect_continue and request.has_body and request.version == b"1.1":
            self.out.append(CONTINUE)
        backend = route.pick(self.failed_backends)
        if backend is None:
            self._respond_error(502, "Every backend of this site refused the connection.")
            return
        self.backend = backend
        conn = self.ctx.pool.take(backend)
        if conn is not None:
            self._attach(conn)
        else:
            self._connect(backend)

    def _connect(self, backend: Backend) -> None:
        request = self.request
        assert self.route is not None
        timeout = self.route.site.timeouts.connect
        future = asyncio.ensure_future(self.ctx.pool.connect(backend, timeout))
        future.add_done_callback(lambda done: self._connected(request, backend, done))

    def _connected(self, request: Request | None, backend: Backend, done: asyncio.Future) -> None:
        if done.cancelled():  # shutting down
            return
        error = done.exception()
        if self.closed or request is not self.request:
            if error is None:
                self.ctx.pool.give_back(done.result())
            return
        if error is None and not done.result().closed:
            self._attach(done.result())
        elif isinstance(error, asyncio.TimeoutError) and not self._another_backend(backend):
            self._respond_error(504, "The backend did not accept the connection in time.")
        else:
            # Refused, closed before we wrote anything, or hung while another replica is
            # left: nothing was sent, so another backend is safe for any method.
            self.failed_backends.add(backend)
            self._forward()
        if self.out:
            self._flush()

    def _another_backend(self, failed: Backend) -> bool:
        """Is there a backend besides `failed` (a replica that died hangs its connects)?"""
        route = self.route
        return route is not None and route.pick(self.failed_backends | {failed}) is not None

    def _attach(self, conn: UpstreamConnection) -> None:
        request = self.request
        route = self.route
        assert request is not None and route is not None
        self.upstream = conn
        conn.begin(self)
        if self.writing_paused:
            conn.transport.pause_reading()
        head = self._upstream_head(request, route, conn.backend)
        if not (request.body or request.chunked or self.gathering):  # the head alone
            conn.outlet.write(head)
            if request.complete:
                self._request_sent(conn)
            return
        gathering = self.gathering
        self.gathering = True  # the head and the body held until now: one write
        try:
            self._send_up(conn, head)
            if request.body:
                held, request.body, request.body_buffered = request.body, [], 0
                for chunk in held:
                    self._send_body(conn, chunk, request.chunked)
                self.resume_client_reading(PAUSE_HELD_BODY)
            if request.complete:
                self._request_sent(conn)
        finally:
            if not gathering:
                self._stop_gathering()

    def _upstream_head(self, request: Request, route: Route, backend: Backend) -> bytes:
        lines = request.lines
        if request.named:
            lines = without_named(lines, request.named)
        host = request.host or backend.host.encode()
        if request.forwarded is not None and self.trusted:
            forwarding = trusted_forwarding(
                request.forwarded, self.client_ip, host, self.ctx.listen_port
            )
        else:
            forwarding = b"X-Forwarded-Host: %s\r\n%s" % (host, self.forward_tail)
        framing = []
        if request.host_count == 0:
            framing.append(b"Host: %s\r\n" % host)
        if request.authorization is not None:
            gate: Any = route.auth
            if gate is None or gate.forward_authorization:
                framing.append(b"Authorization: %s\r\n" % request.authorization)
        if request.chunked:
            framing.append(b"Transfer-Encoding: chunked\r\n")
        elif request.content_length is not None:
            framing.append(b"Content-Length: %d\r\n" % request.content_length)
        if request.upgrade is not None:
            framing.append(b"Connection: upgrade\r\nUpgrade: %s\r\n" % request.upgrade)
        target = request.target if route.dest is None else route.upstream_target(request.target)
        return b"".join(
            (
                b"%s %s HTTP/1.1\r\n" % (request.method, target),
                b"".join(lines),
                forwarding,
                b"".join(framing),
                b"\r\n",
            )
        )

    def _send_body(self, conn: UpstreamConnection, body: bytes, chunked: bool) -> None:
        if chunked:
            self._send_up(conn, b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self._send_up(conn, body)

    def _request_sent(self, conn: UpstreamConnection) -> None:
        request = self.request
        assert request is not None and self.route is not None
        if request.chunked:
            self._send_up(conn, b"0\r\n\r\n")
        if not conn.got_bytes:
            self._enter(WAIT, self.route.site.timeouts.first_byte)

    def _send_up(self, conn: UpstreamConnection, data: bytes) -> None:
        """Bytes for the backend: written now, or gathered in `up_out` while `gathering`."""
        if not self.gathering:
            conn.outlet.write(data)
            return
        if conn is not self.up_out_conn:
            self._flush_up()
            self.up_out_conn = conn
        self.up_out.append(data)

    def _stop_gathering(self) -> None:
        self.gathering = False
        if self.up_out_conn is not None:
            self._flush_up()

    def _flush_up(self) -> None:
        conn = self.up_out_conn
        out = self.up_out
        self.up_out_conn = None
        if conn is not None and not conn.closed:  # (closed: a refused body; send nothing)
            if len(out) == 1:
                conn.outlet.write(out[0])
            else:
                size = 0
                for piece in out:
                    size += len(piece)
                if size >= LARGE_PIECE:
                    conn.outlet.writelines(out)  # one writev: a large body is not copied
                else:
                    conn.outlet.write(b"".join(out))  # cheaper than writelines when small
        out.clear()

    def _reject(self, rejection: Rejection) -> None:
        """A request that must not be forwarded: answer it in turn, then close."""
        self.pause_client_reading(PAUSE_QUEUE)
        self.parser = httptools.HttpRequestParser(self)  # never feed the broken one again
        failed = self.parsing or Request()
        self.parsing = None
        failed.rejection = rejection
        if self.request is None:
            self._start(failed)
        elif failed is not self.request:
            if failed not in self.queue:
                self.queue.append(failed)
        else:
            self._upstream_failed_or_close(rejection)

    def _upstream_failed_or_close(self, rejection: Rejection) -> None:
        conn = self.upstream
        if conn is not None:
            self._upstream_failed(conn, rejection.status, rejection.detail)
        elif not self.response_started:
            self._respond_error(rejection.status, rejection.detail, close=True)
        else:
            self.outlet.close()

    def shutdown(self) -> None:
        """Graceful stop: close now when idle, else after the current response."""
        if self.request is None and self.parsing is None and self.tunnel is None:
            self._close_answered()

