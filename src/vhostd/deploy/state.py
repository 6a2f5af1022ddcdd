"""What `vhostd deploy` remembers about each project: one JSON file per project.

Layout inside `[deploy] projects_dir`:
    <name>/                    the checkout
    .deploys/<name>.json       this record
    .deploys/<name>.compose.json   the generated compose override (compose projects)
The record lists everything a deploy added (login files, generated files, containers), so
`undeploy` and a failed deploy's rollback remove exactly that and nothing else.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from vhostd.errors import VhostdError

STATE_DIR = ".deploys"


@dataclass(slots=True)
class ProjectRecord:
    name: str
    repo: str
    branch: str
    kind: str  # compose | dockerfile | vagrant
    hosts: tuple[str, ...]
    url: str
    checkout: str
    commit: str = ""
    port: int | None = None
    service: str | None = None  # compose: the routed service
    container: str | None = None  # dockerfile: the running container's name
    image: str | None = None  # dockerfile: the image it runs
    auth_user: str | None = None
    auth_targets: tuple[str, ...] = ()  # htpasswd targets the login was added to
    auth_files_created: tuple[str, ...] = ()  # targets whose file the deploy created
    generated_files: tuple[str, ...] = ()  # files written into the checkout (vhost.toml)
    state: str = "running"  # running | stopped (undeployed, checkout kept)
    last_deploy: str = ""  # ISO 8601, UTC
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> ProjectRecord:
        try:
            data = json.loads(text)
            names = {f.name for f in dataclasses.fields(cls)}
            values: dict[str, Any] = {
                k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names
            }
            return cls(**values)
        except (ValueError, TypeError) as exc:
            raise VhostdError(f"unreadable deploy record: {exc}", where) from None


def state_dir(projects_dir: str) -> str:
    return os.path.join(projects_dir, STATE_DIR)


def record_path(projects_dir: str, name: str) -> str:
    return os.path.join(state_dir(projects_dir), f"{name}.json")


def override_path(projects_dir: str, name: str) -> str:
    return os.path.join(state_dir(projects_dir), f"{name}.compose.json")


def checkout_path(projects_dir: str, name: str) -> str:
    return os.path.join(projects_dir, name)


def load_record(projects_dir: str, name: str) -> ProjectRecord | None:
    path = record_path(projects_dir, name)
    try:
        with open(path, encoding="utf-8") as handle:
            return ProjectRecord.from_json(handle.read(), path)
    except FileNotFoundError:
        return None


def save_record(projects_dir: str, record: ProjectRecord) -> None:
    """Write the record atomically (temp file + rename)."""
    path = record_path(projects_dir, record.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(record.to_json())
    os.replace(temp, path)


def delete_record(projects_dir: str, name: str) -> None:
    try:
        os.unlink(record_path(projects_dir, name))
    except FileNotFoundError:
        pass


def all_records(projects_dir: str) -> list[ProjectRecord]:
    """Every deployed project, by name."""
    directory = state_dir(projects_dir)
    try:
        names = sorted(n[: -len(".json")] for n in os.listdir(directory)
                       if n.endswith(".json") and not n.endswith(".compose.json"))
    except FileNotFoundError:
        return []
    records = [load_record(projects_dir, name) for name in names]
    return [r for r in records if r is not None]


@contextmanager
def project_lock(projects_dir: str, name: str) -> Iterator[None]:
    """One deploy/undeploy of a project at a time; a second one fails at once, clearly."""
    directory = state_dir(projects_dir)
    os.makedirs(directory, exist_ok=True)
    lock_path = os.path.join(directory, f"{name}.lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise VhostdError(f"{name!r} is being deployed or undeployed by another command") from None
        try:
            yield
        finally:
            if not os.path.exists(record_path(projects_dir, name)):
                os.unlink(lock_path)  # nothing deployed: leave nothing behind
    finally:
        os.close(fd)  # closing releases the lock
