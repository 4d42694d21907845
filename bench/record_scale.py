"""Scenario 5: `stencil submit` of big CSV manifests, then `stencil poll` with them in Postgres."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

import psycopg

from bench.stack import ROOT, Stack
from bench.stencil_run import pg_url, write_csv

POLLS = 7


def _child(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run `stencil ...` as a child: (wall s, peak RSS MB of the child, stdout)."""
    start = time.monotonic()
    # The command runs through a wrapper that reports its own peak resident memory at exit.
    wrapper = (
        "import resource,runpy,sys;"
        "sys.argv=['stencil',*sys.argv[1:]];"
        "code=0\n"
        "try:\n runpy.run_module('stencil',run_name='__main__')\n"
        "except SystemExit as e:\n code=e.code or 0\n"
        # VmHWM: this process's own peak (ru_maxrss would include the forking parent's)
        "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "sys.stderr.write('\\nPEAK_KB=%s\\n'%(hwm[0] if hwm else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
        "sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"stencil {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    peak_kb = max(
        (
            int(line.split("=")[1])
            for line in result.stderr.splitlines()
            if line.startswith("PEAK_KB=")
        ),
        default=0,
    )
    return wall, peak_kb / 1024, result.stdout


def record_scale(stack: Stack, *, sizes: list[int], polls: int = POLLS) -> dict[str, Any]:
    database = stack.fresh_database()
    env = stack.env(database)
    rows: list[dict[str, Any]] = []
    batch_id = ""
    for n in sizes:
        manifest = write_csv(stack.dir / f"scale-{n}.csv", n, f"scale{n}")
        wall, peak, out = _child(env, "submit", str(manifest), "--name", f"scale-{n}")
        batch_id = out.strip().splitlines()[-1]
        rows.append({"rows": n, "submit_s": round(wall, 2), "peak_mb": round(peak, 1)})
    with psycopg.connect(pg_url(database), autocommit=True) as conn:
        found = conn.execute(
            "SELECT id FROM items WHERE batch_id = %s ORDER BY seq DESC LIMIT 1", (batch_id,)
        ).fetchone()
    assert found is not None
    item_id = str(found[0])
    poll: dict[str, Any] = {"items_in_batch": sizes[-1]}
    for kind, request_id in (("batch", batch_id), ("item", item_id)):
        cli_times = [_child(env, "poll", request_id, "--json")[0] for _ in range(polls)]
        poll[f"{kind}_cli_ms"] = round(1000 * statistics.median(cli_times), 1)
        poll[f"{kind}_lib_ms"] = round(_poll_in_process(env, request_id, polls), 2)
    return {"submit": rows, "poll": poll}


def _poll_in_process(env: dict[str, str], request_id: str, polls: int) -> float:
    """Median ms of the library call behind `stencil poll` (warm process, engine reused)."""
    code = (
        "import statistics,time\n"
        "from models.db import session_scope\n"
        "from stencil.settings import get_settings\n"
        "from stencil.storage import open_storage\n"
        "from stencil.views import poll\n"
        "s=get_settings(); st=open_storage(s); times=[]\n"
        f"for _ in range({polls * 3 + 1}):\n"
        " t=time.perf_counter()\n"
        " with session_scope() as session:\n"
        f"  poll(session=session, request_id={request_id!r}, storage=st, ttl_s=s.url_ttl_s)\n"
        " times.append(time.perf_counter()-t)\n"
        "print(statistics.median(times[1:])*1000)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"in-process poll failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])
