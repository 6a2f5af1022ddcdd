"""The compiled route table as plain data, for `/api/routes` and `vhostd routes` (pure).

One entry per site, in table order: what it answers (hosts, paths, and every host × path
route it actually won after conflicts), where it sends requests, where it came from, and
the problems reported against its source.
"""

from __future__ import annotations

from typing import Any

from vhostd.config.model import Backend, Site
from vhostd.providers.snapshot import Problem
from vhostd.routing.pipeline import RoutePipeline
from vhostd.routing.table import Route, RouteTable

DEFAULT_HOST = "(default)"  # how the catch-all route of the default site is shown


def describe_backend(backend: Backend) -> dict[str, Any]:
    return {
        "url": backend.url(),
        "host": backend.host,
        "port": backend.port,
        "scheme": backend.scheme,
        "label": backend.label,
        "health": backend.health,
    }


def _auth_source(route: Route) -> str | None:
    if route.auth is None:
        return None
    return str(getattr(route.auth, "source", "") or "") or "on"


def _problems_of(site: Site, problems: tuple[Problem, ...]) -> list[str]:
    """Problems whose location is this site's source ("file:a.toml:3" ↔ "a.toml:3")."""
    where = {site.source, site.source.partition(":")[2]}
    return [p.reason for p in problems if p.where in where]


def describe_routes(pipeline_or_table: RoutePipeline | RouteTable) -> list[dict[str, Any]]:
    """[{site, hosts, paths, routes, backends, source, auth, default, problems, ...}, ...]."""
    if isinstance(pipeline_or_table, RoutePipeline):
        table, problems = pipeline_or_table.route_table, pipeline_or_table.problems
    else:
        table, problems = pipeline_or_table, ()
    routes_by_site: dict[int, list[Route]] = {}
    for route in table.all_routes():
        routes_by_site.setdefault(id(route.site), []).append(route)
    described = []
    for site in table.sites:
        routes = routes_by_site.get(id(site), [])
        hosts = list(dict.fromkeys(r.host for r in routes if r.host))
        sources = [s for s in dict.fromkeys(_auth_source(r) for r in routes) if s]
        described.append(
            {
                "site": site.name,
                "hosts": hosts,
                "paths": list(site.paths),
                "routes": [
                    {
                        "host": route.host or DEFAULT_HOST,
                        "path": route.prefix.decode("latin-1"),
                        "auth": route.auth is not None,
                    }
                    for route in routes
                ],
                "backends": [describe_backend(b) for b in site.backends],
                "dest": site.dest,
                "source": site.source,
                "auth": bool(sources),
                "auth_sources": sources,
                "default": site.default,
                "unavailable_reason": site.unavailable_reason,
                "timeouts": {
                    "connect": site.timeouts.connect,
                    "first_byte": site.timeouts.first_byte,
                    "between_bytes": site.timeouts.between_bytes,
                },
                "problems": _problems_of(site, problems),
            }
        )
    return described


def describe_problems(problems: tuple[Problem, ...]) -> list[dict[str, str]]:
    """[{where, reason}, ...] for `/api/problems`."""
    return [{"where": p.where, "reason": p.reason} for p in problems]
