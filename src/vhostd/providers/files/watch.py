"""The file provider's I/O: read sites_dir and htpasswd_dir, watch them, publish snapshots.

Every change rescans both directories whole and runs the pure builder (build.py), so the
snapshot is always complete and an unchanged result is not published again. inotify
(dirwatch.py) watches the directories and their parents, so a directory made, removed or
replaced (`mkdir sites.d` after start-up, a `sites.d` symlink swapped by a deploy) restarts
the watch at once. What no watch sees is polled: every 0.25 s when a parent is missing or a
symlink lies on the way (`current -> releases/N`), else every 2 s (a renamed grandparent).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Collection, Iterable
from contextlib import aclosing

from vhostd.config.load import site_defaults
from vhostd.config.model import Config, Site
from vhostd.providers.dirwatch import DirWatch
from vhostd.providers.files.build import build, is_htpasswd_file, is_site_file
from vhostd.providers.snapshot import Snapshot

log = logging.getLogger("vhostd.files")

DEBOUNCE_S = 0.15  # group an editor's write+rename into one rescan, well inside 1 s
QUIET_S = 0.01  # quiet time that ends a burst: an editor writes and renames within microseconds
EXISTENCE_POLL_S = 0.25  # how often directories are looked for while a parent is missing
SAFETY_POLL_S = 2.0  # ...and otherwise: a renamed grandparent escapes every watch
_RETRY_S = 0.5  # after a watcher error, before watching again; doubled on each failure
_RETRY_MAX_S = 1.0  # meanwhile each retry rescans: changes stay live within a second

# per directory: (device, inode) when it exists, else None
DirState = tuple[tuple[int, int] | None, ...]


def display_path(path: str) -> str:
    """Relative to the working directory when inside it ("sites.d/a.toml"), else absolute."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if absolute.startswith(cwd + os.sep):
        return os.path.relpath(absolute, cwd)
    return absolute


def read_dir_texts(directory: str, accept: Callable[[str], bool]) -> dict[str, str]:
    """{display path: text} of the accepted regular files of `directory` (missing → {})."""
    texts: dict[str, str] = {}
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return texts
    except OSError as exc:
        log.warning("cannot list %s: %s", directory, exc.strerror)
        return texts
    for name in names:
        if not accept(name):
            continue
        path = os.path.join(directory, name)
        try:
            if not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as handle:
                texts[display_path(path)] = handle.read()
        except OSError:
            continue  # deleted between listing and reading: the next event rescans
    return texts


def scan(config: Config) -> tuple[dict[str, str], dict[str, str]]:
    """(site file texts, htpasswd file texts) as they are on disk now."""
    return (
        read_dir_texts(config.files.sites_dir, is_site_file),
        read_dir_texts(config.files.htpasswd_dir, is_htpasswd_file),
    )


def _dir_state(directories: tuple[str, ...]) -> DirState:
    states: list[tuple[int, int] | None] = []
    for directory in directories:
        try:
            stat = os.stat(directory)
        except OSError:
            states.append(None)
            continue
        states.append((stat.st_dev, stat.st_ino) if os.path.isdir(directory) else None)
    return tuple(states)


async def _signal_when_dirs_change(
    directories: tuple[str, ...], seen: DirState, changed: asyncio.Event, every_s: float
) -> None:
    while _dir_state(directories) == seen:
        await asyncio.sleep(every_s)
    changed.set()


def _parent_entries(directories: tuple[str, ...]) -> dict[str, set[str]]:
    """{parent: the names of its entries that are our directories}."""
    entries: dict[str, set[str]] = {}
    for directory in directories:
        entries.setdefault(os.path.dirname(directory), set()).add(os.path.basename(directory))
    return entries


def _watch_parents(watch: DirWatch, entries: dict[str, set[str]]) -> set[str]:
    """Watch each parent for its entries coming and going; those that could be watched
    (not missing, readable)."""
    watched: set[str] = set()
    for parent, names in sorted(entries.items()):
        try:
            watch.add(parent, names)
        except OSError:
            continue  # the poll looks for its directory instead
        watched.add(parent)
    return watched


