"""Fixtures for tests against the real Docker engine (started by scripts/ensure-system.sh).

Every container and network a test makes carries a per-test name prefix and is removed at
teardown. The provider runs in a thread with its own event loop, exactly as the runtime
runs it; tests wait for the snapshot they expect with a deadline, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from tests.support.docker_images import responder_image
from vhostd.config.model import Config, DockerSettings
from vhostd.providers.docker.watch import run_docker_provider
from vhostd.providers.snapshot import Snapshot

_serial = itertools.count()


class DockerCli:
    """The docker command line, bound to a daemon and a name prefix for cleanup."""

    def __init__(self, prefix: str, host: str | None = None) -> None:
        self.prefix = prefix
        self.base = ["docker", *(["-H", host] if host else [])]

    def __call__(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, check=False, timeout=60
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def run(
        self,
        name: str,
        image: str,
        env: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> str:
        """Start a detached responder named prefix+name; returns the full name."""
        full = self.prefix + name
        args = ["run", "-d", "--name", full, "-e", f"RESPONDER_NAME={name}"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        self(*args, *extra, image)
        return full

    def ip(self, full_name: str, network: str = "bridge") -> str:
        template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return self("inspect", "-f", template, full_name)

    def network_with_subnet(self, name: str) -> str:
        """A network with a small fixed subnet (needed for --ip); tries free ones in turn."""
        full = self.prefix + name
        for attempt in range(16):
            third = (os.getpid() + attempt * 17) % 250
            created = subprocess.run(
                [*self.base, "network", "create", "--subnet", f"10.231.{third}.0/28", full],
                capture_output=True,
                check=False,
            )
            if created.returncode == 0:
                return full
        raise AssertionError("no free 10.231.x.0/28 subnet for a test network")

    def cleanup(self) -> None:
        names = self("ps", "-aq", "--filter", f"name=^/{self.prefix}", check=False).split()
        if names:
            self("rm", "-f", *names, check=False)
        networks = self("network", "ls", "-q", "--filter", f"name=^{self.prefix}", check=False)
        for network in networks.split():
            self("network", "rm", network, check=False)


class ProviderThread:
    """run_docker_provider in a thread; remembers every snapshot it published."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.published: list[tuple[float, Snapshot]] = []  # (wall clock, snapshot)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _publish(self, snapshot: Snapshot) -> None:
        with self._changed:
            self.published.append((time.time(), snapshot))
            self._changed.notify_all()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(run_docker_provider(self.config, self._publish))
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    def start(self) -> ProviderThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=10)

    @property
    def latest(self) -> Snapshot | None:
        with self._changed:
            return self.published[-1][1] if self.published else None

    def wait_for(
        self, predicate: Callable[[Snapshot], bool], timeout: float = 10.0, what: str = ""
    ) -> tuple[float, Snapshot]:
        """The first published snapshot (from now on or already latest) that satisfies it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = max(len(self.published) - 1, 0)
            while True:
                for stamp, snapshot in self.published[seen:]:
                    if predicate(snapshot):
                        return stamp, snapshot
                seen = len(self.published)
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self.published[-1][1] if self.published else None
                    raise AssertionError(f"timed out waiting for {what or predicate}; last: {last}")
                self._changed.wait(left)


def host_of(docker: DockerCli, name: str) -> str:
    """A host name unique to this test run, so parallel runs never share a route."""
    return f"{name}.{docker.prefix.strip('-')}.test"


def started_at(docker: DockerCli, full_name: str) -> float:
    """State.StartedAt as a Unix timestamp (nanoseconds trimmed to microseconds)."""
    text = docker("inspect", "-f", "{{.State.StartedAt}}", full_name)
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{frac[:6].ljust(6, '0')}+00:00").timestamp()


def site_for(snapshot: Snapshot, host: str) -> Any:
    """The site serving `host` in a snapshot, or None."""
    for site in snapshot.sites:
        if host in site.hosts:
            return site
    return None


def backends_of(snapshot: Snapshot, host: str) -> list[str]:
    """Labels (container names) in rotation for `host`."""
    site = site_for(snapshot, host)
    return sorted(b.label for b in site.backends) if site else []


@pytest.fixture(scope="session")
def docker_ready() -> None:
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail("Docker engine not reachable: run `bash scripts/ensure-system.sh` first")


@pytest.fixture(scope="session")
def image(docker_ready: None) -> str:
    return responder_image()


@pytest.fixture
def docker(docker_ready: None) -> Iterator[DockerCli]:
    cli = DockerCli(f"vhostd-dk{os.getpid()}-{next(_serial)}-")
    cli.cleanup()
    yield cli
    cli.cleanup()


@pytest.fixture
def provider_config() -> Config:
    return replace(Config(), docker=DockerSettings(enabled=True))


@pytest.fixture
def provider(provider_config: Config, docker_ready: None) -> Iterator[ProviderThread]:
    thread = ProviderThread(provider_config).start()
    thread.wait_for(lambda s: True, what="the first snapshot")
    yield thread
    thread.stop()
