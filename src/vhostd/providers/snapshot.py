"""What a provider emits: a complete, immutable picture of what it knows (never a diff)."""

from __future__ import annotations

from dataclasses import dataclass

from vhostd.config.model import Site


@dataclass(frozen=True, slots=True)
class Problem:
    """A reported, non-fatal error: a file, a container label, a VM declaration."""

    where: str  # "sites.d/a.toml:3", "container web-1", ...
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """One htpasswd file: `name` is its file name (a host or a site name)."""

    name: str
    path: str
    entries: tuple[tuple[str, str], ...]  # (user, hash), in file order


@dataclass(frozen=True, slots=True)
class Snapshot:
    provider: str  # "config", "file", "docker", "vagrant"
    sites: tuple[Site, ...] = ()
    credentials: tuple[Credentials, ...] = ()
    problems: tuple[Problem, ...] = ()
