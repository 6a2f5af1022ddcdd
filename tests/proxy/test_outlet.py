"""The Outlet writes straight into a socket only while the transport holds nothing: bytes
keep their order when the kernel stops taking them, nothing goes out after close() or
write_eof(), and a TLS connection is always written through its transport. Real uvloop
transports on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.support.vhostd import read_to_end
from vhostd.proxy.outlet import WRITE_NOW, Outlet, direct_fd

pytestmark = pytest.mark.skipif(WRITE_NOW is None, reason="proxy/_sendnow.c is not built")

PIECE = 65536


def piece(number: int) -> bytes:
    """64 KiB that say which piece they are, so a piece out of place shows."""
    return number.to_bytes(4, "big") * (PIECE // 4)


class Accepted(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[Any]) -> None:
        self.made = made

    def connection_made(self, transport: Any) -> None:
        self.made.set_result(transport)


def with_connection(
    body: Callable[[Any, Any], Awaitable[None]],
    client_side: Callable[[socket.socket], Any] = lambda client: client,
    **server: Any,
) -> None:
    """Run `body(server_transport, client)` on a uvloop loop over a loopback connection whose
    client side reads nothing until told to; `client_side(socket)` (in a thread, while the
    server accepts) makes what the body gets as `client`."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[Any] = loop.create_future()
        listener = await loop.create_server(lambda: Accepted(made), "127.0.0.1", 0, **server)
        port = listener.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", port))
        client.settimeout(10)
        try:
            ready = loop.run_in_executor(None, client_side, client)
            transport, end = await asyncio.wait_for(asyncio.gather(made, ready), 5)
            await body(transport, end)
        finally:
            client.close()
            listener.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def read_all(client: socket.socket, into: bytearray) -> threading.Thread:
    """Read to the end in a thread while the loop writes; `into` gets it all at the end."""
    reader = threading.Thread(target=lambda: into.extend(read_to_end(client)), daemon=True)
    reader.start()
    return reader


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in 10 s")


def test_pieces_keep_their_order_when_the_kernel_stops_taking_them() -> None:
    count = 200  # 12.5 MiB: more than the kernel takes while nobody reads
    received = bytearray()

    async def body(transport: Any, client: socket.socket) -> None:
        outlet = Outlet(transport)
        assert outlet.fd >= 0
        went_direct = 0
        for number in range(count):
            if not outlet.queued:
                went_direct += 1
            outlet.write(piece(number))
        # some went straight into the socket, the rest had to queue behind what it left
        assert went_direct > 0
        assert outlet.queued and transport.get_write_buffer_size() > 0
        # the client reads 1 MiB while the loop stands still: the kernel has room again,
        # and the transport still holds what it took; the next bytes must go behind those
        while len(received) < 1 << 20:
            received.extend(client.recv(1 << 16))
        assert transport.get_write_buffer_size() > 0
        outlet.write(b"late")
        reader = read_all(client, received)
        await wait_until(lambda: not transport.get_write_buffer_size())
        outlet.write(b"end")  # the transport is empty again: straight into the socket
        assert not outlet.queued
        transport.close()
        await wait_until(lambda: not reader.is_alive())

    with_connection(body)
    expected = b"".join(piece(n) for n in range(count)) + b"lateend"
    assert len(received) == len(expected)
    assert bytes(received) == expected, f"'late' at {bytes(received).find(b'late')}"


@pytest.mark.parametrize("head_pieces", [0, 100], ids=["cut in the body", "cut in the head"])
def test_a_head_and_body_cut_short_go_on_in_order(head_pieces: int) -> None:
    # 6.5 MB more than the kernel takes while nobody reads: cut in the head, or in the body
    head = b"H" * 1000 + b"".join(piece(n) for n in range(head_pieces))
    body_bytes = b"".join(piece(n) for n in range(100, 200))
    received = bytearray()

    async def body(transport: Any, client: socket.socket) -> None:
        outlet = Outlet(transport)
        outlet.write_two(head, body_bytes)
        assert outlet.queued
        outlet.write_two(b"2", memoryview(b"tail"))
        reader = read_all(client, received)
        await wait_until(lambda: not transport.get_write_buffer_size())
        transport.close()
        await wait_until(lambda: not reader.is_alive())

    with_connection(body)
    assert bytes(received) == head + body_bytes + b"2tail"


@pytest.mark.parametrize("end", ["close", "write_eof"])
def test_nothing_goes_out_after_close_or_eof(end: str) -> None:
    received = bytearray()

    async def body(transport: Any, client: socket.socket) -> None:
        outlet = Outlet(transport)
        outlet.write(b"answer")
        assert not outlet.queued
        if end == "close":
            transport.close()
            outlet.write(b"late")  # the socket is still open until connection_lost
        else:
            outlet.write_eof()  # the socket is shut on the loop's next turn
            with pytest.raises(RuntimeError):
                outlet.write(b"late")  # as transport.write() does
        reader = read_all(client, received)
        if end == "write_eof":
            await wait_until(lambda: not reader.is_alive())
            transport.close()
        await wait_until(lambda: not reader.is_alive())

    with_connection(body)
    assert bytes(received) == b"answer"


def self_signed(directory: Path) -> ssl.SSLContext:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_a_tls_transport_is_written_through(tmp_path: Path) -> None:
    received = bytearray()

    def handshake(client: socket.socket) -> ssl.SSLSocket:
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        return tls.wrap_socket(client)

    async def body(transport: Any, wrapped: ssl.SSLSocket) -> None:
        assert direct_fd(transport) == -1
        outlet = Outlet(transport)
        outlet.write(b"over tls")  # written into the socket as it is, the client reads garbage
        await wait_until(lambda: not transport.get_write_buffer_size())
        transport.close()
        received.extend(await asyncio.get_running_loop().run_in_executor(None, read_to_end, wrapped))

    with_connection(body, handshake, ssl=self_signed(tmp_path))
    assert bytes(received) == b"over tls"

