"""Chunked response bodies: passed on as they arrive, their framing checked by the C scanner.

An HTTP/1.1 client gets the backend's own chunks; scan_chunks() (proxy/_chunks.c) says how
far they can go as they are, where the body ends, and where httptools must read on. So
whatever it passes on must be what llhttp reads: checked here on realistic bodies and on
every one-byte change, insertion, deletion and truncation of them. The end-to-end tests
then split bodies at every byte between two reads, with a real vhostd and a raw backend.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Iterator

import httptools
import pytest

from tests.support.mutations import one_byte_variants
from tests.support.raw_backend import RawBackend, answer_in_pieces
from tests.support.vhostd import build_request, read_response, site, wait_for
from vhostd.proxy import upstream
from vhostd.proxy.upstream import RESUME_CHUNKED

chunks = pytest.importorskip("vhostd.proxy._chunks", reason="make native builds it")
scan_chunks = chunks.scan_chunks

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
BODIES = [
    b"5\r\nhello\r\n0\r\n\r\n",
    b"3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n0\r\n\r\n",
    b"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\n\r\n",  # upper-case hex, leading zeros
    b"4\r\n\r\n\r\n\r\n0\r\n\r\n",  # data that looks like framing
    b"5;name=value\r\nhello\r\n0\r\n\r\n",  # an extension: httptools reads it
    b"5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",  # a trailer: httptools reads it
]
MUTATIONS = [b"\x00", b"\t", b" ", b"\r", b"\n", b";", b"0", b"1", b"a", b"G", b"x"]


class Reading:
    """What llhttp makes of a response, fed one byte at a time so that the byte where the
    message ends is known."""

    def __init__(self, data: bytes, skip: int = 0) -> None:
        self.body = b""
        self.end: int | None = None  # in data, after the `skip` bytes of the head
        self.error = False
        parser = httptools.HttpResponseParser(self)
        for i in range(len(data)):
            try:
                parser.feed_data(data[i : i + 1])
            except httptools.HttpParserError:
                self.error = True
                return
            if self.end is not None:
                self.end = i + 1 - skip
                return

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.end = -1  # set to the position once feed_data returns


def variants(body: bytes) -> Iterator[bytes]:
    return one_byte_variants(body, MUTATIONS)


def agrees_with_llhttp(body: bytes) -> str:
    """Scan `body` whole; check what is passed on against llhttp's reading of it."""
    whole = Reading(HEAD + body, len(HEAD))
    stop, state = scan_chunks(body, 0, chunks.START)
    passed = Reading(HEAD + body[:stop], len(HEAD))  # what the client reads of it
    assert not passed.error, body
    if state == chunks.DONE:
        assert (whole.end, whole.body) == (stop, passed.body), body
        assert passed.end == stop, body
        return "done"
    assert passed.end is None, body  # passed on, but not complete
    if state == chunks.BAD:
        assert whole.error, body
        return "bad"
    if state == chunks.SLOW:  # httptools reads on from a chunk-size line
        rest = Reading(RESUME_CHUNKED + body[stop:], len(RESUME_CHUNKED))
        assert rest.error == whole.error, body
        if not whole.error:
            assert passed.body + rest.body == whole.body, body
            assert whole.end == (None if rest.end is None else stop + rest.end), body
        return "slow"
    assert state > 0 and not whole.error and whole.end is None, body  # more to come
    held = body[stop:]
    assert len(held) <= 20 and b"\n" not in held.rstrip(b"\r\n")[:-1], body
    return "more"


def test_every_variant_is_passed_on_as_llhttp_reads_it() -> None:
    outcomes = {agrees_with_llhttp(variant) for body in BODIES for variant in variants(body)}
    assert outcomes == {"done", "more", "slow", "bad"}  # every kind of outcome was checked


def test_the_states_are_the_ones_upstream_py_names() -> None:
    names = ("START", "DONE", "SLOW", "BAD")
    assert [getattr(chunks, n) for n in names] == [getattr(upstream, f"CHUNKS_{n}") for n in names]


