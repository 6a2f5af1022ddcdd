"""`[[site]]` tables → Site objects, with problems located at file:line (pure).

The same schema serves the main config and every sites.d file. A site that fails to
validate becomes a Problem and is left out; the other sites of the file still parse, and
the caller decides what a broken file means (the file provider keeps its last good sites).
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vhostd.config import values
from vhostd.config.lines import TomlLines
from vhostd.config.model import AuthPolicy, Site, Timeouts
from vhostd.providers.snapshot import Problem
from vhostd.routing.hosts import parse_host_pattern

SITE_TABLE = "site"


@dataclass(frozen=True, slots=True)
class SiteDefaults:
    """What a site inherits from the main config's [server] table."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    max_body_size: int | None = None
    base_dir: str | None = None  # relative `auth` files resolve against it


class TableKeyError(ValueError):
    """A validation error tied to one key of a table (for its line number)."""

    def __init__(self, key: str | None, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def unknown_key_reason(key: str, table: str, allowed: Mapping[str, object] | set[str]) -> str:
    """"unknown key 'hots' in [[site]] (did you mean 'hosts'?)"."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r} in {table}{hint}"


def _hosts(value: object) -> tuple[str, ...]:
    hosts = values.string_list(value, "host")
    for host in hosts:
        parse_host_pattern(host)  # ValueError names the host and why
    return hosts


def _paths(value: object) -> tuple[str, ...]:
    paths = tuple(values.url_path(p) for p in values.string_list(value, "path"))
    if not paths:
        raise ValueError("expected at least one path")
    return paths


def _backends(value: object) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError("expected a list of at least one backend URL")
    return tuple(values.backend(item) for item in value)


# key → converter; the result is stored under the same name in `fields` below
_SITE_KEYS: dict[str, Callable[[object], object]] = {
    "name": values.text,
    "hosts": _hosts,
    "backends": _backends,
    "path": _paths,
    "paths": _paths,
    "dest": values.url_path,
    "default": values.boolean,
    "auth": values.text,
    "auth_realm": values.text,
    "auth_forward": values.boolean,
    "auth_allow": values.networks,
    "max_body_size": values.size,
    "connect_timeout": values.duration,
    "first_byte_timeout": values.duration,
    "between_bytes_timeout": values.duration,
}


def build_site(table: object, defaults: SiteDefaults, source: str) -> Site:
    """One `[[site]]` table → Site; raises TableKeyError naming the offending key."""
    if not isinstance(table, dict):
        raise TableKeyError(None, "each [[site]] must be a table")
    got: dict[str, Any] = {}
    for key, raw in table.items():
        convert = _SITE_KEYS.get(key)
        if convert is None:
            raise TableKeyError(key, unknown_key_reason(key, "[[site]]", _SITE_KEYS))
        try:
            got[key] = convert(raw)
        except ValueError as exc:
            raise TableKeyError(key, f"{key}: {exc}") from None
    if "name" not in got:
        raise TableKeyError(None, "missing key 'name' in [[site]]")
    if "path" in got and "paths" in got:
        raise TableKeyError("paths", "use either 'path' or 'paths', not both")
    if not got.get("hosts") and not got.get("default"):
        raise TableKeyError("hosts", f"site {got['name']!r} has no hosts (and is not the default)")
    if "backends" not in got:
        raise TableKeyError(None, f"site {got['name']!r} has no backends")
    auth_file = got.get("auth")
    if auth_file is not None and defaults.base_dir and not os.path.isabs(auth_file):
        auth_file = os.path.normpath(os.path.join(defaults.base_dir, auth_file))
    server = defaults.timeouts
    return Site(
        name=got["name"],
        hosts=got.get("hosts", ()),
        backends=got["backends"],
        paths=got.get("paths") or got.get("path") or ("/",),
        dest=got.get("dest"),
        default=got.get("default", False),
        auth=AuthPolicy(
            file=auth_file,
            realm=got.get("auth_realm", ""),
            forward_authorization=got.get("auth_forward", False),
            allow_networks=got.get("auth_allow", ()),
        ),
        timeouts=Timeouts(
            connect=got.get("connect_timeout", server.connect),
            first_byte=got.get("first_byte_timeout", server.first_byte),
            between_bytes=got.get("between_bytes_timeout", server.between_bytes),
        ),
        max_body_size=got.get("max_body_size", defaults.max_body_size),
        source=source,
    )


def build_sites(
    tables: object,
    lines: TomlLines,
    path: str,
    defaults: SiteDefaults,
    source_kind: str,
) -> tuple[tuple[Site, ...], tuple[Problem, ...]]:
    """The `site` array of a parsed file → (valid sites, problems at path:line)."""
    if not isinstance(tables, list):
        line = lines.locate("", SITE_TABLE)
        return (), (Problem(f"{path}:{line}", "'site' must be an array of tables: [[site]]"),)
    sites: list[Site] = []
    problems: list[Problem] = []
    names: dict[str, str] = {}
    for nth, table in enumerate(tables):
        header = lines.locate(SITE_TABLE, None, nth)
        try:
            site = build_site(table, defaults, f"{source_kind}:{path}:{header}")
        except TableKeyError as exc:
            line = lines.locate(SITE_TABLE, exc.key, nth)
            problems.append(Problem(f"{path}:{line}", exc.reason))
            continue
        if site.name in names:
            problems.append(
                Problem(
                    f"{path}:{header}",
                    f"duplicate site name {site.name!r} (first at {names[site.name]})",
                )
            )
            continue
        names[site.name] = f"{path}:{header}"
        sites.append(site)
    return tuple(sites), tuple(problems)


def toml_problem(exc: tomllib.TOMLDecodeError, path: str, text: str) -> Problem:
    """A tomllib syntax error → Problem at path:line (tomllib puts the position in the text)."""
    message = str(exc)
    line = 1
    marker = message.rfind(" (at line ")
    if marker != -1:
        try:
            line = int(message[marker + 10 :].split(",")[0])
        except ValueError:
            pass
        message = message[:marker]
    elif message.endswith(" (at end of document)"):
        line = max(1, len(text.splitlines()))
        message = message[: -len(" (at end of document)")]
    return Problem(f"{path}:{line}", f"TOML syntax error: {message}")


def parse_sites(
    text: str, path: str, defaults: SiteDefaults | None = None
) -> tuple[tuple[Site, ...], tuple[Problem, ...]]:
    """One sites.d file's text → (valid sites, problems). Only `[[site]]` tables are allowed."""
    defaults = defaults or SiteDefaults()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return (), (toml_problem(exc, path, text),)
    lines = TomlLines(text)
    problems: list[Problem] = []
    for key in data:
        if key != SITE_TABLE:
            line = lines.locate(key, None) if lines.table(key) else lines.locate("", key)
            reason = unknown_key_reason(key, "a site file (only [[site]] tables)", {SITE_TABLE})
            problems.append(Problem(f"{path}:{line}", reason))
    sites, site_problems = build_sites(data.get(SITE_TABLE, []), lines, path, defaults, "file")
    return sites, (*problems, *site_problems)
