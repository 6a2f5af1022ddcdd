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
from typing import Any, cast

import pytest
import uvloop

from tests.support.vhostd import read_to_end
from vhostd.proxy.outlet import WRITE_NOW, Outlet, WriteBatch, direct_fd

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



# --- a WriteBatch: the bytes of a loop turn go out together once its callbacks have run ---


def with_connections(count: int, body: Callable[[list[Any], list[socket.socket]], Awaitable[None]]) -> None:
    """Run `body(server_transports, client_sockets)` over `count` loopback connections."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(count)]
        waiting = iter(made)
        listener = await loop.create_server(lambda: Accepted(next(waiting)), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        clients = []
        for _ in range(count):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
            client.connect(("127.0.0.1", port))
            clients.append(client)
        try:
            transports = await asyncio.wait_for(asyncio.gather(*made), 5)
            await body(transports, clients)
        finally:
            for client in clients:
                client.close()
            listener.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def waiting_bytes(client: socket.socket) -> bytes:
    """What the socket has received so far, without waiting for more."""
    try:
        return client.recv(1 << 16, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


async def read_rest(client: socket.socket) -> bytes:
    """To the end of the stream, read in a thread while the loop goes on (and closes)."""
    client.settimeout(5)
    return await asyncio.get_running_loop().run_in_executor(None, read_to_end, client)


def test_a_turns_first_write_goes_at_once_and_the_rest_when_the_turn_ends() -> None:
    async def body(transports: list[Any], clients: list[socket.socket]) -> None:
        batch = WriteBatch(asyncio.get_running_loop())
        first, second = (Outlet(transport, batch) for transport in transports)
        first.write(b"one")  # the turn's first write: straight into the socket
        second.write(b"two")
        first.write(b"+one")
        # still this turn: only the first write is in a socket
        assert [waiting_bytes(client) for client in clients] == [b"one", b""]
        await asyncio.sleep(0)  # the turn ends; the batch writes before the loop waits again
        for client in clients:
            client.settimeout(5)
        assert [client.recv(100) for client in clients] == [b"+one", b"two"]
        # held pieces keep their order: before a large write, which never waits, and joined
        first.write(b"opens the turn|")  # a new turn: its first write goes at once again
        assert waiting_bytes(clients[0]) == b"opens the turn|"
        first.write(b"held|")
        first.write_two(b"head|", piece(1))
        assert not first.held  # the large write took what was held with it, this turn
        assert clients[0].recv(10, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"held|head|"
        second.write(b"a|")
        second.write(b"b|")
        second.write(memoryview(b"c|"))
        second.write_two(b"d|", b"e|")  # small: held as two pieces
        await asyncio.sleep(0)
        second.write(b"opens the next turn|")
        second.write(b"held|")
        second.writelines([b"large|", piece(2)])  # through the transport, after what is held
        await asyncio.sleep(0)
        for outlet in (first, second):
            outlet.close()
        assert await read_rest(clients[0]) == b"held|head|" + piece(1)
        assert await read_rest(clients[1]) == b"a|b|c|d|e|opens the next turn|held|large|" + piece(2)

    with_connections(2, body)


@pytest.mark.parametrize("end", ["close", "abort", "write_eof"])
def test_what_ends_a_connection_writes_what_it_holds_first(end: str) -> None:
    async def body(transports: list[Any], clients: list[socket.socket]) -> None:
        outlet = Outlet(transports[0], WriteBatch(asyncio.get_running_loop()))
        outlet.write(b"the turn's first write, ")  # goes at once
        outlet.write(b"the answer")  # held for the turn's end
        getattr(outlet, end)()
        assert await read_rest(clients[0]) == b"the turn's first write, the answer"
        if end == "write_eof":
            with pytest.raises(RuntimeError):
                outlet.write(b"late")  # as transport.write() does after write_eof()
            outlet.close()

    with_connections(1, body)


def test_a_connection_that_fails_or_went_loses_only_its_own_bytes() -> None:
    errors: list[dict[str, Any]] = []

    async def body(transports: list[Any], clients: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        batch = WriteBatch(loop)
        broken, gone, fine = (Outlet(transport, batch) for transport in transports)
        # closed under the outlet, not through it, before the turn's first write: the
        # transport is gone by the time the batch writes
        transports[1].abort()
        fine.write(b"first|")
        gone.write(b"for nobody")
        broken.write(cast(Any, [1, 2]))  # not bytes: writing it raises
        fine.write(b"still sent")
        await asyncio.sleep(0)
        clients[2].settimeout(5)
        assert clients[2].recv(100) == b"first|still sent"
        assert transports[0].is_closing()  # the failed connection was reset
        assert not transports[2].is_closing()
        fine.close()

    with_connections(3, body)
    assert [type(context.get("exception")) for context in errors] == [TypeError]


def test_held_bytes_follow_what_a_closing_transport_still_sends() -> None:
    """uvloop closes a transport itself when the peer's EOF arrives, and still sends what
    it holds: bytes held in the outlet that turn must go out behind those, not be lost."""
    count = 200  # 12.5 MiB: more than the kernel takes while nobody reads

    async def body(transports: list[Any], clients: list[socket.socket]) -> None:
        batch = WriteBatch(asyncio.get_running_loop())
        other, closing = (Outlet(transport, batch) for transport in transports)
        for number in range(count):
            closing.write(piece(number))  # large: never held
        assert transports[1].get_write_buffer_size() > 0
        transports[1].close()  # as uvloop does after eof_received
        other.write(b"opens the turn")
        closing.write(b"small")  # held
        closing.write(b" and more")
        await asyncio.sleep(0)
        assert not closing.held
        received = await read_rest(clients[1])
        expected = b"".join(piece(n) for n in range(count)) + b"small and more"
        assert len(received) == len(expected)
        assert received == expected
        other.close()

    with_connections(2, body)
