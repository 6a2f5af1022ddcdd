"""Run wrk against one target and turn its report into numbers.

The Lua hook in report.lua prints one `BENCH_JSON {...}` line; parsing that is exact where
wrk's human text rounds (e.g. "1.23ms").
"""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_SCRIPT = Path(__file__).resolve().parent / "report.lua"
LUA_DIR = Path(__file__).resolve().parent / "lua"  # requests other than a plain GET
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: throughput, latency percentiles (ms) and error counts."""

    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors (connect/read/write/timeout) + non-2xx/3xx answers
    status_errors: int
    # CPU the target's processes spent per request (user, system), filled in by the caller
    cpu_user_us: float | None = None
    cpu_system_us: float | None = None

    def as_dict(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "errors": self.errors,
            "status_errors": self.status_errors,
        }


def parse_report(output: str) -> WrkResult:
    """Read the BENCH_JSON line that report.lua printed; ValueError when there is none."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            raw = json.loads(line[len(MARKER) :])
            break
    else:
        raise ValueError("wrk printed no BENCH_JSON line (did it fail to connect?)")
    duration_s = raw["duration_us"] / 1e6
    socket_errors = (
        raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    )
    return WrkResult(
        requests=raw["requests"],
        duration_s=duration_s,
        requests_per_s=raw["requests"] / duration_s if duration_s > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=socket_errors + raw["status_errors"],
        status_errors=raw["status_errors"],
    )


def wrk_command(
    wrk: str,
    port: int,
    path: str,
    host: str,
    duration_s: float,
    connections: int,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    script: Path | str = REPORT_SCRIPT,
) -> list[str]:
    """The wrk argv for one run; loopback only, bounded by duration."""
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",  # wrk takes whole seconds only
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        "-H",
        f"Host: {host}",
    ]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(f"http://127.0.0.1:{port}{path}")
    return argv


def request_script(kind: str, directory: Path) -> Path:
    """The script wrk runs: report.lua, after bench/lua/<kind>.lua if there is one (a kind
    that is a plain GET has none; wrk takes one script; both set only globals, so wrk keeps
    its static request)."""
    if not (LUA_DIR / f"{kind}.lua").exists():
        return REPORT_SCRIPT
    script = directory / f"wrk-{kind}.lua"
    script.write_text((LUA_DIR / f"{kind}.lua").read_text() + "\n" + REPORT_SCRIPT.read_text())
    return script


def run_wrk(argv: Sequence[str], raw_log: Path | None = None) -> WrkResult:
    """Run wrk to completion (its own -d bounds it) and parse the result."""
    completed = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    output = completed.stdout + completed.stderr
    if raw_log is not None:
        with raw_log.open("a") as log:
            log.write(" ".join(argv) + "\n" + output + "\n")
    return parse_report(output)


def _cpu_medians(results: Sequence[WrkResult]) -> dict[str, float]:
    users = [r.cpu_user_us for r in results if r.cpu_user_us is not None]
    systems = [r.cpu_system_us for r in results if r.cpu_system_us is not None]
    if not users or not systems:
        return {}
    user, system = statistics.median(users), statistics.median(systems)
    return {
        "cpu_us_per_request": round(user + system, 1),
        "cpu_user_us_per_request": round(user, 1),
        "cpu_system_us_per_request": round(system, 1),
    }


def median_result(results: Sequence[WrkResult]) -> dict[str, Any]:
    """Median of each figure over repeated runs; errors are summed, not medianed."""
    if not results:
        raise ValueError("no runs to summarise")
    return {
        "runs": len(results),
        "requests_per_s": round(statistics.median(r.requests_per_s for r in results), 1),
        # the spread across rounds shows how noisy the machine was
        "requests_per_s_min": round(min(r.requests_per_s for r in results), 1),
        "requests_per_s_max": round(max(r.requests_per_s for r in results), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in results), 3),
        "p90_ms": round(statistics.median(r.p90_ms for r in results), 3),
        "p99_ms": round(statistics.median(r.p99_ms for r in results), 3),
        "errors": sum(r.errors for r in results),
        "requests": sum(r.requests for r in results),
        # per round, in order: ratios are taken round by round (see throughput.add_ratios)
        "rounds_requests_per_s": [round(r.requests_per_s, 1) for r in results],
        # CPU per request barely depends on what else runs on the machine, unlike req/s
        **_cpu_medians(results),
        "rounds_p99_ms": [round(r.p99_ms, 3) for r in results],
    }
