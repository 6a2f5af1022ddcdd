"""Timeouts: slow clients are cut off, stalled backends get 504, idle connections close."""

from __future__ import annotations

import time

from tests.support.vhostd import build_request, read_response, site


def test_slowloris_is_cut_off_at_the_header_timeout(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"client_header_timeout": "0.5s"})
    with proxy.connect() as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        started = time.monotonic()
        response = read_response(sock)
        elapsed = time.monotonic() - started
        assert response.status == 408
        assert sock.recv(10) == b""
    assert 0.3 < elapsed < 5
    assert origin.received == []


def test_slowloris_cannot_extend_by_trickling(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"client_header_timeout": "0.6s"})
    with proxy.connect() as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\n")
        sock.settimeout(0.1)
        started = time.monotonic()
        answer = None
        while answer is None and time.monotonic() - started < 5:
            try:
                sock.sendall(b"X")  # one header byte every 100 ms, never finishing
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                answer = b""
        elapsed = time.monotonic() - started
    assert answer is not None and (answer == b"" or answer.startswith(b"HTTP/1.1 408"))
    assert elapsed < 3
    assert origin.received == []


def test_stalled_backend_gets_504_at_first_byte_timeout(origin, make_proxy):
    proxy = make_proxy([site(origin.url, first_byte_timeout="0.5s")])
    started = time.monotonic()
    response = proxy.request("/stall")
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert 0.4 < elapsed < 5


def test_backend_stalling_mid_body_is_cut_at_between_bytes_timeout(origin, make_proxy):
    proxy = make_proxy([site(origin.url, between_bytes_timeout="0.5s")])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/trickle"))
        started = time.monotonic()
        response = read_response(sock)
        assert time.monotonic() - started < 5
    assert response.status == 200
    assert response.body == b"abc"  # truncated: the connection was closed mid-body


def test_slow_backend_within_first_byte_timeout_is_fine(origin, make_proxy):
    proxy = make_proxy([site(origin.url, first_byte_timeout="5s")])
    assert proxy.request("/slow?ms=300").status == 200


def test_idle_keep_alive_connection_is_closed(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"keepalive_timeout": "0.5s"})
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/echo"))
        assert read_response(sock).status == 200
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 4


def test_stalled_upload_gets_408_at_the_body_timeout(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"client_body_timeout": "0.5s"})
    with proxy.connect() as sock:
        sock.sendall(b"POST /sink HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nabc")
        started = time.monotonic()
        response = read_response(sock)
        assert time.monotonic() - started < 5
    assert response.status == 408
    assert response.header("Connection") == "close"
