"""Whether the Docker provider runs: cheap to import (no Docker client library)."""

from __future__ import annotations

from pathlib import Path

from vhostd.config.model import DockerSettings


def docker_wanted(settings: DockerSettings) -> bool:
    """enabled = true | false | "auto" (on when the unix socket exists, or for tcp)."""
    enabled = settings.enabled
    if isinstance(enabled, str):
        lowered = enabled.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered != "auto":
            return False
        if settings.host.startswith("unix://"):
            return Path(settings.host[len("unix://") :]).is_socket()
        return True
    return bool(enabled)
