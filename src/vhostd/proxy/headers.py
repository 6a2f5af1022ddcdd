"""Header rules for both directions (pure, bytes in → bytes out).

Hop-by-hop headers never cross the proxy: Connection and every header it names, Keep-Alive,
TE, Trailer, Transfer-Encoding, Upgrade (unless upgrading), Proxy-Connection, and `Proxy`
(httpoxy). Framing headers are rewritten by the proxy, never copied. Client-supplied
X-Forwarded-* and X-Real-IP are kept only from trusted proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Header = tuple[bytes, bytes]

# Dropped from requests and responses alike (lower-case names).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-connection",
        b"proxy",
        b"content-length",  # re-emitted by the framing code
    }
)
FORWARDING = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-real-ip",
        b"forwarded",
    }
)
_REQUEST_DROP = HOP_BY_HOP | FORWARDING | {b"expect"}


def connection_tokens(headers: Iterable[Header]) -> set[bytes]:
    """Lower-case tokens of every Connection header (the headers they name are hop-by-hop)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return tokens


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


def upstream_request_headers(
    headers: Sequence[Header],
    *,
    client_ip: bytes,
    host: bytes,
    port: bytes,
    scheme: bytes,
    trusted: bool,
    drop_authorization: bool,
) -> list[bytes]:
    """Header lines (b"Name: value\\r\\n") for the request sent upstream, framing excluded."""
    named = connection_tokens(headers) if _has_connection(headers) else ()
    lines: list[bytes] = []
    forwarded: dict[bytes, bytes] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _REQUEST_DROP or lower in named:
            if trusted and lower in FORWARDING:
                prior = forwarded.get(lower)
                forwarded[lower] = value if prior is None else prior + b", " + value
            continue
        if drop_authorization and lower == b"authorization":
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    prior_for = forwarded.get(b"x-forwarded-for")
    lines.append(
        b"X-Forwarded-For: %s\r\n" % (prior_for + b", " + client_ip if prior_for else client_ip)
    )
    lines.append(b"X-Forwarded-Proto: %s\r\n" % forwarded.get(b"x-forwarded-proto", scheme))
    lines.append(b"X-Forwarded-Host: %s\r\n" % forwarded.get(b"x-forwarded-host", host))
    lines.append(b"X-Forwarded-Port: %s\r\n" % forwarded.get(b"x-forwarded-port", port))
    lines.append(b"X-Real-IP: %s\r\n" % forwarded.get(b"x-real-ip", client_ip))
    if b"forwarded" in forwarded:
        lines.append(b"Forwarded: %s\r\n" % forwarded[b"forwarded"])
    return lines


def _has_connection(headers: Sequence[Header]) -> bool:
    for name, _ in headers:
        if len(name) == 10 and name.lower() == b"connection":
            return True
    return False


def client_response_headers(headers: Sequence[Header], *, upgrading: bool) -> list[bytes]:
    """Header lines for the response sent to the client, framing and hop-by-hop excluded."""
    named = connection_tokens(headers) if _has_connection(headers) else ()
    lines: list[bytes] = []
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named:
            if upgrading and lower == b"upgrade":
                lines.append(b"Upgrade: %s\r\n" % value)
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    return lines
