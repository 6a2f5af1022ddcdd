"""The admin listener: a tiny HTTP/1.1 server on its own address (httptools, no framework).

GET /healthz, GET /api/routes, GET /api/problems (JSON), and GET /demo/ (the page the
example site shows). Requests are answered in order as each one completes, so pipelining
and keep-alive work; bodies are ignored. It reads the pipeline on every request, so what
it shows is always the live table.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httptools

from vhostd.admin.demo import demo_page
from vhostd.config.values import split_host_port
from vhostd.routing.describe import describe_problems, describe_routes
from vhostd.routing.pipeline import RoutePipeline

IDLE_TIMEOUT = 30.0  # seconds an idle admin connection is kept open
MAX_URL = 8192
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            414: "URI Too Long"}

# (status, content type, body)
Response = tuple[int, str, bytes]


def _json(status: int, value: Any) -> Response:
    return status, _JSON, (json.dumps(value, indent=2) + "\n").encode()


def _error(status: int) -> Response:
    return _json(status, {"error": _REASONS[status]})


def healthz(pipeline: RoutePipeline) -> Response:
    """200 with "ok" and what the live table holds."""
    table = pipeline.route_table
    return _json(
        200,
        {
            "status": "ok",
            "generation": pipeline.generation,
            "sites": len(table.sites),
            "problems": len(pipeline.problems),
        },
    )


def _routes(pipeline: RoutePipeline) -> dict[str, Callable[[], Response]]:
    return {
        "/healthz": lambda: healthz(pipeline),
        "/api/routes": lambda: _json(200, describe_routes(pipeline)),
        "/api/problems": lambda: _json(200, describe_problems(pipeline.problems)),
    }


def answer(pipeline: RoutePipeline, method: str, target: str) -> Response:
    """The response to one request (pure apart from reading the pipeline)."""
    path = target.split("?", 1)[0]
    handler = _routes(pipeline).get(path)
    if handler is None and (path == "/demo" or path.startswith("/demo/")):
        handler = lambda: (200, _HTML, demo_page(pipeline))  # noqa: E731
    if handler is None:
        return _error(404)
    if method not in ("GET", "HEAD"):
        return _error(405)
    return handler()


class AdminConnection(asyncio.Protocol):
    """One admin client connection."""

    def __init__(self, pipeline: RoutePipeline) -> None:
        self.pipeline = pipeline
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(IDLE_TIMEOUT, self._close)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self._arm_idle()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._send(_error(400), keep_alive=False, head=False)
        except httptools.HttpParserError:
            self._send(_error(400), keep_alive=False, head=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_URL:
            self._send(_error(414), keep_alive=False, head=False)

    def on_message_complete(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        method = self.parser.get_method().decode("ascii", "replace")
        response = answer(self.pipeline, method, self.url.decode("latin-1"))
        self._send(response, keep_alive=self.parser.should_keep_alive(), head=method == "HEAD")

    def _send(self, response: Response, keep_alive: bool, head: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        status, content_type, body = response
        head_lines = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
            + ("Allow: GET, HEAD\r\n" if status == 405 else "")
            + "\r\n"
        )
        self.transport.write(head_lines.encode("latin-1") + (b"" if head else body))
        if not keep_alive:
            self.transport.close()


async def start_admin(address: str, pipeline: RoutePipeline) -> asyncio.AbstractServer:
    """Listen on "host:port" and serve the admin API from the live pipeline."""
    host, port = split_host_port(address)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: AdminConnection(pipeline), host, port, reuse_address=True
    )
