"""Containers → Snapshot (pure): the Docker provider's whole logic, with no daemon in sight.

Input is the list of Engine API *inspect* dicts of the running containers. The conventions
are nginx-proxy's, so existing compose files work unchanged:
  env    VIRTUAL_HOST (comma list), VIRTUAL_PORT, VIRTUAL_PATH, VIRTUAL_DEST, VIRTUAL_PROTO
  labels vhostd.host, vhostd.port, vhostd.path, vhostd.dest, vhostd.proto, vhostd.network,
         vhostd.auth (an htpasswd file) — a label overrides the variable of the same role.
Every (host, path) collects the containers that declare it, as nginx-proxy's upstreams do;
hosts with the very same containers and settings become one Site with one Backend per
container. A container with an invalid declaration is reported and skipped, never fatal.
Output is sorted, so the same containers always give an equal (==) snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vhostd.config.model import AuthPolicy, Backend, Site
from vhostd.providers.snapshot import Problem, Snapshot
from vhostd.routing.hosts import parse_host_pattern

PROVIDER = "docker"
HOST_NETWORK_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 80
PROTOCOLS = ("http", "https")

# role → (label, env variable); the label wins when both are set.
_SETTINGS = {
    "host": ("vhostd.host", "VIRTUAL_HOST"),
    "port": ("vhostd.port", "VIRTUAL_PORT"),
    "path": ("vhostd.path", "VIRTUAL_PATH"),
    "dest": ("vhostd.dest", "VIRTUAL_DEST"),
    "proto": ("vhostd.proto", "VIRTUAL_PROTO"),
    "network": ("vhostd.network", None),
    "auth": ("vhostd.auth", None),
}


class Invalid(ValueError):
    """A container's declaration cannot be routed; the message says why."""


@dataclass(frozen=True, slots=True)
class Declared:
    """What one routable container asks for, once validated."""

    name: str
    hosts: tuple[str, ...]
    path: str
    dest: str | None
    auth_file: str | None
    backend: Backend | None  # None: declared but not in rotation (stopping, unhealthy)
    held_back: str  # why backend is None


def container_name(container: Mapping[str, Any]) -> str:
    """The name as `docker ps` shows it ("/web-1" → "web-1"), else a short id."""
    name = str(container.get("Name") or "").lstrip("/")
    return name or str(container.get("Id", ""))[:12]


def _settings(container: Mapping[str, Any]) -> dict[str, str]:
    config = container.get("Config") or {}
    env: dict[str, str] = {}
    for item in config.get("Env") or ():
        key, sep, text = str(item).partition("=")
        if sep:
            env[key] = text
    labels = config.get("Labels") or {}
    found: dict[str, str] = {}
    for role, (label, variable) in _SETTINGS.items():
        value: object = labels.get(label)
        if value is None and variable is not None:
            value = env.get(variable)
        if value is not None and str(value).strip():
            found[role] = str(value).strip()
    return found


def _hosts(text: str) -> tuple[str, ...]:
    hosts: list[str] = []
    for item in text.split(","):
        host = item.strip()
        if not host:
            continue
        try:
            pattern = parse_host_pattern(host)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if pattern.text not in hosts:
            hosts.append(pattern.text)
    if not hosts:
        raise Invalid(f"no host in {text!r}")
    return tuple(hosts)


def _port(container: Mapping[str, Any], declared: str | None) -> int:
    if declared is None:
        exposed = [
            str(key).partition("/")
            for key in ((container.get("Config") or {}).get("ExposedPorts") or {})
        ]
        tcp = sorted({number for number, _, proto in exposed if proto in ("tcp", "")})
        if len(tcp) != 1:
            return DEFAULT_PORT  # none or several: nginx-proxy's default
        declared = tcp[0]
    try:
        port = int(declared)
    except ValueError:
        raise Invalid(f"port {declared!r} is not a number") from None
    if not 0 < port < 65536:
        raise Invalid(f"port {port} is out of range")
    return port


