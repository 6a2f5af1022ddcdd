"""Large bodies stream both ways with bounded memory (backpressure in both directions)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.vhostd import build_request, read_response

GIB = 1 << 30


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples a process's resident memory while a transfer runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_1gib_download_streams_in_bounded_memory(origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    proxy.request("/echo")  # warm up
    baseline = rss_kib(proxy.process.pid)
    received = 0
    with PeakRss(proxy.process.pid) as rss, proxy.connect(timeout=60) as sock:
        sock.sendall(build_request("GET", f"/bytes?n={GIB}"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        _, received_part = head.split(b"\r\n\r\n", 1)
        received = len(received_part)
        while received < GIB:
            chunk = sock.recv(1 << 20)
            assert chunk
            received += len(chunk)
            if received < 64 << 20:
                time.sleep(0.0005)  # a slow reader for a while: backpressure must hold
    growth_mib = (rss.peak - baseline) / 1024
    print(f"1 GiB download: RSS baseline {baseline / 1024:.1f} MiB, growth {growth_mib:.1f} MiB")
    assert received == GIB
    assert growth_mib < 16


@pytest.mark.slow
def test_1gib_upload_streams_in_bounded_memory(origin, make_proxy):
    proxy = make_proxy([{"name": "a", "hosts": ["a.test"], "backends": [origin.url]}])
    proxy.request("/echo")
    baseline = rss_kib(proxy.process.pid)
    block = b"u" * (1 << 20)
    with PeakRss(proxy.process.pid) as rss, proxy.connect(timeout=60) as sock:
        sock.sendall(
            b"POST /sink HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % GIB
        )
        for _ in range(GIB // len(block)):
            sock.sendall(block)
        response = read_response(sock, timeout=60)
    growth_mib = (rss.peak - baseline) / 1024
    print(f"1 GiB upload: RSS baseline {baseline / 1024:.1f} MiB, growth {growth_mib:.1f} MiB")
    assert response.status == 200 and response.body == str(GIB).encode()
    assert growth_mib < 16
