"""Vagrant machines + their `vhost.toml` → a Snapshot of Sites (pure, no I/O).

Inputs are what `watch.py` gathered: Vagrant's global machine index (JSON), and for every
project in it the declaration beside its Vagrantfile, the Vagrantfile itself and, for the
docker provider, what the Docker API says about the machine's container.

Address rules:
  docker provider   the container's IP (on the network the declaration does not need to
                    name: the first one with an address) + the declared port; the
                    container's own state wins over the index, which Vagrant updates lazily.
  VM providers      the declaration's `address`, else the only private-network IP the
                    Vagrantfile assigns to that machine's project.
A declared machine that is not running routes to no backend with unavailable_reason
"project stopped", so its hosts answer a clear 503 instead of timing out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from vhostd.config.model import AuthPolicy, Backend, Site, Timeouts
from vhostd.providers.snapshot import Problem, Snapshot
from vhostd.providers.vagrant.declaration import (
    DECLARATION_FILE,
    Declaration,
    parse_declaration,
    private_network_addresses,
)

PROJECT_STOPPED = "project stopped"
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class MachineRecord:
    """One entry of Vagrant's global machine index."""

    uuid: str
    name: str
    provider: str
    state: str
    project_dir: str  # where the Vagrantfile is
    data_dir: str  # `<project>/.vagrant`

    def id_file(self) -> str:
        """Where the provider keeps the machine's id (the container id for docker)."""
        return os.path.join(self.data_dir, "machines", self.name, self.provider, "id")


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    """What the Docker API says about a docker-provider machine's container."""

    running: bool
    addresses: tuple[str, ...] = ()  # IPs, one per network with an address


@dataclass(frozen=True, slots=True)
class MachineFacts:
    record: MachineRecord
    container: ContainerFacts | None = None  # docker provider only; None = unknown/absent


@dataclass(frozen=True, slots=True)
class ProjectFacts:
    """One project directory with the machines the index lists for it."""

    project_dir: str
    declaration_text: str | None  # None: no vhost.toml, so nothing to route
    vagrantfile_text: str
    machines: tuple[MachineFacts, ...]

    @property
    def declaration_path(self) -> str:
        return os.path.join(self.project_dir, DECLARATION_FILE)


def parse_machine_index(text: str, where: str) -> tuple[tuple[MachineRecord, ...], tuple[Problem, ...]]:
    """Parse Vagrant's `data/machine-index/index` JSON into records (sorted by project, name)."""
    if not text.strip():
        return (), ()
    try:
        data = json.loads(text)
        machines = data["machines"]
        if not isinstance(machines, dict):
            raise TypeError("`machines` is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        return (), (Problem(where, f"unreadable Vagrant machine index: {exc}"),)
    records: list[MachineRecord] = []
    problems: list[Problem] = []
    for uuid, entry in machines.items():
        try:
            records.append(
                MachineRecord(
                    uuid=str(uuid),
                    name=str(entry["name"]),
                    provider=str(entry["provider"]),
                    state=str(entry.get("state") or ""),
                    project_dir=str(entry["vagrantfile_path"]),
                    data_dir=str(entry["local_data_path"]),
                )
            )
        except (KeyError, TypeError) as exc:
            problems.append(Problem(where, f"machine {uuid}: missing field {exc}"))
    records.sort(key=lambda r: (r.project_dir, r.name))
    return tuple(records), tuple(problems)


def group_by_project(records: Iterable[MachineRecord]) -> dict[str, tuple[MachineRecord, ...]]:
    """Index records grouped by project directory, in a stable order."""
    projects: dict[str, list[MachineRecord]] = {}
    for record in records:
        projects.setdefault(record.project_dir, []).append(record)
    return {project: tuple(items) for project, items in sorted(projects.items())}


def build(projects: Iterable[ProjectFacts]) -> Snapshot:
    """The complete Vagrant snapshot for these projects."""
    sites: list[Site] = []
    problems: list[Problem] = []
    for project in projects:
        if project.declaration_text is None or not project.machines:
            continue
        declarations, found = parse_declaration(project.declaration_text, project.declaration_path)
        problems.extend(found)
        for declaration in declarations:
            site, problem = _site(project, declaration, several=len(declarations) > 1)
            if problem:
                problems.append(problem)
            if site:
                sites.append(site)
    return Snapshot(provider="vagrant", sites=tuple(sites), problems=tuple(problems))


def _pick_machine(
    project: ProjectFacts, declaration: Declaration
) -> tuple[MachineFacts | None, str]:
    machines = project.machines
    if declaration.machine is not None:
        for machine in machines:
            if machine.record.name == declaration.machine:
                return machine, ""
        names = ", ".join(m.record.name for m in machines)
        return None, f"machine {declaration.machine!r} is not in Vagrant's index (known: {names})"
    if len(machines) == 1:
        return machines[0], ""
    for machine in machines:
        if machine.record.name == "default":
            return machine, ""
    names = ", ".join(m.record.name for m in machines)
    return None, f"several machines ({names}): name one with `machine = \"...\"`"


def _site(
    project: ProjectFacts, declaration: Declaration, several: bool
) -> tuple[Site | None, Problem | None]:
    where = project.declaration_path
    machine, why_not = _pick_machine(project, declaration)
    if machine is None:
        return None, Problem(where, why_not)
    record = machine.record
    base_name = declaration.name or os.path.basename(project.project_dir.rstrip("/")) or "vagrant"
    name = f"{base_name}-{record.name}" if several and not declaration.name else base_name
    address, problem = _address(project, machine, declaration)
    backends: tuple[Backend, ...] = ()
    if address:
        label = f"vagrant:{record.name}"
        backends = (Backend(address, declaration.port, declaration.scheme, label=label),)
    timeouts = Timeouts()
    if declaration.first_byte_timeout is not None:
        timeouts = Timeouts(first_byte=declaration.first_byte_timeout)
    site = Site(
        name=name,
        hosts=declaration.hosts,
        backends=backends,
        paths=declaration.paths,
        auth=AuthPolicy(file=declaration.auth_file, realm=declaration.realm),
        timeouts=timeouts,
        source=f"vagrant:{project.project_dir}/{record.name}",
        unavailable_reason="" if backends else PROJECT_STOPPED,
    )
    return site, problem


def _address(
    project: ProjectFacts, machine: MachineFacts, declaration: Declaration
) -> tuple[str | None, Problem | None]:
    """The machine's address when it is up, else None (and a Problem when it cannot be known)."""
    record = machine.record
    if record.provider == "docker":
        container = machine.container
        if container is None or not container.running or not container.addresses:
            return None, None
        return declaration.address or container.addresses[0], None
    if record.state != RUNNING:
        return None, None
    if declaration.address:
        return declaration.address, None
    candidates = private_network_addresses(project.vagrantfile_text)
    if len(set(candidates)) == 1:
        return candidates[0], None
    reason = (
        f"machine {record.name!r} ({record.provider}): no address; set `address` to its "
        "private-network IP in vhost.toml"
    )
    return None, Problem(project.declaration_path, reason)
