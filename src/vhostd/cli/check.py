"""`vhostd check [--config FILE]`: validate the main config, every site file and htpasswd file.

Prints each problem as `file:line: reason` and exits 1 when there is any, else prints a
one-line summary and exits 0. It reads what the server would read, with the same code
(loader, file provider builder, merge), so "check passes" means "serve accepts it".
"""

from __future__ import annotations

import argparse
import os

from vhostd.cli.options import add_config_option, config_path
from vhostd.config.load import config_snapshot, read_config, site_defaults
from vhostd.config.model import Config, Site
from vhostd.providers.files.build import build
from vhostd.providers.files.watch import scan
from vhostd.providers.snapshot import Problem
from vhostd.routing.merge import merge


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate the config, site files and htpasswd files",
        description="Validate everything vhostd would load; print file:line: reason for each "
        "problem and exit 1 when there is any.",
    )
    add_config_option(parser)


def _auth_file_problems(sites: tuple[Site, ...], htpasswd_paths: set[str]) -> list[Problem]:
    """A site whose explicit `auth` file is missing would lock everyone out: say so."""
    problems = []
    for site in sites:
        file = site.auth.file
        if file and os.path.realpath(file) not in htpasswd_paths and not os.path.isfile(file):
            where = site.source.partition(":")[2] or site.name
            problems.append(Problem(where, f"site {site.name!r}: auth file {file} does not exist"))
    return problems


def collect_problems(path: str | None) -> tuple[Config, dict[str, int], list[Problem]]:
    """(config, counts for the summary, every problem) for the config at `path`."""
    config, config_problems = read_config(path)
    site_texts, htpasswd_texts = scan(config)
    files = build(site_texts, htpasswd_texts, None, site_defaults(config)).snapshot
    merged = merge({"config": config_snapshot(config), "file": files})
    htpasswd_paths = {os.path.realpath(p) for p in htpasswd_texts}
    problems = [
        *config_problems,
        *merged.problems,
        *_auth_file_problems((*config.sites, *files.sites), htpasswd_paths),
    ]
    counts = {
        "sites": len(config.sites) + len(files.sites),
        "site_files": len(site_texts),
        "htpasswd_files": len(htpasswd_texts),
    }
    return config, counts, problems


def _location(where: str) -> str:
    """A site source ("file:sites.d/a.toml:3") shown as the file:line it points at."""
    kind, colon, rest = where.partition(":")
    return rest if colon and kind in ("file", "config") and rest else where


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    _config, counts, problems = collect_problems(path)
    for problem in problems:
        print(f"{_location(problem.where)}: {problem.reason}")
    shown = path or "the embedded default config"
    if problems:
        print(f"{shown}: {_plural(len(problems), 'problem')} found")
        return 1
    print(
        f"{shown}: ok, {_plural(counts['sites'], 'site')} "
        f"({_plural(counts['site_files'], 'site file')}, "
        f"{_plural(counts['htpasswd_files'], 'htpasswd file')})"
    )
    return 0
