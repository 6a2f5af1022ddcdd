"""Lingering close: when vhostd ends a connection while the client is still sending, the
last answer reaches the client whole, and the connection still ends in bounded time."""

from __future__ import annotations

import signal
import socket
import time

from tests.support.vhostd import read_response, read_to_end, site, wait_for

BIG_RESPONSE = 8_000_000  # more than loopback's largest send buffer (tcp_wmem 4 MiB)
# more than vhostd holds in its buffers while the client's (4 KiB) is full
STREAMED_RESPONSE = 1_000_000
FIN_WAIT = ("04", "05")  # /proc/net/tcp states FIN_WAIT1 and FIN_WAIT2: it has sent its FIN


def has_sent_fin(proxy, client: socket.socket) -> bool:
    end = proxy.end_of(client)
    return end is not None and end[0] in FIN_WAIT


def read_until_vhostd_ends_writing(proxy, sock: socket.socket) -> bytes:
    """Read (slowly: the socket's buffer is small) until vhostd has closed or shut down its
    end, with part of the answer still on its way."""
    received = bytearray()
    reads = 0
    while reads % 4 or not has_sent_fin(proxy, sock):  # (the table is slow to read)
        chunk = sock.recv(65536)
        assert chunk, "the answer ended before vhostd closed"
        received += chunk
        reads += 1
    return bytes(received)


def small_buffer_connection(proxy) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", proxy.port))
    return sock


def body_of(received: bytes) -> bytes:
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body


def refused_upload(proxy, length: int) -> socket.socket:
    """A connection whose POST announced `length` bytes, over the site's 1k limit."""
    sock = proxy.connect()
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % length)
    return sock


def test_a_large_answer_survives_bytes_the_client_sends_after_it(origin, make_proxy):
    # The client asks for a large body with Connection: close, then writes more (garbage,
    # refused with a 400 that waits its turn, so vhostd stops reading) before it reads.
    # When the answer has been handed to the kernel, vhostd closes. Closing with those
    # bytes unread resets the connection and drops the part of the answer not yet sent.
    proxy = make_proxy([site(origin.url)])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", proxy.port))
        sock.sendall(
            b"GET /bytes?n=%d HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n" % BIG_RESPONSE
        )
        sock.setblocking(False)
        sent = 0
        while sent < 64 * 1024 * 1024:  # until every buffer on the way is full
            try:
                sent += sock.send(b"x" * 65536)
            except BlockingIOError:
                break
        assert sent > 0
        sock.settimeout(30)
        received = read_to_end(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert len(body) == BIG_RESPONSE


def test_bytes_read_with_a_closing_request_make_the_close_linger(origin, make_proxy):
    # The next request comes in the same read as one that closes the connection: it is
    # dropped unread, and the client may well send more after it.
    proxy = make_proxy([site(origin.url)])
    with small_buffer_connection(proxy) as sock:
        sock.sendall(
            b"GET /bytes?n=%d HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
            b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n" % STREAMED_RESPONSE
        )
        received = read_until_vhostd_ends_writing(proxy, sock)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")  # a reset, if closed
        received += read_to_end(sock)
    assert len(body_of(received)) == STREAMED_RESPONSE


def test_a_graceful_stop_lingers_after_the_last_answer(origin, make_proxy):
    # SIGTERM while an answer streams and the client has begun its next head: the answer
    # ends the connection, and the rest of that head arrives after it.
    proxy = make_proxy([site(origin.url)])
    with small_buffer_connection(proxy) as sock:
        sock.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % BIG_RESPONSE)
        received = sock.recv(65536)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHo")
        assert proxy.process is not None
        proxy.process.send_signal(signal.SIGTERM)
        received += read_until_vhostd_ends_writing(proxy, sock)
        sock.sendall(b"st: a.test\r\n\r\n")  # a reset, if closed
        received += read_to_end(sock)
    assert len(body_of(received)) == BIG_RESPONSE


def test_a_close_with_nothing_unread_does_not_linger(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"lingering_timeout": "30s"})
    for path, host in (("/echo", "a.test"), ("/echo", "nowhere.test")):  # backend; local 503
        with proxy.connect() as sock:
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                         % (path.encode(), host.encode()))
            read_to_end(sock)
            wait_for(lambda: not proxy.holds(sock), timeout=5)


def test_a_refused_upload_is_read_to_its_end_and_gets_its_413(origin, make_proxy):
    # curl's case: the whole body is written before the answer is read.
    proxy = make_proxy([site(origin.url, max_body_size="1k")])
    with refused_upload(proxy, 20_000_000) as sock:
        sock.sendall(b"x" * 20_000_000)  # a reset would raise here
        response = read_response(sock)
        assert response.status == 413
        assert sock.recv(1) == b""  # then the end of the stream, not a reset
    assert origin.received == []


def test_bytes_after_the_answer_are_dropped_until_the_client_closes(origin, make_proxy):
    proxy = make_proxy([site(origin.url, max_body_size="1k")])
    with refused_upload(proxy, 5_000_000) as sock:
        assert read_response(sock).status == 413
        assert sock.recv(1) == b""  # vhostd is done writing...
        for _ in range(32):
            sock.sendall(b"x" * 65536)  # ...and still reads: no reset, no broken pipe
        assert proxy.holds(sock)
        sock.shutdown(socket.SHUT_WR)
        wait_for(lambda: not proxy.holds(sock))  # closed on the client's FIN
    assert origin.received == []


def test_a_silent_client_is_let_go_after_the_lingering_timeout(origin, make_proxy):
    proxy = make_proxy(
        [site(origin.url, max_body_size="1k")], server={"lingering_timeout": "2s"}
    )
    with refused_upload(proxy, 5_000) as sock:
        assert read_response(sock).status == 413
        assert proxy.holds(sock)  # it lingers...
        wait_for(lambda: not proxy.holds(sock), timeout=10)  # ...then lets go


def test_a_client_that_never_stops_sending_is_let_go_after_the_lingering_time(
    origin, make_proxy
):
    proxy = make_proxy(
        [site(origin.url, max_body_size="1k")],
        server={"lingering_time": "1s", "lingering_timeout": "5s"},
    )
    with refused_upload(proxy, 10**12) as sock:
        assert read_response(sock).status == 413
        sock.settimeout(10)
        deadline = time.monotonic() + 20
        sock.sendall(b"x" * 65536)
        assert proxy.holds(sock)  # it lingers...
        cut = False
        while not cut and time.monotonic() < deadline:
            try:
                sock.sendall(b"x" * 65536)
            except OSError:  # ...and resets once it closes
                cut = True
        assert cut
        assert not proxy.holds(sock)
