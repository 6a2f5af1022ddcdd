"""Open the client listeners and stop them gracefully."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from vhostd.errors import VhostdError
from vhostd.proxy.client import ClientConnection
from vhostd.proxy.context import ProxyContext


def split_address(address: str) -> tuple[str, int]:
    """"127.0.0.1:8080" / "[::1]:8080" / ":8080" → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise VhostdError(f"invalid listen address {address!r} (expected host:port)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def bind_socket(address: str, reuse_port: bool = False) -> socket.socket:
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise VhostdError(f"cannot listen on {address}: {exc.strerror}") from None
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def start_listeners(
    ctx: ProxyContext, sockets: list[socket.socket]
) -> list[asyncio.AbstractServer]:
    servers: list[asyncio.AbstractServer] = []
    for sock in sockets:
        server = await ctx.loop.create_server(
            lambda: cast(asyncio.BaseProtocol, ClientConnection(ctx)), sock=sock
        )
        servers.append(server)
    return servers


async def drain(ctx: ProxyContext, servers: list[asyncio.AbstractServer], grace: float) -> None:
    """Stop accepting, close idle connections, let in-flight requests finish up to `grace`."""
    ctx.shutting_down = True
    for server in servers:
        server.close()
    for conn in list(ctx.connections):
        conn.shutdown()
    deadline = ctx.loop.time() + grace
    while ctx.connections and ctx.loop.time() < deadline:
        await asyncio.sleep(0.05)
    if ctx.pool.writes is not None:
        ctx.pool.writes.write_out()  # what connections hold goes into their sockets before the resets
    for conn in list(ctx.connections):
        if conn.transport is not None:
            conn.transport.abort()
    ctx.pool.close_all()
