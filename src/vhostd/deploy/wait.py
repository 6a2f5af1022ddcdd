"""Waiting until a deployed site answers through the running proxy (polls with a deadline)."""

from __future__ import annotations

import base64
import http.client
import re
import time

from vhostd.deploy.commands import say
from vhostd.errors import VhostdError

POLL_INTERVAL_S = 0.25
_INVISIBLE = re.compile(r"<(style|script|head)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
REQUEST_TIMEOUT_S = 5.0


def proxy_address(listen: str) -> tuple[str, int]:
    """Where to reach a listen address from this machine ("0.0.0.0:80" → 127.0.0.1:80)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port)


def site_url(host: str, listen: str) -> str:
    """The URL users open: the host, with the proxy's port unless it is 80."""
    _, port = proxy_address(listen)
    return f"http://{host}/" if port == 80 else f"http://{host}:{port}/"


def basic_authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def page_text(body: str) -> str:
    """The readable words of an HTML error page (vhostd's own pages say why in words)."""
    body = _INVISIBLE.sub(" ", body)
    return " ".join(_TAG.sub(" ", body).split())


def probe(address: tuple[str, int], host: str, authorization: str | None) -> tuple[int, str]:
    """One GET / through the proxy: (status, first line of the body)."""
    connection = http.client.HTTPConnection(address[0], address[1], timeout=REQUEST_TIMEOUT_S)
    try:
        headers = {"Host": host, "User-Agent": "vhostd-deploy"}
        if authorization:
            headers["Authorization"] = authorization
        connection.request("GET", "/", headers=headers)
        response = connection.getresponse()
        body = response.read(4096).decode("utf-8", "replace")
        return response.status, page_text(body)[:160]
    finally:
        connection.close()


def wait_until_answers(listen: str, host: str, authorization: str | None, timeout: float) -> int:
    """Poll until the site answers below 500 (the proxy says 502/503/504 until it is routed
    and up) and not 401 (the login gate, not the application); returns the status."""
    address = proxy_address(listen)
    say(f"==> waiting for http://{host}/ to answer through vhostd at {address[0]}:{address[1]}")
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            status, body = probe(address, host, authorization)
            if status < 500 and status != 401:
                return status
            last = f"last answer {status}: {body}" if body else f"last answer {status}"
        except (OSError, http.client.HTTPException) as exc:
            last = f"vhostd does not answer at {address[0]}:{address[1]} ({exc}); is `vhostd serve` running?"
        if time.monotonic() >= deadline:
            raise VhostdError(f"{host} did not answer through vhostd within {timeout:.0f}s ({last})")
        time.sleep(POLL_INTERVAL_S)
