"""``python -m bench.api [--rows N] [--poll-items N] [--clients N] [--seconds S] [--json]``: the
HTTP API's figures (issue 12). Prints, asserts nothing.

- submit: ``POST /v1/requests`` of a JSON manifest of ``--rows`` rows (10,000): wall time, and
  the API process's peak memory (VmHWM) before and after;
- poll: ``GET /v1/requests/{id}`` of a request of ``--poll-items`` items (100,000: 10,000 rows x
  4 variants), by ``--clients`` concurrent clients (50) for ``--seconds``: requests per second,
  p50 and p99 latency.

Runs ``stencil serve --no-run`` on the embedded default (SQLite) in a temporary folder, or on
the database in ``STENCIL_DATABASE_URL`` when set. Goals (issue 12): submit within 3 s; at least
500 polls a second with p99 within 50 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from scheduler.manifest.values import MAX_VARIANTS

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _manifest(rows: int, variants: int) -> dict[str, Any]:
    return {
        "version": 1,
        "name": f"bench-{rows}x{variants}",
        "key": "{{ sku }}",
        "template": {"prompt": "Studio photo of product {{ sku }} in {{ colour }}",
                     "aspect_ratio": "1:1", "variants": variants},
        "rows": [{"sku": f"sku-{n:06d}", "colour": ("red", "green", "blue")[n % 3]}
                 for n in range(rows)],
    }  # fmt: skip


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stencil", "serve", "--no-run", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"stencil serve did not start:\n{log.read_text()}")


async def _poll(url: str, key: str, clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + seconds

        async def one_client() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                answer = await client.get(url)
                answer.raise_for_status()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies


def run(rows: int, poll_items: int, clients: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stencil-bench-api-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STENCIL_")}
        env.update(STENCIL_DATA_DIR=f"{folder}/home", STENCIL_API_SUBMITS_PER_MINUTE="1000")
        if os.environ.get("STENCIL_DATABASE_URL"):
            env["STENCIL_DATABASE_URL"] = os.environ["STENCIL_DATABASE_URL"]
        made = subprocess.run(
            [sys.executable, "-m", "stencil", "keys", "create", "bench", "--json"],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = json.loads(made.stdout)["key"]
        port = _free_port()
        process = _start(env, port, Path(folder) / "api.log")
        base = f"http://127.0.0.1:{port}"
        try:
            client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                  timeout=600)  # fmt: skip
            rss_before = _peak_rss_mb(process.pid)
            body = json.dumps(_manifest(rows, 1)).encode()
            started = time.perf_counter()
            answer = client.post("/v1/requests", content=body,
                                 headers={"Content-Type": "application/json"})  # fmt: skip
            submit_s = time.perf_counter() - started
            answer.raise_for_status()
            rss_after = _peak_rss_mb(process.pid)

            variants = min(MAX_VARIANTS, max(1, poll_items // rows))
            big = client.post("/v1/requests", json=_manifest(poll_items // variants, variants))
            big.raise_for_status()
            url = f"{base}/v1/requests/{big.json()['request_id']}"
            latencies = asyncio.run(_poll(url, key, clients, seconds))
        finally:
            process.terminate()
            process.wait(timeout=30)
    ordered = sorted(latencies)
    return {
        "submit_rows": rows,
        "submit_s": round(submit_s, 3),
        "api_peak_rss_mb_before": round(rss_before, 1),
        "api_peak_rss_mb_after": round(rss_after, 1),
        "poll_items": big.json()["items"],
        "poll_clients": clients,
        "polls": len(ordered),
        "polls_per_s": round(len(ordered) / seconds, 1),
        "poll_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "poll_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--poll-items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.rows, args.poll_items, args.clients, args.seconds)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"submit {figures['submit_rows']:,} rows: {figures['submit_s']:.2f} s (goal 3 s); "
          f"API peak RSS {figures['api_peak_rss_mb_before']:.0f} -> "
          f"{figures['api_peak_rss_mb_after']:.0f} MB")  # fmt: skip
    print(f"poll a request of {figures['poll_items']:,} items, {figures['poll_clients']} clients: "
          f"{figures['polls_per_s']:.0f}/s (goal 500), p50 {figures['poll_p50_ms']:.1f} ms, "
          f"p99 {figures['poll_p99_ms']:.1f} ms (goal 50)")  # fmt: skip


if __name__ == "__main__":
    main()
