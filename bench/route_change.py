"""Route-change latency: a declaration appears (site file, container) → first 200 through vhostd.

Polling uses one keep-alive connection and a 1 ms pause between requests, so the figure's
resolution is about a millisecond plus one round trip.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from pathlib import Path

POLL_PAUSE_S = 0.001


class Poller:
    """GET host/path through the proxy over a reused connection until it answers 200."""

    def __init__(self, port: int, host: str, path: str = "/") -> None:
        self.port, self.host, self.path = port, host, path
        self._conn: http.client.HTTPConnection | None = None

    def status(self) -> int | None:
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            self._conn.request("GET", self.path, headers={"Host": self.host})
            response = self._conn.getresponse()
            response.read()
            if response.will_close:
                self.close()
            return response.status
        except (OSError, http.client.HTTPException):
            self.close()
            return None

    def wait_for_200(self, deadline: float) -> float | None:
        """Monotonic time of the first 200, or None when the deadline passed first."""
        while time.monotonic() < deadline:
            if self.status() == 200:
                return time.monotonic()
            time.sleep(POLL_PAUSE_S)
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def site_file_text(name: str, host: str, origin_port: int) -> str:
    """A sites.d declaration routing host to the origin."""
    return (
        "[[site]]\n"
        f'name = "{name}"\n'
        f'hosts = ["{host}"]\n'
        f'backends = ["http://127.0.0.1:{origin_port}"]\n'
    )


def summarise_ms(samples: list[float | None]) -> dict[str, float | int | None]:
    """Median, max and misses of latency samples (seconds, None = never became 200)."""
    hits = [s * 1000 for s in samples if s is not None]
    return {
        "samples": len(samples),
        "missed": len(samples) - len(hits),
        "median_ms": round(statistics.median(hits), 1) if hits else None,
        "max_ms": round(max(hits), 1) if hits else None,
    }


def file_route_latency(
    port: int, sites_dir: Path, origin_port: int, repeats: int, timeout: float = 5.0
) -> dict[str, float | int | None]:
    """Write a new site file `repeats` times; time each until its host answers 200."""
    samples: list[float | None] = []
    for index in range(repeats):
        name = f"route-change-{index}-{time.monotonic_ns()}"
        host = f"{name}.bench.local"
        poller = Poller(port, host, "/small")
        if poller.status() == 200:
            raise RuntimeError(f"{host} answered 200 before its site file existed")
        text = site_file_text(name, host, origin_port)
        written_at = time.monotonic()
        (sites_dir / f"{name}.toml").write_text(text)
        first_ok = poller.wait_for_200(written_at + timeout)
        samples.append(None if first_ok is None else first_ok - written_at)
        poller.close()
    return summarise_ms(samples)


def all_workers_latency(
    port: int,
    sites_dir: Path,
    origin_port: int,
    repeats: int,
    streak: int = 50,
    timeout: float = 5.0,
) -> dict[str, float | int | None]:
    """With several workers: write → the moment no fresh connection gets a non-200 any more.

    Each poll opens a new connection, which SO_REUSEPORT hands to a worker by its address
    hash, so `streak` 200s in a row mean every worker (very likely) has the route; the
    sample is the time of the first 200 of that streak.
    """
    samples: list[float | None] = []
    for index in range(repeats):
        name = f"route-workers-{index}-{time.monotonic_ns()}"
        host = f"{name}.bench.local"
        written_at = time.monotonic()
        (sites_dir / f"{name}.toml").write_text(site_file_text(name, host, origin_port))
        streak_start: float | None = None
        in_a_row = 0
        while in_a_row < streak and time.monotonic() < written_at + timeout:
            poller = Poller(port, host, "/small")
            now = time.monotonic()
            if poller.status() == 200:
                streak_start = now if in_a_row == 0 else streak_start
                in_a_row += 1
            else:
                in_a_row = 0
                time.sleep(POLL_PAUSE_S)
            poller.close()
        converged = in_a_row >= streak and streak_start is not None
        samples.append(streak_start - written_at if converged and streak_start else None)
    return summarise_ms(samples)


def timed_until_200(
    port: int, host: str, path: str, action: Callable[[], object], timeout: float
) -> float | None:
    """Seconds from just before action() to the first 200 for host, None on timeout."""
    poller = Poller(port, host, path)
    started = time.monotonic()
    action()
    first_ok = poller.wait_for_200(started + timeout)
    poller.close()
    return None if first_ok is None else first_ok - started
