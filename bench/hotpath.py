"""The per-request cost of vhostd's own Python code, without sockets or a kernel in the way.

A client connection and a pooled upstream connection get in-memory transports; each round
feeds one request to the client side and one response to the upstream side, exactly the
callbacks the event loop would make. What remains is our code plus httptools, measured in
µs per request (repeatable, unlike wrk on a shared machine) and profiled with --profile.

    .venv/bin/python -m bench.hotpath [--rounds N] [--profile]
                                      [--request get|post|post-in-two-reads|forwarded]
                                      [--response small|chunked]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time

import uvloop

from vhostd.config.model import Backend, ServerSettings, Site
from vhostd.providers.snapshot import Snapshot
from vhostd.proxy.client import ClientConnection
from vhostd.proxy.context import ProxyContext
from vhostd.proxy.headers import TrustedProxies
from vhostd.proxy.upstream import UpstreamConnection, UpstreamPool
from vhostd.routing.pipeline import RoutePipeline

REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
FORM = b"a=" + b"x" * 98
POST = (
    b"POST /form HTTP/1.1\r\nHost: a.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
    % (len(FORM), FORM)
)
REQUESTS: dict[str, bytes | tuple[bytes, ...]] = {  # a request, or the reads it comes in
    "get": REQUEST,
    "post": POST,  # a form post, head and body in one read
    # a GET from a client that sends its own forwarding headers (not a trusted proxy)
    "forwarded": REQUEST.replace(
        b"\r\n\r\n", b"\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n\r\n"
    ),
}
# the POST again, half its body arriving in a second read (as a browser's larger posts do)
_CUT = len(POST) - len(FORM) // 2
REQUESTS["post-in-two-reads"] = (POST[:_CUT], POST[_CUT:])
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 17:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n"
    b"hello world\n"
)
PAGE_ROW = b"<p>row lorem ipsum dolor sit amet</p>\n" * 40
RESPONSES = {
    "small": RESPONSE,
    # a dynamic page as an application server sends it: chunked, in three chunks
    # (the bench origin's /chunked)
    "chunked": b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 17:00:00 GMT\r\n"
    b"Content-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (PAGE_ROW, b"<p>part</p>\n", PAGE_ROW))
    + b"0\r\n\r\n",
}


class MemoryTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += len(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


def build(loop: asyncio.AbstractEventLoop) -> tuple[ClientConnection, UpstreamConnection]:
    backend = Backend("127.0.0.1", 9)
    pipeline = RoutePipeline()
    pipeline.publish(Snapshot("config", (Site("a", ("a.test",), (backend,)),)))
    pool = UpstreamPool(loop, 16)
    ctx = ProxyContext(
        loop=loop,
        settings=ServerSettings(),
        pipeline=pipeline,
        pool=pool,
        trusted_proxies=TrustedProxies(()),
    )
    upstream = UpstreamConnection(pool, backend)
    upstream.connection_made(MemoryTransport())
    upstream.message_complete = True
    pool.give_back(upstream)
    client = ClientConnection(ctx)
    client.connection_made(MemoryTransport())
    return client, upstream


def run(
    rounds: int, request: bytes | tuple[bytes, ...] = REQUEST, response: bytes = RESPONSE
) -> float:
    loop = uvloop.new_event_loop()  # what `vhostd serve` runs on
    asyncio.set_event_loop(loop)
    client, upstream = build(loop)
    feed_upstream = upstream.data_received
    feed_client = client.data_received
    if isinstance(request, tuple):  # one call per read (not for one read: the loop costs)
        reads = request

        def feed_client(_: object) -> None:
            for read in reads:
                client.data_received(read)

    for _ in range(1000):  # warm caches
        feed_client(request)
        feed_upstream(response)
    started = time.perf_counter()
    for _ in range(rounds):
        feed_client(request)
        feed_upstream(response)
    elapsed = time.perf_counter() - started
    assert client.transport.written > 0 and client.request is None
    loop.close()
    return elapsed / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--request", choices=sorted(REQUESTS), default="get")
    parser.add_argument("--response", choices=sorted(RESPONSES), default="small")
    args = parser.parse_args()
    request, response = REQUESTS[args.request], RESPONSES[args.response]
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run, args.rounds, request, response)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    else:
        from vhostd import native

        best = min(run(args.rounds, request, response) for _ in range(5))
        mode = "compiled" if native.compiled() else "interpreted"
        print(f"{best:.2f} µs of vhostd code per proxied request ({mode}, best of 5)")


if __name__ == "__main__":
    main()
