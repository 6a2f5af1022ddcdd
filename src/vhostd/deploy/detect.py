"""Deploy decisions that need no I/O: names, hosts, project kind, the compose web service.

Kinds, in the order they are looked for (the first present wins):
  compose     a compose file; routed through a generated override that adds `vhostd.host`
              and `vhostd.port` labels to the web service, so the Docker provider routes it
  dockerfile  a Dockerfile; built locally and run with those labels
  vagrant     a Vagrantfile; a `vhost.toml` beside it declares the hosts to the Vagrant provider
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from vhostd.errors import VhostdError
from vhostd.routing.hosts import EXACT, parse_host_pattern

COMPOSE, DOCKERFILE, VAGRANT = "compose", "dockerfile", "vagrant"
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
WEB_SERVICE_NAMES = ("web", "app", "www", "frontend", "http", "nginx")
DEFAULT_PORT = 80

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def project_name(repo: str, name: str | None) -> str:
    """The deploy name: given, or the repository's last path part without `.git`."""
    if name is None:
        last = re.split(r"[/:]", repo.rstrip("/"))[-1]
        last = last[:-4] if last.endswith(".git") else last
        name = re.sub(r"[^a-z0-9_-]+", "-", last.lower()).strip("-_")
    if not _NAME.match(name):
        raise VhostdError(
            f"{name!r} is not a usable project name: lower-case letters, digits, '-' and '_' "
            "(give one with --name)"
        )
    return name


def project_hosts(name: str, hosts: Iterable[str], domain: str) -> tuple[str, ...]:
    """The hosts given on the command line (validated), else `<name>.<domain>`."""
    chosen = tuple(dict.fromkeys(h.strip() for h in hosts if h.strip())) or (f"{name}.{domain}",)
    for host in chosen:
        if "," in host:  # labels and vhost.toml strings hold comma lists
            raise VhostdError(f"--host {host!r}: give one host per --host")
        try:
            parse_host_pattern(host)
        except ValueError as exc:
            raise VhostdError(f"--host {host!r}: {exc}") from None
    return chosen


def probe_host(hosts: Iterable[str]) -> str | None:
    """A concrete host to send requests to when checking the site answers (exact ones only)."""
    for host in hosts:
        if parse_host_pattern(host).kind == EXACT:
            return host
    return None


def detect_kind(files: Iterable[str]) -> tuple[str, str]:
    """(kind, the file that decided it) from the names at the checkout's top level."""
    present = set(files)
    for name in COMPOSE_FILES:
        if name in present:
            return COMPOSE, name
    if "Dockerfile" in present:
        return DOCKERFILE, "Dockerfile"
    if "Vagrantfile" in present:
        return VAGRANT, "Vagrantfile"
    raise VhostdError(
        "cannot tell how this project runs: no compose file "
        f"({', '.join(COMPOSE_FILES)}), Dockerfile or Vagrantfile at the top of the repository"
    )


def web_service(compose: Mapping[str, Any], wanted: str | None) -> str:
    """The compose service that serves the site: --service, the only one, or a web-ish name."""
    services = compose.get("services") or {}
    if not isinstance(services, Mapping) or not services:
        raise VhostdError("the compose file defines no services")
    names = list(services)
    if wanted is not None:
        if wanted not in services:
            raise VhostdError(f"no service {wanted!r} in the compose file (has: {', '.join(names)})")
        return wanted
    if len(names) == 1:
        return names[0]
    for name in WEB_SERVICE_NAMES:
        if name in services:
            return name
    published = [n for n in names if _container_ports(services[n])]
    if len(published) == 1:
        return published[0]
    raise VhostdError(f"several services ({', '.join(names)}): choose the web one with --service")


def service_port(compose: Mapping[str, Any], service: str) -> int | None:
    """The container port the service listens on, from `expose` or `ports`; None if unsaid."""
    ports = _container_ports(compose["services"][service])
    return ports[0] if ports else None


def _container_ports(service: Mapping[str, Any]) -> list[int]:
    found: list[int] = []
    for item in list(service.get("expose") or ()) + list(service.get("ports") or ()):
        port: object
        if isinstance(item, Mapping):
            port = item.get("target")
        else:
            # "80", "8080:80", "127.0.0.1:8080:80/tcp": the container port is the last part
            port = str(item).split("/", 1)[0].rsplit(":", 1)[-1].split("-", 1)[0]
        try:
            number = int(str(port))
        except ValueError:
            continue
        if number not in found:
            found.append(number)
    return found


def compose_override(compose: Mapping[str, Any], service: str, hosts: Iterable[str],
                     port: int | None, project: str) -> dict[str, Any]:
    """The override document (JSON is YAML) that makes `service` routable by vhostd."""
    labels = {"vhostd.host": ",".join(hosts), "vhostd.deploy": project}
    if port is not None:
        labels["vhostd.port"] = str(port)
    override: dict[str, Any] = {"services": {service: {"labels": labels}}}
    if compose.get("version"):
        override["version"] = str(compose["version"])
    return override


def vagrant_declaration(hosts: Iterable[str], port: int) -> str:
    """The `vhost.toml` written beside a deployed Vagrantfile that has none."""
    listed = ", ".join(json.dumps(h) for h in hosts)  # JSON strings are TOML basic strings
    return (
        "# written by `vhostd deploy`; removed by `vhostd undeploy`\n"
        f"hosts = [{listed}]\nport = {port}\n"
    )
