"""The admin listener over a real loopback socket, against a real pipeline."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable

import pytest

from vhostd.admin.server import start_admin
from vhostd.config.model import Backend, Site
from vhostd.providers.snapshot import Problem, Snapshot
from vhostd.routing.pipeline import RoutePipeline

SHOP = Site(
    "shop",
    ("shop.localhost", "*.shop.localhost"),
    (Backend("127.0.0.1", 3000, label="web-1", health="healthy"),),
    paths=("/", "/api"),
    source="file:sites.d/shop.toml:1",
)
SHADOW = Site(
    "shadow", ("shop.localhost", "shadow.localhost"), (Backend("127.0.0.1", 3001),), source="file:sites.d/z.toml:4"
)


def with_admin(scenario: Callable[[RoutePipeline, int], Awaitable[None]]) -> None:
    async def main() -> None:
        pipeline = RoutePipeline()
        pipeline.publish(Snapshot("file", (SHOP, SHADOW), (), (Problem("sites.d/x.toml:3", "bad"),)))
        server = await start_admin("127.0.0.1:0", pipeline)
        port = server.sockets[0].getsockname()[1]
        try:
            await scenario(pipeline, port)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def exchange(port: int, raw: bytes) -> bytes:
    """Send raw bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    raw = f"{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode()
    return split(await exchange(port, raw))


def test_healthz() -> None:
    async def scenario(pipeline: RoutePipeline, port: int) -> None:
        status, headers, body = await get(port, "/healthz")
        assert status == 200
        assert headers["content-type"].startswith("application/json")
        assert int(headers["content-length"]) == len(body)
        assert json.loads(body) == {
            "status": "ok",
            "generation": pipeline.generation,
            "sites": 2,
            "problems": pipeline.problems.__len__(),
        }

    with_admin(scenario)


def test_api_routes_shows_the_live_table() -> None:
    async def scenario(pipeline: RoutePipeline, port: int) -> None:
        _status, _headers, body = await get(port, "/api/routes")
        shop, shadow = json.loads(body)
        assert shop["site"] == "shop"
        assert shop["hosts"] == ["shop.localhost", "*.shop.localhost"]
        assert shop["paths"] == ["/", "/api"]
        assert shop["backends"][0]["url"] == "http://127.0.0.1:3000"
        assert shop["backends"][0]["label"] == "web-1"
        assert shop["backends"][0]["health"] == "healthy"
        assert shop["source"] == "file:sites.d/shop.toml:1"
        assert shop["auth"] is False and shop["default"] is False
        assert {"host": "shop.localhost", "path": "/api", "auth": False} in shop["routes"]
        # the loser of the conflict keeps its other host and carries the conflict as a problem
        assert shadow["routes"] == [{"host": "shadow.localhost", "path": "/", "auth": False}]
        assert "already claimed by site 'shop'" in shadow["problems"][0]
        pipeline.publish(Snapshot("file", (SHOP,)))
        _status, _headers, body = await get(port, "/api/routes")
        assert [s["site"] for s in json.loads(body)] == ["shop"]

    with_admin(scenario)


def test_api_problems() -> None:
    async def scenario(pipeline: RoutePipeline, port: int) -> None:
        _status, _headers, body = await get(port, "/api/problems")
        problems = json.loads(body)
        assert {"where": "sites.d/x.toml:3", "reason": "bad"} in problems
        assert len(problems) == len(pipeline.problems)

    with_admin(scenario)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nope", 404),
        ("POST", "/healthz", 405),
        ("DELETE", "/api/routes", 405),
        ("GET", "/healthz?x=1", 200),
        ("HEAD", "/healthz", 200),
        ("GET", "/demo/", 200),
        ("GET", "/demo/anything", 200),
    ],
)
def test_status_codes(method: str, path: str, status: int) -> None:
    async def scenario(_pipeline: RoutePipeline, port: int) -> None:
        got, headers, body = await get(port, path, method)
        assert got == status
        if method == "HEAD":
            assert body == b"" and int(headers["content-length"]) > 0
        if status == 405:
            assert headers["allow"] == "GET, HEAD"

    with_admin(scenario)


def test_demo_page_lists_sites_escaped() -> None:
    async def scenario(pipeline: RoutePipeline, port: int) -> None:
        evil = Site("x<script>", ("evil.localhost",), (Backend("127.0.0.1", 1),), source="s")
        pipeline.publish(Snapshot("file", (SHOP, evil)))
        _status, headers, body = await get(port, "/demo/")
        assert headers["content-type"].startswith("text/html")
        assert b"vhostd is running" in body
        assert b"shop.localhost" in body
        assert b"x&lt;script&gt;" in body and b"<script>" not in body

    with_admin(scenario)


def test_keep_alive_and_pipelining_answer_in_order() -> None:
    async def scenario(_pipeline: RoutePipeline, port: int) -> None:
        raw = (
            b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /api/problems HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = await exchange(port, raw)
        statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]
        assert statuses == [200, 404, 200]

    with_admin(scenario)


def test_request_split_byte_by_byte() -> None:
    async def scenario(_pipeline: RoutePipeline, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for byte in b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n":
            writer.write(bytes([byte]))
            await writer.drain()
        status, _headers, _body = split(await asyncio.wait_for(reader.read(), 5))
        assert status == 200
        writer.close()

    with_admin(scenario)


def test_garbage_gets_400_and_close() -> None:
    async def scenario(_pipeline: RoutePipeline, port: int) -> None:
        status, headers, _body = split(await exchange(port, b"\x00\x01 nonsense\r\n\r\n"))
        assert status == 400 and headers["connection"] == "close"

    with_admin(scenario)
