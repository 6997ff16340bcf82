"""The benchmark chart: throughput and latency percentiles per workload, for each system (a PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"django": "#0c4b33", "restate": "#e0673a"}


def draw(summary: dict[tuple[str, str], Any], systems: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = sorted({w for w, _ in summary})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        xs = [n + (i - (len(systems) - 1) / 2) * width for n in range(len(workloads))]
        ops = [summary[(w, system)].ops if (w, system) in summary else 0 for w in workloads]
        bars = left.bar(xs, ops, width, label=system, color=COLORS.get(system))
        left.bar_label(bars, fmt="%.0f", fontsize=8)
    left.set_xticks(range(len(workloads)), [f"{w}" for w in workloads])
    left.set_ylabel("ops/s (higher is better)")
    left.set_title("Throughput per workload")
    left.legend()

    labels = [(w, q) for w in workloads for q in ("p50", "p95", "p99")]
    for i, system in enumerate(systems):
        xs = [n + (i - (len(systems) - 1) / 2) * width for n in range(len(labels))]
        values = [getattr(summary[(w, system)], q) if (w, system) in summary else 0 for w, q in labels]
        right.bar(xs, values, width, label=system, color=COLORS.get(system))
    right.set_xticks(range(len(labels)), [f"{w}\n{q}" for w, q in labels], fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("latency ms, log scale (lower is better)")
    right.set_title("Latency percentiles per workload")
    right.legend()
    fig.suptitle("a: sequential one key · b: 200 keys c=32 · c: hot key c=32 · d: sends 200 keys c=32", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
