"""The one owner of the pipeline: latest snapshot per provider → merge → compile → swap.

Providers call `publish` with complete snapshots. An unchanged snapshot is skipped (frozen
dataclasses compare with ==). The live table is a single reference replaced only after the
new one is fully built; a request reads it once, so a swap affects only new requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from vhostd.providers.snapshot import Credentials, Problem, Snapshot
from vhostd.routing.merge import merge
from vhostd.routing.table import AuthResolver, RouteTable, compile_table

log = logging.getLogger("vhostd.routes")

# Turns the merged htpasswd files into the resolver that attaches auth gates to routes.
AuthFactory = Callable[[tuple[Credentials, ...]], AuthResolver]


class RoutePipeline:
    def __init__(self, auth_factory: AuthFactory | None = None) -> None:
        self.auth_factory = auth_factory
        self.snapshots: dict[str, Snapshot] = {}
        self.route_table: RouteTable = compile_table(())
        self.problems: tuple[Problem, ...] = ()
        self.generation = 0  # bumped on every swap; lets tests and workers wait for a change
        self.listeners: list[Callable[[RouteTable], None]] = []
        self._reported: set[Problem] = set()

    def publish(self, snapshot: Snapshot) -> bool:
        """Take a provider's complete snapshot; returns True when the table was swapped."""
        if self.snapshots.get(snapshot.provider) == snapshot:
            return False
        self.snapshots[snapshot.provider] = snapshot
        return self.rebuild()

    def rebuild(self) -> bool:
        merged = merge(self.snapshots)
        self._report(merged.problems)
        try:
            auth_for = self.auth_factory(merged.credentials) if self.auth_factory else None
            table = compile_table(merged.sites, auth_for)
        except Exception:  # a bug in building must never replace a good table
            log.exception("could not build the route table; keeping the previous one")
            return False
        self.route_table = table
        self.generation += 1
        log.info("routes updated: %d sites", len(table.sites))
        for listener in self.listeners:
            listener(table)
        return True

    def _report(self, problems: tuple[Problem, ...]) -> None:
        current = set(problems)
        for problem in problems:
            if problem not in self._reported:
                log.warning("%s", problem)
        self._reported = current
        self.problems = problems
