"""Main configuration file (TOML) → Config, validated, every error at file:line.

`load_config(None)` returns the embedded default (src/vhostd/default.toml). Relative
directories ([files], [deploy], a file access log, site `auth` files) resolve against the
config file's directory, or the working directory for the embedded default, so the rest
of vhostd only sees absolute paths. Unknown keys are errors: a typo must not pass silently.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable
from importlib import resources
from typing import Any

from vhostd.config import values
from vhostd.config.lines import TomlLines
from vhostd.config.model import (
    Config,
    DeploySettings,
    DockerSettings,
    FileSettings,
    ServerSettings,
    Timeouts,
    VagrantSettings,
)
from vhostd.config.sites import (
    SITE_TABLE,
    SiteDefaults,
    build_sites,
    parse_sites,
    toml_problem,
    unknown_key_reason,
)
from vhostd.errors import VhostdError
from vhostd.providers.snapshot import Problem, Snapshot

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "config_snapshot",
    "default_config_path",
    "load_config",
    "parse_sites",
    "read_config",
    "site_defaults",
]

DEFAULT_CONFIG_NAME = "vhostd.toml"  # looked up in the working directory by the CLI
EMBEDDED_DEFAULT = "(embedded default)"

Converter = Callable[[object], object]

# table → (settings class, {toml key: (field name, converter)}). Adding a key is one line.
# Keys whose field is "timeouts.<name>" fill the nested Timeouts of [server].
_SECTIONS: dict[str, tuple[type, dict[str, tuple[str, Converter]]]] = {
    "server": (
        ServerSettings,
        {
            "listen": ("listen", values.addresses),
            "admin": ("admin", values.admin_address),
            "workers": ("workers", values.positive_int),
            "trusted_proxies": ("trusted_proxies", values.networks),
            "access_log": ("access_log", values.text),
            "access_log_format": ("access_log_format", values.one_of("combined", "json")),
            "connect_timeout": ("timeouts.connect", values.duration),
            "first_byte_timeout": ("timeouts.first_byte", values.duration),
            "between_bytes_timeout": ("timeouts.between_bytes", values.duration),
            "client_header_timeout": ("client_header_timeout", values.duration),
            "keepalive_timeout": ("keepalive_timeout", values.duration),
            "client_body_timeout": ("client_body_timeout", values.duration),
            "send_timeout": ("send_timeout", values.duration),
            "lingering_time": ("lingering_time", values.duration),
            "lingering_timeout": ("lingering_timeout", values.duration),
            "max_head_size": ("max_head_size", values.size),
            "max_headers": ("max_headers", values.positive_int),
            "max_body_size": ("max_body_size", values.size),
            "shutdown_grace": ("shutdown_grace", values.duration),
            "upstream_keepalive": ("upstream_keepalive", values.positive_int),
        },
    ),
    "docker": (
        DockerSettings,
        {
            "enabled": ("enabled", values.bool_or_auto),
            "host": ("host", values.text),
            "default_domain": ("default_domain", values.text),
            "require_healthy": ("require_healthy", values.boolean),
        },
    ),
    "files": (
        FileSettings,
        {
            "sites_dir": ("sites_dir", values.text),
            "htpasswd_dir": ("htpasswd_dir", values.text),
        },
    ),
    "vagrant": (
        VagrantSettings,
        {
            "enabled": ("enabled", values.bool_or_auto),
            "home": ("home", values.text),
        },
    ),
    "deploy": (
        DeploySettings,
        {
            "projects_dir": ("projects_dir", values.text),
            "domain": ("domain", values.text),
        },
    ),
}
_TOP_LEVEL = {*_SECTIONS, SITE_TABLE}


def default_config_path() -> str | None:
    """./vhostd.toml when it exists (the CLI's default for --config), else None."""
    return DEFAULT_CONFIG_NAME if os.path.isfile(DEFAULT_CONFIG_NAME) else None


def _embedded_default_text() -> str:
    return resources.files("vhostd").joinpath("default.toml").read_text(encoding="utf-8")


def _section(
    name: str, table: object, lines: TomlLines, where: str
) -> tuple[Any, list[Problem]]:
    """One settings table → (settings object, problems). Bad keys keep their default."""
    cls, keys = _SECTIONS[name]
    problems: list[Problem] = []
    if not isinstance(table, dict):
        line = lines.locate("", name)
        return cls(), [Problem(f"{where}:{line}", f"'{name}' must be a table: [{name}]")]
    fields: dict[str, Any] = {}
    timeouts: dict[str, float] = {}
    for key, raw in table.items():
        line = lines.locate(name, key)
        if key not in keys:
            reason = unknown_key_reason(key, f"[{name}]", keys)
            problems.append(Problem(f"{where}:{line}", reason))
            continue
        field_name, convert = keys[key]
        try:
            value = convert(raw)
        except ValueError as exc:
            problems.append(Problem(f"{where}:{line}", f"{key}: {exc}"))
            continue
        if field_name.startswith("timeouts."):
            timeouts[field_name.removeprefix("timeouts.")] = value  # type: ignore[assignment]
        else:
            fields[field_name] = value
    if timeouts:
        fields["timeouts"] = Timeouts(**timeouts)
    return cls(**fields), problems


def _absolute(path: str, base_dir: str) -> str:
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def _resolve_paths(config: Config, base_dir: str) -> Config:
    """Relative directories and files → absolute, against the config file's directory."""
    server = config.server
    if server.access_log not in ("off", "stdout"):
        server = dataclasses.replace(server, access_log=_absolute(server.access_log, base_dir))
    files = FileSettings(
        sites_dir=_absolute(config.files.sites_dir, base_dir),
        htpasswd_dir=_absolute(config.files.htpasswd_dir, base_dir),
    )
    deploy = dataclasses.replace(
        config.deploy, projects_dir=_absolute(config.deploy.projects_dir, base_dir)
    )
    vagrant = config.vagrant
    if vagrant.home is not None:
        vagrant = dataclasses.replace(vagrant, home=_absolute(vagrant.home, base_dir))
    return dataclasses.replace(config, server=server, files=files, deploy=deploy, vagrant=vagrant)


def site_defaults(config: Config) -> SiteDefaults:
    """What sites (from files, containers, VMs) inherit from [server]."""
    base_dir = os.path.dirname(os.path.abspath(config.path)) if config.path else os.getcwd()
    return SiteDefaults(config.server.timeouts, config.server.max_body_size, base_dir)


def parse_config_text(
    text: str, where: str, base_dir: str, path: str | None
) -> tuple[Config, tuple[Problem, ...]]:
    """Main config text → (Config, problems). Broken parts fall back to defaults."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Config(path=path), (toml_problem(exc, where, text),)
    lines = TomlLines(text)
    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    for key, table in data.items():
        if key not in _TOP_LEVEL:
            line = lines.locate(key) if lines.table(key) else lines.locate("", key)
            reason = unknown_key_reason(key, "the config file", _TOP_LEVEL)
            problems.append(Problem(f"{where}:{line}", reason))
        elif key != SITE_TABLE:
            sections[key], found = _section(key, table, lines, where)
            problems.extend(found)
    config = _resolve_paths(Config(path=path, **sections), base_dir)
    defaults = dataclasses.replace(site_defaults(config), base_dir=base_dir)
    sites, site_problems = build_sites(data.get(SITE_TABLE, []), lines, where, defaults, "config")
    problems.extend(site_problems)
    return dataclasses.replace(config, sites=sites), tuple(problems)


def read_config(path: str | None) -> tuple[Config, tuple[Problem, ...]]:
    """Read and validate the main config; every problem is returned (for `vhostd check`).

    An unreadable file raises VhostdError: there is nothing to validate.
    """
    if path is None:
        return parse_config_text(_embedded_default_text(), EMBEDDED_DEFAULT, os.getcwd(), None)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise VhostdError(f"cannot read config file: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise VhostdError("config file is not valid UTF-8", path) from None
    base_dir = os.path.dirname(os.path.abspath(path))
    return parse_config_text(text, path, base_dir, path)


def load_config(path: str | None) -> Config:
    """The validated Config from `path` (None → the embedded default).

    Raises VhostdError(reason, where="file:line") for the first problem found.
    """
    config, problems = read_config(path)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more; run `vhostd check`)" if len(problems) > 1 else ""
        raise VhostdError(first.reason + more, first.where)
    return config


def config_snapshot(config: Config) -> Snapshot:
    """The sites declared in the main config, as the "config" provider's snapshot."""
    return Snapshot(provider="config", sites=config.sites)
