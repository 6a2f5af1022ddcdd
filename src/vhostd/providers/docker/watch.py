"""The Docker provider's I/O: list + inspect the running containers, follow the event stream.

Every relevant event re-lists the containers and rebuilds the whole snapshot with the pure
`build()` (as Traefik does), so a missed or reordered event can never leave a stale route.
Rebuilds are coalesced without delaying a lone change: the first event starts one at once,
events arriving while it runs leave exactly one more pending. Inspect results are cached
and dropped on any event naming the container, so a start costs one list + one inspect.

When the daemon goes away the last snapshot stays published (the routes keep serving);
the provider reconnects with backoff and resynchronises from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiodocker
import aiohttp

from vhostd.config.model import Config, DockerSettings
from vhostd.providers.docker.build import build
from vhostd.providers.docker.own_container import local_candidate_ids
from vhostd.providers.docker.settings import docker_wanted
from vhostd.providers.snapshot import Snapshot

log = logging.getLogger("vhostd.docker")

# Actions after which the set of routable containers may differ ("health_status: healthy"
# is compared on the part before the colon). exec_* events (every healthcheck) are ignored.
CONTAINER_ACTIONS = frozenset(
    {
        "start",
        "restart",
        "die",
        "stop",
        "kill",
        "destroy",
        "pause",
        "unpause",
        "health_status",
        "rename",
        "update",
    }
)
NETWORK_ACTIONS = frozenset({"connect", "disconnect"})
# Actions after which a container must get no new request, at once.
LEAVING_ACTIONS = frozenset({"kill", "stop", "die", "destroy", "pause"})
# `docker kill -s HUP` and friends ask for a reload, not an exit: keep such containers.
RELOAD_SIGNALS = frozenset({"1", "10", "12", "SIGHUP", "HUP", "SIGUSR1", "USR1", "SIGUSR2", "USR2"})
# A container told to stop that is still running after this long is routed to again.
STOPPING_GRACE = 30.0
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
API_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)

Publish = Callable[[Snapshot], None]



class EngineFollower:
    """One connection to the Engine: a full sync, then events until the stream ends."""

    def __init__(self, settings: DockerSettings, publish: Publish) -> None:
        self.settings = settings
        self.publish = publish
        self.synced = False  # a snapshot was published on this connection
        self.own_id: str | None = None
        self.last_published: Snapshot | None = None
        self._docker: aiodocker.Docker | None = None
        self._inspected: dict[str, dict[str, Any]] = {}  # id → inspect, until an event names it
        self._touched: dict[str, int] = {}  # id → epoch of the last event naming it
        self._epoch = 0
        self._stopping: dict[str, float] = {}  # id → loop time its grace runs out
        self._dirty = asyncio.Event()
        self._listed: list[str] = []  # ids of the last listing, in its order

    async def follow(self) -> None:
        """Runs until the daemon closes the event stream; raises on connection errors."""
        async with aiodocker.Docker(url=self.settings.host, timeout=API_TIMEOUT) as docker:
            self._docker = docker
            subscriber = docker.events.subscribe(create_task=False)
            params: dict[str, Any] = {"filters": {"type": ["container", "network"]}}
            if self.settings.host.startswith("unix://"):
                # Replays what happens before the stream is up: no gap between list and
                # events. Only on a local socket, where the daemon shares our clock.
                params["since"] = f"{time.time() - 1.0:.9f}"
            stream = asyncio.ensure_future(docker.events.run(**params))
            reader = asyncio.ensure_future(self._read_events(subscriber))
            rebuilder = asyncio.ensure_future(self._rebuild_forever())
            tasks = {stream, reader, rebuilder}
            try:
                self.own_id = await self._find_own_container()
                self._dirty.set()
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()  # raise the failure, if any
                if reader in done:
                    # The stream ended cleanly: the daemon is going away.
                    raise ConnectionError("the Docker event stream ended")
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _read_events(self, subscriber: Any) -> None:
        while True:
            event = await subscriber.get()
            if event is None:
                return
            self.handle_event(event)

    def handle_event(self, event: Mapping[str, Any]) -> None:
        """Invalidate what the event changed and ask for a rebuild when it matters."""
        kind = event.get("Type")
        action = str(event.get("Action") or event.get("status") or "").split(":")[0]
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        if kind == "container" and action in CONTAINER_ACTIONS:
            container_id = str(actor.get("ID") or event.get("id") or "")
            if action == "kill" and str(attributes.get("signal", "")) in RELOAD_SIGNALS:
                return
            if action in ("kill", "stop"):
                if container_id not in self._stopping:
                    self._stopping[container_id] = asyncio.get_running_loop().time() + (
                        STOPPING_GRACE
                    )
                    asyncio.get_running_loop().call_later(STOPPING_GRACE, self._dirty.set)
            elif action in ("die", "destroy", "start", "restart"):
                self._stopping.pop(container_id, None)
            self._touch(container_id)
        elif kind == "network" and action in NETWORK_ACTIONS:
            self._touch(str(attributes.get("container") or ""))
        else:
            return
        if kind == "container" and action in LEAVING_ACTIONS and self.synced:
            # The container just lost its inspect (or joined `stopping`): publishing from the
            # cache takes it out of rotation now, without waiting for a list + inspect.
            self._publish_from_cache()
        self._dirty.set()

    def _touch(self, container_id: str) -> None:
        self._epoch += 1
        if container_id:
            self._touched[container_id] = self._epoch
            self._inspected.pop(container_id, None)

    async def _rebuild_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.rebuild()

    async def rebuild(self) -> None:
        """List + inspect (cached) the running containers, build and publish the snapshot."""
        assert self._docker is not None
        listed = [c.id for c in await self._docker.containers.list()]
        missing = [cid for cid in listed if cid not in self._inspected]
        epoch = self._epoch
        results = await asyncio.gather(*(self._inspect(cid) for cid in missing))
        for cid, inspect in zip(missing, results, strict=True):
            # An event naming it while we asked means this answer may already be stale.
            if inspect is not None and self._touched.get(cid, -1) <= epoch:
                self._inspected[cid] = inspect
        alive = set(listed)
        for cid in [cid for cid in self._inspected if cid not in alive]:
            del self._inspected[cid]
        self._listed = listed
        self._publish_from_cache()
        if not self.synced:
            log.info("docker: synchronised with %s", self.settings.host)
        self.synced = True

    def _publish_from_cache(self) -> None:
        """Build from the last listing and the inspects still valid; publish when changed."""
        now = asyncio.get_running_loop().time()
        for cid in [cid for cid, until in self._stopping.items() if until <= now]:
            del self._stopping[cid]
        containers = [self._inspected[cid] for cid in self._listed if cid in self._inspected]
        snapshot = build(
            containers,
            own_networks=self._own_networks(),
            default_domain=self.settings.default_domain,
            require_healthy=self.settings.require_healthy,
            stopping=frozenset(self._stopping),
            own_id=self.own_id,
        )
        if snapshot != self.last_published:  # most events (create, connect...) change nothing
            self.publish(snapshot)
            self.last_published = snapshot

    async def _inspect(self, container_id: str) -> dict[str, Any] | None:
        assert self._docker is not None
        try:
            return await self._docker.containers.container(container_id).show()
        except aiodocker.DockerError as exc:
            if exc.status == 404:  # removed between list and inspect
                return None
            raise

    def _own_networks(self) -> frozenset[str] | None:
        """Networks of vhostd's container; None when vhostd is on the host (or host network)."""
        if self.own_id is None or self.own_id not in self._inspected:
            return None
        own = self._inspected[self.own_id]
        if (own.get("HostConfig") or {}).get("NetworkMode") == "host":
            return None
        return frozenset((own.get("NetworkSettings") or {}).get("Networks") or {})

    async def _find_own_container(self) -> str | None:
        for candidate in local_candidate_ids():
            inspect = await self._inspect(candidate)
            if inspect is not None:
                log.info("vhostd runs in container %s", str(inspect.get("Name", "")).lstrip("/"))
                return str(inspect["Id"])
        return None


async def run_docker_provider(config: Config, publish: Publish) -> None:
    """Follow the Docker Engine forever, publishing a complete snapshot on every change.

    Returns at once when Docker is disabled (or "auto" and there is no socket). Connection
    failures are retried with backoff; the last published snapshot is kept meanwhile.
    """
    settings = config.docker
    if not docker_wanted(settings):
        log.info("docker provider off (enabled=%r, host=%s)", settings.enabled, settings.host)
        return
    delay = BACKOFF_FIRST
    while True:
        follower = EngineFollower(settings, publish)
        try:
            await follower.follow()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Once per outage at warning level; the retries that follow are debug noise.
            level = logging.WARNING if follower.synced or delay == BACKOFF_FIRST else logging.DEBUG
            log.log(level, "docker: %s; keeping the last routes, reconnecting", exc)
        if follower.synced:
            delay = BACKOFF_FIRST
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX)
