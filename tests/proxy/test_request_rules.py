"""Byte-level tests of the request checks, fed whole, byte by byte, and with trailing data."""

from __future__ import annotations

import httptools
import pytest

from vhostd.proxy.headers import client_response_headers, upstream_request_headers
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
    assert all(name.lower() != b"host" for name, _ in request.headers)


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


def test_upstream_headers_drop_hop_by_hop_and_untrusted_forwarding():
    headers = [
        (b"Host", b"a"),
        (b"Connection", b"keep-alive, X-Hop"),
        (b"X-Hop", b"1"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"Proxy", b"x"),
        (b"Authorization", b"Basic eA=="),
        (b"Accept", b"*/*"),
    ]
    lines = upstream_request_headers(
        headers, client_ip=b"10.0.0.1", host=b"a", port=b"80", scheme=b"http",
        trusted=False, drop_authorization=True,
    )
    text = b"".join(lines)
    assert b"X-Hop" not in text and b"Proxy:" not in text and b"Authorization" not in text
    assert b"Connection" not in text
    assert b"X-Forwarded-For: 10.0.0.1\r\n" in text
    assert b"Accept: */*\r\n" in text and b"Host: a\r\n" in text


def test_response_headers_keep_upgrade_only_when_upgrading():
    headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"), (b"X-A", b"1")]
    assert b"Upgrade: websocket" in b"".join(client_response_headers(headers, upgrading=True))
    assert b"Upgrade" not in b"".join(client_response_headers(headers, upgrading=False))
