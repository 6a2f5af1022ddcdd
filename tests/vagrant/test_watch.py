"""run_vagrant_provider in-process against real `vagrant` runs: snapshots follow the index."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.vagrant.conftest import VagrantProject, needs_vagrant
from vhostd.config.model import Config, VagrantSettings
from vhostd.providers.snapshot import Snapshot
from vhostd.providers.vagrant.build import PROJECT_STOPPED
from vhostd.providers.vagrant.settings import vagrant_enabled, vagrant_home
from vhostd.providers.vagrant.watch import Watcher, run_vagrant_provider

REFLECTED_WITHIN_S = 2.0


def test_a_watch_ends_when_a_watched_directory_is_replaced(tmp_path: Path) -> None:
    """Its inotify watch died with the old directory: the provider must plan a new one."""
    machine_dir, project_dir = tmp_path / "machine", tmp_path / "project"
    machine_dir.mkdir()
    project_dir.mkdir()

    async def main() -> None:
        changed = asyncio.Event()
        fds_before = set(os.listdir("/proc/self/fd"))
        watcher = Watcher((str(machine_dir), str(project_dir)), changed)
        assert watcher.error is None and watcher.task is not None
        (project_dir / "Vagrantfile").write_text("")
        await asyncio.wait_for(changed.wait(), 10)
        assert not watcher.ended()  # an entry changed: the watches still hold
        machine_dir.rmdir()
        machine_dir.mkdir()
        await asyncio.wait_for(watcher.task, 10)
        assert watcher.ended()
        watcher.close()
        # one that cannot start says why, and is ended so that the provider tries again
        failed = Watcher((str(tmp_path / "gone"),), changed)
        assert isinstance(failed.error, FileNotFoundError) and failed.ended()
        failed.close()
        # cancelled before its task ever ran: closing still gives the descriptor back
        early = Watcher((str(machine_dir),), changed)
        assert early.task is not None
        early.task.cancel()
        early.close()
        assert set(os.listdir("/proc/self/fd")) == fds_before

    asyncio.run(main())


def test_home_resolution_and_auto_enable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "env-home"))
    assert vagrant_home(VagrantSettings()) == str(tmp_path / "env-home")
    assert vagrant_home(VagrantSettings(home=str(tmp_path / "set"))) == str(tmp_path / "set")
    assert not vagrant_enabled(VagrantSettings())  # auto: the home does not exist
    (tmp_path / "env-home").mkdir()
    assert vagrant_enabled(VagrantSettings())
    assert not vagrant_enabled(VagrantSettings(enabled=False))


async def _until(
    published: list[tuple[float, Snapshot]], condition: Callable[[Snapshot], bool], limit: float
) -> float:
    """Wall-clock time of the first snapshot (still the latest) satisfying `condition`."""
    started = time.monotonic()
    while not (published and condition(published[-1][1])):
        assert time.monotonic() - started < limit, f"not reflected within {limit}s: {published[-1:]}"
        await asyncio.sleep(0.02)
    first = len(published) - 1
    while first > 0 and condition(published[first - 1][1]):
        first -= 1
    return published[first][0]


def _backends(snapshot: Snapshot) -> list[str]:
    return [b.host for site in snapshot.sites for b in site.backends]


@needs_vagrant
@pytest.mark.docker
def test_snapshots_follow_up_and_halt_within_two_seconds(
    vagrant_home: Path, make_vagrant_project: Callable[[str], VagrantProject]
) -> None:
    project = make_vagrant_project("watched")
    project.declare('hosts = "watched.test"\nport = 80\n')
    config = Config(vagrant=VagrantSettings(enabled=True, home=str(vagrant_home)))

    index = vagrant_home / "data" / "machine-index" / "index"

    async def scenario() -> list[float]:
        published: list[tuple[float, Snapshot]] = []
        provider = asyncio.create_task(
            run_vagrant_provider(config, lambda s: published.append((time.time(), s)))
        )
        try:
            await _until(published, lambda s: s.sites == (), 5)  # empty, home not created yet
            delays = []
            for command, condition in (
                ("up", lambda s: len(_backends(s)) == 1),
                ("halt", lambda s: s.sites[0].unavailable_reason == PROJECT_STOPPED),
                ("up", lambda s: len(_backends(s)) == 1),
            ):
                await asyncio.to_thread(project.vagrant, command)
                seen_at = await _until(published, condition, REFLECTED_WITHIN_S)
                # from Vagrant's last write of its index to the snapshot that shows it
                delays.append(seen_at - index.stat().st_mtime)  # < 0: seen before the index write
            (site,) = published[-1][1].sites
            assert site.source == f"vagrant:{project.directory}/default"
            assert site.backends[0].port == 80 and site.hosts == ("watched.test",)
            return delays
        finally:
            provider.cancel()
            with pytest.raises(asyncio.CancelledError):
                await provider

    delays = asyncio.run(scenario())
    print(f"machine index written → snapshot published: {[round(d, 3) for d in delays]} s")
    assert max(delays) < REFLECTED_WITHIN_S
