"""Connections to backends and the keep-alive pool that holds them between requests.

An UpstreamConnection parses responses with httptools and hands every event to the client
connection it currently serves (`exchange`); between requests it sits idle in the pool. A
pooled connection that the backend closes is dropped as soon as the loop sees the close;
bytes arriving on an idle connection also drop it, since no request is waiting for them.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

import httptools

from vhostd.config.model import Backend

if TYPE_CHECKING:
    from vhostd.proxy.client import ClientConnection

UPSTREAM_IDLE_TIMEOUT = 55.0  # below the 60 s that most backends keep idle connections


def _insecure_tls() -> ssl.SSLContext:
    # Backends are on the same machine or a private network; like nginx's default
    # (proxy_ssl_verify off) we encrypt without verifying their certificates.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "pool",
        "backend",
        "transport",
        "parser",
        "exchange",
        "reused",
        "headers",
        "reason",
        "message_complete",
        "keep_alive",
        "got_bytes",
        "idle_timer",
        "closed",
    )

    def __init__(self, pool: UpstreamPool, backend: Backend) -> None:
        self.pool = pool
        self.backend = backend
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: ClientConnection | None = None
        self.reused = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.message_complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.idle_timer: asyncio.TimerHandle | None = None
        self.closed = False

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # unsolicited bytes on an idle connection: unusable
            self.close()
            return
        exchange.on_upstream_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.on_upstream_lost(self, exc)

    def eof_received(self) -> bool | None:
        if self.exchange is not None:
            return self.exchange.on_upstream_eof(self)
        return None

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_client_reading(1)

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_client_reading(1)

    # --- httptools callbacks ------------------------------------------------------------
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # llhttp forgets this once the message is complete, so read it now
        self.keep_alive = self.parser.should_keep_alive()
        if self.exchange is not None:
            self.exchange.on_upstream_head(self)

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.on_upstream_body(body)

    def on_message_complete(self) -> None:
        self.message_complete = True

    # --- lifecycle ---------------------------------------------------------------------
    def start_response(self) -> None:
        """Reset per-response state before sending a request."""
        self.headers = []
        self.reason = b""
        self.message_complete = False
        self.got_bytes = False

    def next_response(self) -> None:
        """After a 1xx interim response: wait for the final one on the same parser."""
        self.headers = []
        self.reason = b""
        self.message_complete = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.exchange = None
            if self.transport is not None:
                self.transport.close()
            self.pool.forget(self)

    def abort(self) -> None:
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        self.pool.forget(self)


class UpstreamPool:
    """Idle keep-alive connections per backend, most recently used first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, keep_per_backend: int = 32) -> None:
        self.loop = loop
        self.keep_per_backend = keep_per_backend
        self.idle: dict[Backend, list[UpstreamConnection]] = {}
        self._tls: ssl.SSLContext | None = None

    def take(self, backend: Backend) -> UpstreamConnection | None:
        stack = self.idle.get(backend)
        while stack:
            conn = stack.pop()
            if conn.closed or conn.transport.is_closing():
                continue
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            conn.reused = True
            return conn
        return None

    def give_back(self, conn: UpstreamConnection) -> None:
        conn.exchange = None
        if conn.closed:
            return
        stack = self.idle.setdefault(conn.backend, [])
        if len(stack) >= self.keep_per_backend:
            conn.close()
            return
        # A fresh parser: a HEAD response or an interim 1xx may have left the old one mid-state.
        conn.parser = httptools.HttpResponseParser(conn)
        conn.idle_timer = self.loop.call_later(UPSTREAM_IDLE_TIMEOUT, conn.close)
        stack.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        stack = self.idle.get(conn.backend)
        if stack and conn in stack:
            stack.remove(conn)

    async def connect(self, backend: Backend, timeout: float) -> UpstreamConnection:
        """Open a new connection; raises OSError or asyncio.TimeoutError."""
        tls: ssl.SSLContext | None = None
        if backend.scheme == "https":
            if self._tls is None:
                self._tls = _insecure_tls()
            tls = self._tls
        _, conn = await asyncio.wait_for(
            self.loop.create_connection(
                lambda: UpstreamConnection(self, backend),
                backend.host,
                backend.port,
                ssl=tls,
                server_hostname=backend.host if tls else None,
            ),
            timeout,
        )
        return conn

    def close_all(self) -> None:
        for stack in self.idle.values():
            for conn in list(stack):
                conn.close()
        self.idle.clear()
