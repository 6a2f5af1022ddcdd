"""Targets head to head: short wrk slices in ABBA blocks, one ratio per block.

`make bench` runs each target for 6 s per round, and other work on this shared machine
comes and goes between one target's run and the next: single-round ratios spread ±20 %.
Here each block runs the targets in turn and back (A B B A, the next block B A A B) in
slices of 2 s, so drift within a block mostly cancels, and the spread of the block ratios
says how far to trust their median. To weigh a change to vhostd, run the old code beside
the new one: `vhostd@DIR` is vhostd started from the source tree DIR (a `git worktree` of
the old commit, its modules built there with `python scripts/build_native.py`).

    python -m bench.duel nginx,vhostd                        # 12 B, 12 blocks (~4 min)
    python -m bench.duel vhostd@/tmp/old,vhostd --size 64KiB --blocks 8
    python -m bench.duel vhostd@/tmp/old,vhostd --connections 1   # a lone client

Besides req/s and p99 it prints, per request, the proxy's CPU time, its context switches
(each time it went to sleep waiting for the other core) and the machine's inter-processor
interrupts (each wake-up of a sleeping vCPU; bench/README.md, "Session 10").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.lab import Lab, Target
from bench.processes import context_switches, cpu_seconds, interprocessor_interrupts, pinned
from bench.run import choose_cpus
from bench.throughput import SIZES
from bench.tools import Tools, ensure_tools
from bench.wrk import run_wrk, wrk_command


@dataclass(frozen=True)
class Slice:
    """One wrk run against one target, and what it cost per request."""

    requests_per_s: float
    p99_ms: float
    cpu_us: float  # the proxy's user + system CPU
    switches: float  # the proxy's context switches
    ipis: float  # the whole machine's rescheduling and function-call interrupts


def block_order(names: Sequence[str], block: int) -> list[str]:
    """A B .. B A on even blocks, B A .. A B on odd ones: every target runs as often early
    as late, and each first and last in turn."""
    there = list(names) if block % 2 == 0 else list(names)[::-1]
    return there + there[::-1]


def block_ratio(block: dict[str, list[Slice]], name: str, reference: str) -> float:
    """Requests of `name` over requests of `reference` within one block."""
    mine = sum(s.requests_per_s for s in block[name])
    theirs = sum(s.requests_per_s for s in block[reference])
    return mine / theirs if theirs else 0.0


def spread(values: Sequence[float]) -> str:
    """median, mean, standard deviation, lowest and highest, for a line of output."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return (
        f"median {statistics.median(values):.3f}  mean {statistics.mean(values):.3f}"
        f"  sd {sd:.3f}  range {min(values):.3f}–{max(values):.3f}"
    )


def start_target(lab: Lab, spec: str) -> Target:
    """nginx, haproxy, floor, vhostd, or vhostd@DIR (vhostd run from the source tree DIR)."""
    name, _, source = spec.partition("@")
    if name == "vhostd":
        plain, _auth = lab.start_vhostd(
            name=spec.replace("/", "_"), source=Path(source) if source else None
        )
        return plain
    starters = {"nginx": lab.start_nginx, "haproxy": lab.start_haproxy, "floor": lab.start_floor}
    if name not in starters or source:
        raise SystemExit(f"bench.duel: unknown target {spec!r}")
    return starters[name]()


def one_slice(
    tools: Tools, target: Target, path: str, seconds: int, connections: int, cpus: str | None
) -> Slice:
    assert target.proc is not None
    pid = target.proc.pid
    argv = wrk_command(
        tools.wrk, target.port, path, target.host, seconds, connections, 1, target.headers
    )
    cpu, switches, ipis = cpu_seconds(pid), context_switches(pid), interprocessor_interrupts()
    result = run_wrk(pinned(argv, cpus, tools.taskset))
    requests = max(result.requests, 1)
    cpu_after = cpu_seconds(pid)
    return Slice(
        requests_per_s=result.requests_per_s,
        p99_ms=result.p99_ms,
        cpu_us=(sum(cpu_after) - sum(cpu)) * 1e6 / requests,
        switches=(context_switches(pid) - switches) / requests,
        ipis=(interprocessor_interrupts() - ipis) / requests,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duel", description=__doc__.split("\n")[0])
    parser.add_argument("targets", help="comma-separated; the first is the reference")
    parser.add_argument("--size", choices=sorted(SIZES), default="12B")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--slice", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    specs = args.targets.split(",")
    if len(specs) < 2 or len(set(specs)) != len(specs):
        parser.error("name two or more different targets")
    tools = ensure_tools()
    proxy_cpus, load_cpus = choose_cpus(False, tools)
    with Lab(tools, Path(tempfile.mkdtemp(prefix="vhostd-duel-")), proxy_cpus, load_cpus) as lab:
        lab.start_origin()
        targets = {spec: start_target(lab, spec) for spec in specs}
        path = SIZES[args.size]

        def run(spec: str, seconds: int) -> Slice:
            return one_slice(tools, targets[spec], path, seconds, args.connections, load_cpus)

        for spec in specs:  # warm pools and caches
            run(spec, 1)
        slices: dict[str, list[Slice]] = {spec: [] for spec in specs}
        ratios: dict[str, list[float]] = {spec: [] for spec in specs[1:]}
        for block_index in range(args.blocks):
            block: dict[str, list[Slice]] = {spec: [] for spec in specs}
            for spec in block_order(specs, block_index):
                block[spec].append(run(spec, args.slice))
            for spec in specs:
                slices[spec] += block[spec]
            line = []
            for spec in specs[1:]:
                ratios[spec].append(block_ratio(block, spec, specs[0]))
                line.append(f"{spec} {ratios[spec][-1]:.3f}")
            print(f"block {block_index + 1}/{args.blocks}: " + "  ".join(line), flush=True)
    print(f"\n{args.size}, wrk -c{args.connections}, {args.blocks} blocks of {args.slice} s slices")
    for spec in specs[1:]:
        print(f"{spec} ÷ {specs[0]}: {spread(ratios[spec])}")
    for spec, runs in slices.items():
        print(
            f"{spec:<24} {statistics.median(s.requests_per_s for s in runs):>8.0f} req/s"
            f"  p99 {statistics.median(s.p99_ms for s in runs):6.2f} ms"
            f"  per request: CPU {statistics.median(s.cpu_us for s in runs):6.1f} µs,"
            f" switches {statistics.median(s.switches for s in runs):.3f},"
            f" IPIs {statistics.median(s.ipis for s in runs):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
