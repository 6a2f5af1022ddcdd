"""Requests/s and latency for every target, interleaved and repeated.

Rounds come in pairs: the first visits every target once per body size, starting one
target later than the previous pair, so drift (thermal, a noisy neighbour) spreads over all
targets; the second runs the same order backwards. Targets that share a process (vhostd and
vhostd+auth) would otherwise always run in the same order, and the second one inherits what
the first left behind (its upstream pool: swept idle before the first, warm for the second;
see bench/README.md, "Session 4"). Over an even number of rounds every pair of targets runs
in each order equally often.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import configs
from bench.lab import Target
from bench.processes import cpu_seconds, pinned
from bench.wrk import REPORT_SCRIPT, WrkResult, median_result, run_wrk, wrk_command

SIZES = {"12B": configs.SMALL_PATH, "64KiB": configs.LARGE_PATH}
# What `--request` sends (bench/lua/<kind>.lua) and the paths it asks for, by body size.
REQUEST_PATHS = {
    "get": SIZES,
    "forwarded": SIZES,  # a GET carrying the client's own X-Forwarded-For and -Proto
    "post": {"12B": configs.FORM_PATH},  # a 100-byte form; the origin answers 12 bytes
    "chunked": {"page": configs.CHUNKED_PATH},  # a GET of a 3.3 KB page in three chunks
}


@dataclass(frozen=True)
class LoadSettings:
    """How hard and how long wrk pushes; the same for every target."""

    duration_s: float
    warmup_s: float
    repeats: int
    connections: int
    threads: int = 1
    wrk_cpus: str | None = None  # taskset list for wrk, None = unpinned
    script: str = str(REPORT_SCRIPT)  # what wrk runs (see wrk.request_script)


def rotation(items: Sequence[Target], shift: int) -> list[Target]:
    """items rotated left by shift: round r starts with the r-th target."""
    if not items:
        return []
    shift %= len(items)
    return list(items[shift:]) + list(items[:shift])


def round_order(items: Sequence[Target], round_index: int) -> list[Target]:
    """The order of one round: rotated once per pair of rounds, backwards in the second."""
    order = rotation(items, round_index // 2)
    return order[::-1] if round_index % 2 else order


def run_throughput(
    targets: Sequence[Target],
    load: LoadSettings,
    wrk: str,
    taskset: str | None,
    raw_log: Path,
    progress: bool = True,
    sizes: Mapping[str, str] = SIZES,
) -> dict[str, dict[str, dict[str, float | int]]]:
    """{target: {size: median figures}} after load.repeats interleaved rounds."""
    runs: dict[tuple[str, str], list[WrkResult]] = {}

    def one(target: Target, size: str, duration: float) -> WrkResult:
        argv = wrk_command(
            wrk,
            target.port,
            sizes[size],
            target.host,
            duration,
            load.connections,
            load.threads,
            target.headers,
            load.script,
        )
        before = cpu_seconds(target.proc.pid) if target.proc else None
        result = run_wrk(pinned(argv, load.wrk_cpus, taskset), raw_log)
        if before is None or target.proc is None or not result.requests:
            return result
        after = cpu_seconds(target.proc.pid)
        return dataclasses.replace(
            result,
            cpu_user_us=(after[0] - before[0]) * 1e6 / result.requests,
            cpu_system_us=(after[1] - before[1]) * 1e6 / result.requests,
        )

    if load.warmup_s > 0:  # fill pools, JIT-free but caches and allocators warm up too
        for target in targets:
            for size in sizes:
                one(target, size, load.warmup_s)
    for round_index in range(load.repeats):
        for size in sizes:
            for target in round_order(targets, round_index):
                result = one(target, size, load.duration_s)
                runs.setdefault((target.name, size), []).append(result)
                if progress:
                    print(
                        f"  round {round_index + 1}/{load.repeats} {size:>5} {target.name:<14}"
                        f" {result.requests_per_s:>10.0f} req/s  p99 {result.p99_ms:7.2f} ms"
                        f"  errors {result.errors}",
                        flush=True,
                    )
    summary: dict[str, dict[str, dict[str, float | int]]] = {}
    for target in targets:
        summary[target.name] = {size: median_result(runs[(target.name, size)]) for size in sizes}
    return summary


def paired_ratio(values: Sequence[float], references: Sequence[float]) -> float | None:
    """Median over rounds of value/reference measured in the same round.

    Load from other work on the machine comes and goes over seconds; runs of one round are
    close in time, so their ratio cancels most of it where a ratio of medians would not.
    """
    ratios = round_ratios(values, references)
    return round(statistics.median(ratios), 3) if ratios else None


def ratio_range(values: Sequence[float], references: Sequence[float]) -> list[float] | None:
    """[lowest, highest] value/reference of one round: how far a single round can mislead."""
    ratios = round_ratios(values, references)
    return [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None


def round_ratios(values: Sequence[float], references: Sequence[float]) -> list[float]:
    """value/reference of each round with a reference to divide by."""
    return [v / r for v, r in zip(values, references, strict=False) if r]


def add_ratios(summary: dict[str, dict[str, dict[str, Any]]], reference: str = "nginx") -> None:
    """Add `ratio_to_<reference>` (req/s) and `p99_ratio_to_<reference>` to every entry, and
    the range of the per-round ratios beside each (`..._range`)."""
    if reference not in summary:
        return
    for sizes in summary.values():
        for size, figures in sizes.items():
            ref = summary[reference].get(size)
            if ref is None:
                continue
            for key, rounds_key, out in (
                ("requests_per_s", "rounds_requests_per_s", f"ratio_to_{reference}"),
                ("p99_ms", "rounds_p99_ms", f"p99_ratio_to_{reference}"),
            ):
                values = figures.get(rounds_key, [figures[key]])
                references = ref.get(rounds_key, [ref[key]])
                ratio = paired_ratio(values, references)
                if ratio is not None:
                    figures[out] = ratio
                    figures[f"{out}_range"] = ratio_range(values, references)
