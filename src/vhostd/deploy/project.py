"""deploy / undeploy / list: the steps in order, each with its way back.

Every step that adds something pushes how to take it back. When a later step fails, the
pushed undos run newest first, so a failed deploy leaves no half-registered route, no orphan
login and no new checkout; a failed redeploy puts the previous commit back in service.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from vhostd.config.model import Config
from vhostd.deploy import checkout, detect, kinds
from vhostd.deploy.commands import say, warn
from vhostd.deploy.login import add_login, probe_login, remove_login
from vhostd.deploy.state import (
    ProjectRecord,
    all_records,
    checkout_path,
    delete_record,
    load_record,
    project_lock,
    save_record,
)
from vhostd.deploy.wait import basic_authorization, site_url, wait_until_answers
from vhostd.errors import VhostdError


@dataclass(frozen=True, slots=True)
class DeployRequest:
    repo: str
    name: str | None = None
    branch: str | None = None
    hosts: tuple[str, ...] = ()
    auth_user: str | None = None
    service: str | None = None  # compose: the web service
    port: int | None = None
    wait: bool = True
    timeout: float = 120.0


@dataclass(slots=True)
class Undo:
    steps: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def push(self, what: str, action: Callable[[], None]) -> None:
        self.steps.append((what, action))

    def run(self) -> None:
        """Take back every step, newest first; one failing undo does not stop the others."""
        for what, action in reversed(self.steps):
            say(f"    rollback: {what}")
            try:
                action()
            except Exception as exc:  # keep undoing: leave as little behind as possible
                warn(f"rollback step {what!r} failed: {exc}")
        self.steps.clear()


@dataclass(frozen=True, slots=True)
class DeployResult:
    record: ProjectRecord
    password: str | None  # shown once; None when the login was unchanged or not asked for
    status: int | None  # what the site answered through the proxy (None: not waited for)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _compose_file(record: ProjectRecord) -> str:
    return detect.detect_kind(os.listdir(record.checkout))[1]


def deploy_project(config: Config, request: DeployRequest) -> DeployResult:
    """Clone or update, route, log in, start, wait; roll back on any failure."""
    name = detect.project_name(request.repo, request.name)
    with project_lock(config.deploy.projects_dir, name):
        return _deploy_locked(config, request, name)


def _deploy_locked(config: Config, request: DeployRequest, name: str) -> DeployResult:
    projects_dir = config.deploy.projects_dir
    previous = load_record(projects_dir, name)
    if previous and previous.repo != request.repo:
        raise VhostdError(f"{name!r} is already deployed from {previous.repo}; pick another --name")
    hosts = detect.project_hosts(
        name, request.hosts or (previous.hosts if previous else ()), config.deploy.domain
    )
    listen = config.server.listen[0]
    probe_host = detect.probe_host(hosts)
    record = ProjectRecord(
        name=name, repo=request.repo, branch="", kind="", hosts=hosts,
        url=site_url(probe_host or hosts[0], listen), checkout=checkout_path(projects_dir, name),
    )
    if previous:
        record = replace(previous, hosts=hosts, url=record.url)
    undo = Undo()
    try:
        password, status = _deploy_steps(config, request, record, previous, undo)
    except BaseException as exc:
        if undo.steps:
            say(f"==> deploy of {name} failed; rolling back")
            undo.run()
        if isinstance(exc, VhostdError):
            raise VhostdError(f"deploy of {name} failed: {exc}") from None
        raise
    return DeployResult(record, password, status)


def _deploy_steps(config: Config, request: DeployRequest, record: ProjectRecord,
                  previous: ProjectRecord | None, undo: Undo) -> tuple[str | None, int | None]:
    branch = request.branch or (previous.branch if previous else "") or checkout.default_branch(request.repo)
    if not checkout.remote_branch_exists(request.repo, branch):
        raise VhostdError(f"{request.repo} has no branch {branch!r}")
    record.branch = branch
    restore_checkout: Callable[[], None] | None = None
    if os.path.isdir(os.path.join(record.checkout, ".git")):  # deployed before (maybe undeployed)
        origin = checkout.origin_url(record.checkout)
        if origin != request.repo:
            raise VhostdError(f"{record.checkout} is a checkout of {origin}, not {request.repo}")
        old_commit = checkout.current_commit(record.checkout)
        old_branch = checkout.current_branch(record.checkout)

        def restore_checkout() -> None:
            checkout.restore(record.checkout, old_branch or branch, old_commit)

        undo.push(f"put the checkout back on {old_commit[:12]}", restore_checkout)
        record.commit = checkout.update(record.checkout, branch)
    else:
        if os.path.exists(record.checkout):
            raise VhostdError(f"{record.checkout} exists and is not a git checkout; move it away")
        undo.push(f"remove the checkout {record.checkout}", lambda: checkout.remove(record.checkout))
        record.commit = checkout.clone(request.repo, branch, record.checkout)
    kind, decided_by = detect.detect_kind(os.listdir(record.checkout))
    if previous and previous.kind and previous.kind != kind:
        raise VhostdError(f"the project changed from {previous.kind} to {kind}; undeploy it first")
    record.kind = kind
    say(f"==> {record.name}: {kind} project ({decided_by}) at {record.commit[:12]}")

    password = None
    if request.auth_user:
        password, targets, created = add_login(
            config.files.htpasswd_dir, record.hosts, request.auth_user, undo.push
        )
        record.auth_user = request.auth_user
        record.auth_targets = tuple(dict.fromkeys((*record.auth_targets, *targets)))
        record.auth_files_created = tuple(dict.fromkeys((*record.auth_files_created, *created)))
        say(f"==> login {request.auth_user!r} " + ("created" if password else "unchanged"))

    # a redeploy's rollback restarts the previous version; a first deploy's just stops this one
    was_running = restore_checkout if previous is not None else None
    previous_containers = _start(config, request, record, was_running, undo)
    record.state, record.last_deploy = "running", _now()
    save_record(config.deploy.projects_dir, record)
    if previous is not None:
        undo.push("keep the previous deploy record",
                  lambda: save_record(config.deploy.projects_dir, previous))
    else:
        undo.push("forget the deploy record",
                  lambda: delete_record(config.deploy.projects_dir, record.name))

    status = None
    probe_host = detect.probe_host(record.hosts)
    if request.wait and probe_host:
        status = _wait(config, record, password, request.timeout, probe_host)
    elif request.wait:
        warn("no exact host to check (only wildcard or regex hosts); not waiting for an answer")
    if previous_containers:
        say(f"==> removing the previous container(s): {', '.join(previous_containers)}")
        kinds.remove_containers(previous_containers)
    return password, status


def _wait(config: Config, record: ProjectRecord, password: str | None, timeout: float,
          probe_host: str) -> int:
    """Wait for the site through the proxy, logged in when it is protected."""
    listen = config.server.listen[0]
    if password and record.auth_user:
        known = basic_authorization(record.auth_user, password)
        return wait_until_answers(listen, probe_host, known, timeout)
    with probe_login(config.files.htpasswd_dir, record.auth_targets) as login:
        probe = basic_authorization(*login) if login else None
        return wait_until_answers(listen, probe_host, probe, timeout)


def _start(config: Config, request: DeployRequest, record: ProjectRecord,
           restore_checkout: Callable[[], None] | None, undo: Undo) -> list[str]:
    """Start the project by kind; returns containers to remove once the new one answers.

    `restore_checkout` is None when nothing was running, else how to put the previous commit back.
    """
    fresh = restore_checkout is None
    if record.kind == detect.COMPOSE:
        compose_file = _compose_file(record)
        kinds.compose_prepare(config, record, compose_file, request.service, request.port)
        if restore_checkout is None:
            undo.push("compose down", lambda: kinds.compose_stop(config, record, compose_file, False))
        else:
            undo.push("restart the previous version",
                      lambda: _compose_restart_previous(config, record, restore_checkout))
        kinds.compose_start(config, record, compose_file)
        return []
    if record.kind == detect.DOCKERFILE:
        return kinds.dockerfile_start(record, undo.push, request.port)
    if restore_checkout is not None:  # runs after the undos vagrant_prepare pushes
        undo.push("bring the previous version back up",
                  lambda: _vagrant_restart_previous(config, record, restore_checkout))
    kinds.vagrant_prepare(record, undo.push, request.port)
    kinds.vagrant_start(config, record, undo.push, fresh)
    return []


def _vagrant_restart_previous(config: Config, record: ProjectRecord,
                              restore_checkout: Callable[[], None]) -> None:
    restore_checkout()
    kinds.vagrant_start(config, record, lambda what, action: None, fresh=False)


def _compose_restart_previous(config: Config, record: ProjectRecord,
                              restore_checkout: Callable[[], None]) -> None:
    restore_checkout()
    compose_file = _compose_file(record)
    kinds.compose_prepare(config, record, compose_file, record.service, record.port)
    kinds.compose_start(config, record, compose_file)


def undeploy_project(config: Config, name: str, purge: bool = False) -> ProjectRecord:
    """Stop the project and remove its routes and login; `purge` also drops checkout/volumes."""
    projects_dir = config.deploy.projects_dir
    if load_record(projects_dir, name) is None:
        raise VhostdError(f"no deployed project {name!r} (see `vhostd projects`)")
    with project_lock(projects_dir, name):
        record = load_record(projects_dir, name)
        if record is None:
            raise VhostdError(f"{name!r} was undeployed meanwhile")
        _undeploy(config, record, purge)
    return record


def _undeploy(config: Config, record: ProjectRecord, purge: bool) -> None:
    projects_dir, name = config.deploy.projects_dir, record.name
    has_checkout = os.path.isdir(record.checkout)
    say(f"==> stopping {name} ({record.kind})")
    if record.kind == detect.COMPOSE and has_checkout:
        kinds.compose_stop(config, record, _compose_file(record), purge)
    elif record.kind == detect.COMPOSE:  # checkout deleted by hand: compose cannot read it
        kinds.compose_remove_by_label(config, record)
    elif record.kind == detect.DOCKERFILE:
        kinds.dockerfile_stop(record, purge)
    elif record.kind == detect.VAGRANT and has_checkout:
        kinds.vagrant_stop(config, record, purge)
    if record.auth_user and record.auth_targets:
        say(f"==> removing login {record.auth_user!r}")
        remove_login(config.files.htpasswd_dir, record.auth_targets, record.auth_user,
                     record.auth_files_created)
    delete_record(projects_dir, name)
    if purge:
        say(f"==> removing the checkout {record.checkout}")
        checkout.remove(record.checkout)


def live_state(config: Config, record: ProjectRecord) -> str:
    """What is running now: asks Docker, or reads Vagrant's machine index."""
    try:
        if record.kind == detect.DOCKERFILE:
            return kinds.container_state(record.container)
        if record.kind == detect.COMPOSE:
            states = kinds.run(["docker", "ps", "-a", "--filter",
                                f"label=com.docker.compose.project={record.name}",
                                "--format", "{{.State}}"], "docker ps").split()
        else:
            states = kinds.vagrant_machine_states(config, record.checkout)
    except VhostdError:
        return "unknown"
    if not states:
        return "absent"
    running = states.count("running")
    return "running" if running == len(states) else f"{running}/{len(states)} running"


def project_rows(config: Config) -> list[tuple[str, str, str, str, str]]:
    """(name, url, kind, state, last deploy) for every deployed project."""
    return [
        (r.name, r.url, r.kind, live_state(config, r), r.last_deploy)
        for r in all_records(config.deploy.projects_dir)
    ]
