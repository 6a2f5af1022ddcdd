"""`vhostd routes [--config FILE] [--json]`: the compiled route table, as a readable table.

When the configured admin listener answers, its /api/routes is shown: the live table,
Docker and Vagrant routes included. Otherwise the table is compiled from the files, the
way `vhostd serve` would at start-up (no container or VM routes then).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from typing import Any

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import config_snapshot, load_config, site_defaults
from vhostd.config.model import Config
from vhostd.config.values import split_host_port
from vhostd.providers.files.build import build
from vhostd.providers.files.watch import scan
from vhostd.routing.describe import describe_routes
from vhostd.routing.pipeline import RoutePipeline

ADMIN_TIMEOUT = 1.0  # seconds: a running vhostd answers at once on loopback
COLUMNS = ("HOST", "PATH", "BACKENDS", "SITE", "SOURCE", "AUTH")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "routes",
        help="show the route table",
        description="Show the live route table from the admin listener, or the one compiled "
        "from the config files when vhostd is not running.",
    )
    add_config_option(parser)
    parser.add_argument("--json", action="store_true", help="print the routes as JSON")


def admin_url(address: str, path: str) -> str:
    """The URL of `path` on the admin listener; a wildcard address is reached on loopback."""
    host, port = split_host_port(address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def fetch_live_routes(address: str) -> list[dict[str, Any]] | None:
    """/api/routes of a running vhostd, or None when nothing (or something else) answers."""
    try:
        request = urllib.request.Request(admin_url(address, "/api/routes"))
        with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT) as response:
            data = json.loads(response.read())
    except (OSError, ValueError):  # refused, timed out, not JSON, not us
        return None
    return data if isinstance(data, list) else None


def routes_from_files(config: Config) -> tuple[list[dict[str, Any]], int]:
    """(described routes, problem count) compiled from the main config and sites.d."""
    from vhostd.auth.gate import auth_factory

    pipeline = RoutePipeline(auth_factory=auth_factory(config.files.htpasswd_dir))
    pipeline.publish(config_snapshot(config))
    site_texts, htpasswd_texts = scan(config)
    pipeline.publish(build(site_texts, htpasswd_texts, None, site_defaults(config)).snapshot)
    return describe_routes(pipeline), len(pipeline.problems)


def _backends_text(backends: list[dict[str, Any]]) -> str:
    parts = []
    for backend in backends:
        text = str(backend.get("url", ""))
        notes = [str(n) for n in (backend.get("label"), backend.get("health")) if n]
        parts.append(f"{text} ({', '.join(notes)})" if notes else text)
    return ", ".join(parts) or "-"


def table_rows(described: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per (host, path) route: HOST, PATH, BACKENDS, SITE, SOURCE, AUTH."""
    rows: list[tuple[str, ...]] = []
    for site in described:
        backends = _backends_text(site.get("backends", []))
        if not site.get("backends") and site.get("unavailable_reason"):
            backends = f"- ({site['unavailable_reason']})"
        for route in site.get("routes", []):
            rows.append(
                (
                    str(route.get("host", "")),
                    str(route.get("path", "")),
                    backends,
                    str(site.get("site", "")),
                    str(site.get("source", "")),
                    "on" if route.get("auth") else "off",
                )
            )
    return rows


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Columns aligned to their widest cell; the last column is not padded."""
    all_rows = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(COLUMNS))]
    lines = []
    for row in all_rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    config = load_config(path)
    live = fetch_live_routes(config.server.admin) if config.server.admin else None
    if live is not None:
        described, origin, problems = live, f"live, from the admin listener {config.server.admin}", 0
    else:
        described, problems = routes_from_files(config)
        origin = "compiled from the files (vhostd is not running or its admin listener is off)"
    if args.json:
        print(json.dumps(described, indent=2))
        return 0
    rows = table_rows(described)
    if rows:
        print(format_table(rows))
    else:
        print("no routes")
    print(f"\n{len(described)} sites, {len(rows)} routes; {origin}", file=sys.stderr)
    if problems:
        print(f"{problems} problems: run `vhostd check`", file=sys.stderr)
    return 0