def _path(text: str, role: str) -> str:
    if not text.startswith("/"):
        raise Invalid(f"{role} {text!r} must start with '/' (regex paths are not supported)")
    if any(c.isspace() for c in text):
        raise Invalid(f"{role} {text!r} contains whitespace")
    return text


def _networks(container: Mapping[str, Any]) -> dict[str, str]:
    """Network name → IPv4 address (or IPv6 when that is all there is), for attached ones."""
    settings = container.get("NetworkSettings") or {}
    found: dict[str, str] = {}
    for name, endpoint in (settings.get("Networks") or {}).items():
        endpoint = endpoint or {}
        address = endpoint.get("IPAddress") or endpoint.get("GlobalIPv6Address") or ""
        if address:
            found[str(name)] = str(address)
    return found


def _network_mode(container: Mapping[str, Any]) -> str:
    return str((container.get("HostConfig") or {}).get("NetworkMode") or "")


def choose_address(
    container: Mapping[str, Any], label_network: str | None, own_networks: frozenset[str] | None
) -> str:
    """Where vhostd can reach the container; raises Invalid when nowhere.

    `own_networks` is None when vhostd runs on the host (every bridge address is reachable),
    else the networks of vhostd's own container (only those are reachable).
    """
    if _network_mode(container) == "host":
        return HOST_NETWORK_ADDRESS
    networks = _networks(container)
    if label_network is not None:
        if label_network not in networks:
            raise Invalid(f"network {label_network!r} (vhostd.network) has no address for it")
        if own_networks is not None and label_network not in own_networks:
            raise Invalid(f"network {label_network!r} (vhostd.network) is not shared with vhostd")
        return networks[label_network]
    if own_networks is not None:
        shared = sorted(name for name in networks if name in own_networks)
        if not shared:
            raise Invalid(
                "shares no network with vhostd's container "
                f"(attached to: {', '.join(sorted(networks)) or 'none'})"
            )
        return networks[shared[0]]
    if "bridge" in networks:
        return networks["bridge"]
    if networks:
        return networks[sorted(networks)[0]]
    legacy = str((container.get("NetworkSettings") or {}).get("IPAddress") or "")
    if legacy:
        return legacy
    mode = _network_mode(container) or "none"
    raise Invalid(f"no usable network address (network mode {mode!r})")


def _held_back(
    container: Mapping[str, Any], stopping: frozenset[str], require_healthy: bool
) -> tuple[str, str]:
    """(health, why the container is out of rotation or "")."""
    state = container.get("State") or {}
    health = str((state.get("Health") or {}).get("Status") or "")
    if str(container.get("Id", "")) in stopping:
        return health, "container stopping"
    if require_healthy and health and health != "healthy":
        return health, f"container {health}"
    return health, ""


def _is_running(container: Mapping[str, Any]) -> bool:
    state = container.get("State") or {}
    return bool(state.get("Running")) and not state.get("Paused") and not state.get("Restarting")


def declare(
    container: Mapping[str, Any],
    *,
    own_networks: frozenset[str] | None = None,
    default_domain: str | None = None,
    require_healthy: bool = True,
    stopping: frozenset[str] = frozenset(),
) -> Declared | None:
    """One container → its validated declaration, None when it declares nothing.

    Raises Invalid with the reason when the declaration cannot be routed.
    """
    if not _is_running(container):
        return None
    name = container_name(container)
    found = _settings(container)
    if "host" in found:
        hosts = _hosts(found["host"])
    elif default_domain:
        hosts = _hosts(f"{name.lower()}.{default_domain.strip('.')}")
    else:
        return None
    port = _port(container, found.get("port"))
    path = _path(found.get("path", "/"), "path")
    dest = _path(found["dest"], "dest") if "dest" in found else None
    proto = found.get("proto", "http").lower()
    if proto not in PROTOCOLS:
        raise Invalid(f"protocol {proto!r} is not supported (use http or https)")
    address = choose_address(container, found.get("network"), own_networks)
    health, held_back = _held_back(container, stopping, require_healthy)
    backend = None if held_back else Backend(address, port, proto, name, health)
    return Declared(name, hosts, path, dest, found.get("auth"), backend, held_back)


