"""Does throughput grow with `--workers`? Measured where each worker's CPU is the limit.

On this 2-core machine wrk and the origin take one core, so `vhostd-w2` in the throughput
table finds no idle core for its second worker: it shows the machine, not the design. Here
every worker process gets a CPU quota of its own (a cgroup, `CORES_PER_WORKER` of a core),
all on the proxy's core: one worker is then held well below what wrk and the origin can
drive, and N workers get N quotas, as N cores would give them. Throughput grows with the
workers only if SO_REUSEPORT spreads the connections over them and nothing they share
serialises them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.lab import Lab, Target
from bench.processes import descendants
from bench.throughput import SIZES, LoadSettings, add_ratios, run_throughput

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
CORES_PER_WORKER = 0.25  # 3 workers stay under one core: no worker waits for another's core
WORKER_COUNTS = (1, 2, 3)


def quota_hierarchy() -> tuple[Path, str] | None:
    """Where CPU quotas can be set: (directory, "v2" or "v1"), None when nowhere."""
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return CGROUP_ROOT, "v2"
    v1 = CGROUP_ROOT / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1, "v1"
    return None


class QuotaGroups:
    """One cgroup per confined process, each allowed `cores` of a CPU; removed on close()."""

    def __init__(self, cores: float) -> None:
        found = quota_hierarchy()
        if found is None:
            raise OSError("no cgroup hierarchy with the cpu controller under /sys/fs/cgroup")
        self.root, self.version = found
        self.quota_us = int(cores * PERIOD_US)
        self.groups: list[Path] = []
        if self.version == "v2":  # children of the root may only use controllers it hands on
            try:
                (self.root / "cgroup.subtree_control").write_text("+cpu")
            except OSError as error:  # e.g. EBUSY in a container's own cgroup namespace
                raise OSError(
                    f"cannot hand the cpu controller to child cgroups of {self.root}: {error}"
                ) from None

    def confine(self, pid: int) -> None:
        group = self.root / f"vhostd-bench-{os.getpid()}-{pid}"
        group.mkdir()
        self.groups.append(group)
        if self.version == "v2":
            (group / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        (group / "cgroup.procs").write_text(str(pid))  # its threads follow it

    def close(self, timeout: float = 10.0) -> None:
        """Remove the groups once their processes have exited (stop the targets first)."""
        deadline = time.monotonic() + timeout
        for group in self.groups:
            # a stopped vhostd's workers finish their own shutdown a moment after it
            while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
                time.sleep(0.05)
            with contextlib.suppress(OSError):  # still in use after the timeout: left behind
                group.rmdir()
        self.groups.clear()


def worker_pids(target: Target) -> list[int]:
    """The serving processes: the forked workers, or the process itself with one worker."""
    assert target.proc is not None
    family = descendants(target.proc.pid)
    return family[1:] or family


def wait_for_workers(target: Target, count: int, timeout: float = 10.0) -> list[int]:
    """The worker pids once all `count` are forked (one answering does not mean all are)."""
    deadline = time.monotonic() + timeout
    while len(pids := worker_pids(target)) != count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name}: {len(pids)} worker processes, not {count}")
        time.sleep(0.05)
    return pids


def worker_scaling(
    lab: Lab,
    load: LoadSettings,
    wrk: str,
    taskset: str | None,
    raw_log: Path,
    counts: Sequence[int] = WORKER_COUNTS,
) -> dict[str, Any]:
    """req/s at 12 B for each worker count, every worker held to CORES_PER_WORKER."""
    groups = QuotaGroups(CORES_PER_WORKER)
    targets: list[Target] = []
    try:
        for count in counts:
            target, _auth = lab.start_vhostd(workers=count, name=f"vhostd-q{count}", pin=True)
            targets.append(target)
            for pid in wait_for_workers(target, count):
                groups.confine(pid)
        small = {"12B": SIZES["12B"]}
        throughput = run_throughput(targets, load, wrk, taskset, raw_log, sizes=small)
    finally:
        try:
            for target in targets:
                lab.stop_target(target)
        finally:
            groups.close()
    reference = targets[0].name
    add_ratios(throughput, reference)
    return {
        "cores_per_worker": CORES_PER_WORKER,
        "cgroup": groups.version,
        "workers": {
            str(count): {
                "requests_per_s": throughput[target.name]["12B"]["requests_per_s"],
                "ratio_to_one_worker": throughput[target.name]["12B"].get(f"ratio_to_{reference}"),
                "cpu_us_per_request": throughput[target.name]["12B"].get("cpu_us_per_request"),
            }
            for count, target in zip(counts, targets, strict=True)
        },
    }
