"""Ambiguous or malformed requests get a 4xx and never reach the backend."""

from __future__ import annotations

import pytest

from tests.support.vhostd import read_response

VECTORS = {
    "cl and te": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate cl": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
    b"Content-Length: 3\r\n\r\nabc",
    "different cl": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n"
    b"Content-Length: 4\r\n\r\nabcd",
    "invalid cl": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3a\r\n\r\nabc",
    "cl list": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3, 3\r\n\r\nabc",
    "te not chunked": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n",
    "te chunked then gzip": b"POST /echo HTTP/1.1\r\nHost: a.test\r\n"
    b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "te twice": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te obfuscated": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding : chunked\r\n\r\n",
    "te in http/1.0": b"POST /echo HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\n\r\n",
    "bad chunk size": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk size overflow": b"POST /echo HTTP/1.1\r\nHost: a.test\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
    "obs fold": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: a\r\n b\r\n\r\n",
    "bare cr in value": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: a\rb\r\n\r\n",
    "ctl in value": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: a\x01b\r\n\r\n",
    "nul in value": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: a\x00b\r\n\r\n",
    "bad header name": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX(A): b\r\n\r\n",
    "two hosts": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
    "no host": b"GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n",
    "bad host": b"GET /echo HTTP/1.1\r\nHost: a.test/../x\r\n\r\n",
    "bare lf": b"GET /echo HTTP/1.1\nHost: a.test\n\n",
    "bad version": b"GET /echo HTTP/9.1\r\nHost: a.test\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "connect": b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
}


@pytest.fixture(scope="module")
def proxy_and_origin(tmp_path_factory):
    from tests.support.origin import Origin
    from tests.support.vhostd import VhostdProcess

    origin = Origin().start()
    proxy = VhostdProcess(
        tmp_path_factory.mktemp("smuggling"),
        sites=[{"name": "a", "hosts": ["a.test", "b.test"], "backends": [origin.url]}],
    ).start()
    yield proxy, origin
    proxy.stop()
    origin.stop()


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vector_is_rejected_and_never_forwarded(proxy_and_origin, name):
    proxy, origin = proxy_and_origin
    before = len(origin.received)
    with proxy.connect() as sock:
        sock.sendall(VECTORS[name])
        response = read_response(sock)
        assert response.status in (400, 405), (name, response.status)
        assert response.header("Connection") == "close"
        assert sock.recv(100) == b""  # and the connection is closed
    assert len(origin.received) == before, f"{name} reached the backend"


def test_smuggled_second_request_never_runs(proxy_and_origin):
    proxy, origin = proxy_and_origin
    attack = (
        b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 44\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo?smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n"
    )
    with proxy.connect() as sock:
        sock.sendall(attack)
        assert read_response(sock).status == 400
    assert not any("smuggled" in r.target for r in origin.received)


def test_oversized_heads_get_431_or_414(proxy_and_origin):
    proxy, origin = proxy_and_origin
    before = len(origin.received)
    cases = [
        (b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
        (b"GET /echo HTTP/1.1\r\nHost: a.test\r\n" + b"X-N: 1\r\n" * 101 + b"\r\n", 431),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: a.test\r\n\r\n", 414),
    ]
    for raw, status in cases:
        with proxy.connect() as sock:
            sock.sendall(raw)
            assert read_response(sock).status == status
    assert len(origin.received) == before


def test_head_trickled_byte_by_byte_still_works(proxy_and_origin):
    proxy, _ = proxy_and_origin
    raw = b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n\r\n"
    with proxy.connect() as sock:
        for byte in raw:
            sock.sendall(bytes([byte]))
        assert read_response(sock).status == 200
