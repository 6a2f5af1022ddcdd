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
            rps_axis.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=6.5,
            )
        rps_axis.set_title(f"{size} responses: requests/s (median; × nginx paired)", fontsize=9)
        rps_axis.margins(y=0.18)
        cpu_bars = cpu_axis.bar(
            names, [float(f.get("cpu_us_per_request", 0)) for f in figures], color=colors
        )
        for bar in cpu_bars:
            cpu_axis.annotate(
                f"{bar.get_height():.0f}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=6.5,
            )
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
