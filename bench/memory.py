"""Resident memory of a proxy: idle, and while N idle keep-alive client connections are open."""

from __future__ import annotations

import subprocess
import sys
import time

from bench import configs
from bench.lab import Target
from bench.processes import context_switches, rss_kib

SETTLE_S = 0.5  # let the proxy finish accepting/allocating before reading RSS


def rss_mib(target: Target) -> float:
    """RSS of the target's process tree in MiB."""
    assert target.proc is not None
    return round(rss_kib(target.proc.pid) / 1024, 1)


def idle_wakeups_per_s(targets: list[Target], seconds: float) -> dict[str, float]:
    """How often each idle target's threads wake up, over one window for all of them."""
    pids = {t.name: t.proc.pid for t in targets if t.proc is not None}
    before = {name: context_switches(pid) for name, pid in pids.items()}
    time.sleep(seconds)
    return {
        name: round((context_switches(pid) - before[name]) / seconds, 1)
        for name, pid in pids.items()
    }


def measure_held_connections(target: Target, count: int, timeout: float = 60.0) -> dict[str, float]:
    """RSS before and while `count` idle keep-alive connections are held by a helper process."""
    before = rss_mib(target)
    helper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.hold_connections",
            str(target.port),
            target.host,
            configs.SMALL_PATH,
            str(count),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(configs.TEMPLATE_DIR.parent.parent),
    )
    try:
        assert helper.stdout is not None and helper.stdin is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and not line.startswith("HOLDING"):
            line = helper.stdout.readline()
            if not line and helper.poll() is not None:
                raise RuntimeError("connection holder exited early")
        held = int(line.split()[1])
        time.sleep(SETTLE_S)
        during = rss_mib(target)
        helper.stdin.close()
        helper.wait(timeout=30)
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
    return {
        "connections_held": held,
        "rss_before_mib": before,
        "rss_with_connections_mib": during,
        "rss_delta_mib": round(during - before, 1),
    }
