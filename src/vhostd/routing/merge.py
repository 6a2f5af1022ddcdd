"""Merge provider snapshots into one list of sites (pure).

Sources are merged in a fixed provider order (main config, site files, docker, vagrant) and,
within a provider, in the order it emitted. The first site to claim a (host, path) keeps it;
later claims are reported as conflicts naming both sources, so the outcome never depends on
timing. A site with an invalid host pattern is reported and the rest of it still routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from vhostd.config.model import Site
from vhostd.providers.snapshot import Credentials, Problem, Snapshot
from vhostd.routing.hosts import HostPattern, parse_host_pattern

PROVIDER_ORDER = ("config", "file", "docker", "vagrant")


@dataclass(frozen=True, slots=True)
class Merged:
    sites: tuple[tuple[Site, tuple[HostPattern, ...]], ...]
    credentials: tuple[Credentials, ...]
    problems: tuple[Problem, ...]


def _ordered(snapshots: Mapping[str, Snapshot]) -> list[Snapshot]:
    rank = {name: i for i, name in enumerate(PROVIDER_ORDER)}
    return sorted(snapshots.values(), key=lambda s: (rank.get(s.provider, len(rank)), s.provider))


def merge(snapshots: Mapping[str, Snapshot]) -> Merged:
    claimed: dict[tuple[str, str], Site] = {}
    default_site: Site | None = None
    sites: list[tuple[Site, tuple[HostPattern, ...]]] = []
    credentials: list[Credentials] = []
    problems: list[Problem] = []
    for snapshot in _ordered(snapshots):
        problems.extend(snapshot.problems)
        credentials.extend(snapshot.credentials)
        for site in snapshot.sites:
            where = site.source or f"{snapshot.provider}:{site.name}"
            patterns: list[HostPattern] = []
            for text in site.hosts:
                try:
                    pattern = parse_host_pattern(text)
                except ValueError as exc:
                    problems.append(Problem(where, str(exc)))
                    continue
                kept_paths = []
                for path in site.paths:
                    owner = claimed.setdefault((pattern.text.lower(), path), site)
                    if owner is site:
                        kept_paths.append(path)
                    else:
                        problems.append(
                            Problem(
                                where,
                                f"conflict: host {pattern.text!r} path {path!r} is already "
                                f"claimed by site {owner.name!r} ({owner.source}); "
                                f"keeping {owner.name!r}",
                            )
                        )
                if kept_paths:
                    patterns.append(pattern)
            if site.default:
                if default_site is None:
                    default_site = site
                else:
                    problems.append(
                        Problem(
                            where,
                            f"conflict: default site is already {default_site.name!r} "
                            f"({default_site.source}); keeping it",
                        )
                    )
                    site = replace(site, default=False)
            if patterns or site.default:
                sites.append((site, tuple(patterns)))
    return Merged(tuple(sites), tuple(credentials), tuple(problems))
