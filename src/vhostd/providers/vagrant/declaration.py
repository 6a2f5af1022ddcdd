"""`vhost.toml`, the one small file beside a Vagrantfile that makes a project routable (pure).

    hosts = ["app.localhost"]      # or a comma list in one string; wildcards and ~regex allowed
    port = 8000                    # the port inside the machine (container port for docker)
    path = "/"                     # optional path prefix (or paths = [...])
    machine = "web"                # optional: which machine of a multi-machine Vagrantfile
    address = "192.168.56.10"      # VM providers: the private-network address to use
    auth = "htpasswd/app"          # optional explicit htpasswd file (relative to this file)
    name = "app"                   # optional site name (default: the project directory name)

Several machines of one project declare themselves with `[[vhost]]` tables holding the same
keys. Parsing never raises: every mistake becomes a Problem naming the file.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass

from vhostd.providers.snapshot import Problem

DECLARATION_FILE = "vhost.toml"

_KEYS = frozenset(
    {"hosts", "host", "port", "path", "paths", "machine", "address", "scheme", "auth", "name",
     "realm", "first_byte_timeout"}
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
# `config.vm.network "private_network", ip: "192.168.56.10"` (either quote style, : or =>)
_PRIVATE_NETWORK_IP = re.compile(
    r"""network\s*\(?\s*["':]+private_network["']?\s*,[^\n]*?\bip\s*(?::|=>)\s*["']([0-9a-fA-F.:]+)["']"""
)


@dataclass(frozen=True, slots=True)
class Declaration:
    """What one `vhost.toml` entry asks for."""

    hosts: tuple[str, ...]
    port: int
    paths: tuple[str, ...] = ("/",)
    machine: str | None = None
    address: str | None = None
    scheme: str = "http"
    auth_file: str | None = None  # absolute path
    realm: str = ""
    name: str | None = None
    first_byte_timeout: float | None = None


def parse_declaration(text: str, path: str) -> tuple[tuple[Declaration, ...], tuple[Problem, ...]]:
    """Parse a `vhost.toml` (its text and path) into declarations plus problems."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return (), (Problem(path, f"invalid TOML: {exc}"),)
    tables = data.get("vhost")
    if tables is None:
        tables = [data]
    elif not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return (), (Problem(path, "`vhost` must be an array of tables ([[vhost]])"),)
    elif set(data) - {"vhost"}:
        return (), (Problem(path, "use either top-level keys or [[vhost]] tables, not both"),)
    declarations: list[Declaration] = []
    problems: list[Problem] = []
    base_dir = os.path.dirname(os.path.abspath(path))
    for index, table in enumerate(tables):
        where = path if len(tables) == 1 else f"{path} [[vhost]] #{index + 1}"
        try:
            declarations.append(_declaration(table, base_dir))
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
    return tuple(declarations), tuple(problems)


def _declaration(table: dict[str, object], base_dir: str) -> Declaration:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(unknown)}")
    hosts = _hosts(table.get("hosts", table.get("host")))
    port = table.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("`port` must be an integer between 1 and 65535")
    paths = _paths(table)
    scheme = _optional_str(table, "scheme") or "http"
    if scheme not in ("http", "https"):
        raise ValueError("`scheme` must be \"http\" or \"https\"")
    auth = _optional_str(table, "auth")
    timeout = table.get("first_byte_timeout")
    return Declaration(
        hosts=hosts,
        port=port,
        paths=paths,
        machine=_optional_str(table, "machine"),
        address=_optional_str(table, "address"),
        scheme=scheme,
        auth_file=os.path.normpath(os.path.join(base_dir, auth)) if auth else None,
        realm=_optional_str(table, "realm") or "",
        name=_optional_str(table, "name"),
        first_byte_timeout=None if timeout is None else _duration(timeout),
    )


def _hosts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ValueError("`hosts` is required: a list of host names (or one comma-separated string)")
    hosts = tuple(h for h in items if h)
    if not hosts:
        raise ValueError("`hosts` is empty")
    return hosts


def _paths(table: dict[str, object]) -> tuple[str, ...]:
    value = table.get("paths", table.get("path", "/"))
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
        raise ValueError("`path` must be a string (or `paths` a list of strings)")
    for item in items:
        if not item.startswith("/"):
            raise ValueError(f"path {item!r} must start with '/'")
    return tuple(items)


def _optional_str(table: dict[str, object], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"`{key}` must be a non-empty string")
    return value.strip()


def _duration(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or float(match.group(1)) <= 0:
        raise ValueError("`first_byte_timeout` must be a positive duration such as \"600s\"")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def private_network_addresses(vagrantfile_text: str) -> tuple[str, ...]:
    """The static private-network IPs a Vagrantfile assigns, in file order (comments skipped)."""
    lines = (line.split("#", 1)[0] for line in vagrantfile_text.splitlines())
    return tuple(m.group(1) for line in lines for m in _PRIVATE_NETWORK_IP.finditer(line))
