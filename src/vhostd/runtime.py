"""Assemble one serving process: pipeline + providers + listeners + admin; signals.

SIGTERM/SIGINT stop accepting and let in-flight requests finish (up to shutdown_grace);
SIGHUP re-reads the main config and republishes its sites (a broken file is reported and
the running configuration stays). With `workers > 1` the parent forks one process per
worker, each binding the same ports with SO_REUSEPORT and following the same providers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from vhostd.config.load import config_snapshot, load_config
from vhostd.config.model import Config
from vhostd.errors import VhostdError
from vhostd.providers.docker.settings import docker_wanted
from vhostd.providers.snapshot import Snapshot
from vhostd.providers.vagrant.settings import vagrant_enabled
from vhostd.proxy.accesslog import AccessLog
from vhostd.proxy.context import ProxyContext
from vhostd.proxy.headers import TrustedProxies
from vhostd.proxy.listener import bind_socket, drain, split_address, start_listeners
from vhostd.proxy.outlet import WriteBatch
from vhostd.proxy.upstream import UpstreamPool
from vhostd.routing.pipeline import RoutePipeline

log = logging.getLogger("vhostd")

ProviderRunner = Callable[[Config, Callable[[Snapshot], None]], Awaitable[None]]


def provider_runners(config: Config) -> list[tuple[str, ProviderRunner]]:
    """The providers this configuration turns on (imported only when used)."""
    from vhostd.providers.files.watch import run_file_provider

    runners: list[tuple[str, ProviderRunner]] = [("file", run_file_provider)]
    if docker_wanted(config.docker):
        from vhostd.providers.docker.watch import run_docker_provider

        runners.append(("docker", run_docker_provider))
    if vagrant_enabled(config.vagrant):
        from vhostd.providers.vagrant.watch import run_vagrant_provider

        runners.append(("vagrant", run_vagrant_provider))
    return runners


def make_pipeline(config: Config) -> RoutePipeline:
    from vhostd.auth.gate import auth_factory

    pipeline = RoutePipeline(auth_factory=auth_factory(config.files.htpasswd_dir))
    pipeline.publish(config_snapshot(config))
    return pipeline


class Runtime:
    """One serving process."""

    def __init__(self, config: Config, config_path: str | None, worker: int = 0) -> None:
        self.config = config
        self.config_path = config_path
        self.worker = worker
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    async def run(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        settings = self.config.server
        pipeline = make_pipeline(self.config)
        access_log = None
        if settings.access_log != "off":
            access_log = AccessLog(settings.access_log, settings.access_log_format)
        _, port = split_address(settings.listen[0])
        ctx = ProxyContext(
            loop=loop,
            settings=settings,
            pipeline=pipeline,
            # with the batch every connection's writes of a loop turn go out together
            pool=UpstreamPool(loop, settings.upstream_keepalive, WriteBatch(loop)),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            access_log=access_log,
            listen_port=str(port).encode(),
        )
        pipeline.listeners.append(
            lambda table: ctx.pool.close_idle_except(
                {backend for route in table.all_routes() for backend in route.backends}
            )
        )
        for name, runner in provider_runners(self.config):
            self.tasks.append(loop.create_task(self._supervise(name, runner, pipeline)))
        servers = await start_listeners(ctx, sockets)
        admin = None
        if settings.admin and self.worker == 0:
            from vhostd.admin.server import start_admin

            admin = await start_admin(settings.admin, pipeline)
        loop.add_signal_handler(signal.SIGTERM, self.stopping.set)
        loop.add_signal_handler(signal.SIGINT, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.reload(pipeline))
        # What start-up built (modules, settings, tables) lives as long as the process: keep
        # the cyclic collector from walking it on every full collection, a pause that lands
        # in the latency tail.
        gc.freeze()
        log.info("vhostd worker %d listening on %s", self.worker, ", ".join(settings.listen))
        await self.stopping.wait()
        log.info("shutting down (grace %.0fs)", settings.shutdown_grace)
        if admin is not None:
            admin.close()
        for task in self.tasks:
            task.cancel()
        await drain(ctx, servers, settings.shutdown_grace)
        if access_log is not None:
            access_log.close()

    async def _supervise(self, name: str, runner: ProviderRunner, pipeline: RoutePipeline) -> None:
        """Keep a provider running: a crash is logged and the provider restarted."""
        delay = 0.5
        while True:
            try:
                await runner(self.config, lambda snapshot: self._publish(pipeline, snapshot))
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("provider %s failed; restarting in %.1fs", name, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    @staticmethod
    def _publish(pipeline: RoutePipeline, snapshot: Snapshot) -> None:
        pipeline.publish(snapshot)

    def reload(self, pipeline: RoutePipeline) -> None:
        """SIGHUP: re-read the main config's sites; keep running on the old ones if broken."""
        try:
            config = load_config(self.config_path)
        except VhostdError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
            return
        if config.server != self.config.server:
            log.warning("[server] changes take effect at the next restart")
        pipeline.publish(config_snapshot(config))
        log.info("configuration reloaded")


def _serve_worker(config: Config, config_path: str | None, worker: int, reuse_port: bool) -> None:
    sockets = [bind_socket(address, reuse_port) for address in config.server.listen]
    _run_loop(Runtime(config, config_path, worker).run(sockets))


def _run_loop(main: Awaitable[None]) -> None:
    try:
        import uvloop

        uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(main)  # type: ignore[arg-type]


def serve(config: Config, config_path: str | None) -> None:
    """Run until SIGTERM/SIGINT, in one process or one per worker."""
    workers = max(1, config.server.workers)
    if workers == 1:
        _serve_worker(config, config_path, 0, reuse_port=False)
        return
    # Bind once in the parent first so that a busy port is reported before forking.
    for address in config.server.listen:
        bind_socket(address, reuse_port=True).close()
    children: dict[int, int] = {}
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                _serve_worker(config, config_path, worker, reuse_port=True)
            finally:
                os._exit(0)
        children[pid] = worker

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        worker = children.pop(pid, -1)
        if worker >= 0 and os.waitstatus_to_exitcode(status) not in (0, -signal.SIGTERM):
            print(f"vhostd: worker {worker} exited ({status})", file=sys.stderr)
