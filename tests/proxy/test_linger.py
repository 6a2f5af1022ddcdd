"""Lingering close: when vhostd ends a connection while the client is still sending, the
last answer reaches the client whole, and the connection still ends in bounded time."""

from __future__ import annotations

import socket
import time

from tests.support.vhostd import read_response, site, wait_for

BIG_RESPONSE = 8_000_000  # more than loopback's largest send buffer (tcp_wmem 4 MiB)


def held_by_vhostd(proxy_port: int, client: socket.socket) -> bool:
    """Is vhostd's end of this loopback connection still an open socket of a process?
    (/proc/net/tcp: a socket its process has closed keeps inode 0 until it is gone.)"""
    client_port = client.getsockname()[1]
    wanted = (f"0100007F:{proxy_port:04X}", f"0100007F:{client_port:04X}")
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == wanted:
                return fields[9] != "0"
    return False


def read_to_end(sock: socket.socket) -> bytes:
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


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
        assert held_by_vhostd(proxy.port, sock)
        sock.shutdown(socket.SHUT_WR)
        wait_for(lambda: not held_by_vhostd(proxy.port, sock))  # closed on the client's FIN
    assert origin.received == []


def test_a_silent_client_is_let_go_after_the_lingering_timeout(origin, make_proxy):
    proxy = make_proxy(
        [site(origin.url, max_body_size="1k")], server={"lingering_timeout": "300ms"}
    )
    with refused_upload(proxy, 5_000) as sock:
        assert read_response(sock).status == 413
        wait_for(lambda: not held_by_vhostd(proxy.port, sock), timeout=10)


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
        cut = False
        while not cut and time.monotonic() < deadline:
            try:
                sock.sendall(b"x" * 65536)
            except OSError:  # reset once vhostd closes
                cut = True
        assert cut
        assert not held_by_vhostd(proxy.port, sock)