def classify(
    changes: Iterable[str], directories: tuple[str, ...], parents: Collection[str]
) -> tuple[bool, bool]:
    """(an entry of a directory changed, a directory or a watched parent itself changed).

    A parent's other entries are neither: the parent is watched only for the directory.
    """
    contents = layout = False
    for path in changes:
        path = os.path.normpath(path)
        if path in directories or path in parents:
            layout = True
        if os.path.dirname(path) in directories:
            contents = True
    return contents, layout


class FileSnapshots:
    """Rescans on demand and publishes the snapshot when it differs from the last one."""

    def __init__(self, config: Config, publish: Callable[[Snapshot], None]) -> None:
        self.config = config
        self.publish = publish
        self.defaults = site_defaults(config)
        self.last_good: dict[str, tuple[Site, ...]] = {}
        self.snapshot: Snapshot | None = None

    def refresh(self) -> bool:
        """Rescan, rebuild, publish when changed; True when published."""
        site_texts, htpasswd_texts = scan(self.config)
        result = build(site_texts, htpasswd_texts, self.last_good, self.defaults)
        self.last_good = dict(result.last_good)
        if result.snapshot == self.snapshot:
            return False
        self.snapshot = result.snapshot
        self.publish(result.snapshot)
        return True


async def run_file_provider(config: Config, publish: Callable[[Snapshot], None]) -> None:
    """Publish the sites.d + htpasswd snapshot now and after every change, until cancelled."""
    snapshots = FileSnapshots(config, publish)
    directories = tuple(
        os.path.normpath(os.path.abspath(d))
        for d in (config.files.sites_dir, config.files.htpasswd_dir)
    )
    retry_s, last_error = _RETRY_S, ""
    while True:
        try:
            await _watch_until_layout_changes(snapshots, directories)
            retry_s, last_error = _RETRY_S, ""
        except OSError as exc:  # a directory vanished meanwhile, no inotify watches left...
            snapshots.refresh()  # without watches, each retry reads the directories instead
            if str(exc) != last_error:  # said once, not every retry
                log.warning(
                    "watching %s failed (%s); rescanning every %gs at most until it works",
                    ", ".join(directories),
                    exc,
                    _RETRY_MAX_S,
                )
                last_error = str(exc)
            await asyncio.sleep(retry_s)
            retry_s = min(2 * retry_s, _RETRY_MAX_S)


async def _watch_until_layout_changes(
    snapshots: FileSnapshots, directories: tuple[str, ...]
) -> None:
    """Refresh once the watches are in place, then on every change in the directories,
    until one of them comes, goes or is replaced (then the watches must be made again)."""
    state = _dir_state(directories)
    existing = [d for d, s in zip(directories, state, strict=True) if s is not None]
    dirs_changed = asyncio.Event()
    with DirWatch(existing) as watch:
        entries = _parent_entries(directories)
        watched_parents = _watch_parents(watch, entries)
        # a parent's watch sees its directory made, replaced or removed; not a missing
        # parent, nor a symlink on the way being swapped: poll for those
        seen_at_once = watched_parents == set(entries) and all(
            os.path.realpath(d) == d for d in directories
        )
        every_s = SAFETY_POLL_S if seen_at_once else EXISTENCE_POLL_S
        guard = asyncio.create_task(
            _signal_when_dirs_change(directories, state, dirs_changed, every_s)
        )
        try:
            # the first snapshot, or what changed since the last watches ended: each round
            # reads the directories once, here, so nothing between two rounds is missed
            snapshots.refresh()
            bursts = watch.bursts(QUIET_S, DEBOUNCE_S, dirs_changed)
            async with aclosing(bursts):
                async for changes in bursts:
                    contents, layout = classify(changes, directories, watched_parents)
                    if layout:  # the next round reads it, once its watches are in place
                        return
                    if contents:
                        snapshots.refresh()
        finally:
            guard.cancel()
