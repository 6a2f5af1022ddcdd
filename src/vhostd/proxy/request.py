"""One parsed client request and the checks that make it safe to forward (pure).

Framing rules (RFC 9112 §6), on top of what llhttp already refuses (Content-Length together
with Transfer-Encoding, duplicate or invalid Content-Length, a Transfer-Encoding other than a
final `chunked`, bad chunk sizes, obsolete line folding, control characters and bare CR):
  - HTTP/1.1 needs exactly one Host; more than one Host is always refused.
  - Transfer-Encoding on an HTTP/1.0 request is refused (its framing cannot be trusted).
  - Several Transfer-Encoding headers are refused rather than concatenated.
  - An absolute-form target (http://host/path) is turned into origin form; its host wins.
Every refusal carries the status it should become.
"""

from __future__ import annotations

import re
from typing import Final

from vhostd.proxy.headers import (
    AUTH,
    CHUNKED,
    CONNECTION,
    EXPECT,
    FORWARDED,
    HOST,
    LENGTH,
    PASS,
    REQUEST_HEADERS,
    UPGRADE,
    connection_named,
    without_named,
)

IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class Rejection(Exception):
    """A request that must not be forwarded; `status` is what the client gets."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Request:
    __slots__ = (
        "method",
        "target",
        "version",
        "header_count",
        "header_bytes",
        "lines",
        "forwarded",
        "named",
        "host",
        "host_count",
        "te_count",
        "content_length",
        "chunked",
        "has_body",
        "expect_continue",
        "upgrade",
        "keep_alive",
        "authorization",
        "body",
        "body_buffered",
        "body_size",
        "complete",
        "rejection",
        "head_size",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = b"1.1"
        self.header_count = 0
        self.header_bytes = 0  # as received: name + ": " + value + CRLF, summed
        # the headers that pass upstream, to be joined: pieces (name, ": ", value, CRLF) from
        # httptools' callbacks, or the whole lines the C scanner read (client.py)
        self.lines: list[bytes] = []
        self.forwarded: list[tuple[bytes, bytes]] | None = None  # client's X-Forwarded-*
        self.named: frozenset[bytes] = frozenset()  # hop-by-hop by Connection
        self.host: bytes | None = None
        self.host_count = 0
        self.te_count = 0
        self.content_length: int | None = None
        self.chunked = False
        self.has_body = False  # set by validate(), once the framing headers are known
        self.expect_continue = False
        self.upgrade: bytes | None = None
        self.keep_alive = True
        self.authorization: bytes | None = None  # also held out of `lines`
        self.body: list[bytes] = []  # chunks held until an upstream is attached
        self.body_buffered = 0
        self.body_size = 0
        self.complete = False
        self.rejection: Rejection | None = None
        self.head_size = 0

    def header(self, lower_name: bytes) -> bytes | None:
        """The value of a header that is forwarded (for logs; not for hop-by-hop ones)."""
        # `lines` holds pieces from httptools' callbacks or whole lines from the C scanner
        for line in b"".join(self.lines).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == lower_name:
                return value.strip(b" \t")
        return None

    def add_header(self, name: bytes, value: bytes) -> None:
        """Record a header, classify it and serialise it when it passes (called per header)."""
        self.header_count += 1
        self.header_bytes += len(name) + len(value) + 4
        rule = REQUEST_HEADERS.rule(name)
        lines = self.lines
        if rule == PASS:
            # four appends: cheaper than formatting a line or extending by a tuple
            lines.append(name)
            lines.append(b": ")
            lines.append(value)
            lines.append(b"\r\n")
        elif rule == HOST:
            self.host_count += 1
            self.host = value
            lines.append(b"Host")
            lines.append(b": ")
            lines.append(value)
            lines.append(b"\r\n")
        elif rule == LENGTH:
            self.content_length = int(value)  # llhttp has validated it: digits, single
        elif rule == CHUNKED:
            self.te_count += 1
            self.chunked = True  # llhttp accepts only a final "chunked" on requests
        elif rule == AUTH:
            self.authorization = value
        elif rule == EXPECT:
            self.expect_continue = value.strip().lower() == b"100-continue"
        elif rule == UPGRADE:
            self.upgrade = value
        elif rule == CONNECTION:
            self.named |= connection_named(value)
        elif rule == FORWARDED:
            if self.forwarded is None:
                self.forwarded = []
            self.forwarded.append((name, value))
        # DROP: nothing

    @property
    def retryable(self) -> bool:
        """Safe to send again on another connection: idempotent and nothing streamed yet."""
        return self.method in IDEMPOTENT and not self.has_body

    def validate(self, connection_upgrade: bool, host_checked: bool = False) -> None:
        """Framing and routing checks once the head is complete; raises Rejection.
        `host_checked`: the head scanner has found the Host value valid already."""
        self.has_body = self.chunked or bool(self.content_length)
        if self.host_count > 1:
            raise Rejection(400, "More than one Host header.")
        if self.te_count > 1:
            raise Rejection(400, "More than one Transfer-Encoding header.")
        if self.chunked and self.version == b"1.0":
            raise Rejection(400, "Transfer-Encoding is not allowed in an HTTP/1.0 request.")
        target = self.target
        if not target or target[0] != SLASH:  # (indexing is compiled; startswith is a call)
            if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
                rest = target.split(b"//", 1)[1]
                slash = rest.find(b"/")
                authority, path = (rest, b"/") if slash == -1 else (rest[:slash], rest[slash:])
                if not authority or b"@" in authority:
                    raise Rejection(400, "Invalid absolute request target.")
                # RFC 9112 §3.2.2: the target's authority replaces any Host header
                self.lines = without_named(self.lines, frozenset({b"host"}))
                self.host = authority
                self.host_count = 0
                self.target = path
            elif target == b"*" and self.method == b"OPTIONS":
                pass
            else:
                raise Rejection(400, "Invalid request target.")
        if self.method == b"CONNECT":
            raise Rejection(405, "CONNECT is not supported: this is not a forward proxy.")
        if self.version == b"1.1" and self.host is None:
            raise Rejection(400, "HTTP/1.1 requests need a Host header.")
        if self.host is not None and not host_checked and not valid_host(self.host):
            raise Rejection(400, "Invalid Host header.")
        if self.upgrade is not None and not connection_upgrade:
            self.upgrade = None  # an Upgrade not named by Connection is just dropped
        if self.upgrade is not None and self.has_body:
            # llhttp ends an upgrade request at its head: a body would be left unframed
            raise Rejection(400, "An Upgrade request cannot carry a body.")


SLASH: Final = ord("/")

# A Host value: printable ASCII without spaces or the characters that end an authority.
# (The head scanner, proxy/_headscan.c, checks the same set and length in C.)
_HOST: Final = re.compile(rb'[^\x00-\x20\x7f-\xff/\\?#@"<>{}|^`]{1,1024}')
# A server sees a handful of host names: each is matched once, then looked up (bounded).
_HOSTS_SEEN: Final[dict[bytes, bool]] = {}
_HOSTS_SEEN_LIMIT: Final = 1024


def valid_host(host: bytes) -> bool:
    """Whether a Host value is one a route may be looked up by."""
    valid = _HOSTS_SEEN.get(host)
    if valid is None:
        valid = _HOST.fullmatch(host) is not None
        if len(_HOSTS_SEEN) >= _HOSTS_SEEN_LIMIT:
            _HOSTS_SEEN.clear()
        _HOSTS_SEEN[host] = valid
    return valid

