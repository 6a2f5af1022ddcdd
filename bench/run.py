"""`python -m bench.run [--quick]`: vhostd against nginx, HAProxy, Traefik and Caddy.

Installs what is missing, starts one nginx origin on loopback and every proxy in front of
it, then measures throughput/latency (wrk), memory, route-change latency and, with Docker,
container start and rolling restarts. Results: terminal table, bench/results/summary.json
and bench/results/chart.png (quick runs write quick-summary.json / quick-chart.png instead,
--request post or forwarded post-summary.json, forwarded-chart.png...).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import memory, report, route_change, scaling
from bench.lab import Lab, Target
from bench.processes import machine_ticks, steal_percent
from bench.throughput import REQUEST_PATHS, LoadSettings, add_ratios, run_throughput
from bench.tools import Tools, ensure_tools
from bench.wrk import request_script

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PROXIES = ("nginx", "haproxy", "traefik", "caddy", "floor", "vhostd")
IDLE_WINDOW_S = 5  # long enough to catch timers that fire once a second


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a check that ends within a minute")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 6, quick 2)")
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 6, quick 1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--only", help="comma list of proxies (default: all)")
    parser.add_argument(
        "--workers", help="also bench `vhostd --workers N`, comma list (default: 2, quick: none)"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin proxy/wrk to cores")
    parser.add_argument("--no-docker", action="store_true", help="skip the Docker measurements")
    parser.add_argument("--idle-connections", type=int, help="memory test (default 10000)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument(
        "--request",
        choices=sorted(REQUEST_PATHS),
        default="get",
        help="what wrk sends: get (default), post (a 100-byte form), forwarded (a GET with"
        " X-Forwarded-For/-Proto), chunked (a GET of a page the origin sends chunked); not"
        " get: results go to <request>-summary.json",
    )
    return parser.parse_args(argv)


def _git_commit() -> str:
    """The checked-out commit (with "+dirty" when the tree has changes), for the record."""
    import subprocess

    repo = RESULTS_DIR.parent.parent
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{head}+dirty" if dirty else head or "unknown"


def _vhostd_modules() -> str:
    """Whether the vhostd that ran used its compiled per-request modules (make native)."""
    from vhostd import native

    compiled = native.compiled()
    if not compiled:
        return "interpreted"
    return f"compiled ({len(compiled)} of {len(native.ALL_MODULES)} modules)"


def prune_raw_runs(keep: int) -> None:
    """Raw outputs are not committed; keep only the newest `keep` run directories."""
    import shutil

    runs = sorted(p for p in RESULTS_DIR.glob("run-*") if p.is_dir())
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def choose_cpus(no_pin: bool, tools: Tools) -> tuple[str | None, str | None]:
    """(proxy cpus, wrk+origin cpus): proxy on core 0, the load side on core 1 (2+ cores)."""
    if no_pin or tools.taskset is None or (os.cpu_count() or 1) < 2:
        return None, None
    return "0", "1"


def start_targets(
    lab: Lab, names: list[str], workers: list[int], problems: dict[str, str]
) -> list[Target]:
    """Origin first, then each proxy; a proxy that fails to start is reported and skipped."""
    targets = [lab.start_origin()]
    starters = {
        "nginx": lab.start_nginx,
        "haproxy": lab.start_haproxy,
        "traefik": lab.start_traefik,
        "caddy": lab.start_caddy,
        "floor": lab.start_floor,
    }
    for name in names:
        try:
            if name == "vhostd":
                targets.extend(lab.start_vhostd())
                for count in workers:
                    plain, _auth = lab.start_vhostd(workers=count, name=f"vhostd-w{count}")
                    targets.append(plain)
            else:
                targets.append(starters[name]())
        except (RuntimeError, OSError) as error:
            problems[name] = str(error)
            print(f"bench: {name} did not start: {error}", flush=True)
    return targets


def measure_worker_scaling(
    lab: Lab, tools: Tools, raw_dir: Path, problems: dict[str, str]
) -> dict[str, Any]:
    """bench/scaling.py: 1, 2, 3 workers, each held to a quarter core; {} when not possible."""
    load = LoadSettings(4, warmup_s=1, repeats=3, connections=64, wrk_cpus=lab.origin_cpus)
    try:
        return scaling.worker_scaling(lab, load, tools.wrk, tools.taskset, raw_dir / "wrk.txt")
    except Exception as error:  # noqa: BLE001 - one failed step must not lose the whole run
        problems["worker_scaling"] = f"{type(error).__name__}: {error}"
        print(f"bench: worker scaling not measured: {error}", flush=True)
        return {}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    load = LoadSettings(
        duration_s=args.duration or (2 if quick else 6),
        warmup_s=0 if quick else 2,  # quick: stay well under a minute
        repeats=args.repeats or (1 if quick else 6),  # even: both orders alike
        connections=args.connections,
    )
    idle_connections = args.idle_connections or (1000 if quick else 10000)
    names = [n for n in (args.only.split(",") if args.only else PROXIES) if n]
    workers_text = args.workers if args.workers is not None else ("" if quick else "2")
    workers = [int(w) for w in workers_text.split(",") if w.strip()]

    tools = ensure_tools()
    proxy_cpus, wrk_cpus = choose_cpus(args.no_pin, tools)
    run_dir = Path(tempfile.mkdtemp(prefix="vhostd-bench-"))
    script = str(request_script(args.request, run_dir))
    load = LoadSettings(**{**load.__dict__, "wrk_cpus": wrk_cpus, "script": script})
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    raw_dir = RESULTS_DIR / f"run-{stamp}"
    raw_dir.mkdir(parents=True, exist_ok=True)
    prune_raw_runs(keep=10)
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]  # other work on the machine skews all
    problems: dict[str, str] = {}
    extras: dict[str, Any] = {}

    with Lab(tools, run_dir, proxy_cpus, origin_cpus=wrk_cpus) as lab:
        targets = start_targets(lab, names, workers, problems)
        proxies = [t for t in targets if t.name != "origin"]
        extras["rss_idle_mib"] = {
            t.name: memory.rss_mib(t) for t in proxies if not t.name.endswith("+auth")
        }
        extras["idle_wakeups_per_s"] = memory.idle_wakeups_per_s(
            [t for t in proxies if not t.name.endswith("+auth")], 2 if quick else IDLE_WINDOW_S
        )
        print(
            f"bench: {len(targets)} targets up; wrk {load.duration_s}s × {load.repeats}"
            f" rounds, {load.connections} connections",
            flush=True,
        )
        sizes = REQUEST_PATHS[args.request]
        ticks_before = machine_ticks()
        throughput = run_throughput(
            targets, load, tools.wrk, tools.taskset, raw_dir / "wrk.txt", sizes=sizes
        )
        # the hypervisor's share: noise no ordering of rounds can cancel
        extras["cpu_steal_percent"] = steal_percent(ticks_before, machine_ticks())
        add_ratios(throughput, "nginx")
        add_ratios(throughput, "haproxy")
        add_ratios(throughput, "vhostd")  # what basic auth and --workers cost or give

        vhostd = next((t for t in targets if t.name == "vhostd"), None)
        if vhostd is not None:
            extras["route_change_file"] = route_change.file_route_latency(
                vhostd.port,
                run_dir / "vhostd-sites.d",
                lab.origin_port,
                repeats=3 if quick else 10,
            )
        for target in targets:
            if target.name.startswith("vhostd-w"):
                extras[f"route_change_file_{target.name}"] = route_change.all_workers_latency(
                    target.port,
                    run_dir / "vhostd-sites.d",
                    lab.origin_port,
                    repeats=3 if quick else 10,
                )
        if vhostd is not None and not quick and args.request == "get":  # (it loads GETs)
            extras["worker_scaling"] = measure_worker_scaling(lab, tools, raw_dir, problems)
        memory_targets = (
            [vhostd] if quick and vhostd else [t for t in proxies if not t.name.endswith("+auth")]
        )
        extras["idle_connections"] = {}
        for target in memory_targets:
            if target is None:
                continue
            extras["idle_connections"][target.name] = memory.measure_held_connections(
                target, idle_connections
            )

    if not args.no_docker and tools.docker and vhostd is not None and not quick:
        from bench import docker_measures

        extras["docker"] = docker_measures.run_all(tools, run_dir, proxy_cpus, wrk_cpus)

    summary = {
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": stamp,
        "request": args.request,
        "commit": _git_commit(),
        "vhostd_modules": _vhostd_modules(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "settings": {
            **load.__dict__,
            "proxy_cpus": proxy_cpus,
            "origin_cpus": wrk_cpus,
            "idle_connections": idle_connections,
        },
        "throughput": throughput,
        **extras,
        "problems": problems,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    prefix = ("quick-" if quick else "") + ("" if args.request == "get" else f"{args.request}-")
    report.write_json(summary, RESULTS_DIR / f"{prefix}summary.json")
    report.write_json(summary, raw_dir / "summary.json")
    (raw_dir / "summary.md").write_text(report.markdown_tables(summary))  # for bench/README.md
    chart = RESULTS_DIR / f"{prefix}chart.png"
    title = (
        ("" if args.request == "get" else f"{args.request.upper()}: ")
        + f"wrk -t1 -c{load.connections}, {load.duration_s}s × {load.repeats} rounds (median), "
        f"{os.cpu_count()} cores, "
        f"{'proxy pinned to core ' + proxy_cpus if proxy_cpus else 'unpinned'}; {stamp}"
    )
    report.write_chart(throughput, chart, title)
    print()
    print(report.throughput_table(throughput))
    print(report.extras_table({k: v for k, v in extras.items()}))
    if problems:
        print("problems:", problems)
    print(
        f"bench: summary {RESULTS_DIR / (prefix + 'summary.json')}, chart {chart},"
        f" raw output {raw_dir}; {summary['elapsed_s']} s"
    )
    if not args.keep:
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
