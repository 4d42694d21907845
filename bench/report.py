"""Tables on stdout, the plot, and bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.measure import Run

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def table(title: str, rows: list[dict[str, Any]]) -> str:
    """A plain fixed-width table (also valid Markdown)."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [f"### {title}", ""]
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def plot(runs: list[Run], *, capacity: int, latency_s: float, path: Path) -> None:
    """In-flight calls and completions per second over time against C, one panel per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 2.6 * len(runs)), sharex=True)
    axes = [axes] if len(runs) == 1 else list(axes)
    end = max(r.wall_s for r in runs)
    for ax, run in zip(axes, runs, strict=True):
        t = [s[0] for s in run.timeline if 0 <= s[0] <= run.wall_s + 0.5]
        flight = [s[1] for s in run.timeline if 0 <= s[0] <= run.wall_s + 0.5]
        ax.step(t, flight, where="post", lw=0.8, label="calls in flight")
        steps = [
            (0.0, capacity),
            *run.applied,
            (end, run.applied[-1][1] if run.applied else capacity),
        ]
        ax.step([s[0] for s in steps], [s[1] for s in steps], where="post", color="k", lw=1.5,
                label="capacity C")  # fmt: skip
        rate_t, rate = _completion_rate(run)
        ax.plot(rate_t, [r * latency_s for r in rate], color="tab:green", lw=1.2,
                label="completions/s x latency")  # fmt: skip
        ax.set_ylim(0, capacity * 1.6)
        ax.set_ylabel("calls")
        ax.set_title(f"{run.system}: {run.succeeded} images in {run.wall_s:.1f} s", fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _completion_rate(run: Run, bin_s: float = 1.0) -> tuple[list[float], list[float]]:
    samples = [s for s in run.timeline if s[0] >= 0]
    if not samples:
        return [], []
    times, rates = [], []
    t, j, prev = 0.0, 0, 0.0
    first = samples[0][2]
    while t < run.wall_s:
        while j < len(samples) and samples[j][0] <= t + bin_s:
            j += 1
        done = samples[j - 1][2] - first if j else 0.0
        times.append(t + bin_s / 2)
        rates.append((done - prev) / bin_s)
        prev, t = done, t + bin_s
    return times, rates


def write_json(figures: dict[str, Any], path: Path | None = None) -> Path:
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path
