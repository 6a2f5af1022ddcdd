"""The Vagrant provider's I/O: follow Vagrant's machine index and projects, publish snapshots.

Nothing here runs Vagrant's (slow) CLI. `vagrant up/halt/reload/destroy` rewrite the global
machine index and the machine's data directory; both are watched with inotify (dirwatch.py),
non-recursively, on exactly the directories that matter. Every change triggers a full rescan
(read the index, each project's `vhost.toml` and Vagrantfile, inspect docker-provider
containers through the Docker API) and a complete snapshot. Docker container events for the
machines we know trigger a rescan too, so a container that dies on its own is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable

import aiodocker
import aiohttp

from vhostd.config.model import Config
from vhostd.providers.dirwatch import DirWatch
from vhostd.providers.snapshot import Problem, Snapshot
from vhostd.providers.vagrant.build import (
    ContainerFacts,
    MachineFacts,
    MachineRecord,
    ProjectFacts,
    build,
    group_by_project,
    parse_machine_index,
)
from vhostd.providers.vagrant.declaration import DECLARATION_FILE
from vhostd.providers.vagrant.settings import machine_index_path, vagrant_home

log = logging.getLogger("vhostd.vagrant")

WATCH_DEBOUNCE_S = 0.1  # Vagrant writes several files per command; one rescan for the burst
WATCH_QUIET_S = 0.05  # ...unless it goes quiet for this long first
UNREADABLE_RETRY_S = 0.2  # the index can be caught mid-write; look again shortly
WATCH_RETRY_S = 0.5  # directories that could not be watched: try again, doubling up to...
WATCH_RETRY_MAX_S = 5.0


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def _existing_ancestor(path: str, stop: str = "/") -> str:
    """`path` itself or its nearest existing parent (never above `stop`)."""
    while not os.path.isdir(path) and path not in (stop, os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def watch_dirs(index_path: str, records: Iterable[MachineRecord]) -> tuple[str, ...]:
    """The directories to watch (non-recursively) for the index and these machines."""
    dirs = {_existing_ancestor(os.path.dirname(index_path))}
    for record in records:
        if not os.path.isdir(record.project_dir):
            continue
        dirs.add(record.project_dir)  # vhost.toml, Vagrantfile, .vagrant appearing
        dirs.add(_existing_ancestor(os.path.dirname(record.id_file()), record.project_dir))
    return tuple(sorted(dirs))


class ContainerLookup:
    """Docker API access for docker-provider machines; reconnects lazily after a failure."""

    def __init__(self, docker_host: str) -> None:
        self.docker_host = docker_host
        self.client: aiodocker.Docker | None = None

    def _client(self) -> aiodocker.Docker:
        if self.client is None:
            self.client = aiodocker.Docker(url=self.docker_host)
        return self.client

    async def facts(self, container_id: str) -> ContainerFacts | None:
        """Running state and IPs of a container; not-running when it is gone; None if unknown."""
        try:
            container = await self._client().containers.get(container_id)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return ContainerFacts(running=False)
            log.warning("docker: cannot inspect container %s: %s", container_id[:12], exc)
            return None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("docker: unreachable at %s: %s", self.docker_host, exc)
            return None
        running = bool(container["State"].get("Running"))
        networks = (container["NetworkSettings"] or {}).get("Networks") or {}
        addresses = tuple(n["IPAddress"] for n in networks.values() if n.get("IPAddress"))
        return ContainerFacts(running=running, addresses=addresses)

    async def follow_events(self, known_ids: Callable[[], set[str]], changed: asyncio.Event) -> None:
        """Set `changed` on every container event about a known container; reconnect on loss."""
        while True:
            try:
                client = self._client()
                subscriber = client.events.subscribe(create_task=False)
                filters = json.dumps({"type": ["container"]})
                stream = asyncio.ensure_future(client.events.run(filters=filters))
                try:
                    while (event := await subscriber.get()) is not None:
                        if event.get("id") in known_ids():
                            changed.set()
                finally:
                    stream.cancel()
                    with contextlib.suppress(BaseException):
                        await stream
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the daemon restarted or is absent: try again later
                log.debug("docker events unavailable: %s", exc)
            await asyncio.sleep(2.0)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


async def gather_projects(
    index_path: str, containers: ContainerLookup
) -> tuple[tuple[ProjectFacts, ...], tuple[Problem, ...], bool]:
    """Everything build() needs; the bool is False when the index was caught mid-write."""
    text = _read(index_path)
    records, problems = parse_machine_index(text or "", index_path)
    if problems and not records:
        return (), problems, False
    projects: list[ProjectFacts] = []
    for project_dir, machines in group_by_project(records).items():
        declaration = _read(os.path.join(project_dir, DECLARATION_FILE))
        facts: list[MachineFacts] = []
        for record in machines:
            container = None
            if declaration is not None and record.provider == "docker":
                container_id = (_read(record.id_file()) or "").strip()
                container = await containers.facts(container_id) if container_id else None
            facts.append(MachineFacts(record, container))
        vagrantfile = _read(os.path.join(project_dir, "Vagrantfile")) or ""
        projects.append(ProjectFacts(project_dir, declaration, vagrantfile, tuple(facts)))
    return tuple(projects), problems, True


def _container_ids(projects: Iterable[ProjectFacts]) -> set[str]:
    ids = set()
    for project in projects:
        for machine in project.machines:
            if machine.record.provider == "docker":
                container_id = (_read(machine.record.id_file()) or "").strip()
                if container_id:
                    ids.add(container_id)
    return ids


async def _watch(watch: DirWatch, changed: asyncio.Event, stop: asyncio.Event) -> None:
    """Set `changed` on every burst; end when a watched directory itself changed."""
    watched = watch.paths()
    with watch:
        async for paths in watch.bursts(WATCH_QUIET_S, WATCH_DEBOUNCE_S, stop):
            changed.set()
            if paths & watched:  # e.g. deleted and made again: the old watch is dead
                return


class Watcher:
    """The running watch of some directories, or the error that kept it from starting."""

    def __init__(self, dirs: tuple[str, ...], changed: asyncio.Event) -> None:
        self.dirs = dirs
        self.stop = asyncio.Event()
        self.watch: DirWatch | None = None
        self.task: asyncio.Task[None] | None = None
        self.error: OSError | None = None
        try:
            self.watch = DirWatch(dirs)
        except OSError as exc:  # a watched directory vanished: the rescan re-plans the watch
            self.error = exc
            return
        self.task = asyncio.create_task(_watch(self.watch, changed, self.stop))

    def ended(self) -> bool:
        return self.task is None or self.task.done()

    def close(self) -> None:
        """Stop at once: nothing is awaited, so a cancel of the caller is never swallowed."""
        self.stop.set()
        if self.task is not None:
            self.task.cancel()
        if self.watch is not None:
            self.watch.close()  # also when the task was cancelled before it began


async def run_vagrant_provider(config: Config, publish: Callable[[Snapshot], None]) -> None:
    """Publish a complete Vagrant snapshot at start and after every change, until cancelled."""
    index_path = machine_index_path(vagrant_home(config.vagrant))
    containers = ContainerLookup(config.docker.host)
    changed = asyncio.Event()
    changed.set()
    known_ids: set[str] = set()
    events = asyncio.create_task(containers.follow_events(lambda: known_ids, changed))
    watcher: Watcher | None = None
    last_error = ""
    retry: asyncio.TimerHandle | None = None  # at most one pending: triggers must not pile up
    retry_s = WATCH_RETRY_S
    loop = asyncio.get_running_loop()
    try:
        while True:
            await changed.wait()
            changed.clear()
            projects, problems, complete = await gather_projects(index_path, containers)
            if complete:
                snapshot = build(projects)
                publish(Snapshot("vagrant", snapshot.sites, (), problems + snapshot.problems))
                known_ids = _container_ids(projects)
            else:
                loop.call_later(UNREADABLE_RETRY_S, changed.set)
            records = [m.record for p in projects for m in p.machines]
            dirs = watch_dirs(index_path, records)
            if watcher is None or dirs != watcher.dirs or watcher.ended():
                if watcher is not None:
                    watcher.close()
                watcher = Watcher(dirs, changed)
                if retry is not None:
                    retry.cancel()
                    retry = None
                if watcher.error is not None:
                    if str(watcher.error) != last_error:  # said once, not every retry
                        log.warning(
                            "vagrant: watching %s failed (%s); retrying",
                            ", ".join(dirs),
                            watcher.error,
                        )
                        last_error = str(watcher.error)
                    retry = loop.call_later(retry_s, changed.set)
                    retry_s = min(2 * retry_s, WATCH_RETRY_MAX_S)
                else:
                    last_error, retry_s = "", WATCH_RETRY_S
                    # what changed before the new watch started is caught by this rescan
                    changed.set()
    finally:
        events.cancel()
        if watcher is not None:
            watcher.close()
        if retry is not None:
            retry.cancel()
        with contextlib.suppress(BaseException):
            await events
        await containers.close()
