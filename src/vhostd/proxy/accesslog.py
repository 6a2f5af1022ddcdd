"""One line per request, combined format or JSON, written by a thread off the event loop.

The loop only formats and appends to a deque; a writer thread drains it in batches, so a
slow disk or a blocked stdout pipe never stalls request handling. When the writer falls
far behind, lines are dropped and counted rather than growing memory without bound.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from typing import IO, Any

_MAX_PENDING = 100_000


class AccessLog:
    def __init__(self, destination: str, fmt: str = "combined") -> None:
        self.json = fmt == "json"
        self.pending: deque[str] = deque()
        self.dropped = 0
        self._wake = threading.Event()
        self._stop = False
        self._stream: IO[str] = (
            sys.stdout if destination == "stdout" else open(destination, "a", encoding="utf-8")
        )
        self._thread = threading.Thread(target=self._drain, name="access-log", daemon=True)
        self._thread.start()

    def record(
        self,
        client_ip: bytes,
        request: Any,
        status: int,
        sent: int,
        duration: float,
        site: str,
    ) -> None:
        if len(self.pending) >= _MAX_PENDING:
            self.dropped += 1
            return
        self.pending.append(self.format(client_ip, request, status, sent, duration, site))
        self._wake.set()

    def format(
        self, client_ip: bytes, request: Any, status: int, sent: int, duration: float, site: str
    ) -> str:
        referer = request.header(b"referer") or b"-"
        user_agent = request.header(b"user-agent") or b"-"
        ip = client_ip.decode()
        method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        if self.json:
            return json.dumps(
                {
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "client": ip,
                    "host": (request.host or b"").decode("latin-1"),
                    "method": method,
                    "target": target,
                    "version": request.version.decode(),
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round(duration * 1000, 3),
                    "site": site,
                    "referer": referer.decode("latin-1"),
                    "user_agent": user_agent.decode("latin-1"),
                }
            )
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        return (
            f'{ip} - - [{stamp}] "{method} {target} HTTP/{request.version.decode()}" '
            f'{status} {sent} "{referer.decode("latin-1")}" "{user_agent.decode("latin-1")}"'
        )

    def _drain(self) -> None:
        while True:
            self._wake.wait(1.0)
            self._wake.clear()
            lines = []
            while self.pending:
                lines.append(self.pending.popleft())
            if lines:
                try:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    pass
            if self._stop and not self.pending:
                return

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=5)
        if self._stream is not sys.stdout:
            self._stream.close()
