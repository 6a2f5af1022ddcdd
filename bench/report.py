"""Present a benchmark run: terminal table, JSON summary and PNG chart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

Throughput = Mapping[str, Mapping[str, Mapping[str, float | int]]]


def throughput_table(throughput: Throughput, reference: str = "nginx") -> str:
    """A fixed-width table: one row per target and body size."""
    header = (
        f"{'target':<14} {'body':>6} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'errors':>7} {'× ' + reference:>9} {'p99 ×':>7} {'cpu µs/req':>11}"
    )
    lines = [header, "-" * len(header)]
    for size in _sizes(throughput):
        for name, sizes in throughput.items():
            figures = sizes.get(size)
            if figures is None:
                continue
            ratio = figures.get(f"ratio_to_{reference}")
            p99_ratio = figures.get(f"p99_ratio_to_{reference}")
            lines.append(
                f"{name:<14} {size:>6} {figures['requests_per_s']:>10.0f}"
                f" {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} {figures['errors']:>7}"
                f" {_fmt_ratio(ratio):>9} {_fmt_ratio(p99_ratio):>7}"
                f" {_fmt_cpu(figures.get('cpu_us_per_request')):>11}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def extras_table(extras: Mapping[str, Any]) -> str:
    """The non-throughput measurements, one `name: value` line each, nested by dots."""
    lines: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            lines.append(f"{prefix:<48} {value}")

    walk("", extras)
    return "\n".join(lines) + ("\n" if lines else "")


def _fmt_ratio(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def _fmt_cpu(value: object) -> str:
    return f"{value:.0f}" if isinstance(value, int | float) else "-"


def _sizes(throughput: Throughput) -> list[str]:
    seen: list[str] = []
    for sizes in throughput.values():
        for size in sizes:
            if size not in seen:
                seen.append(size)
    return seen


def write_json(summary: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")


def _label_bar(axis: Any, bar: Any, text: str) -> None:
    """Small text centred above a bar."""
    axis.annotate(
        text,
        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
        ha="center",
        va="bottom",
        fontsize=6.5,
    )


def write_chart(throughput: Throughput, path: Path, title: str) -> bool:
    """Req/s (with ratio to nginx and p99) and CPU µs per request, per target and body size.

    Returns False when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(throughput)
    sizes = _sizes(throughput)
    fig, axes = plt.subplots(2, len(sizes), figsize=(6.5 * len(sizes), 8), squeeze=False)
    colors = [
        "#555555" if n == "origin" else "#2a7ab9" if n.startswith("vhostd") else "#9a9a9a"
        for n in names
    ]
    for column, size in enumerate(sizes):
        figures = [throughput[n].get(size, {}) for n in names]
        rps_axis, cpu_axis = axes[0][column], axes[1][column]
        bars = rps_axis.bar(
            names, [float(f.get("requests_per_s", 0)) for f in figures], color=colors
        )
        for bar, fig_values in zip(bars, figures, strict=True):
            ratio = fig_values.get("ratio_to_nginx")
            label = f"{float(ratio):.2f}×\n" if ratio is not None else ""
            if "p99_ms" in fig_values:
                label += f"p99 {float(fig_values['p99_ms']):.0f}ms"
            _label_bar(rps_axis, bar, label)
        rps_axis.set_title(f"{size} responses: requests/s (median; × nginx paired)", fontsize=9)
        rps_axis.margins(y=0.18)
        cpu_bars = cpu_axis.bar(
            names, [float(f.get("cpu_us_per_request", 0)) for f in figures], color=colors
        )
        for bar in cpu_bars:
            _label_bar(cpu_axis, bar, f"{bar.get_height():.0f}")
        cpu_axis.set_title(f"{size}: proxy CPU µs per request (lower is better)", fontsize=9)
        cpu_axis.margins(y=0.12)
        for axis in (rps_axis, cpu_axis):
            axis.tick_params(axis="x", rotation=30, labelsize=8)
            axis.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def markdown_tables(summary: Mapping[str, Any]) -> str:
    """The README's results section: throughput table plus the other measurements."""
    throughput = summary["throughput"]
    lines = [
        "| target | body | req/s | p50 ms | p99 ms | errors | × nginx | p99 × nginx "
        "| × HAProxy | CPU µs/req |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for size in _sizes(throughput):
        for name, sizes in throughput.items():
            f = sizes.get(size)
            if f is None:
                continue
            lines.append(
                f"| {name} | {size} | {f['requests_per_s']:.0f} | {f['p50_ms']:.2f} "
                f"| {f['p99_ms']:.2f} | {f['errors']} | {_fmt_ratio(f.get('ratio_to_nginx'))} "
                f"| {_fmt_ratio(f.get('p99_ratio_to_nginx'))} "
                f"| {_fmt_ratio(f.get('ratio_to_haproxy'))} "
                f"| {_fmt_cpu(f.get('cpu_us_per_request'))} |"
            )
    return "\n".join(lines) + "\n"


def readme_results(summary: Mapping[str, Any]) -> str:
    """bench/README.md's "Latest results" block, written from a summary.json."""
    settings = summary["settings"]
    pinned = (
        f"proxy pinned to core {settings['proxy_cpus']}, wrk and origin to core "
        f"{settings.get('origin_cpus') or settings['wrk_cpus']}"
        if settings.get("proxy_cpus")
        else "unpinned"
    )
    load_before, load_after = summary.get("load_average_before_after", [None, None])
    parts = [
        f"`{summary['command'].strip()}` on {summary['date']}"
        f"{' at commit ' + summary['commit'] if summary.get('commit') else ''}"
        f"{' (vhostd ' + summary['vhostd_modules'] + ')' if summary.get('vhostd_modules') else ''}: "
        f"{summary['machine']['cpus']} "
        f"cores, {pinned}; wrk -t1 -c{settings['connections']}, {settings['duration_s']} s × "
        f"{settings['repeats']} rounds (median). Load average before/after: "
        f"{load_before} / {load_after} (other work was running on the machine)."
        + (
            f" CPU time the hypervisor took from this machine during the rounds (steal): "
            f"{summary['cpu_steal_percent']} %."
            if summary.get("cpu_steal_percent") is not None
            else ""
        ),
        "",
        "![chart](results/chart.png)",
        "",
        markdown_tables(summary),
    ]
    bullets: list[str] = []
    idle = summary.get("rss_idle_mib", {})
    held = summary.get("idle_connections", {})
    if idle:
        bullets.append(
            "RSS idle (MiB): " + ", ".join(f"{name} {value}" for name, value in idle.items())
        )
    wakeups = summary.get("idle_wakeups_per_s", {})
    if wakeups:
        bullets.append(
            "Wake-ups per second while idle (context switches of all threads): "
            + ", ".join(f"{name} {value:g}" for name, value in wakeups.items())
        )
    if held:
        bullets.append(
            f"RSS added by {settings.get('idle_connections', '?')} idle keep-alive connections"
            " (MiB): "
            + ", ".join(
                f"{name} +{value['rss_delta_mib']}"
                + (
                    ""
                    if value["connections_held"] == settings.get("idle_connections")
                    else f" ({value['connections_held']} held)"
                )
                for name, value in held.items()
            )
        )
    for key, label in (
        ("route_change_file", "Route change, site file → first 200"),
        ("route_change_file_vhostd-w2", "Route change with --workers 2, until every worker"),
    ):
        if key in summary:
            value = summary[key]
            bullets.append(
                f"{label}: median {value['median_ms']} ms, max {value['max_ms']} ms "
                f"({value['samples']} samples, {value['missed']} missed)"
            )
    scaling = summary.get("worker_scaling", {})
    if scaling:
        bullets.append(
            f"Workers each held to {scaling['cores_per_worker']} core (cgroup"
            f" {scaling['cgroup']} quota), 12 B req/s: "
            + ", ".join(
                f"{count} → {value['requests_per_s']:.0f} ({_fmt_ratio(value['ratio_to_one_worker'])} ×)"
                for count, value in scaling["workers"].items()
            )
        )
    docker = summary.get("docker", {})
    start = docker.get("container_start")
    if start:
        bullets.append(
            "Container start → first 200 (`docker run` itself: "
            f"{start['docker_run_median_ms']} ms): "
            + ", ".join(
                f"{name} {value['median_ms']} ms ({value['after_run_median_ms']} ms after "
                "`docker run` returned)"
                for name, value in start.items()
                if isinstance(value, Mapping)
            )
        )
    roll = docker.get("rolling_restart")
    if roll:
        bullets.append(
            "Rolling restart of 2 replicas under load, failed requests: "
            + ", ".join(
                f"{name} {value['failed_total']} of {value['requests_total']} "
                f"(per roll {value['failed_per_round']})"
                for name, value in roll.items()
            )
        )
    if docker.get("error"):
        bullets.append(f"Docker measurements failed: {docker['error']}")
    parts += [f"- {bullet}" for bullet in bullets]
    parts += [
        "",
        "Against the issue's targets:",
        "",
        "| target | this run | met |",
        "|---|---|---|",
    ]
    for label, measured, met in issue_targets(summary):
        parts.append(f"| {label} | {measured} | {'–' if met is None else 'yes' if met else 'no'} |")
    return "\n".join(parts).rstrip() + "\n"


def issue_targets(summary: Mapping[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met?) for each goal of the benchmark issue; None = not measured."""
    tp = summary.get("throughput", {})
    vh = tp.get("vhostd", {})
    auth = tp.get("vhostd+auth", {})
    rows: list[tuple[str, str, bool | None]] = []

    def ratio_row(
        label: str, figures: Mapping[str, Any], key: str, limit: float, at_most: bool = False
    ) -> None:
        value = figures.get(key)
        if value is None:
            rows.append((label, "not measured", None))
            return
        spread = figures.get(f"{key}_range")
        measured = f"{value:.2f}" + (f" (rounds {spread[0]:.2f}–{spread[1]:.2f})" if spread else "")
        rows.append((label, measured, value <= limit if at_most else value >= limit))

    ratio_row("12 B: vhostd ≥ 1.0 × nginx req/s", vh.get("12B", {}), "ratio_to_nginx", 1.0)
    ratio_row(
        "12 B: vhostd p99 ≤ 1.2 × nginx's",
        vh.get("12B", {}),
        "p99_ratio_to_nginx",
        1.2,
        at_most=True,
    )
    ratio_row("64 KiB: vhostd ≥ 1.0 × HAProxy", vh.get("64KiB", {}), "ratio_to_haproxy", 1.0)
    for size in ("12B", "64KiB"):
        ratio_row(
            f"{size}: basic auth ≥ 0.9 × vhostd without", auth.get(size, {}), "ratio_to_vhostd", 0.9
        )

    def route_row(label: str, key: str) -> None:
        route = summary.get(key)
        if not route:
            rows.append((label, "not measured", None))
            return
        missed = f", {route['missed']} missed" if route["missed"] else ""
        fast = route["max_ms"] is not None and route["max_ms"] <= 100
        rows.append((label, f"{route['max_ms']} ms{missed}", fast and not route["missed"]))

    route_row("route change ≤ 100 ms (max of samples)", "route_change_file")
    route_row(
        "--workers 2: every worker routes a change ≤ 100 ms (max)", "route_change_file_vhostd-w2"
    )
    scaling = summary.get("worker_scaling", {}).get("workers")
    rows.append(
        (
            "--workers N: req/s ≥ 0.8 × N × one worker's (quota per worker)",
            " / ".join(f"{n}: {_fmt_ratio(v['ratio_to_one_worker'])}" for n, v in scaling.items())
            if scaling
            else "not measured",
            all((v["ratio_to_one_worker"] or 0) >= 0.8 * int(n) for n, v in scaling.items())
            if scaling
            else None,
        )
    )
    roll = summary.get("docker", {}).get("rolling_restart", {}).get("vhostd")
    rows.append(
        (
            "0 failed requests in a rolling restart",
            f"{roll['failed_total']} of {roll['requests_total']}" if roll else "not measured",
            roll["failed_total"] == 0 if roll else None,
        )
    )
    idle = summary.get("rss_idle_mib", {}).get("vhostd")
    rows.append(
        (
            "≤ 40 MiB RSS idle",
            f"{idle} MiB" if idle is not None else "not measured",
            idle <= 40 if idle is not None else None,
        )
    )
    held = summary.get("idle_connections", {}).get("vhostd")
    rows.append(
        (
            "≤ 100 MiB more with 10,000 idle connections",
            f"+{held['rss_delta_mib']} MiB ({held['connections_held']} held)"
            if held
            else "not measured",
            held["rss_delta_mib"] <= 100 and held["connections_held"] >= 10000 if held else None,
        )
    )
    return rows


RESULTS_START = "<!-- results:start (python -m bench.report) -->"
RESULTS_END = "<!-- results:end -->"


def update_readme(readme: Path, summary_path: Path) -> None:
    """Replace the block between the results markers in readme with summary_path's figures."""
    text = readme.read_text()
    head, _, rest = text.partition(RESULTS_START)
    _, _, tail = rest.partition(RESULTS_END)
    if not rest:
        raise SystemExit(f"{readme} has no {RESULTS_START} marker")
    summary = json.loads(summary_path.read_text())
    from bench.throughput import add_ratios

    for reference in ("nginx", "haproxy", "vhostd"):  # again: older summaries lack some
        add_ratios(summary["throughput"], reference)
    block = readme_results(summary)
    readme.write_text(f"{head}{RESULTS_START}\n{block}{RESULTS_END}{tail}")


if __name__ == "__main__":
    bench_dir = Path(__file__).resolve().parent
    update_readme(bench_dir / "README.md", bench_dir / "results" / "summary.json")
