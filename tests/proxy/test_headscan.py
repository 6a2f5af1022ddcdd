"""The C head scanner against httptools: whatever it accepts, llhttp reads the same way.

The proxy trusts scan_response() and scan_request() in place of httptools for simple heads,
so every head they accept must be one llhttp accepts with the same status or method and
target, keep-alive, length, status line and headers; anything else must come back as None
(parsed by httptools). Checked on realistic heads and on every one-byte change, insertion,
deletion and truncation of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httptools
import pytest

from tests.support.mutations import one_byte_variants
from vhostd.proxy.headers import REQUEST_RULES, RESPONSE_RULES
from vhostd.proxy.request import valid_host

headscan = pytest.importorskip("vhostd.proxy._headscan", reason="make native builds it")
scan_response = headscan.scan_response
scan_request = headscan.scan_request

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
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: keep-alive\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\ntransfer-encoding:  Chunked \r\nConnection: close\r\n\r\n",
    # values longer than the 16 bytes the scanner checks at a time, and what may be in them
    b"HTTP/1.1 200 Everything Is Fine Here\r\nContent-Security-Policy: default-src 'self';"
    b" img-src * data:\tblob:\r\nX-Obs: caf\xc3\xa9 \xff\x80~ \x7e\x20!\r\nContent-Length: 1\r\n\r\n",
]
# bytes around every boundary of what a value may hold (HTAB, SP to ~, obs-text) and of
# the letters, digits and '-' that the scanner takes 16 at a time in a name
MUTATIONS = [b"\x00", b"\x08", b"\t", b"\x0b", b"\x1f", b" ", b"\r", b"\n", b":", b",",
             b"~", b"\x7f", b"\x80", b"\xff", b"A", b"0", b"-", b"/", b"@", b"[", b"_",
             b"`", b"{"]


class Recorder:
    """What llhttp reports for one message, through httptools' callbacks."""

    def __init__(self, parser_class: type) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = self.url = self.body = b""
        self.head_complete = self.message_complete = self.keep_alive = False
        self.parser = parser_class(self)

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_headers_complete(self) -> None:
        self.head_complete = True
        self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.message_complete = True


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
    body_from, status, keep_alive, length, length_line, status_line, kept, chunked = scanned
    recorder = Recorder(httptools.HttpResponseParser)
    recorder.parser.feed_data(data[:body_from])  # raises if llhttp rejects what we took
    assert recorder.head_complete, data
    if chunked and status not in (204, 304):  # llhttp reads a chunked body after it
        recorder.parser.feed_data(b"2\r\nok\r\n0\r\n\r\n")
        assert recorder.body == b"ok" and recorder.message_complete, data
    assert status == recorder.parser.get_status_code()
    assert keep_alive == recorder.keep_alive, data
    # the line the client gets: HTTP/1.1 whatever the backend spoke, its code and reason
    assert status_line == b"HTTP/1.1 %d %s\r\n" % (status, recorder.reason), data
    received = [(n, v.strip(b" \t")) for n, v in recorder.headers]
    lengths = [v for n, v in received if n.lower() == b"content-length"]
    expected = (b"Content-Length: %s\r\n" % lengths[0], int(lengths[0])) if lengths else (None, -1)
    assert (length_line, length) == expected, data
    forwarded = [(n, v) for n, v in received if n.lower() not in headscan.RESPONSE_NAMES]
    assert _lines(kept) == forwarded, data


def variants(head: bytes) -> Iterator[bytes]:
    return one_byte_variants(head, MUTATIONS)


def test_header_names_match_the_rules_of_headers_py() -> None:
    assert set(headscan.RESPONSE_NAMES) == set(RESPONSE_RULES)
    assert set(headscan.REQUEST_NAMES) == set(REQUEST_RULES)


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
        # chunked framing that is not the plain kind
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\tchunked\r\n\r\n",  # llhttp: not chunked
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n",
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