def test_plain_bodies_are_passed_on_whole_and_others_left_at_a_line() -> None:
    assert scan_chunks(BODIES[1], 0, chunks.START) == (len(BODIES[1]), chunks.DONE)
    assert scan_chunks(BODIES[2] + b"HTTP/1.1", 0, chunks.START) == (len(BODIES[2]), chunks.DONE)
    assert scan_chunks(BODIES[4], 0, chunks.START) == (0, chunks.SLOW)
    assert scan_chunks(BODIES[5], 0, chunks.START) == (10, chunks.SLOW)  # at "0\r\n"
    assert scan_chunks(b"5\r\nhelloX", 0, chunks.START) == (8, chunks.BAD)
    assert scan_chunks(b"f" * 15 + b"\r\n", 0, chunks.START)[1] > 0  # 60 bits go on
    assert scan_chunks(b"f" * 16 + b"\r\n", 0, chunks.START) == (0, chunks.SLOW)


def passed_on(reads: list[bytes]) -> tuple[bytes, int]:
    """What goes on to the client of a body arriving in `reads`, and the last state, as
    _relay_chunks does it: the unfinished line at the end of a read is held for the next."""
    state, held, passed = chunks.START, b"", b""
    for read in reads:
        data = held + read
        stop, state = scan_chunks(data, 0, state)
        passed += data[:stop]
        held = data[stop:] if state > 0 else b""
        if state <= 0:
            break
    return passed, state


def test_a_body_scanned_read_by_read_ends_where_it_ends_whole() -> None:
    """Every way of cutting the plain bodies in two, and one byte per read (a held line
    growing over several reads): all of it passed on, ending where it ends whole."""
    for body in BODIES[:4]:
        for cut in range(len(body) + 1):
            assert passed_on([body[:cut], body[cut:]]) == (body, chunks.DONE), (body, cut)
        one_by_one = [body[i : i + 1] for i in range(len(body))]
        assert passed_on(one_by_one) == (body, chunks.DONE), body
    assert scan_chunks(b"\r", 0, chunks.START) == (0, chunks.SLOW)  # no digits: not held


# --- end to end: a real vhostd between a raw backend and a client -----------------------


def chunked(*parts: bytes, last: bytes = b"0\r\n\r\n") -> bytes:
    return HEAD + b"".join(b"%X\r\n%s\r\n" % (len(part), part) for part in parts) + last


