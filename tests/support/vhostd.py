"""Run `vhostd serve` as a real subprocess on free loopback ports, and talk to it.

    with VhostdProcess(tmp_path, sites=[...]) as proxy:
        status, headers, body = proxy.get("/", host="a.test")
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

VHOSTD = str(Path(sys.executable).with_name("vhostd"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def toml_table(name: str, values: dict[str, Any], array: bool = False) -> str:
    lines = [f"[[{name}]]" if array else f"[{name}]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `condition()` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last one
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_error!r})")


class Response:
    """One HTTP response read from a socket."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.body = b""
        self.complete = False
        self.upgraded = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


# Bytes read past the end of one response, handed to whoever reads the socket next.
_PENDING: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = _PENDING.pop(sock, b"")

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self.fill():
                raise ConnectionError(f"closed before {marker!r}")
        line, _, self.buffer = self.buffer.partition(marker)
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self.fill():
                raise ConnectionError("closed mid-body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def rest(self) -> bytes:
        try:
            while self.fill():
                pass
        except OSError:
            pass
        data, self.buffer = self.buffer, b""
        return data

    def keep(self) -> None:
        if self.buffer:
            _PENDING[self.sock] = self.buffer


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the peer's end of the stream; a reset raises (unlike _Reader.rest)."""
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def read_response(sock: socket.socket, head_request: bool = False, timeout: float = 10.0) -> Response:
    """Read exactly one final response from `sock`, keeping any bytes that follow it.

    A body cut short by the peer closing is returned as read (complete = False).
    """
    sock.settimeout(timeout)
    reader = _Reader(sock)
    response = Response()
    while True:
        try:
            head = reader.until(b"\r\n\r\n").decode("latin-1")
        except ConnectionError:
            return response
        lines = head.split("\r\n")
        response.status = int(lines[0].split(" ", 2)[1])
        response.headers = [
            (k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:] if line)
        ]
        if response.status >= 200 or response.status == 101:
            break
    if response.status == 101:
        response.upgraded = True
        reader.keep()
        return response
    length = response.header("content-length")
    chunked = (response.header("transfer-encoding") or "").lower() == "chunked"
    try:
        if head_request or response.status in (204, 304):
            pass
        elif chunked:
            while True:
                size = int(reader.until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    reader.until(b"\r\n")
                    break
                response.body += reader.exactly(size)
                reader.exactly(2)
        elif length is not None:
            response.body = reader.exactly(int(length))
        else:
            response.body = reader.rest()
        response.complete = True
    except ConnectionError:
        response.body += reader.buffer
        return response
    reader.keep()
    return response


class VhostdProcess:
    """A vhostd subprocess with its config in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        sites: list[dict[str, Any]] | None = None,
        server: dict[str, Any] | None = None,
        extra: str = "",
        docker: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = self.workdir / "vhostd.toml"
        (self.workdir / "sites.d").mkdir(exist_ok=True)
        (self.workdir / "htpasswd").mkdir(exist_ok=True)
        server_values = {
            "listen": [f"127.0.0.1:{self.port}"],
            "admin": f"127.0.0.1:{self.admin_port}",
        }
        server_values.update(server or {})
        text = toml_table("server", server_values)
        text += toml_table("docker", {"enabled": docker})
        text += toml_table("vagrant", {"enabled": False})
        text += toml_table("files", {"sites_dir": "sites.d", "htpasswd_dir": "htpasswd"})
        for site in sites or []:
            text += toml_table("site", site, array=True)
        self.config_path.write_text(text + extra)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "vhostd.log"

    def start(self) -> VhostdProcess:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [VHOSTD, "serve", "--config", str(self.config_path)],
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(self._ready, timeout=15)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"vhostd exited early:\n{self.log()}")
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            return read_response(sock).status == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> VhostdProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- talking to it -------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def request(
        self,
        path: str = "/",
        host: str = "a.test",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        with self.connect() as sock:
            sock.sendall(build_request(method, path, host, headers, body, close=True))
            return read_response(sock, head_request=method == "HEAD")

    def end_of(self, client: socket.socket) -> tuple[str, bool] | None:
        """vhostd's end of a loopback connection from `client`: its TCP state (as in
        /proc/net/tcp: "01" established, "04"/"05" FIN_WAIT1/2...) and whether a process
        still holds it (a socket its process has closed has inode 0 until it is gone)."""
        client_port = client.getsockname()[1]
        wanted = (f"0100007F:{self.port:04X}", f"0100007F:{client_port:04X}")
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if (fields[1], fields[2]) == wanted:
                    return fields[3], fields[9] != "0"
        return None

    def open_sockets(self) -> int:
        """How many sockets the vhostd process has open (a socket both sides have finished
        with leaves /proc/net/tcp but stays open until its owner closes it)."""
        assert self.process is not None
        fds = Path(f"/proc/{self.process.pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))

    def holds(self, client: socket.socket) -> bool:
        """Whether vhostd still has its end of the connection from `client` open."""
        end = self.end_of(client)
        return end is not None and end[1]

    def admin_json(self, path: str) -> Any:
        with socket.create_connection(("127.0.0.1", self.admin_port), timeout=5) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
            return read_response(sock).json()


def site(url: str, **extra: Any) -> dict[str, Any]:
    """The [[site]] most proxy tests use: a.test → `url`, with `extra` keys added."""
    return {"name": "a", "hosts": ["a.test"], "backends": [url], **extra}


def build_request(
    method: str = "GET",
    path: str = "/",
    host: str | None = "a.test",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    close: bool = False,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