# --- requests ----------------------------------------------------------------------------

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n",
    b"GET /a/b.css?v=1&x=%20y HTTP/1.1\r\nHost: a.test:8080\r\nUser-Agent: Mozilla/5.0 (X11)\r\n"
    b"Accept: text/css,*/*;q=0.1\r\nAccept-Language: de-CH,de;q=0.9\r\nAccept-Encoding: gzip\r\n"
    b"Referer: https://a.test/\r\nCookie: s=1; t=2\r\nConnection: keep-alive\r\nDNT: 1\r\n\r\n",
    b"HEAD /x HTTP/1.0\r\nhost:a.test\r\nConnection: Keep-Alive\r\nKeep-Alive: 5\r\n\r\n",
    b"GET /~u/@x:1;p=2,3!$'()*+ HTTP/1.0\r\n\r\n",
    b"GET /s HTTP/1.1\r\nHOST:  a.test\r\nX-Pad: v \t\r\nAuthorization: Basic dTpw\r\nTE: trailers\r\n"
    b"Proxy: x\r\nTrailer: y\r\nProxy-Connection: close\r\nX-Empty:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close, upgrade\r\nX-A: \xc3\xa9\r\n\r\n",
    # a client's own forwarding headers: dropped (the proxy writes its own)
    b"GET /f HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nHost: a.test\r\n"
    b"x-forwarded-proto: https\r\nX-Real-IP: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\n"
    b"X-Forwarded-Host: b.test\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Server: kept\r\n\r\n",
    # bodies with a Content-Length, whole in the read
    b"POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 7\r\n\r\na=1&b=2",
    b"PUT /f HTTP/1.0\r\ncontent-length:003\r\nConnection: keep-alive\r\n\r\nabcGET",
    b"DELETE /x/1 HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n",
    b"PATCH /p HTTP/1.1\r\nContent-Length: 2\r\nHost: a.test\r\n\r\n{}",
    # a CORS preflight; a query as browsers send it unescaped
    b"OPTIONS /api/items HTTP/1.1\r\nHost: a.test\r\nOrigin: https://b.test\r\n"
    b"Access-Control-Request-Method: PUT\r\n\r\n",
    b'GET /list.php?filter[status]=1&ids[]=2&q={"a":1}|x^y`z\\w<> HTTP/1.1\r\nHost: a.test\r\n\r\n',
    # a browser's long values, over several of the scanner's 16-byte steps
    b"GET /shop HTTP/1.1\r\nHost: a.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
    b"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n"
    b"Cookie: PHPSESSID=abc123; _ga=GA1.1.1234;\tpref=caf\xc3\xa9\r\n\r\n",
]


def request_agrees_with_llhttp(data: bytes) -> None:
    """If the scanner accepts `data`, llhttp must read that request the same way."""
    scanned = scan_request(data, 0, 100, 16384, False)
    if scanned is None:
        return
    head_end, method, target, version, keep_alive, host, authorization, kept, count, length = (
        scanned
    )
    body = data[head_end : head_end + max(length, 0)]  # or the part of it in the read
    recorder = Recorder(httptools.HttpRequestParser)
    recorder.parser.feed_data(data[:head_end] + body)  # raises if llhttp rejects what we took
    assert recorder.head_complete, data
    # a whole request and just that, or one whose body goes on in the next reads
    assert recorder.message_complete == (len(body) == max(length, 0)), data
    assert recorder.body == body, data
    parser = recorder.parser
    assert (method, target) == (parser.get_method(), recorder.url), data
    assert version == parser.get_http_version().encode(), data
    assert keep_alive == recorder.keep_alive, data
    received = [(n, v.strip(b" \t")) for n, v in recorder.headers]
    assert count == len(received)
    # as httptools hands them over (trailing whitespace kept): the values the slow path sees
    hosts = [v for n, v in recorder.headers if n.lower() == b"host"]
    assert host == (hosts[0] if hosts else None), data
    auths = [v for n, v in recorder.headers if n.lower() == b"authorization"]
    assert authorization == (auths[0] if auths else None), data
    lengths = [int(v) for n, v in received if n.lower() == b"content-length"]
    assert length == (lengths[0] if lengths else -1), data
    forwarded = [
        (b"Host" if n.lower() == b"host" else n, v)
        for n, v in received
        if n.lower() not in headscan.REQUEST_NAMES or n.lower() == b"host"
    ]
    assert _lines(kept) == forwarded, data


