"""State shared by every client connection of one process (settings, table owner, pool)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vhostd.config.model import ServerSettings
from vhostd.proxy.accesslog import AccessLog
from vhostd.proxy.headers import TrustedProxies
from vhostd.proxy.upstream import UpstreamPool
from vhostd.routing.pipeline import RoutePipeline

if TYPE_CHECKING:
    from vhostd.proxy.client import ClientConnection
    from vhostd.proxy.linger import Lingering


@dataclass(eq=False)
class ProxyContext:
    loop: asyncio.AbstractEventLoop
    settings: ServerSettings
    pipeline: RoutePipeline
    pool: UpstreamPool
    trusted_proxies: TrustedProxies
    access_log: AccessLog | None = None
    listen_port: bytes = b"80"
    shutting_down: bool = False
    connections: set[ClientConnection | Lingering] = field(default_factory=set)