PAGE = [b"<p>" + b"row " * 40 + b"</p>\n", b"<p>part</p>\n", b"<p>" + b"end " * 40 + b"</p>\n"]
ANSWERS = [  # (what the backend sends, the body the client must get)
    (chunked(*PAGE), b"".join(PAGE)),
    (HEAD + b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (chunked(b"summed", last=b"0\r\nX-Sum: 6\r\n\r\n"), b"summed"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwhole", b"whole"),
]


def answer_in_two_writes(answers: list[bytes], cuts: Iterable[int]):
    """A handler sending each answer in two writes, cut at each of `cuts` in turn."""
    return answer_in_pieces((a[:cut], a[cut:]) for cut in cuts for a in answers)


def test_chunked_bodies_cut_anywhere_arrive_whole_on_one_backend_connection(
    raw_backend, make_proxy
):
    """Plain chunks (passed on as they are), an extension and a trailer (httptools reads on
    from that line) and a Content-Length body, one after another, each cut between two reads
    at every byte of the first answer."""
    cuts = range(len(HEAD) - 2, len(ANSWERS[0][0]) + 1)
    backend = raw_backend(answer_in_two_writes([sent for sent, _ in ANSWERS], cuts))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        for cut in cuts:
            for _, body in ANSWERS:
                sock.sendall(build_request("GET", "/"))
                response = read_response(sock)
                assert (response.status, response.body, response.complete) == (200, body, True), cut
    assert backend.connections == 1, "every response left the pooled connection usable"


def test_plain_chunks_reach_the_client_as_the_backend_framed_them(raw_backend, make_proxy):
    sent = chunked(*PAGE)  # upper-case sizes: vhostd's own framing would write lower case
    backend = raw_backend(answer_in_two_writes([sent], range(len(sent), len(sent) + 1)))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/"))
        received = b""
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and body == sent[len(HEAD) :]


def test_http10_client_gets_the_decoded_body_until_close(raw_backend, make_proxy):
    backend = raw_backend(answer_in_two_writes([ANSWERS[0][0]], range(60, 61)))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: a.test\r\n\r\n")
        response = read_response(sock)
    assert response.body == ANSWERS[0][1] and response.header("Transfer-Encoding") is None


@pytest.mark.parametrize(
    "broken",
    [
        HEAD + b"5\r\nhelloX\r\n0\r\n\r\n",  # no CRLF after the data
        HEAD + b"5\r\nhello\r\nZZ\r\n",  # not a size: httptools refuses it
        HEAD + b"40\r\nshort",  # the backend closes mid-chunk
    ],
)
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_broken_or_cut_framing_never_looks_complete_to_the_client(
    raw_backend, make_proxy, broken, version
):
    """The client's connection is reset: an HTTP/1.0 client's body ends where the
    connection does, so an orderly close would make the part it got look whole."""

    def handler(conn: socket.socket, backend: RawBackend) -> None:
        if backend.read_head(conn, bytearray()) is not None:
            conn.sendall(broken)  # then close

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(b"GET / HTTP/%s\r\nHost: a.test\r\n\r\n" % version.encode())
        sock.settimeout(10)
        received = b""
        with pytest.raises(ConnectionResetError):
            while data := sock.recv(65536):
                received += data
    assert received.startswith(b"HTTP/1.1 200 ")


def test_bytes_after_the_last_chunk_are_never_a_later_response(raw_backend, make_proxy):
    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        while (head := backend.read_head(conn, buffer)) is not None:
            if b"/first" in head:  # a broken backend: an extra response right behind
                extra = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
                conn.sendall(chunked(b"first") + extra)
            else:
                conn.sendall(chunked(b"good"))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/first"))
        assert read_response(sock).body == b"first"
        sock.sendall(build_request("GET", "/second"))
        assert read_response(sock).body == b"good"
    assert backend.connections == 2, "the connection that overflowed was not reused"


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_a_bodyless_chunked_answer_and_a_body_sent_anyway(
    raw_backend, make_proxy, method, status
):
    """No body follows a HEAD answer or a 204/304, chunked or not; a broken backend that
    sends one anyway loses its connection, not the client's."""
    head = HEAD.replace(b"200 OK", b"%d X" % status)

    def handler(conn: socket.socket, backend: RawBackend) -> None:
        buffer = bytearray()
        while (request := backend.read_head(conn, buffer)) is not None:
            conn.sendall(head + (b"5\r\nextra\r\n0\r\n\r\n" if b"anyway" in request else b""))

    backend = raw_backend(handler)
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        for path in ("/", "/anyway", "/"):
            sock.sendall(build_request(method, path))
            response = read_response(sock, head_request=method == "HEAD")
            assert (response.status, response.body, response.complete) == (status, b"", True)
    assert backend.connections == 2, "the connection that sent a body anyway was not reused"


@pytest.mark.parametrize("cut", [None, 10])  # in one read; the head cut (read by httptools)
def test_bytes_after_a_body_that_httptools_read_leave_the_response_whole(
    raw_backend, make_proxy, cut
):
    sent = HEAD + b"5;ext\r\nhello\r\n0\r\n\r\ngarbage"
    backend = raw_backend(answer_in_two_writes([sent], [cut or len(sent)]))
    proxy = make_proxy([site(backend.url)])
    with proxy.connect() as sock:
        sock.sendall(build_request("GET", "/"))
        response = read_response(sock)
        assert (response.body, response.complete) == (b"hello", True)
        sock.sendall(build_request("GET", "/"))  # the client's connection is still open
        assert read_response(sock).body == b"hello"
    assert backend.connections == 2


def test_the_access_log_counts_the_chunked_bytes_sent_however_they_were_read(
    raw_backend, make_proxy, tmp_path
):
    """Passed on as they are, framed again by vhostd after an extension, or all framed by
    vhostd (head cut: httptools reads it): the same 26 bytes go out, and are logged."""
    answers = [
        HEAD + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        HEAD + b"5\r\nhello\r\n6;x\r\n world\r\n0\r\n\r\n",
    ]
    backend = raw_backend(answer_in_two_writes(answers, [10, 1000]))  # head cut, then whole
    log_path = tmp_path / "access.log"
    proxy = make_proxy(
        [site(backend.url)], server={"access_log": str(log_path), "access_log_format": "json"}
    )
    with proxy.connect() as sock:
        for _ in range(4):
            sock.sendall(build_request("GET", "/"))
            assert read_response(sock).body == b"hello world"
    lines = wait_for(lambda: log_path.exists() and len(log_path.read_text().splitlines()) == 4)
    assert lines
    assert [json.loads(line)["bytes"] for line in log_path.read_text().splitlines()] == [26] * 4