@pytest.mark.parametrize("head", REQUESTS)
def test_accepts_the_common_requests_as_llhttp_reads_them(head: bytes) -> None:
    assert scan_request(head, 0, 100, 16384, False) is not None
    request_agrees_with_llhttp(head)


@pytest.mark.parametrize("head", REQUESTS)
def test_every_request_variant_it_accepts_llhttp_reads_the_same(head: bytes) -> None:
    for data in variants(head):
        request_agrees_with_llhttp(data)


def test_pipelined_requests_are_read_one_after_another() -> None:
    data = REQUESTS[0] + REQUESTS[2] + b"POST / HTTP/1.1\r\n"
    first = scan_request(data, 0, 100, 16384, False)
    assert first is not None and first[0] == len(REQUESTS[0])
    second = scan_request(data, first[0], 100, 16384, False)
    assert second is not None and second[0] == len(REQUESTS[0] + REQUESTS[2])
    assert second[1:4] == (b"HEAD", b"/x", b"1.0")
    assert scan_request(data, second[0], 100, 16384, False) is None


def test_a_head_is_taken_with_as_much_of_its_body_as_the_read_holds() -> None:
    head = b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
    for size in range(10):
        scanned = scan_request(head + b"x" * size, 0, 100, 16384, False)
        assert scanned is not None and (scanned[0], scanned[9]) == (len(head), 10)
    whole = scan_request(head + b"x" * 10 + b"GET", 0, 100, 16384, False)
    assert whole is not None
    assert (whole[0], whole[1], whole[9]) == (len(head), b"POST", 10)


def test_limits_leave_the_refusal_to_httptools() -> None:
    head = REQUESTS[1]  # 9 headers
    assert scan_request(head, 0, 9, len(head), False) is not None
    assert scan_request(head, 0, 8, len(head), False) is None  # 431 from the slow path
    assert scan_request(head, 0, 9, len(head) - 1, False) is None


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\nx",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        b"PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POSTX / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret\r\nX-Secret: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a \r\n\r\n",  # httptools keeps the space: refused there
        b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\t\r\n\r\n",
    ],
)
def test_leaves_every_other_request_to_httptools(data: bytes) -> None:
    assert scan_request(data, 0, 100, 16384, False) is None


def test_a_host_is_taken_only_where_valid_host_takes_it() -> None:
    """The fast path skips request.valid_host() for a host the scanner returns: the scanner
    must take exactly the hosts valid_host() takes (any other is refused on the slow path)."""
    hosts = [b"a" + bytes([byte]) + b"b" for byte in range(256) if byte not in b"\r\n"]
    hosts += [b"", b"x" * 1024, b"x" * 1025, b"[::1]:8080", b"a-b.c_d:80"]
    for host in hosts:
        scanned = scan_request(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host, 0, 100, 16384, False)
        assert (scanned is not None) == valid_host(host), host
        assert scanned is None or scanned[5] == host


@pytest.mark.parametrize(
    "name", [b"X-Forwarded-For", b"x-forwarded-proto", b"X-Forwarded-Host", b"X-Forwarded-Port",
             b"X-Real-IP", b"Forwarded"]
)
def test_forwarding_headers_of_a_trusted_proxy_go_to_the_slow_path(name: bytes) -> None:
    """It extends a trusted proxy's chain; an untrusted client's headers are dropped."""
    data = b"GET / HTTP/1.1\r\nHost: a\r\n%s: 10.0.0.1\r\nX-Other: 1\r\n\r\n" % name
    assert scan_request(data, 0, 100, 16384, True) is None
    scanned = scan_request(data, 0, 100, 16384, False)
    assert scanned is not None
    assert scanned[7] == b"Host: a\r\nX-Other: 1\r\n"
    assert scanned[8] == 3  # counted against max_headers all the same


