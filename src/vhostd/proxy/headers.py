"""Header rules for both directions (pure, bytes in → bytes out).

Hop-by-hop headers never cross the proxy: Connection and every header it names, Keep-Alive,
TE, Trailer, Transfer-Encoding, Upgrade (unless upgrading), Proxy-Connection, and `Proxy`
(httpoxy). Framing headers are rewritten by the proxy, never copied. Client-supplied
X-Forwarded-* and X-Real-IP are kept only from trusted proxies.

The rules are tables looked up once per header as the parser delivers it, so a header is
classified and, when it passes, serialised in the same step (the per-request hot path).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

Header = tuple[bytes, bytes]

# What happens to a header, by lower-case name (absent from a table: forwarded unchanged).
# (Final: compiled, each is a constant instead of a module-dict lookup per header.)
DROP: Final = 0
HOST: Final = 1
LENGTH: Final = 2
CHUNKED: Final = 3
AUTH: Final = 4
EXPECT: Final = 5
UPGRADE: Final = 6
CONNECTION: Final = 7
FORWARDED: Final = 8

_HOP_BY_HOP: Final = {
    b"keep-alive": DROP,
    b"te": DROP,
    b"trailer": DROP,
    b"proxy-connection": DROP,
    b"proxy": DROP,  # httpoxy
    b"connection": CONNECTION,
    b"upgrade": UPGRADE,
    b"content-length": LENGTH,
    b"transfer-encoding": CHUNKED,
}
REQUEST_RULES: Final[dict[bytes, int]] = {
    **_HOP_BY_HOP,
    b"host": HOST,
    b"authorization": AUTH,
    b"expect": EXPECT,  # answered by the proxy itself
    b"x-forwarded-for": FORWARDED,
    b"x-forwarded-proto": FORWARDED,
    b"x-forwarded-host": FORWARDED,
    b"x-forwarded-port": FORWARDED,
    b"x-real-ip": FORWARDED,
    b"forwarded": FORWARDED,
}
RESPONSE_RULES: Final[dict[bytes, int]] = dict(_HOP_BY_HOP)

PASS: Final = -1  # a header forwarded unchanged
_SEEN_LIMIT: Final = 1024


class HeaderRules:
    """A rule table looked up by header names exactly as received (the per-header path).

    Names arrive in a handful of spellings, and looking one up costs a hash where
    `lower()` costs a method call and a new object: about 1,000 instructions per header.
    The spellings seen are cached, bounded (cleared when full).
    """

    def __init__(self, rules: dict[bytes, int]) -> None:
        self.rules = rules
        self.seen: dict[bytes, int] = {}

    def rule(self, name: bytes) -> int:
        """The rule for a header name in any case, or PASS."""
        rule = self.seen.get(name)
        if rule is None:
            rule = self.rules.get(name.lower(), PASS)
            if len(self.seen) >= _SEEN_LIMIT:
                self.seen.clear()
            self.seen[name] = rule
        return rule


REQUEST_HEADERS: Final = HeaderRules(REQUEST_RULES)
RESPONSE_HEADERS: Final = HeaderRules(RESPONSE_RULES)

# Connection tokens that name no header of their own.
# Host and the framing headers are never hop-by-hop, whatever Connection says.
_CONNECTION_OPTIONS: Final = frozenset(
    {b"keep-alive", b"close", b"upgrade", b"host", b"content-length", b"transfer-encoding"}
)


def connection_named(value: bytes) -> frozenset[bytes]:
    """Header names a Connection value makes hop-by-hop (beyond the standard options)."""
    known = _NAMED_BY_COMMON_VALUES.get(value)
    if known is not None:
        return known
    tokens = {t.strip().lower() for t in value.split(b",")}
    tokens.discard(b"")
    return frozenset(tokens - _CONNECTION_OPTIONS)


# The values nearly every Connection header has: answered without parsing (hot path).
_NAMED_BY_COMMON_VALUES: Final[dict[bytes, frozenset[bytes]]] = {
    value: frozenset()
    for option in (b"keep-alive", b"close", b"upgrade")
    for value in (option, option.capitalize(), option.title(), option.upper())
}


def without_named(pieces: Sequence[bytes], named: frozenset[bytes]) -> list[bytes]:
    """Drop the headers a Connection header listed from header pieces.

    Pieces are what the hot path builds: four per header, (name, b": ", value, CRLF).
    """
    kept: list[bytes] = []
    for i in range(0, len(pieces), 4):
        if pieces[i].lower() not in named:
            kept += pieces[i : i + 4]
    return kept


class TrustedProxies:
    """CIDR list of peers whose X-Forwarded-* headers are believed."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        self._cache: dict[str, bool] = {}

    def __contains__(self, ip: str) -> bool:
        if not self.networks:
            return False
        known = self._cache.get(ip)
        if known is None:
            try:
                address = ipaddress.ip_address(ip)
                known = any(address in net for net in self.networks)
            except ValueError:
                known = False
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[ip] = known
        return known


def forwarding_tail(client_ip: bytes, port: bytes, scheme: bytes = b"http") -> bytes:
    """The forwarding headers that do not depend on the request (all but X-Forwarded-Host)."""
    return (
        b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nX-Forwarded-Port: %s\r\n"
        b"X-Real-IP: %s\r\n" % (client_ip, scheme, port, client_ip)
    )


def trusted_forwarding(
    prior: Sequence[Header], client_ip: bytes, host: bytes, port: bytes, scheme: bytes = b"http"
) -> bytes:
    """Forwarding headers for a request from a trusted proxy that sent its own."""
    seen: dict[bytes, bytes] = {}
    for name, value in prior:
        lower = name.lower()
        seen[lower] = seen[lower] + b", " + value if lower in seen else value
    prior_for = seen.get(b"x-forwarded-for")
    lines = [
        b"X-Forwarded-For: %s\r\n" % (prior_for + b", " + client_ip if prior_for else client_ip),
        b"X-Forwarded-Proto: %s\r\n" % seen.get(b"x-forwarded-proto", scheme),
        b"X-Forwarded-Host: %s\r\n" % seen.get(b"x-forwarded-host", host),
        b"X-Forwarded-Port: %s\r\n" % seen.get(b"x-forwarded-port", port),
        b"X-Real-IP: %s\r\n" % seen.get(b"x-real-ip", client_ip),
    ]
    if b"forwarded" in seen:
        lines.append(b"Forwarded: %s\r\n" % seen[b"forwarded"])
    return b"".join(lines)
