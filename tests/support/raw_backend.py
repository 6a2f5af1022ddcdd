"""A raw TCP backend on loopback for responses no well-behaved server sends: interim
responses, an extra response, a reset mid-body, framing split or broken on purpose."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence


class RawBackend:
    """A threaded TCP server on loopback; `handler(conn, backend)` serves one connection."""

    def __init__(self, handler: Callable[[socket.socket, RawBackend], None]) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.targets: list[str] = []
        self.heads: list[bytes] = []
        self.connections = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()

    # helpers for handlers
    def read_head(self, conn: socket.socket, buffer: bytearray) -> bytes | None:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return None
            buffer += data
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        buffer[:] = rest
        self.heads.append(head + b"\r\n\r\n")
        self.targets.append(head.split(b" ", 2)[1].decode("latin-1"))
        return head

    @staticmethod
    def content_length(head: bytes) -> int:
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                return int(value.strip())
        return 0


def answer_in_pieces(
    plan: Iterable[Sequence[bytes]],
) -> Callable[[socket.socket, RawBackend], None]:
    """A handler answering each request with the next entry of `plan`: its pieces sent one
    by one, each at once (TCP_NODELAY) and 1 ms after the last, so that the proxy likely
    reads them apart (tests that use this pass too when it reads them together)."""
    answers = list(plan)

    def handler(conn: socket.socket, backend: RawBackend) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        for pieces in answers:
            if backend.read_head(conn, buffer) is None:
                return
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(0.001)
                conn.sendall(piece)

    return handler
