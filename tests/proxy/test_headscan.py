"""The C response-head scanner against httptools: whatever it accepts, llhttp reads the same.

The proxy trusts scan_response() in place of httptools for simple heads, so every head it
accepts must be one llhttp accepts with the same status, keep-alive, length, reason and
headers; anything else must come back as None (parsed by httptools). Checked on realistic
heads and on every one-byte change, insertion, deletion and truncation of them.
"""

from __future__ import annotations

import httptools
import pytest

from vhostd.proxy.headers import RESPONSE_RULES

headscan = pytest.importorskip("vhostd.proxy._headscan", reason="make native builds it")
scan_response = headscan.scan_response

HEADS = [
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 17:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length:0\r\nX-Empty:\r\nX-Tab:\tv \t\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nConnection: upgrade, keep-alive\r\n\r\n",
    b"HTTP/1.1 503\r\nContent-Length: 00007\r\nRetry-After: 1\r\nTE: trailers\r\n\r\n",
    b"HTTP/1.1 302 Found\r\nLocation: /\xc3\xa9t\xc3\xa9\r\nSet-Cookie: a=b; Path=/\r\n"
    b"Set-Cookie: c=d\r\nProxy: x\r\nUpgrade: h2c\r\nTrailer: x\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nProxy-Connection: keep-alive\r\nContent-Length: 18446744073\r\n\r\n",
]
MUTATIONS = [b"\x00", b"\t", b" ", b"\r", b"\n", b":", b",", b"\x7f", b"\x80", b"A", b"0", b"-"]


class Recorder:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.complete = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()


def _lines(kept: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for line in kept.split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        pairs.append((name, value.strip(b" \t")))
    return pairs


def agrees_with_llhttp(data: bytes) -> None:
    """If the scanner accepts `data`, llhttp must read its head the same way."""
    scanned = scan_response(data)
    if scanned is None:
        return
    body_from, status, keep_alive, length, digits, reason, kept = scanned
    recorder = Recorder()
    recorder.parser.feed_data(data[:body_from])  # raises if llhttp rejects what we took
    assert recorder.complete, data
    assert status == recorder.parser.get_status_code()
    assert keep_alive == recorder.keep_alive, data
    assert reason == recorder.reason
    received = [(n, v.strip(b" \t")) for n, v in recorder.headers]
    lengths = [v for n, v in received if n.lower() == b"content-length"]
    assert (digits, length) == ((lengths[0], int(lengths[0])) if lengths else (None, -1)), data
    forwarded = [(n, v) for n, v in received if n.lower() not in headscan.HOP_BY_HOP]
    assert _lines(kept) == forwarded, data


def variants(head: bytes):
    for i in range(len(head) + 1):
        yield head[:i]
        for byte in MUTATIONS:
            yield head[:i] + byte + head[i:]
            if i < len(head):
                yield head[:i] + byte + head[i + 1 :]
        if i < len(head):
            yield head[:i] + head[i + 1 :]


def test_hop_by_hop_names_match_the_response_rules() -> None:
    assert set(headscan.HOP_BY_HOP) == set(RESPONSE_RULES)


@pytest.mark.parametrize("head", HEADS)
def test_accepts_the_common_heads_as_llhttp_reads_them(head: bytes) -> None:
    assert scan_response(head + b"body") is not None
    agrees_with_llhttp(head + b"body")


@pytest.mark.parametrize("head", HEADS)
def test_every_variant_it_accepts_llhttp_reads_the_same(head: bytes) -> None:
    for data in variants(head):
        agrees_with_llhttp(data)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",  # chunked body
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",  # body until close
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",  # the head continues in the next read
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nContent-Length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",  # bare LF
        b"HTTP/2.0 200 OK\r\nContent-Length: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n",
    ],
)
def test_leaves_everything_else_to_httptools(data: bytes) -> None:
    assert scan_response(data) is None
