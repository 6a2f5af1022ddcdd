"""The file provider on a real directory: edits on disk become snapshots, live."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from vhostd.config.model import Config, FileSettings
from vhostd.providers.dirwatch import DirWatch
from vhostd.providers.files import watch
from vhostd.providers.files.watch import classify, run_file_provider
from vhostd.providers.snapshot import Snapshot

# The contract is "live within 1 s"; the margin absorbs a loaded 2-core CI machine.
RELOAD_DEADLINE = 2.0
BCRYPT = "$2y$05$" + "a" * 53


@pytest.fixture(autouse=True)
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only inotify can notice a change here: the polls wait an hour."""
    monkeypatch.setattr(watch, "EXISTENCE_POLL_S", 3600.0)
    monkeypatch.setattr(watch, "SAFETY_POLL_S", 3600.0)


def site(name: str, host: str) -> str:
    return f'[[site]]\nname = "{name}"\nhosts = ["{host}"]\nbackends = ["127.0.0.1:3000"]\n'


class Recorder:
    """Collects published snapshots; waits for one that satisfies a condition."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []

    def publish(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)

    @property
    def last(self) -> Snapshot:
        return self.snapshots[-1]

    async def wait_for(
        self, condition: Callable[[Snapshot], bool], deadline: float = RELOAD_DEADLINE
    ) -> float:
        """Seconds until the latest snapshot satisfies `condition`; fails past the deadline."""
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            if self.snapshots and condition(self.last):
                return time.monotonic() - start
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching snapshot within {deadline}s; last: {self.snapshots[-1:]}")


def hosts_of(snapshot: Snapshot) -> set[str]:
    return {host for s in snapshot.sites for host in s.hosts}


def run(
    tmp_path: Path,
    scenario: Callable[[Recorder, Path, Path], Awaitable[None]],
    sites_dir: Path | None = None,
) -> Recorder:
    sites_dir, htpasswd_dir = sites_dir or tmp_path / "sites.d", tmp_path / "htpasswd"
    config = Config(files=FileSettings(str(sites_dir), str(htpasswd_dir)))
    recorder = Recorder()

    async def main() -> None:
        provider = asyncio.create_task(run_file_provider(config, recorder.publish))
        try:
            await recorder.wait_for(lambda s: True)  # the initial snapshot
            await scenario(recorder, sites_dir, htpasswd_dir)
        finally:
            provider.cancel()
            try:
                await provider
            except asyncio.CancelledError:
                pass

    asyncio.run(main())
    return recorder


def test_add_edit_delete_site_files(tmp_path: Path) -> None:
    (tmp_path / "sites.d").mkdir()
    (tmp_path / "sites.d" / "a.toml").write_text(site("a", "a.test"))

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        assert hosts_of(rec.last) == {"a.test"}
        (sites / "b.toml").write_text(site("b", "b.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"a.test", "b.test"})
        (sites / "a.toml").write_text(site("a", "a2.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"a2.test", "b.test"})
        (sites / "b.toml").unlink()
        await rec.wait_for(lambda s: hosts_of(s) == {"a2.test"})

    rec = run(tmp_path, scenario)
    assert rec.last.sites[0].source == f"file:{tmp_path}/sites.d/a.toml:1"


def test_atomic_save_by_rename_and_ignored_temp_files(tmp_path: Path) -> None:
    (tmp_path / "sites.d").mkdir()
    (tmp_path / "sites.d" / "a.toml").write_text(site("a", "a.test"))

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        # an editor's swap file and a dotfile are not sites
        (sites / ".a.toml.swp").write_text(site("swap", "swap.test"))
        (sites / "notes.txt").write_text("hello")
        temp = sites / ".a.toml.tmp"
        temp.write_text(site("a", "renamed.test"))
        os.replace(temp, sites / "a.toml")
        await rec.wait_for(lambda s: hosts_of(s) == {"renamed.test"})

    rec = run(tmp_path, scenario)
    assert all("swap.test" not in hosts_of(s) for s in rec.snapshots)


def test_broken_file_reported_once_and_last_good_kept(tmp_path: Path) -> None:
    (tmp_path / "sites.d").mkdir()
    (tmp_path / "sites.d" / "a.toml").write_text(site("a", "a.test"))

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        (sites / "a.toml").write_text(site("a", "a.test") + "max_body_size = \"lots\"\n")
        await rec.wait_for(lambda s: bool(s.problems))
        broken = rec.last
        assert hosts_of(broken) == {"a.test"}  # the last good version still routes
        assert broken.problems[0].where == f"{sites}/a.toml:5"
        assert "invalid size 'lots'" in broken.problems[0].reason
        count = len(rec.snapshots)
        # another file changes: the broken one's problem is not published as new again
        (sites / "b.toml").write_text(site("b", "b.test"))
        await rec.wait_for(lambda s: "b.test" in hosts_of(s))
        assert len(rec.snapshots) == count + 1
        assert rec.last.problems == broken.problems
        (sites / "a.toml").write_text(site("a", "fixed.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"fixed.test", "b.test"} and not s.problems)

    run(tmp_path, scenario)


def test_directories_created_after_start_are_watched(tmp_path: Path) -> None:
    async def scenario(rec: Recorder, sites: Path, htpasswd: Path) -> None:
        assert rec.last.sites == () and rec.last.credentials == ()
        sites.mkdir()
        (sites / "a.toml").write_text(site("a", "late.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"late.test"})
        htpasswd.mkdir()
        (htpasswd / "late.test").write_text(f"alice:{BCRYPT}\n")
        await rec.wait_for(lambda s: [c.name for c in s.credentials] == ["late.test"])
        # and once created, later edits in it are seen too
        (htpasswd / "late.test").write_text(f"alice:{BCRYPT}\nbob:{BCRYPT}\n")
        await rec.wait_for(lambda s: len(s.credentials[0].entries) == 2)

    run(tmp_path, scenario)


def test_directory_removed_and_recreated(tmp_path: Path) -> None:
    (tmp_path / "sites.d").mkdir()
    (tmp_path / "sites.d" / "a.toml").write_text(site("a", "a.test"))

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        (sites / "a.toml").unlink()
        sites.rmdir()
        await rec.wait_for(lambda s: s.sites == ())
        sites.mkdir()
        (sites / "c.toml").write_text(site("c", "c.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"c.test"})

    run(tmp_path, scenario)


def test_a_sites_dir_symlink_swapped_by_a_deploy_is_followed(tmp_path: Path) -> None:
    for release, host in (("r1", "one.test"), ("r2", "two.test")):
        (tmp_path / release).mkdir()
        (tmp_path / release / "a.toml").write_text(site("a", host))
    (tmp_path / "sites.d").symlink_to(tmp_path / "r1")

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        assert hosts_of(rec.last) == {"one.test"}
        # `ln -sfn r2 sites.d`: a new link renamed over the old one
        (tmp_path / "sites.d.new").symlink_to(tmp_path / "r2")
        os.rename(tmp_path / "sites.d.new", sites)
        await rec.wait_for(lambda s: hosts_of(s) == {"two.test"})
        # and the new target's edits are seen
        (tmp_path / "r2" / "b.toml").write_text(site("b", "b.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"two.test", "b.test"})

    run(tmp_path, scenario)


def test_a_directory_under_a_missing_parent_is_found_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "EXISTENCE_POLL_S", 0.05)
    sites_dir = tmp_path / "etc" / "vhostd" / "sites.d"

    async def scenario(rec: Recorder, sites: Path, _htpasswd: Path) -> None:
        sites.mkdir(parents=True)
        (sites / "a.toml").write_text(site("a", "a.test"))
        await rec.wait_for(lambda s: hosts_of(s) == {"a.test"})

    run(tmp_path, scenario, sites_dir)


def test_a_symlink_swapped_above_the_directory_is_found_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`current -> releases/N` swapped by a deploy: no watch sees that, the fast poll must."""
    monkeypatch.setattr(watch, "EXISTENCE_POLL_S", 0.05)
    for release, host in (("r1", "one.test"), ("r2", "two.test")):
        (tmp_path / release / "sites.d").mkdir(parents=True)
        (tmp_path / release / "sites.d" / "a.toml").write_text(site("a", host))
    (tmp_path / "current").symlink_to(tmp_path / "r1")

    async def scenario(rec: Recorder, _sites: Path, _htpasswd: Path) -> None:
        assert hosts_of(rec.last) == {"one.test"}
        (tmp_path / "current.new").symlink_to(tmp_path / "r2")
        os.rename(tmp_path / "current.new", tmp_path / "current")
        await rec.wait_for(lambda s: hosts_of(s) == {"two.test"})

    run(tmp_path, scenario, tmp_path / "current" / "sites.d")


def test_changes_beside_the_directories_are_not_theirs() -> None:
    directories = ("/p/sites.d", "/p/htpasswd")
    parents = {"/p"}
    assert classify(["/p/sites.d/a.toml"], directories, parents) == (True, False)
    assert classify(["/p/notes.txt", "/p/.git"], directories, parents) == (False, False)
    assert classify(["/p/sites.d"], directories, parents) == (False, True)  # made or replaced
    assert classify(["/p"], directories, parents) == (False, True)  # the parent itself
    # htpasswd inside sites.d: its coming is both an entry and a directory
    assert classify(["/p/sites.d/pw"], ("/p/sites.d", "/p/sites.d/pw"), parents) == (True, True)


def test_parents_are_watched_only_for_their_directories_names(tmp_path: Path) -> None:
    async def main() -> None:
        with DirWatch([]) as dir_watch:
            entries = {str(tmp_path): {"sites.d", "htpasswd"}, str(tmp_path / "no"): {"x"}}
            assert watch._watch_parents(dir_watch, entries) == {str(tmp_path)}  # "no" is missing
            assert list(dir_watch.watches.values()) == [
                {str(tmp_path): frozenset({"sites.d", "htpasswd"})}
            ]

    asyncio.run(main())