def _site_name(members: list[Declared], containers: Mapping[str, Mapping[str, Any]]) -> str:
    """A single container's name, else the compose service they share, else names joined."""
    if len(members) == 1:
        return members[0].name
    services = set()
    for member in members:
        labels = (containers[member.name].get("Config") or {}).get("Labels") or {}
        project = labels.get("com.docker.compose.project")
        service = labels.get("com.docker.compose.service")
        services.add(f"{project}-{service}" if project and service else None)
    if len(services) == 1 and None not in services:
        return str(services.pop())
    return "+".join(member.name for member in members)


def _group(declared: list[Declared]) -> list[tuple[tuple[str, ...], str, list[Declared]]]:
    """[(hosts, path, members)]: hosts with exactly the same containers on a path share a Site."""
    by_route: dict[tuple[str, str], list[Declared]] = {}
    for item in declared:
        for host in item.hosts:
            by_route.setdefault((host.lower(), item.path), []).append(item)
    by_members: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    texts: dict[str, str] = {}
    for item in declared:
        for host in item.hosts:
            texts.setdefault(host.lower(), host)
    for (host, path), members in by_route.items():
        key = (path, tuple(member.name for member in members))
        by_members.setdefault(key, []).append(texts[host])
    members_of = {item.name: item for item in declared}
    return [
        (tuple(hosts), path, [members_of[name] for name in names])
        for (path, names), hosts in by_members.items()
    ]


def build(
    containers: Iterable[Mapping[str, Any]],
    *,
    own_networks: frozenset[str] | None = None,
    default_domain: str | None = None,
    require_healthy: bool = True,
    stopping: frozenset[str] = frozenset(),
    own_id: str | None = None,
) -> Snapshot:
    """Inspect dicts of the running containers → the provider's complete snapshot.

    own_networks: networks of vhostd's own container (None when vhostd runs on the host).
    default_domain: undeclared containers become `<name>.<domain>` (None: they are ignored).
    require_healthy: containers with a healthcheck get traffic only while healthy.
    stopping: ids of containers told to stop (kill/stop event seen) but still running.
    own_id: vhostd's own container, never routed to itself.
    """
    by_name = {container_name(c): c for c in containers if str(c.get("Id", "")) != (own_id or "-")}
    declared: list[Declared] = []
    problems: list[Problem] = []
    for name in sorted(by_name):
        try:
            item = declare(
                by_name[name],
                own_networks=own_networks,
                default_domain=default_domain,
                require_healthy=require_healthy,
                stopping=stopping,
            )
        except Invalid as exc:
            problems.append(Problem(f"container {name}", str(exc)))
            continue
        if item is not None:
            declared.append(item)
    sites: list[Site] = []
    used_names: set[str] = set()
    for hosts, path, members in _group(declared):
        first = members[0]
        for other in members[1:]:
            if (other.dest, other.auth_file) != (first.dest, first.auth_file):
                problems.append(
                    Problem(
                        f"container {other.name}",
                        f"dest/auth differ from {first.name}'s on {hosts[0]}{path}; "
                        f"using {first.name}'s",
                    )
                )
        name = _site_name(members, by_name)
        if name in used_names:
            name = f"{name}@{hosts[0]}{path if path != '/' else ''}"
        used_names.add(name)
        backends = tuple(m.backend for m in members if m.backend is not None)
        held = sorted({m.held_back for m in members if m.backend is None})
        sites.append(
            Site(
                name=name,
                hosts=hosts,
                backends=backends,
                paths=(path,),
                dest=first.dest,
                auth=AuthPolicy(file=first.auth_file),
                source="docker:" + ",".join(m.name for m in members),
                unavailable_reason="" if backends else ", ".join(held),
            )
        )
    sites.sort(key=lambda site: (site.hosts[0].lower(), site.paths[0]))
    return Snapshot(PROVIDER, tuple(sites), (), tuple(problems))
