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
    """Grouped bars of req/s per target and body size, p99 annotated; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = list(throughput)
    sizes = _sizes(throughput)
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        values = [float(throughput[n].get(size, {}).get("requests_per_s", 0)) for n in names]
        colors = ["#2a7ab9" if n.startswith("vhostd") else "#9a9a9a" for n in names]
        colors = ["#555555" if n == "origin" else c for n, c in zip(names, colors, strict=True)]
        bars = axis.bar(names, values, color=colors)
        for bar, name in zip(bars, names, strict=True):
            p99 = throughput[name].get(size, {}).get("p99_ms")
            if p99 is not None:
                axis.annotate(
                    f"p99 {float(p99):.1f} ms",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
        axis.set_title(f"{size} responses")
        axis.set_ylabel("requests/s (median)")
        axis.tick_params(axis="x", rotation=30)
        axis.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
