"""A real HTTP/1.1 backend for tests, on loopback, in a thread with its own event loop.

Written on raw asyncio streams so tests control framing exactly. Every request it receives
is recorded (method, target, headers, body), so a test can prove that a rejected request
never reached it. Paths choose the behaviour:
  /echo...          200, JSON of what was received (keep-alive, Content-Length)
  /chunked          200, chunked body "hello world" in pieces
  /close            200, body delimited by closing the connection
  /stall            never answers (for first-byte timeouts)
  /slow?ms=N        answers after N ms
  /trickle          sends the head, then stalls mid-body
  /bytes?n=N        N bytes of body, streamed in 64 KiB writes, Content-Length
  /sink             reads the request body, answers its length (streaming, no buffering)
  /status?code=N    empty response with that status
  /ws               101 upgrade, then echoes bytes until closed
  /name             the origin's name (to tell replicas apart)
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, the u32 after segs_in/notsent/min_rtt
TCP_INFO_DATA_SEGS_IN = 152


def data_segments_in(writer: asyncio.StreamWriter) -> int:
    """How many TCP segments carrying data this connection has received (Linux)."""
    sock = writer.get_extra_info("socket")
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[TCP_INFO_DATA_SEGS_IN : TCP_INFO_DATA_SEGS_IN + 4], "little")


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    segments: int = 0  # packets with data its connection had brought in once it was read

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Origin:
    name: str = "origin"
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    closed: int = 0  # connections that ended (either side closed)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Origin:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = sock.getsockname()[1]
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, sock=sock, limit=1 << 20)
            )
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(5)
        self._loop = None

    # --- request handling ---------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                keep = await self._one(head, reader, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.closed += 1
            writer.close()

    async def _one(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if line]
        headers = [(k.strip(), v.strip()) for k, v in headers]
        record = Received(method, target, headers, b"")  # type: ignore[arg-type]
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path == "/sink":
            size = await self._drain_body(record, reader)
            self.received.append(record)
            return await self._send(writer, 200, str(size).encode())
        record.body = await self._read_body(record, reader)
        record.segments = data_segments_in(writer)
        self.received.append(record)
        if path.startswith("/echo"):
            body = json.dumps(
                {
                    "method": method,
                    "target": target,
                    "headers": headers,
                    "body": record.body.decode("latin-1"),
                    "origin": self.name,
                }
            ).encode()
            return await self._send(writer, 200, body, ctype=b"application/json")
        if path == "/name":
            return await self._send(writer, 200, self.name.encode())
        if path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"hello", b" ", b"world"):
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
            await writer.drain()
            return False
        if path == "/stall":
            await asyncio.sleep(3600)
        if path == "/slow":
            await asyncio.sleep(int(query.get("ms", "100")) / 1000)
            return await self._send(writer, 200, b"slow")
        if path == "/trickle":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(3600)
        if path == "/bytes":
            total = int(query.get("n", "1024"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            block = b"x" * 65536
            left = total if method != "HEAD" else 0  # a HEAD answer has no body
            while left > 0:
                writer.write(block[: min(left, len(block))])
                left -= len(block)
                await writer.drain()
            return True
        if path == "/status":
            code = int(query.get("code", "204"))
            writer.write(b"HTTP/1.1 %d Status\r\nX-Status: %d\r\n\r\n" % (code, code))
            await writer.drain()
            return True
        if path == "/ws":
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n"
            )
            await writer.drain()
            while True:
                data = await reader.read(65536)
                if not data:
                    return False
                writer.write(data)
                await writer.drain()
        return await self._send(writer, 404, b"no such origin path")

    async def _read_body(self, record: Received, reader: asyncio.StreamReader) -> bytes:
        length = record.header("content-length")
        if length is not None:
            return await reader.readexactly(int(length))
        if (record.header("transfer-encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return body
                body += await reader.readexactly(size)
                await reader.readexactly(2)
        return b""

    async def _drain_body(self, record: Received, reader: asyncio.StreamReader) -> int:
        length = record.header("content-length")
        total = 0
        if length is not None:
            left = int(length)
            while left:
                chunk = await reader.read(min(left, 1 << 16))
                if not chunk:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(chunk)
                total += len(chunk)
            return total
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return total
            left = size
            while left:
                chunk = await reader.read(min(left, 1 << 16))
                left -= len(chunk)
                total += len(chunk)
            await reader.readexactly(2)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        ctype: bytes = b"text/plain",
    ) -> bool:
        writer.write(
            b"HTTP/1.1 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (status, ctype, len(body), body)
        )
        await writer.drain()
        return True
