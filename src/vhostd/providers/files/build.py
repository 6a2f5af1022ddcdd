"""Site files and htpasswd files → the file provider's Snapshot (pure, no I/O).

The watcher reads the directories and hands the texts here. A file that fails to parse or
validate keeps its last good sites in the table (the previous build's `last_good`), so a
half-saved edit never takes a project offline; its problems are reported with file:line.
A file broken since the start contributes the sites in it that did validate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from vhostd.auth.htpasswd import parse_htpasswd
from vhostd.config.model import Site
from vhostd.config.sites import SiteDefaults, parse_sites
from vhostd.providers.snapshot import Credentials, Problem, Snapshot

PROVIDER = "file"
SITE_SUFFIX = ".toml"
# editor leftovers and temporary files that must never become sites or credentials
_TEMP_SUFFIXES = ("~", ".swp", ".swo", ".swx", ".tmp", ".bak", ".orig", ".rej", ".part")


@dataclass(frozen=True, slots=True)
class FileBuild:
    snapshot: Snapshot
    last_good: Mapping[str, tuple[Site, ...]]  # per site file: the sites of its last clean parse


def is_ignored_name(name: str) -> bool:
    """Dotfiles, editor swap/backup files and vim's 4913 probe."""
    return (
        name.startswith((".", "#"))
        or name.endswith(_TEMP_SUFFIXES)
        or name == "4913"
    )


def is_site_file(name: str) -> bool:
    """A file in sites_dir that holds sites: `*.toml`, not hidden or temporary."""
    return name.endswith(SITE_SUFFIX) and not is_ignored_name(name)


def is_htpasswd_file(name: str) -> bool:
    """Every regular file in htpasswd_dir counts, except hidden and temporary ones."""
    return not is_ignored_name(name)


def _site_files(
    site_texts: Mapping[str, str],
    last_good: Mapping[str, tuple[Site, ...]],
    defaults: SiteDefaults,
) -> tuple[list[Site], list[Problem], dict[str, tuple[Site, ...]]]:
    sites: list[Site] = []
    problems: list[Problem] = []
    good: dict[str, tuple[Site, ...]] = {}
    for path in sorted(site_texts):
        parsed, found = parse_sites(site_texts[path], path, defaults)
        if not found:
            good[path] = parsed
            sites.extend(parsed)
            continue
        problems.extend(found)
        previous = last_good.get(path)
        if previous is None:
            sites.extend(parsed)
            continue
        good[path] = previous
        sites.extend(previous)
        problems.append(
            Problem(path, f"keeping the last good version of this file ({len(previous)} sites)")
        )
    return sites, problems, good


def _unique_names(sites: list[Site]) -> tuple[list[Site], list[Problem]]:
    """Two files declaring the same site name: the first (by path) keeps it."""
    kept: dict[str, Site] = {}
    problems: list[Problem] = []
    for site in sites:
        first = kept.get(site.name)
        if first is None:
            kept[site.name] = site
            continue
        problems.append(
            Problem(
                site.source.removeprefix("file:"),
                f"duplicate site name {site.name!r}, already declared at "
                f"{first.source.removeprefix('file:')}; ignoring this one",
            )
        )
    return list(kept.values()), problems


def _credentials(htpasswd_texts: Mapping[str, str]) -> tuple[list[Credentials], list[Problem]]:
    credentials: list[Credentials] = []
    problems: list[Problem] = []
    for path in sorted(htpasswd_texts):
        entries, found = parse_htpasswd(htpasswd_texts[path], path)
        credentials.append(Credentials(os.path.basename(path), path, entries))
        problems.extend(found)
    return credentials, problems


def build(
    site_texts: Mapping[str, str],
    htpasswd_texts: Mapping[str, str],
    last_good: Mapping[str, tuple[Site, ...]] | None = None,
    defaults: SiteDefaults | None = None,
) -> FileBuild:
    """{site file path: text} + {htpasswd path: text} → Snapshot, and the new last-good map.

    Paths are used as given in sources and problems ("file:sites.d/a.toml:3").
    """
    sites, problems, good = _site_files(site_texts, last_good or {}, defaults or SiteDefaults())
    sites, duplicate_problems = _unique_names(sites)
    credentials, htpasswd_problems = _credentials(htpasswd_texts)
    snapshot = Snapshot(
        provider=PROVIDER,
        sites=tuple(sites),
        credentials=tuple(credentials),
        problems=(*problems, *duplicate_problems, *htpasswd_problems),
    )
    return FileBuild(snapshot, good)
