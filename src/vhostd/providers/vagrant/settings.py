"""Where Vagrant keeps its machines and whether the provider runs: cheap to import."""

from __future__ import annotations

import os

from vhostd.config.model import VagrantSettings


def vagrant_home(settings: VagrantSettings) -> str:
    """VAGRANT_HOME as Vagrant resolves it: the setting, then $VAGRANT_HOME, then ~/.vagrant.d."""
    home = settings.home or os.environ.get("VAGRANT_HOME") or "~/.vagrant.d"
    return os.path.abspath(os.path.expanduser(home))


def machine_index_path(home: str) -> str:
    return os.path.join(home, "data", "machine-index", "index")


def vagrant_enabled(settings: VagrantSettings) -> bool:
    """True/False as configured; "auto" → on when Vagrant's home directory exists."""
    if settings.enabled == "auto":
        return os.path.isdir(vagrant_home(settings))
    return bool(settings.enabled)
