"""Byte-level tests of the request checks, fed whole, byte by byte, and with trailing data."""

from __future__ import annotations

import httptools
import pytest

from vhostd.proxy.headers import connection_named, trusted_forwarding, without_named
from vhostd.proxy.request import Rejection, Request


class Collector:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.current = Request()
        self.parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self.current = Request()

    def on_url(self, url: bytes) -> None:
        self.current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.add_header(name, value)

    def on_headers_complete(self) -> None:
        self.current.method = self.parser.get_method()
        self.current.version = self.parser.get_http_version().encode()
        self.current.validate(self.parser.should_upgrade())
        self.requests.append(self.current)


def parse(raw: bytes, step: int | None = None) -> list[Request]:
    collector = Collector()
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(0, len(raw), step)]
    for piece in pieces:
        collector.parser.feed_data(piece)
    return collector.requests


GOOD = b"POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc"


@pytest.mark.parametrize("step", [None, 1, 7])
def test_good_request_parses_whole_and_split(step):
    (request,) = parse(GOOD + GOOD, step)[:1]
    assert request.host == b"a.test" and request.content_length == 3 and not request.chunked


def test_absolute_form_target_replaces_host():
    (request,) = parse(b"GET http://b.test:81/p?q HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert request.host == b"b.test:81"
    assert request.target == b"/p?q"
    assert b"Host" not in b"".join(request.lines)


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET http://user@b.test/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
)
def test_rejections_carry_400(raw):
    with pytest.raises(httptools.HttpParserCallbackError) as info:
        parse(raw)
    assert isinstance(info.value.__context__, Rejection)
    assert info.value.__context__.status == 400


def test_request_headers_are_classified_as_they_arrive():
    (request,) = parse(
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
        b"X-Forwarded-For: 1.2.3.4\r\nProxy: x\r\nAuthorization: Basic eA==\r\n"
        b"Accept: */*\r\nKeep-Alive: 5\r\nTE: trailers\r\nExpect: 100-continue\r\n\r\n"
    )
    passed = without_named(request.lines, request.named)
    assert b"".join(passed) == b"Host: a\r\nAccept: */*\r\n"
    assert request.authorization == b"Basic eA=="
    assert request.forwarded == [(b"X-Forwarded-For", b"1.2.3.4")]
    assert request.expect_continue


def test_trusted_forwarding_appends_and_keeps_client_values():
    text = trusted_forwarding(
        [(b"X-Forwarded-For", b"203.0.113.9"), (b"X-Forwarded-Proto", b"https")],
        b"10.0.0.1", b"a.test", b"80",
    )
    assert b"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n" in text
    assert b"X-Forwarded-Proto: https\r\n" in text
    assert b"X-Forwarded-Host: a.test\r\n" in text and b"X-Real-IP: 10.0.0.1\r\n" in text


def test_connection_named_ignores_standard_options():
    assert connection_named(b"Keep-Alive, close, Upgrade, X-A ,, x-b") == {b"x-a", b"x-b"}


class ResponseCollector:
    def __init__(self) -> None:
        import asyncio

        from vhostd.config.model import Backend
        from vhostd.proxy.upstream import UpstreamConnection, UpstreamPool

        pool = UpstreamPool(asyncio.new_event_loop(), 1)  # never run: the parser is fed directly
        self.conn = UpstreamConnection(pool, Backend("127.0.0.1", 1))


@pytest.mark.parametrize("step", [None, 1])
def test_response_headers_are_filtered_and_framing_reported(step):
    conn = ResponseCollector().conn
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret\r\nX-Secret: s\r\n"
        b"Keep-Alive: timeout=5\r\nX-A: 1\r\n\r\nhi"
    )
    pieces = [raw] if step is None else [raw[i : i + step] for i in range(len(raw))]
    for piece in pieces:
        conn.parser.feed_data(piece)
    assert conn.content_length == b"2" and not conn.chunked
    assert b"".join(without_named(conn.lines, conn.named)) == b"X-A: 1\r\n"
    assert conn.message_complete and conn.keep_alive
