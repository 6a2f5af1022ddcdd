"""`vhostd projects`: the deployed projects with their URL, kind, state and last deploy."""

from __future__ import annotations

import argparse

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import load_config

HEADER = ("NAME", "URL", "KIND", "STATE", "LAST DEPLOY")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `projects`."""
    parser = subparsers.add_parser(
        "projects",
        help="list deployed projects",
        description="List the projects `vhostd deploy` deployed: URL, kind, state, last deploy.",
    )
    add_config_option(parser)


def format_rows(rows: list[tuple[str, str, str, str, str]]) -> str:
    """Aligned columns under a header."""
    table = [HEADER, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def run(args: argparse.Namespace) -> int:
    # imported here: the Docker client behind it costs every other subcommand ~12 MiB
    from vhostd.deploy.project import project_rows

    config = load_config(config_path(args))
    rows = project_rows(config)
    if not rows:
        print("no deployed projects")
        return 0
    print(format_rows(rows))
    return 0
