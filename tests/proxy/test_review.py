"""Data-plane review: desync, stuck exchanges and timeouts found by attacking a running vhostd.

Every test runs a real vhostd subprocess against real backends on loopback. Some backends
here are small raw-socket servers (`RawBackend`, tests/support/raw_backend.py) because the
behaviour under test (interim responses, an extra response, a reset mid-body, a server that
answers before reading the body) cannot be produced by tests/support/origin.py.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.support.raw_backend import RawBackend, answer_in_pieces
from tests.support.vhostd import build_request, read_response, site


def ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def recv_until_closed(sock: socket.socket, deadline: float) -> bytes | None:
    """Everything the peer sends until it closes; None if it is still open at `deadline`."""
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, min(0.2, deadline - time.monotonic())))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return None


# --- 1xx interim responses ---------------------------------------------------------------


def test_interim_103_is_not_taken_for_the_final_response(raw_backend, make_proxy):
    def handler(conn, backend):
        buffer = bytearray()
        while backend.read_head(conn, buffer) is not None:
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            time.sleep(0.2)  # the backend is still working on the final response
            conn.sendall(ok(b"final"))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/page"))
        response = read_response(sock, timeout=3)
    assert response.status == 200
    assert response.body == b"final"


# --- response desync ----------------------------------------------------------------------


def test_extra_response_from_backend_never_reaches_the_client(raw_backend, make_proxy):
    def handler(conn, backend):
        buffer = bytearray()
        while (head := backend.read_head(conn, buffer)) is not None:
            target = head.split(b" ", 2)[1]
            if target == b"/first":  # a buggy backend answers twice in one write
                conn.sendall(ok(b"first") + ok(b"INJECTED"))
            else:
                conn.sendall(ok(target))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/first"))
        assert read_response(sock, timeout=3).body == b"first"
        try:
            sock.sendall(build_request("GET", "/second"))
            second = read_response(sock, timeout=3)
        except OSError:
            return  # closing the client connection is also safe
    # the client's second request must get its own answer, never the leftover bytes
    assert second.status in (0, 200)
    assert second.body != b"INJECTED"
    if second.status == 200:
        assert second.body == b"/second"


# --- Upgrade ------------------------------------------------------------------------------

UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket"}


def test_upgrade_request_to_a_stalled_backend_gets_504(origin, make_proxy):
    proxy = make_proxy([site(origin.url, first_byte_timeout="0.5s")])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/stall", headers=UPGRADE))
        started = time.monotonic()
        response = read_response(sock, timeout=4)
    assert response.status == 504
    assert time.monotonic() - started < 4


def test_upgrade_request_with_a_body_cannot_smuggle_a_request(raw_backend, make_proxy):
    # Like Go's net/http or Node: answer a request at once, then discard its unread body
    # (Content-Length bytes) to keep the connection alive, then read the next request.
    def handler(conn, backend):
        buffer = bytearray()
        while (head := backend.read_head(conn, buffer)) is not None:
            target = head.split(b" ", 2)[1]
            conn.sendall(ok(target))
            left = backend.content_length(head)
            while left:
                if not buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                take = min(left, len(buffer))
                del buffer[:take]
                left -= take

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    hidden = b"GET /secret HTTP/1.1\r\nHost: a.test\r\n\r\n"
    carrier = build_request("POST", "/public", body=hidden)
    # 1. learn the exact head vhostd sends upstream for the carrier request
    with proxy.connect() as sock:
        sock.sendall(carrier)
        assert read_response(sock, timeout=3).body == b"/public"
    carrier_head = backend.heads[-1]
    # 2. an Upgrade request whose Content-Length covers that head: refused, never forwarded
    with proxy.connect() as sock:
        headers = {**UPGRADE, "Content-Length": str(len(carrier_head))}
        sock.sendall(build_request("GET", "/up", headers=headers))
        assert read_response(sock, timeout=3).status == 400
    assert b"/up" not in b"".join(backend.heads)
    # 3. the carrier again, on the pooled upstream connection
    with proxy.connect() as sock:
        sock.sendall(carrier)
        read_response(sock, timeout=3)
    assert "/secret" not in backend.targets, backend.targets


# --- timeouts -----------------------------------------------------------------------------


def test_client_that_stops_sending_its_body_is_cut_off(origin, make_proxy):
    proxy = make_proxy(
        [site(origin.url, first_byte_timeout="0.5s", between_bytes_timeout="0.5s")],
        server={
            "client_header_timeout": "0.5s",
            "client_body_timeout": "0.5s",
            "keepalive_timeout": "0.5s",
        },
    )
    with proxy.connect() as sock:
        sock.sendall(
            b"POST /sink HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n0123456789"
        )
        answer = recv_until_closed(sock, time.monotonic() + 4)
    # nginx: 408 after client_body_timeout; anything but hanging forever is acceptable here
    assert answer is not None, "connection still open 4 s after the client went silent"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_client_reading_slowly_is_not_cut_by_the_between_bytes_timeout(origin, make_proxy):
    proxy = make_proxy([site(origin.url, between_bytes_timeout="0.5s")])
    size = 16 * 1024 * 1024
    with proxy.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(build_request("GET", f"/bytes?n={size}"))
        sock.settimeout(5)
        got = sock.recv(65536)
        time.sleep(1.5)  # the client (a busy browser tab) stops reading for a moment
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
            if len(got) >= size + len(got.partition(b"\r\n\r\n")[0]) + 4:
                break
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(body) == size  # the backend never stalled: the whole body must arrive


# --- truncated responses ------------------------------------------------------------------


def test_close_delimited_body_cut_by_a_reset_is_not_completed(raw_backend, make_proxy):
    def handler(conn, backend):
        buffer = bytearray()
        if backend.read_head(conn, buffer) is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial")
        time.sleep(0.3)  # let vhostd read those bytes, then the backend crashes
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/download"))  # HTTP/1.1: vhostd re-chunks the body
        response = read_response(sock, timeout=4)
    assert response.status == 200
    assert response.body.startswith(b"partial")
    assert not response.complete  # the client must be able to tell the body is truncated


# --- headers ------------------------------------------------------------------------------


def test_host_named_in_connection_still_reaches_the_backend(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    response = proxy.request("/echo", headers={"Connection": "keep-alive, Host"})
    assert response.status == 200
    hosts = [v for k, v in response.json()["headers"] if k.lower() == "host"]
    assert hosts == ["a.test"]


# --- limits -------------------------------------------------------------------------------


def test_pipelined_chunked_body_over_max_body_size_gets_413(origin, make_proxy):
    proxy = make_proxy([site(origin.url, max_body_size=1000)])
    body = b"x" * 5000
    second = (
        b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    )
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/slow?ms=300") + second)
        assert read_response(sock, timeout=4).status == 200
        response = read_response(sock, timeout=4)
    assert response.status == 413
    assert not [r for r in origin.received if r.method == "POST"]


# --- keep-alive ---------------------------------------------------------------------------


def test_error_page_for_a_bodyless_request_keeps_the_connection_alive(origin, make_proxy):
    proxy = make_proxy(
        [site(origin.url)], server={"client_header_timeout": "0.5s", "keepalive_timeout": "10s"}
    )
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/echo", host="unknown.test"))
        response = read_response(sock, timeout=3)
        assert response.status == 503 and response.header("connection") == "keep-alive"
        time.sleep(1.2)  # idle between requests, well inside keepalive_timeout
        sock.sendall(build_request("GET", "/echo"))
        assert read_response(sock, timeout=3).status == 200


def test_final_response_after_103_never_reaches_another_client(raw_backend, make_proxy):
    sent_103 = threading.Event()

    def handler(conn, backend):
        buffer = bytearray()
        while (head := backend.read_head(conn, buffer)) is not None:
            target = head.split(b" ", 2)[1]
            if target != b"/a":
                conn.sendall(ok(b"for " + target))
                continue
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            sent_103.set()
            conn.settimeout(1.5)  # still computing A's answer; is another request coming in?
            try:
                backend.read_head(conn, buffer)
            except TimeoutError:
                pass
            conn.settimeout(10)
            conn.sendall(ok(b"private answer for /a"))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as a, proxy.connect() as b:
        a.sendall(build_request("GET", "/a"))
        assert sent_103.wait(3)
        b.sendall(build_request("GET", "/b"))
        response_b = read_response(b, timeout=4)
    assert response_b.body == b"for /b"


# --- large bodies relayed as they arrive (not through the parser) ------------------------


def patterned(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


@pytest.mark.parametrize("piece", [1 << 20, 1000, 16387])
def test_large_bodies_arrive_intact_and_the_backend_connection_is_reused(
    raw_backend, make_proxy, piece
):
    sizes = [20_000, 70_000, 12, 300_000, 16_384, 5]

    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        for index, size in enumerate(sizes):
            if backend.read_head(conn, buffer) is None:
                return
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size
            answer += patterned(size, index)
            for start in range(0, len(answer), piece):  # head and body split anywhere
                conn.sendall(answer[start : start + piece])

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        for index, size in enumerate(sizes):
            sock.sendall(build_request("GET", f"/{index}"))
            response = read_response(sock)
            assert response.status == 200
            assert response.body == patterned(size, index), f"body {index} ({size} B)"
    assert backend.connections == 1, "every response left the pooled connection usable"


def test_bytes_after_a_large_body_are_dropped_with_the_connection(raw_backend, make_proxy):
    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        if backend.read_head(conn, buffer) is None:
            return
        body = patterned(40_000, 1)
        extra = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n" + body + extra)
        backend.read_head(conn, buffer)  # a request sent on this connection would land here

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/first"))
        first = read_response(sock)
        assert first.status == 200 and first.body == patterned(40_000, 1)
        sock.sendall(build_request("GET", "/second"))
        second = read_response(sock)
    assert second.body != b"evil!", "the extra bytes were never taken as an answer"
    assert backend.targets.count("/second") == 1 and backend.connections == 2


def test_an_interim_response_before_a_large_body(raw_backend, make_proxy):
    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        if backend.read_head(conn, buffer) is None:
            return
        body = patterned(50_000, 2)
        conn.sendall(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 50000\r\n\r\n" + body
        )

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/"))
        response = read_response(sock)
    assert response.status == 200 and response.body == patterned(50_000, 2)


# --- whole heads read in one call, split heads parsed: both on one connection ------------


def test_heads_split_anywhere_alternate_with_whole_ones_on_one_connection(
    raw_backend, make_proxy
):
    answers = [
        b"HTTP/1.1 200 OK\r\nX-Kind: whole\r\nContent-Length: 5\r\n\r\nwhole",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n",
        b"HTTP/1.1 404 Nope\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nnope",
    ]
    splits = range(1, len(answers[0]))  # every place the first answer can be cut
    # each answer cut in two, then whole
    plan = (p for split in splits for a in answers for p in ((a[:split], a[split:]), (a,)))
    backend = raw_backend(answer_in_pieces(plan))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        for _ in splits:
            for expected in [(200, b"whole")] * 2 + [(200, b"chunk")] * 2 + [(404, b"nope")] * 2:
                sock.sendall(build_request("GET", "/"))
                response = read_response(sock)
                assert (response.status, response.body) == expected
    assert backend.connections == 1, "every response left the pooled connection usable"


def test_body_sent_after_a_head_answer_is_never_a_later_response(raw_backend, make_proxy):
    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        while (head := backend.read_head(conn, buffer)) is not None:
            if head.startswith(b"HEAD"):  # a broken backend sends the body anyway
                conn.sendall(ok(b"evil!"))
            else:
                conn.sendall(ok(b"good"))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("HEAD", "/"))
        head = read_response(sock, head_request=True)
        assert head.status == 200 and head.body == b""
        sock.sendall(build_request("GET", "/"))
        assert read_response(sock).body == b"good"


def test_a_local_answer_to_a_request_holding_a_large_body_leaves_the_connection_reading(
    origin, make_proxy
):
    """A request queued behind a slow one holds its body; past the hold limit reading
    pauses. Answered here (503: no such site) and kept alive, the connection must read on."""
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(
            build_request("GET", "/slow?ms=300")
            + build_request("POST", "/echo", host="nosite.test", body=b"x" * 300_000)
        )
        assert read_response(sock).status == 200
        second = read_response(sock)
        assert second.status == 503 and second.header("Connection") != "close"
        sock.sendall(build_request("GET", "/echo?after"))
        assert read_response(sock, timeout=5).status == 200
