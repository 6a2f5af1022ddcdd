"""Shared fixtures: real origin servers and a real vhostd process, all on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.origin import Origin
from tests.support.raw_backend import RawBackend
from tests.support.vhostd import VhostdProcess
from vhostd import native


def pytest_sessionstart(session: pytest.Session) -> None:
    """Test the code as it is now: compiled extensions older than their source are rebuilt."""
    if native.stale():
        import subprocess
        import sys

        script = Path(__file__).resolve().parent.parent / "scripts" / "build_native.py"
        subprocess.run([sys.executable, str(script)], check=True)


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin().start()
    yield server
    server.stop()


@pytest.fixture
def make_origin() -> Iterator[Callable[..., Origin]]:
    started: list[Origin] = []

    def make(name: str = "origin") -> Origin:
        server = Origin(name=name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def make_proxy(tmp_path: Path) -> Iterator[Callable[..., VhostdProcess]]:
    """Start vhostd with the given sites/server settings; stopped at teardown."""
    started: list[VhostdProcess] = []

    def make(sites: list[dict[str, Any]] | None = None, **kwargs: Any) -> VhostdProcess:
        workdir = tmp_path / f"vhostd{len(started)}"
        workdir.mkdir()
        proxy = VhostdProcess(workdir, sites=sites, **kwargs).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def raw_backend() -> Iterator[Callable[..., RawBackend]]:
    """make(handler): a RawBackend serving each connection with handler(conn, backend)."""
    started: list[RawBackend] = []

    def make(handler: Callable[..., None]) -> RawBackend:
        backend = RawBackend(handler)
        started.append(backend)
        return backend

    yield make
    for backend in started:
        backend.stop()
