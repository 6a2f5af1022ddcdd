"""Requests and responses through a real vhostd to a real origin: routing, framing, keep-alive."""

from __future__ import annotations

import json
import socket
import threading
import time

from tests.support.vhostd import build_request, read_response, read_to_end, site, wait_for


def test_get_routes_by_host_and_passes_host_through(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    response = proxy.request("/echo", host="A.Test.:8080")
    assert response.status == 200
    seen = response.json()
    assert dict(seen["headers"])["Host"] == "A.Test.:8080"
    assert proxy.request("/echo", host="unknown.test").status == 503


def test_longest_path_prefix_and_dest(make_origin, make_proxy):
    main, api = make_origin("main"), make_origin("api")
    proxy = make_proxy(
        [
            {"name": "main", "hosts": ["a.test"], "backends": [main.url]},
            {"name": "api", "hosts": ["a.test"], "path": "/api/", "dest": "/echo/",
             "backends": [api.url]},
        ]
    )
    response = proxy.request("/api/v1?x=1", host="a.test")
    assert response.json()["origin"] == "api"
    assert response.json()["target"] == "/echo/v1?x=1"
    assert proxy.request("/echo", host="a.test").json()["origin"] == "main"


def test_keep_alive_reuses_client_and_upstream_connections(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        for _ in range(5):
            sock.sendall(build_request("GET", "/echo"))
            assert read_response(sock).status == 200
    assert origin.connections == 1


def test_pipelined_requests_are_answered_in_order(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(b"".join(build_request("GET", f"/echo?n={i}") for i in range(10)))
        targets = [read_response(sock).json()["target"] for _ in range(10)]
    assert targets == [f"/echo?n={i}" for i in range(10)]


def test_head_and_no_body_statuses_are_framed_without_body(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("HEAD", "/bytes?n=5000"))
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Content-Length: 5000" in head
        assert head.endswith(b"\r\n\r\n")  # no body bytes follow
        for code in (204, 304):
            sock.sendall(build_request("GET", f"/status?code={code}"))
            response = read_response(sock)
            assert response.status == code and response.body == b""
        sock.sendall(build_request("GET", "/echo"))  # the connection is still in sync
        assert read_response(sock).status == 200


def test_chunked_and_close_delimited_responses(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/chunked"))
        response = read_response(sock)
        assert response.body == b"hello world"
        sock.sendall(build_request("GET", "/close"))
        response = read_response(sock)
        assert response.body == b"until close"
        assert response.header("Transfer-Encoding") == "chunked"  # 1.1 client stays alive
        sock.sendall(build_request("GET", "/echo"))
        assert read_response(sock).status == 200


def test_http10_client_gets_close_delimited_body(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(b"GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n")
        sock.settimeout(5)
        data = read_to_end(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding" not in head
    assert body == b"hello world"


def test_http10_keep_alive(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        for _ in range(2):
            sock.sendall(b"GET /echo HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n")
            response = read_response(sock)
            assert response.status == 200
            assert response.header("Connection") == "keep-alive"


def test_request_bodies_stream_with_length_and_chunked(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("POST", "/echo", body=b"hello"))
        assert read_response(sock).json()["body"] == "hello"
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        )
        seen = read_response(sock).json()
        assert seen["body"] == "abcde"
        assert dict(seen["headers"])["Transfer-Encoding"] == "chunked"


def test_a_head_and_the_body_read_with_it_reach_the_backend_in_one_packet(origin, make_proxy):
    """Two writes would be two packets, each a trip through the kernel on both sides."""
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        # the first waits for a new backend connection; the others find it in the pool
        sock.sendall(build_request("POST", "/echo", body=b"first"))
        assert read_response(sock).json()["body"] == "first"
        sock.sendall(build_request("POST", "/echo", body=b"second"))
        assert read_response(sock).json()["body"] == "second"
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nthird\r\n0\r\n\r\n"
        )
        assert read_response(sock).json()["body"] == "third"
        # a large body leaves beside its head (writev, not copied); a young loopback
        # connection can send at most 32 KiB per packet (ss shows mss:32768), so not counted
        large = b"4" * 40_000
        sock.sendall(build_request("POST", "/echo", body=large))
        assert read_response(sock).json()["body"] == large.decode()
    assert origin.connections == 1
    assert [seen.segments for seen in origin.received[:3]] == [1, 2, 3]


def test_pipelined_requests_with_bodies_keep_their_bodies_and_order(origin, make_proxy):
    """Read by the C scanner when each body is whole in the read."""
    proxy = make_proxy([site(origin.url)])
    sent = [("POST", b"a=1&b=2"), ("PUT", b""), ("GET", b""), ("PATCH", b"{}"), ("DELETE", b"x")]
    requests = [build_request(m, f"/echo?n={i}", body=b) for i, (m, b) in enumerate(sent)]
    with proxy.connect() as sock:
        sock.sendall(b"".join(requests))
        seen = [read_response(sock).json() for _ in sent]
    assert [(s["method"], s["body"].encode()) for s in seen] == sent
    assert [s["target"] for s in seen] == [f"/echo?n={i}" for i in range(len(sent))]


def test_requests_read_by_the_scanner_and_by_httptools_mix_in_one_pipeline(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    first = (
        build_request("POST", "/echo?n=0", body=b"zero")
        + b"GET /echo?n=1 HTTP/1.1\r\nHost: a.test\r\nConnection: x-s\r\nX-S: 1\r\n\r\n"
        + build_request("POST", "/echo?n=2", body=b"two", headers={"X-Forwarded-For": "6.6.6.6"})
        + b"GET /echo?n=3 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nget"
        + b"POST /echo?n=4 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\n\r\nfo"
    )
    then = b"ur" + b"POST /echo?n=5 HTTP/1.0\r\nHost: a.test\r\nContent-Length: 4\r\n\r\nfive"
    with proxy.connect() as sock:
        sock.sendall(first)
        sock.sendall(then)
        seen = [read_response(sock).json() for _ in range(6)]
    bodies = ["zero", "", "two", "get", "four", "five"]
    assert [(s["target"], s["body"]) for s in seen] == [
        (f"/echo?n={i}", body) for i, body in enumerate(bodies)
    ]
    assert {dict(s["headers"])["X-Forwarded-For"] for s in seen} == {"127.0.0.1"}


def test_a_body_that_arrives_in_pieces_is_forwarded_whole(origin, make_proxy):
    """However the reads fall: a head cut short goes to httptools; a whole head is read by
    the scanner, and the rest of its body counted down as it arrives."""
    proxy = make_proxy([site(origin.url)])
    request = build_request("POST", "/echo", body=b"0123456789" * 1000)
    with proxy.connect() as sock:
        for cut in (40, len(request) - 5000, len(request) - 1):
            sock.sendall(request[:cut])
            sock.sendall(request[cut:])
            assert read_response(sock).json()["body"] == "0123456789" * 1000


def test_a_body_cut_anywhere_ends_at_its_length_and_the_next_request_follows(
    origin, make_proxy
):
    proxy = make_proxy([site(origin.url)])
    post = build_request("POST", "/echo", body=b"a=1&b=22&c=333")
    head_end = post.index(b"\r\n\r\n") + 4
    with proxy.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each piece sent at once
        for cut in range(head_end, len(post)):
            sock.sendall(post[:cut])
            time.sleep(0.001)  # likely two reads for the proxy; one would also pass
            sock.sendall(post[cut:] + build_request("GET", f"/echo?after={cut}"))
            assert read_response(sock).json()["body"] == "a=1&b=22&c=333"
            assert read_response(sock).json()["target"] == f"/echo?after={cut}"
    assert len(origin.received) == 2 * (len(post) - head_end)


def test_nothing_after_a_closing_request_is_read_when_its_body_came_in_pieces(
    origin, make_proxy
):
    proxy = make_proxy([site(origin.url)])
    post = build_request("POST", "/echo", body=b"0123456789", close=True)
    with proxy.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(post[:-7])
        time.sleep(0.001)  # likely two reads for the proxy; one would also pass
        sock.sendall(post[-7:] + build_request("POST", "/echo?after", body=b"hello"))
        response = read_response(sock)
        assert response.json()["body"] == "0123456789"
        assert response.header("Connection") == "close"
        sock.settimeout(10)
        assert sock.recv(65536) == b""
    assert [r.target for r in origin.received] == ["/echo"]


def test_expect_100_continue_is_answered_before_the_body(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        sock.settimeout(5)
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        seen = read_response(sock).json()
    assert seen["body"] == "data"
    assert "Expect" not in dict(seen["headers"])


def test_an_invalid_host_gets_400_and_never_reaches_backend(origin, make_proxy):
    # a site answering every host, so that only the check stands between them and it
    proxy = make_proxy([site(origin.url, hosts=["~."])])
    for host in (b"a/b", b"a@b", b"a b", b"a\\b", b"a\x80b", b"x" * 1025, b""):
        with proxy.connect() as sock:
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % host)
            assert read_response(sock).status == 400, host
    assert origin.received == []
    assert proxy.request("/echo", host="a-b.c_d:80").status == 200  # and a valid one passes


def test_body_over_max_body_size_gets_413_and_never_reaches_backend(origin, make_proxy):
    proxy = make_proxy([site(origin.url, max_body_size="1k")])
    response = proxy.request("/echo", method="POST", body=b"x" * 2000)
    assert response.status == 413
    with proxy.connect() as sock:
        sock.sendall(
            b"POST /sink HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"400\r\n" + b"y" * 1024 + b"\r\n" + b"400\r\n" + b"y" * 1024 + b"\r\n0\r\n\r\n"
        )
        assert read_response(sock).status == 413
    assert all(r.target != "/echo" for r in origin.received)


def test_a_413_closes_the_connection_once_and_nothing_after_it_runs(origin, make_proxy, tmp_path):
    log_path = tmp_path / "access.log"
    proxy = make_proxy(
        [site(origin.url, max_body_size="10")],
        server={"access_log": str(log_path), "access_log_format": "json"},
    )
    with proxy.connect() as sock:
        sock.sendall(build_request("POST", "/echo", body=b"x" * 20) + build_request("GET", "/echo"))
        assert read_response(sock).status == 413
        sock.settimeout(10)
        assert sock.recv(65536) == b""  # closed, the GET after it never answered
    assert proxy.request("/echo?after").status == 200
    lines = wait_for(
        lambda: log_path.exists() and "after" in log_path.read_text() and log_path.read_text()
    )
    assert [json.loads(line)["status"] for line in lines.splitlines()] == [413, 200]
    assert [r.target for r in origin.received] == ["/echo?after"]


def test_unreachable_backend_is_502_and_default_site_catches_unknown_hosts(origin, make_proxy):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening
        proxy = make_proxy(
            [
                {"name": "dead", "hosts": ["dead.test"], "backends": [dead]},
                {"name": "fallback", "hosts": ["fallback.test"], "default": True,
                 "backends": [origin.url]},
            ]
        )
        assert proxy.request("/", host="dead.test").status == 502
    assert proxy.request("/echo", host="whatever.test").json()["origin"] == "origin"


def test_refused_backend_is_skipped_for_another(origin, make_proxy):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
        proxy = make_proxy([site(origin.url, backends=[dead, origin.url])])
        statuses = [proxy.request("/echo").status for _ in range(6)]
        posts = [proxy.request("/echo", method="POST", body=b"x").status for _ in range(4)]
    assert statuses == [200] * 6
    assert posts == [200] * 4


def test_backend_closing_idle_pooled_connections_costs_no_request(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/echo"))
        assert read_response(sock).status == 200
        origin.stop()  # closes every pooled connection on the backend side
        origin.start()  # same port
        for _ in range(3):
            sock.sendall(build_request("GET", "/echo"))
            assert read_response(sock).status == 200


class Slammer:
    """A backend that accepts connections and closes them at once (a replica going away)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def test_idempotent_requests_move_off_a_backend_that_drops_connections(origin, make_proxy):
    slammer = Slammer()
    try:
        proxy = make_proxy([site(origin.url, backends=[slammer.url, origin.url])])
        statuses = [proxy.request("/echo").status for _ in range(6)]
        assert statuses == [200] * 6
        assert slammer.accepted >= 1  # it was tried, and the request moved on
    finally:
        slammer.sock.close()


def test_idle_connections_to_a_backend_leaving_the_routes_are_closed(make_origin, make_proxy):
    old, new = make_origin("old"), make_origin("new")
    proxy = make_proxy()
    site_file = proxy.workdir / "sites.d" / "a.toml"
    site_file.write_text(f'[[site]]\nname = "a"\nhosts = ["a.test"]\nbackends = ["{old.url}"]\n')
    wait_for(lambda: proxy.request("/name").body == b"old")
    assert old.connections == 1 and old.closed == 0  # pooled, kept open
    site_file.write_text(f'[[site]]\nname = "a"\nhosts = ["a.test"]\nbackends = ["{new.url}"]\n')
    wait_for(lambda: proxy.request("/name").body == b"new")
    wait_for(lambda: old.closed == 1, timeout=5)
