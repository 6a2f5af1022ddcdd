"""`python -m bench.profile`: where vhostd spends its time under wrk load (py-spy).

Starts the origin and vhostd, loads it with wrk, samples it with py-spy, and prints the
functions with the largest share of samples, by self time and including callees. The
flame graph and the collapsed stacks go to bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import configs
from bench.lab import Lab, Target
from bench.processes import pinned, start, stop, wait_for_status
from bench.tools import ensure_tools
from bench.wrk import WrkResult, parse_report, run_wrk, wrk_command

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def frame_name(frame: str) -> str:
    """`on_body (vhostd/proxy/client.py:123)` → `on_body (vhostd/proxy/client.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def summarise_collapsed(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """(total samples, self samples per function, inclusive samples per function).

    Only the event-loop thread counts: helper threads (file watcher, executor) block in C
    calls that py-spy cannot always tell from work, and they are not the request path.
    """
    total = 0
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if "Thread._bootstrap" in stack:
            continue
        count = int(count_text)
        total += count
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, self_counts, inclusive


def format_top(total: int, counts: Counter[str], limit: int) -> str:
    return "\n".join(f"{100 * n / total:6.1f}%  {name}" for name, n in counts.most_common(limit))


def per_request_rows(
    stats: dict[tuple[str, int, str], tuple[Any, ...]], requests: int, limit: int
) -> tuple[float, list[tuple[float, float, str]]]:
    """From pstats' raw table: (calls per request, [(µs self per request, calls per request,
    function)]) over functions called at least 0.9 times per request — the hot path."""
    calls = 0.0
    rows: list[tuple[float, float, str]] = []
    for (filename, line, function), (_cc, ncalls, tottime, _ct, _callers) in stats.items():
        if ncalls < 0.9 * requests:
            continue
        calls += ncalls
        where = frame_name(f"{function} ({filename}:{line})")
        rows.append((tottime * 1e6 / requests, ncalls / requests, where))
    rows.sort(reverse=True)
    return calls / requests, rows[:limit]


def _load(tools: Any, target: Target, path: str, seconds: int, connections: int) -> WrkResult:
    argv = wrk_command(
        tools.wrk, target.port, path, target.host, seconds, connections, 1, target.headers
    )
    return run_wrk(pinned(argv, "1", tools.taskset))


def _py_spy(tools: Any, target: Target, args: argparse.Namespace, collapsed: Path) -> None:
    assert target.proc is not None
    argv = wrk_command(
        tools.wrk,
        target.port,
        args.path,
        target.host,
        args.duration + 2,
        args.connections,
        1,
        target.headers,
    )
    load = subprocess.Popen(
        pinned(argv, "1", tools.taskset),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1)  # let the load reach steady state before sampling
    record = [
        tools.py_spy,
        "record",
        "--pid",
        str(target.proc.pid),
        "--duration",
        str(args.duration),
        "--rate",
        "250",
        "--format",
        "raw",
        "-o",
        str(collapsed),
    ]
    if args.native:
        record.append("--native")
    subprocess.run(record, check=True, capture_output=True)
    output, _ = load.communicate(timeout=60)
    sampled = parse_report(output)
    unsampled = _load(tools, target, args.path, 5, args.connections)
    total, self_counts, inclusive = summarise_collapsed(collapsed.read_text().splitlines())
    print(
        f"vhostd {args.path}{' (auth)' if args.auth else ''}: "
        f"{sampled.requests_per_s:.0f} req/s while sampled, "
        f"{unsampled.requests_per_s:.0f} req/s unsampled; {total} samples"
    )
    print("\nself time (the function itself):")
    print(format_top(total, self_counts, args.top))
    print("\nincluding callees:")
    print(format_top(total, inclusive, args.top))
    print(f"\ncollapsed stacks: {collapsed}")


def _cprofile(lab: Lab, target: Target, args: argparse.Namespace, out: Path) -> None:
    """Restart vhostd under cProfile, load it, stop it gracefully so the profile is written."""
    assert target.proc is not None
    conf = lab.run_dir / "vhostd.toml"
    lab.stop_target(target)
    argv = [
        sys.executable,
        "-m",
        "cProfile",
        "-o",
        str(out),
        lab.tools.vhostd,
        "serve",
        "--config",
        str(conf),
        "--log-level",
        "warning",
    ]
    proc = start(pinned(argv, "0", lab.tools.taskset), lab.run_dir / "cprofile.log")
    try:
        wait_for_status(target.port, target.host, configs.SMALL_PATH, proc, target.headers)
        target.proc = proc
        result = _load(lab.tools, target, args.path, args.duration, args.connections)
    finally:
        stop(proc, grace=30)
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    calls, rows = per_request_rows(stats, result.requests, args.top)
    print(
        f"vhostd {args.path} under cProfile: {result.requests} requests, "
        f"{calls:.0f} Python-level calls per request (µs are cProfile's, ~3x real)"
    )
    for micros, per_request, where in rows:
        print(f"{micros:7.1f} µs {per_request:5.1f}x  {where}")
    print(f"\nprofile: {out} (python -m pstats)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (15)")
    parser.add_argument("--path", default=configs.SMALL_PATH, help="/small or /64k")
    parser.add_argument("--auth", action="store_true", help="profile the basic-auth host")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument(
        "--cprofile",
        action="store_true",
        help="deterministic: calls and self time per request (cProfile)",
    )
    args = parser.parse_args(argv)
    tools = ensure_tools()
    if tools.py_spy is None and not args.cprofile:
        raise SystemExit("py-spy is missing (pip install -e '.[bench]')")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"profile-{args.path.strip('/')}{'-auth' if args.auth else ''}"
    with Lab(tools, Path(tempfile.mkdtemp(prefix="vhostd-profile-")), "0", "1") as lab:
        lab.start_origin()
        plain, auth = lab.start_vhostd(name="vhostd")
        target = auth if args.auth else plain
        if args.cprofile:
            _cprofile(lab, target, args, RESULTS_DIR / f"{stem}.prof")
        else:
            _py_spy(tools, target, args, RESULTS_DIR / f"{stem}.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