# --- header names in any case, under any locale ------------------------------------------

VALUES = {b"connection": b"close", b"proxy-connection": b"close", b"content-length": b"5"}


def _case_variants(name: bytes) -> list[bytes]:
    return [name.upper(), name.title(), bytes(c ^ 0x20 if i % 2 and chr(c).isalpha() else c
                                               for i, c in enumerate(name))]


def _same_reading(first: tuple | None, second: tuple | None) -> bool:
    if first is None or second is None:
        return first is second
    # the same but for the spelling of a name among the forwarded lines
    def folded(reading: tuple) -> tuple:
        return tuple(part.lower() if isinstance(part, bytes) else part for part in reading)

    return folded(first) == folded(second)


@pytest.mark.parametrize("name", sorted(set(headscan.REQUEST_NAMES)))
def test_request_header_names_are_matched_in_any_case(name: bytes) -> None:
    def scan(spelling: bytes):
        value = VALUES.get(name, b"x")
        head = b"POST / HTTP/1.1\r\nHost: a\r\n%s: %s\r\nX: y\r\n\r\n" % (spelling, value)
        body = b"abcde" if name == b"content-length" else b""
        return scan_request(head + body, 0, 100, 16384, False)

    for spelling in _case_variants(name):
        assert _same_reading(scan(name), scan(spelling)), spelling


@pytest.mark.parametrize("name", sorted(set(headscan.RESPONSE_NAMES)))
def test_response_header_names_are_matched_in_any_case(name: bytes) -> None:
    def scan(spelling: bytes):
        value = VALUES.get(name, b"x")
        length = b"" if name == b"content-length" else b"Content-Length: 5\r\n"
        head = b"HTTP/1.1 200 OK\r\n%s%s: %s\r\nX: y\r\n\r\n" % (length, spelling, value)
        return scan_response(head)

    for spelling in _case_variants(name):
        assert _same_reading(scan(name), scan(spelling)), spelling


TURKISH_CHECK = """
import locale
locale.setlocale(locale.LC_ALL, "")
assert locale.setlocale(locale.LC_CTYPE).startswith("tr_TR"), locale.setlocale(locale.LC_CTYPE)
from vhostd.proxy._headscan import scan_request, scan_response
te = b"GET / HTTP/1.1\\r\\nHost: a\\r\\nTRANSFER-ENCODING: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
assert scan_request(te, 0, 100, 16384, False) is None, "a chunked request taken as bodyless"
ip = b"GET / HTTP/1.1\\r\\nHost: a\\r\\nX-REAL-IP: 1.2.3.4\\r\\n\\r\\n"
assert scan_request(ip, 0, 100, 16384, False)[7] == b"Host: a\\r\\n", "a client's X-Real-IP kept"
assert scan_request(ip, 0, 100, 16384, True) is None, "a trusted proxy's X-Real-IP not seen"
close = b"HTTP/1.1 200 OK\\r\\nCONNECTION: close\\r\\nContent-Length: 0\\r\\n\\r\\n"
assert scan_response(close)[2] is False, "Connection: close not seen"
"""


def test_header_names_do_not_depend_on_the_locale(tmp_path) -> None:
    # Under tr_TR, strncasecmp() does not take "I" for "i": TRANSFER-ENCODING would pass.
    made = subprocess.run(
        ["localedef", "-i", "tr_TR", "-f", "UTF-8", str(tmp_path / "tr_TR.UTF-8")],
        capture_output=True,
    )
    if made.returncode not in (0, 1) or not (tmp_path / "tr_TR.UTF-8").exists():
        pytest.skip(f"no tr_TR locale can be built here: {made.stderr.decode()[-200:]}")
    env = dict(os.environ, LOCPATH=str(tmp_path), LC_ALL="tr_TR.UTF-8")
    checked = subprocess.run([sys.executable, "-c", TURKISH_CHECK], env=env, capture_output=True)
    assert checked.returncode == 0, checked.stderr.decode()
