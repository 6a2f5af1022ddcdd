"""Short HTML error responses with the right status, built once where possible (pure)."""

from __future__ import annotations

import html
from http import HTTPStatus

_TITLES = {
    400: "Bad request",
    401: "Login required",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Request body too large",
    414: "Request target too long",
    429: "Too many attempts",
    431: "Request headers too large",
    500: "Internal error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;"
    "color:#222}h1{font-size:1.4em}code{background:#eee;padding:0 .2em}small{color:#777}"
)


def reason_phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def render_page(status: int, detail: str) -> bytes:
    """The HTML body of an error page; `detail` is plain text (escaped here)."""
    title = _TITLES.get(status) or reason_phrase(status).decode()
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{status} {title}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{status} {title}</h1>"
        f"<p>{html.escape(detail)}</p><hr><small>vhostd</small></body></html>\n"
    ).encode()


def error_response(
    status: int,
    detail: str,
    *,
    keep_alive: bool = False,
    head_only: bool = False,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    """A complete HTTP/1.1 response (head + body) for an error page."""
    body = render_page(status, detail)
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status)),
        b"Content-Type: text/html; charset=utf-8\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"Cache-Control: no-store\r\n",
    ]
    lines.extend(name + b": " + value + b"\r\n" for name, value in extra_headers)
    lines.append(b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n")
    if not head_only:
        lines.append(body)
    return b"".join(lines)
