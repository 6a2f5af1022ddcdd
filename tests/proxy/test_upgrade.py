"""Upgrade (WebSocket and others) becomes a byte tunnel that survives route reloads."""

from __future__ import annotations

import socket

from tests.support.vhostd import read_response, read_to_end, wait_for

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "tunnel closed"
        data += chunk
    return data


def test_websocket_echo_survives_route_reload(origin, make_origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    with proxy.connect() as sock:
        sock.sendall(UPGRADE)
        response = read_response(sock)
        assert response.status == 101 and response.upgraded
        assert response.header("Upgrade") == "websocket"
        sock.sendall(b"ping-1")
        assert recv_exactly(sock, 6) == b"ping-1"
        # Re-point the site elsewhere and add one: the live tunnel must not notice.
        other = make_origin("other")
        (proxy.workdir / "sites.d" / "b.toml").write_text(
            f'[[site]]\nname = "b"\nhosts = ["b.test"]\nbackends = ["{other.url}"]\n'
        )
        wait_for(lambda: proxy.request("/name", host="b.test").body == b"other")
        big = b"z" * 300_000
        sock.sendall(big)
        assert recv_exactly(sock, len(big)) == big
        sock.sendall(b"ping-2")
        assert recv_exactly(sock, 6) == b"ping-2"


def test_upgrade_refused_by_backend_is_a_normal_response(origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    with proxy.connect() as sock:
        sock.sendall(UPGRADE.replace(b"/ws", b"/echo"))
        response = read_response(sock)
        assert response.status == 200
        assert not response.upgraded


def test_half_close_travels_through_the_tunnel(origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    idle = proxy.open_sockets()
    with proxy.connect() as sock:
        sock.sendall(UPGRADE)
        assert read_response(sock).status == 101
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_end(sock) == b"last words"
        # both directions have ended: vhostd closes both sides (it used to keep them open)
        wait_for(lambda: proxy.open_sockets() == idle)
