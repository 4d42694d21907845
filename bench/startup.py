"""``python -m bench.startup [--runs N] [--json]``: how long the quick commands take to answer.

Makes an embedded data dir in a temporary folder, fills it with one small batch (``stencil run``
on an 8-row manifest, offline ``preview`` provider), then runs each quick command N times as a
user would (a new ``python -m stencil`` process each time, output discarded) and prints the
wall time of each: median, min and max, and the median CPU time (user + system) of the process.
The first runs of each command are warm-ups (bytecode written, disk cache warm) and not counted.
The goal is a median of at most 0.3 s; CPU time is shown because other work on a shared machine
stretches wall time but hardly CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.3
WARMUPS = 2


def quick_commands(batch_id: str) -> list[list[str]]:
    return [
        ["--help"],
        ["poll", batch_id],
        ["ls"],
        ["status"],
        ["results", batch_id],
    ]


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STENCIL_")}
    env.update(STENCIL_DATA_DIR=str(data_dir), NO_GCE_CHECK="true", COLUMNS="120")
    return env


def stencil(
    args: list[str], env: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "stencil", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"stencil {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def small_batch(folder: Path, env: dict[str, str], rows: int = 8) -> str:
    """Run an 8-row preview batch to the end; returns its request id."""
    manifest = folder / "manifest.yaml"
    body = {
        "version": 1,
        "name": "startup-bench",
        "key": "{{ sku }}",
        "template": {"prompt": "{{ prompt }}", "aspect_ratio": "1:1"},
        "rows": [{"sku": f"s{i}", "prompt": f"a red cube number {i}"} for i in range(rows)],
    }
    manifest.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    view = json.loads(stencil(["run", str(manifest), "--json"], env).stdout)
    return str(view["request_id"])


def time_command(args: list[str], env: dict[str, str], *, runs: int) -> dict[str, Any]:
    """Wall and CPU seconds of ``runs`` runs of one command (after the warm-ups)."""
    for _ in range(WARMUPS):
        stencil(args, env)
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        stencil(args, env)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    median = statistics.median(walls)
    return {
        "command": "stencil " + " ".join("<batch>" if a.startswith("b_") else a for a in args),
        "median_s": round(median, 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
        "goal": "ok" if median <= GOAL_S else f"over {GOAL_S} s",
    }


def render(rows: list[dict[str, Any]], runs: int, load: tuple[float, float]) -> str:
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
        for r in rows
    ]
    lines.append(
        f"\n{runs} runs each after {WARMUPS} warm-ups; load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after; {os.cpu_count()} cores; Python {sys.version.split()[0]}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=9, help="timed runs per command")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stencil-startup-") as tmp:
        env = clean_env(Path(tmp) / "data")
        batch_id = small_batch(Path(tmp), env)
        load_before = os.getloadavg()[0]
        rows = [time_command(cmd, env, runs=args.runs) for cmd in quick_commands(batch_id)]
        load_after = os.getloadavg()[0]
    if args.json:
        payload = {"runs": args.runs, "load": [load_before, load_after], "commands": rows}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(render(rows, args.runs, (load_before, load_after)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
