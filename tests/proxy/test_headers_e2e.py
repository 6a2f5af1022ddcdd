"""Header rules end to end: forwarding headers, trusted proxies, hop-by-hop removal."""

from __future__ import annotations

from tests.support.raw_backend import answer_in_pieces
from tests.support.vhostd import build_request, read_response, site


def test_forwarding_headers_are_set_and_client_values_dropped(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    seen = proxy.request(
        "/echo",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "Connection": "X-Secret",
            "X-Secret": "hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy": "http://evil",
            "Proxy-Connection": "keep-alive",
            "Upgrade": "h2c",
        },
    ).json()
    headers = dict(seen["headers"])
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Real-IP"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] == "a.test"
    assert headers["X-Forwarded-Port"] == str(proxy.port)
    for gone in ("X-Secret", "Keep-Alive", "TE", "Proxy", "Proxy-Connection", "Upgrade"):
        assert gone not in headers, gone


def test_forwarding_headers_read_by_the_scanner_are_replaced_as_by_httptools(origin, make_proxy):
    """A plain GET is read by the C scanner, one with a Connection option by httptools."""
    proxy = make_proxy([site(origin.url)])
    spoofed = {
        "X-Forwarded-For": "6.6.6.6",
        "x-real-ip": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.test",
        "X-Forwarded-Port": "1",
        "Forwarded": "for=6.6.6.6",
    }
    seen = [
        proxy.request("/echo", headers={**spoofed, **extra}).json()["headers"]
        for extra in ({}, {"Connection": "X-Secret", "X-Secret": "1"})
    ]
    assert seen[0] == seen[1]
    names = [name.lower() for name, _ in seen[0]]
    for name in ("x-forwarded-for", "x-real-ip", "x-forwarded-proto", "x-forwarded-host"):
        assert names.count(name) == 1, name
    assert "forwarded" not in names
    headers = dict(seen[0])
    assert headers["X-Forwarded-For"] == headers["X-Real-IP"] == "127.0.0.1"
    assert (headers["X-Forwarded-Proto"], headers["X-Forwarded-Host"]) == ("http", "a.test")
    assert headers["X-Forwarded-Port"] == str(proxy.port)


def test_trusted_proxy_values_are_kept_and_appended(origin, make_proxy):
    proxy = make_proxy([site(origin.url)], server={"trusted_proxies": ["127.0.0.0/8"]})
    headers = dict(
        proxy.request(
            "/echo", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        ).json()["headers"]
    )
    assert headers["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "https"
    posted = proxy.request(
        "/echo", method="POST", body=b"b", headers={"X-Real-IP": "203.0.113.9"}
    ).json()
    assert dict(posted["headers"])["X-Real-IP"] == "203.0.113.9"
    assert posted["body"] == "b"


def test_hop_by_hop_response_headers_are_removed(origin, make_proxy):
    proxy = make_proxy([site(origin.url)])
    response = proxy.request("/chunked")
    assert response.body == b"hello world"
    names = [k.lower() for k, _ in response.headers]
    assert names.count("transfer-encoding") <= 1
    assert "keep-alive" not in names


def test_targets_and_methods_reach_the_backend_as_sent(origin, make_proxy):
    """A query as browsers send it unescaped and a CORS preflight, read by the C scanner and
    (with a Connection option) by httptools: the backend gets the same method and target."""
    proxy = make_proxy([site(origin.url)])
    target = '/echo?filter[status]=1&ids[]=2&q={"a":1}|x^y`z\\w'
    with proxy.connect() as sock:
        for method in ("GET", "OPTIONS"):
            for extra in ({}, {"Connection": "X-Secret", "X-Secret": "1"}):
                sock.sendall(build_request(method, target, headers=extra))
                assert read_response(sock).status == 200
    sent = [(r.method, r.target) for r in origin.received]
    assert sent == [("GET", target)] * 2 + [("OPTIONS", target)] * 2


STATUS_LINES = [  # what the backend sends, what the client gets (always HTTP/1.1)
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 200 OK\r\n"),
    (b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 200 \r\n"),  # SP is not optional
    (b"HTTP/1.0 418 I'm a teapot\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
     b"HTTP/1.1 418 I'm a teapot\r\n"),
    (b"HTTP/1.1 404 Pas trouv\xc3\xa9\r\nContent-Length: 0\r\n\r\n", b"HTTP/1.1 404 Pas trouv\xc3\xa9\r\n"),
    # a 1xx first: httptools reads it, and vhostd writes the line itself
    (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Made\r\nContent-Length: 0\r\n\r\n",
     b"HTTP/1.1 201 Made\r\n"),
]


def test_status_lines_reach_the_client_as_http_1_1_with_the_backends_reason(
    raw_backend, make_proxy
):
    backend = raw_backend(answer_in_pieces([answer] for answer, _ in STATUS_LINES))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        for _, expected in STATUS_LINES:
            sock.sendall(build_request("GET", "/"))
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert received.split(b"\r\n", 1)[0] + b"\r\n" == expected
    assert backend.connections == 1
