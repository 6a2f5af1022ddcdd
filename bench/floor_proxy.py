"""A deliberately bare uvloop + httptools proxy: the floor for vhostd's architecture.

Not a product and not vhostd: no routing table, timeouts, header rules, error pages or
flow control. It forwards each request to one origin over pooled keep-alive connections
and relays the response bytes as they arrive. Benchmarked as `floor` to show how much CPU
per request the language and event loop cost by themselves, so the gap between it and
vhostd is what vhostd's features (and their implementation) cost.

    python -m bench.floor_proxy LISTEN_PORT ORIGIN_PORT
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop


class UpstreamProtocol(asyncio.Protocol):
    """One pooled origin connection; relays response bytes to the client it serves."""

    def __init__(self, pool: list[UpstreamProtocol]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: ClientProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is not None and client.transport is not None:
            client.transport.write(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.client, client = None, self.client
        self.pool.append(self)
        if client is not None:
            client.busy = False

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()


class ClientProtocol(asyncio.Protocol):
    """One client connection: parse a request, send its head upstream, relay the answer."""

    def __init__(self, origin: tuple[str, int], pool: list[UpstreamProtocol]) -> None:
        self.origin, self.pool = origin, pool
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.head: list[bytes] = []
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head.append(b"%s: %s\r\n" % (name, value))

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        request = b"".join([method, b" ", self.url, b" HTTP/1.1\r\n", *self.head, b"\r\n"])
        self.url, self.head, self.busy = b"", [], True
        if self.pool:
            self._send(self.pool.pop(), request)
        else:
            asyncio.get_running_loop().create_task(self._connect_and_send(request))

    async def _connect_and_send(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        _transport, upstream = await loop.create_connection(
            lambda: UpstreamProtocol(self.pool), *self.origin
        )
        self._send(upstream, request)

    def _send(self, upstream: UpstreamProtocol, request: bytes) -> None:
        upstream.client = self
        assert upstream.transport is not None
        upstream.transport.write(request)


async def serve(listen_port: int, origin_port: int) -> None:
    loop = asyncio.get_running_loop()
    pool: list[UpstreamProtocol] = []
    origin = ("127.0.0.1", origin_port)
    server = await loop.create_server(
        lambda: ClientProtocol(origin, pool), "127.0.0.1", listen_port, backlog=4096
    )
    await server.serve_forever()


def main() -> None:
    uvloop.run(serve(int(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
