"""Starting, stopping and inspecting a deployed project, one set of steps per kind.

compose     `<compose> -p NAME -f <file> -f <override> build`, then `up -d`; the override
            adds vhostd labels to the web service so the Docker provider routes it.
dockerfile  `docker build`, then `docker run -d` a new container with vhostd labels; the
            previous container keeps serving until the new one answers, then goes.
vagrant     `vhost.toml` beside the Vagrantfile (written when the repository has none), then
            `vagrant up` (or `vagrant reload` when already running).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import yaml

from vhostd.config.model import Config
from vhostd.deploy import detect
from vhostd.deploy.commands import compose_command, run, say
from vhostd.deploy.state import ProjectRecord, override_path
from vhostd.errors import VhostdError
from vhostd.providers.vagrant.build import MachineRecord, parse_machine_index
from vhostd.providers.vagrant.declaration import DECLARATION_FILE
from vhostd.providers.vagrant.settings import machine_index_path, vagrant_home

DEPLOY_LABEL = "vhostd.deploy"

# A step's way back: pushed as the step succeeds, run in reverse when a later one fails.
UndoPush = Callable[[str, Callable[[], None]], None]


# ---- compose -------------------------------------------------------------------------------


def _compose_files(config: Config, record: ProjectRecord, compose_file: str) -> list[str]:
    return [
        *compose_command(), "-p", record.name,
        "-f", os.path.join(record.checkout, compose_file),
        "-f", override_path(config.deploy.projects_dir, record.name),
    ]


def compose_prepare(config: Config, record: ProjectRecord, compose_file: str,
                    service: str | None, port: int | None) -> None:
    """Validate the compose file, pick the web service and write the routing override."""
    say(f"==> reading {compose_file}")
    text = run([*compose_command(), "-f", os.path.join(record.checkout, compose_file), "config"],
               "compose config", cwd=record.checkout)
    try:
        compose = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise VhostdError(f"compose config printed unreadable YAML: {exc}") from None
    record.service = detect.web_service(compose, service or record.service)
    record.port = port or detect.service_port(compose, record.service) or record.port
    override = detect.compose_override(compose, record.service, record.hosts, record.port, record.name)
    path = override_path(config.deploy.projects_dir, record.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(override, handle, indent=2)
    say(f"    routing service {record.service!r}" + (f" port {record.port}" if record.port else ""))


def compose_start(config: Config, record: ProjectRecord, compose_file: str) -> None:
    base = _compose_files(config, record, compose_file)
    say("==> building")
    run([*base, "build"], "compose build", cwd=record.checkout, echo=True)
    say("==> starting")
    run([*base, "up", "-d", "--remove-orphans"], "compose up", cwd=record.checkout, echo=True)


def compose_stop(config: Config, record: ProjectRecord, compose_file: str, purge: bool) -> None:
    extra = ["-v", "--rmi", "local"] if purge else []
    run([*_compose_files(config, record, compose_file), "down", "--remove-orphans", *extra],
        "compose down", cwd=record.checkout, echo=True)
    _unlink(override_path(config.deploy.projects_dir, record.name))  # needed by down, not after


def compose_remove_by_label(config: Config, record: ProjectRecord) -> None:
    """Remove a compose project's containers and networks by compose's own labels."""
    label = f"label=com.docker.compose.project={record.name}"
    containers = run(["docker", "ps", "-aq", "--filter", label], "docker ps").split()
    if containers:
        run(["docker", "rm", "-f", *containers], "docker rm")
    networks = run(["docker", "network", "ls", "-q", "--filter", label], "docker network ls").split()
    if networks:
        run(["docker", "network", "rm", *networks], "docker network rm")
    _unlink(override_path(config.deploy.projects_dir, record.name))


# ---- dockerfile ----------------------------------------------------------------------------


def _image_port(image: str) -> int | None:
    text = run(["docker", "image", "inspect", "--format", "{{json .Config.ExposedPorts}}", image],
               "docker image inspect")
    exposed = json.loads(text or "null") or {}
    tcp = sorted({int(k.split("/")[0]) for k in exposed if k.endswith("/tcp") or "/" not in k})
    return tcp[0] if len(tcp) == 1 else None


def deployed_containers(name: str) -> list[str]:
    """Names of the containers a deploy of `name` started (any state)."""
    text = run(["docker", "ps", "-a", "--filter", f"label={DEPLOY_LABEL}={name}",
                "--format", "{{.Names}}"], "docker ps")
    return [line for line in text.split() if line]


def dockerfile_start(record: ProjectRecord, undo: UndoPush, port: int | None) -> list[str]:
    """Build and run the new container; returns the previous containers to remove once it answers."""
    previous = deployed_containers(record.name)
    image = f"vhostd-deploy-{record.name}:{(record.commit or 'latest')[:12]}"
    say(f"==> building image {image}")
    run(["docker", "build", "-t", image, record.checkout], "docker build", echo=True)
    record.image = image
    record.port = port or _image_port(image) or record.port or detect.DEFAULT_PORT
    serial = 1 + max((int(n.rsplit("-", 1)[-1]) for n in previous
                      if n.rsplit("-", 1)[-1].isdigit()), default=0)
    container = f"vhostd-{record.name}-{serial}"
    say(f"==> starting container {container} (port {record.port})")
    run(["docker", "run", "-d", "--name", container, "--restart", "unless-stopped",
         "--label", f"vhostd.host={','.join(record.hosts)}",
         "--label", f"vhostd.port={record.port}",
         "--label", f"{DEPLOY_LABEL}={record.name}", image], "docker run")
    undo(f"remove container {container}", lambda: remove_containers([container]))
    record.container = container
    return previous


def remove_containers(names: list[str], grace: int = 10) -> None:
    """Stop (SIGTERM, `grace` seconds) then remove: the Docker provider takes a stopping
    container out of rotation while it finishes the requests it has."""
    if names:
        run(["docker", "stop", "-t", str(grace), *names], "docker stop")
        run(["docker", "rm", "-f", *names], "docker rm")


def dockerfile_stop(record: ProjectRecord, purge: bool) -> None:
    remove_containers(deployed_containers(record.name))
    if purge:
        images = run(["docker", "images", "-q", f"vhostd-deploy-{record.name}"], "docker images")
        if images.split():
            run(["docker", "rmi", "-f", *sorted(set(images.split()))], "docker rmi")


def container_state(name: str | None) -> str:
    if not name:
        return "absent"
    try:
        return run(["docker", "inspect", "--format", "{{.State.Status}}", name],
                   "docker inspect").strip() or "unknown"
    except VhostdError:
        return "absent"


# ---- vagrant -------------------------------------------------------------------------------


def _vagrant_env(config: Config) -> dict[str, str]:
    return {"VAGRANT_HOME": vagrant_home(config.vagrant)}


def vagrant_prepare(record: ProjectRecord, undo: UndoPush, port: int | None) -> None:
    """Declare the hosts beside the Vagrantfile unless the repository already does."""
    path = os.path.join(record.checkout, DECLARATION_FILE)
    _exclude_from_git(record.checkout, ".vagrant")  # Vagrant's machine data lives there
    if os.path.exists(path) and DECLARATION_FILE not in record.generated_files:
        say(f"    the repository declares its own {DECLARATION_FILE}; its hosts apply")
        return
    record.port = port or record.port or detect.DEFAULT_PORT
    before = _read(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(detect.vagrant_declaration(record.hosts, record.port))
    record.generated_files = tuple(dict.fromkeys((*record.generated_files, DECLARATION_FILE)))
    _exclude_from_git(record.checkout, DECLARATION_FILE)
    if before is None:
        undo(f"remove {DECLARATION_FILE}", lambda: _unlink(path))
    else:  # a redeploy: the previous version keeps its declaration
        undo(f"restore {DECLARATION_FILE}", lambda: _write(path, before))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _exclude_from_git(checkout: str, name: str) -> None:
    """Keep the generated file out of `git status` so later pulls stay clean."""
    exclude = os.path.join(checkout, ".git", "info", "exclude")
    try:
        with open(exclude, encoding="utf-8") as handle:
            if f"/{name}" in handle.read().split():
                return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(exclude), exist_ok=True)
    with open(exclude, "a", encoding="utf-8") as handle:
        handle.write(f"/{name}\n")


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def vagrant_machines(config: Config, checkout: str) -> list[MachineRecord]:
    """What Vagrant's machine index records for this project's machines."""
    index = machine_index_path(vagrant_home(config.vagrant))
    try:
        with open(index, encoding="utf-8") as handle:
            records, _ = parse_machine_index(handle.read(), index)
    except FileNotFoundError:
        return []
    project = os.path.realpath(checkout)
    return [r for r in records if os.path.realpath(r.project_dir) == project]


def vagrant_machine_states(config: Config, checkout: str) -> list[str]:
    return [r.state for r in vagrant_machines(config, checkout)]


def vagrant_start(config: Config, record: ProjectRecord, undo: UndoPush, fresh: bool) -> None:
    """`vagrant up` the first time; later, apply the new checkout to the machines.

    Vagrant's docker provider keeps the old container on `reload` unless the image changed,
    so docker machines are recreated (destroy + up); VMs get `reload --provision`.
    """
    env = _vagrant_env(config)
    machines = [] if fresh else vagrant_machines(config, record.checkout)
    if fresh:
        undo("vagrant destroy", lambda: vagrant_stop(config, record, purge=False))
    elif any(m.provider == "docker" for m in machines):
        say("==> recreating the docker machine(s): vagrant destroy, vagrant up")
        run(["vagrant", "destroy", "-f"], "vagrant destroy", cwd=record.checkout, env=env, echo=True)
    elif any(m.state == "running" for m in machines):
        say("==> vagrant reload --provision")
        run(["vagrant", "reload", "--provision"], "vagrant reload", cwd=record.checkout, env=env,
            echo=True)
        return
    vagrant_up(config, record, provision=bool(machines))


def vagrant_up(config: Config, record: ProjectRecord, provision: bool = False) -> None:
    say("==> vagrant up")
    command = ["vagrant", "up", "--provision"] if provision else ["vagrant", "up"]
    run(command, "vagrant up", cwd=record.checkout, env=_vagrant_env(config), echo=True)


def vagrant_stop(config: Config, record: ProjectRecord, purge: bool) -> None:
    if os.path.exists(os.path.join(record.checkout, "Vagrantfile")):
        run(["vagrant", "destroy", "-f"], "vagrant destroy", cwd=record.checkout,
            env=_vagrant_env(config), echo=True)
    for name in record.generated_files:
        _unlink(os.path.join(record.checkout, name))
