"""The compiled route table: host → path prefix → route (pure, no I/O).

Precedence: exact > longest leading wildcard > longest trailing wildcard > regex in declared
order > the default site > none (the data plane answers 503). Within a host the longest path
prefix wins. A table is immutable once built; the data plane reads one reference per request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from vhostd.config.model import Backend, Site
from vhostd.routing.hosts import EXACT, LEADING, REGEX, TRAILING, HostPattern, normalize_host

# (site, host pattern text, path prefix) → an auth gate object, or None when unprotected.
AuthResolver = Callable[[Site, str, str], object | None]

_HOST_CACHE_LIMIT: Final = 4096


@dataclass(slots=True, eq=False)
class Route:
    """One (site, host pattern, path prefix). `auth` is an auth gate or None."""

    site: Site
    host: str  # the pattern text that matched
    prefix: bytes
    dest: bytes | None
    backends: tuple[Backend, ...]
    auth: object | None = None
    _turn: Iterable[int] = field(default_factory=itertools.count)

    def pick(self, skip: frozenset[Backend] | set[Backend] = frozenset()) -> Backend | None:
        """Round-robin over the backends, skipping those that just failed."""
        backends = self.backends
        count = len(backends)
        if count == 1:
            only = backends[0]
            return None if skip and only in skip else only  # no hashing in the common case
        if count == 0:
            return None
        start = next(self._turn)  # type: ignore[call-overload]
        for offset in range(count):
            backend = backends[(start + offset) % count]
            if backend not in skip:
                return backend
        return None

    def upstream_target(self, target: bytes) -> bytes:
        """The request target sent upstream: the matched prefix replaced by `dest`."""
        if self.dest is None:
            return target
        rest = target[len(self.prefix) :]
        if self.dest.endswith(b"/") and rest.startswith(b"/"):
            rest = rest[1:]
        out = self.dest + rest
        return out if out.startswith(b"/") else b"/" + out


@dataclass(slots=True, eq=False)
class HostRoutes:
    """The routes of one host pattern, longest prefix first."""

    pattern: HostPattern
    routes: list[Route]

    def match(self, target: bytes) -> Route | None:
        for route in self.routes:
            if target.startswith(route.prefix):
                return route
        return None


class RouteTable:
    def __init__(
        self,
        exact: dict[str, HostRoutes],
        leading: list[HostRoutes],
        trailing: list[HostRoutes],
        regex: list[HostRoutes],
        default: HostRoutes | None,
        sites: tuple[Site, ...],
    ) -> None:
        self.exact = exact
        self.leading = leading  # longest suffix first
        self.trailing = trailing  # longest prefix first
        self.regex = regex  # declared order
        self.default = default
        self.sites = sites
        self._cache: dict[bytes, HostRoutes | None] = {}

    def lookup_host(self, raw_host: bytes) -> HostRoutes | None:
        """Host header bytes → the host's routes; cached per table (the hot path)."""
        try:
            return self._cache[raw_host]
        except KeyError:
            pass
        found = self._lookup(normalize_host(raw_host.decode("latin-1")))
        if len(self._cache) >= _HOST_CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw_host] = found
        return found

    def _lookup(self, host: str) -> HostRoutes | None:
        found = self.exact.get(host)
        if found is not None:
            return found
        for group in (self.leading, self.trailing, self.regex):
            for entry in group:
                if entry.pattern.matches(host):
                    return entry
        return self.default

    def route(self, raw_host: bytes, target: bytes) -> Route | None:
        entry = self.lookup_host(raw_host)
        if entry is None:
            return None
        return entry.match(target)

    def all_routes(self) -> list[Route]:
        """Every route once, for display (`vhostd routes`, `/api/routes`)."""
        seen: list[Route] = []
        groups = [*self.exact.values(), *self.leading, *self.trailing, *self.regex]
        if self.default is not None:
            groups.append(self.default)
        for entry in groups:
            seen.extend(entry.routes)
        return seen


def compile_table(
    sites: Iterable[tuple[Site, tuple[HostPattern, ...]]],
    auth_for: AuthResolver | None = None,
) -> RouteTable:
    """Build a table from merged sites with their parsed patterns (conflicts already resolved)."""
    by_pattern: dict[str, HostRoutes] = {}
    order: list[HostRoutes] = []
    default: HostRoutes | None = None
    site_list: list[Site] = []
    for site, patterns in sites:
        site_list.append(site)
        dest = site.dest.encode() if site.dest is not None else None
        for pattern in patterns:
            entry = by_pattern.get(pattern.text)
            if entry is None:
                entry = by_pattern[pattern.text] = HostRoutes(pattern, [])
                order.append(entry)
            for path in site.paths:
                gate = auth_for(site, pattern.text, path) if auth_for else None
                entry.routes.append(
                    Route(site, pattern.text, path.encode(), dest, site.backends, gate)
                )
        if site.default and default is None:
            default = HostRoutes(HostPattern("(default)", EXACT, ""), [])
            for path in site.paths:
                gate = auth_for(site, "", path) if auth_for else None
                default.routes.append(Route(site, "", path.encode(), dest, site.backends, gate))
    for entry in [*order, *([default] if default else [])]:
        entry.routes.sort(key=lambda r: len(r.prefix), reverse=True)
    exact = {e.pattern.key: e for e in order if e.pattern.kind == EXACT}
    leading = sorted(
        (e for e in order if e.pattern.kind == LEADING), key=lambda e: -len(e.pattern.key)
    )
    trailing = sorted(
        (e for e in order if e.pattern.kind == TRAILING), key=lambda e: -len(e.pattern.key)
    )
    regex = [e for e in order if e.pattern.kind == REGEX]
    return RouteTable(exact, leading, trailing, regex, default, tuple(site_list))
