"""A small fleet for acceptance tests: a scheduler and worker processes over real services."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stencil.runner import stop_group
from tests.cli import ROOT, cli_json, run_cli, stencil_env

FAST = {
    "STENCIL_TICK_S": "0.05",
    "STENCIL_LEASE_S": "3",
    "STENCIL_DISPATCH_LEASE_S": "5",
    "STENCIL_BACKOFF_BASE_S": "0.05",
    "STENCIL_BACKOFF_CAP_S": "0.5",
    "STENCIL_WINDOW_INITIAL": "8",
}


def fleet_env(
    *,
    home: Path,
    pg_url: str | None = None,
    redis_url: str | None = None,
    s3: tuple[str, str] | None = None,
    s3_env: dict[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment for child processes: Postgres, Redis and S3 where given, embedded otherwise."""
    env = {k: v for k, v in stencil_env().items() if not k.startswith("STENCIL_")}
    env.update(FAST)
    env["STENCIL_DATA_DIR"] = str(home)
    if pg_url:
        env["STENCIL_DATABASE_URL"] = pg_url
    if redis_url:
        env["STENCIL_BROKER_URL"] = redis_url
    if s3:
        env["STENCIL_S3_ENDPOINT_URL"] = s3[0]
        env["STENCIL_STORAGE_URL"] = f"s3://{s3[1]}/out"
        env.update(s3_env or {})
    env.update(extra)
    return env


@dataclass
class Fleet:
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, timeout=timeout)

    def json(self, *args: str, timeout: float = 180) -> Any:
        return cli_json(*args, env=self.env, timeout=timeout)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "stencil", *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", concurrency: int = 8) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--concurrency", str(concurrency))

    def start_scheduler(self, name: str = "scheduler") -> subprocess.Popen[bytes]:
        return self.start(name, "scheduler")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM every process group at once, then wait for each (SIGKILL after a grace)."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            stop_group(process)
        self.processes.clear()

    def wait_done(self, batch_id: str, timeout: float = 120) -> dict[str, Any]:
        """Poll until every item of the batch has ended; fails with the logs on timeout."""
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            view = self.json("poll", batch_id)
            if view["ended"] == view["total"]:
                return view
            time.sleep(0.5)
        raise AssertionError(f"batch did not finish: {view}\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in self.log_dir.glob("*.log")
        )


CANARY_TOKEN = "ya29.canary-token-7f3a9c1e5b"


def vertex_settings(emulator_url: str, token: str = CANARY_TOKEN) -> dict[str, str]:
    """Settings that point the `vertex` provider at an emulator with a static bearer token."""
    return {
        "STENCIL_PROVIDER": "vertex",
        "STENCIL_VERTEX_PROJECT": "stencil-test",
        "STENCIL_VERTEX_LOCATION": "us-central1",
        "STENCIL_VERTEX_ACCESS_TOKEN": token,
        "STENCIL_VERTEX_BASE_URL": emulator_url,
        "STENCIL_REQUEST_TIMEOUT_S": "5",
    }


def write_manifest(folder: Path, rows: list[dict[str, str]], **top: Any) -> Path:
    """A YAML manifest with inline rows and a `{{ prompt }}` template."""
    import yaml

    body: dict[str, Any] = {
        "version": 1,
        "name": top.pop("name", "test"),
        "key": "{{ sku }}",
        "template": {"prompt": "{{ prompt }}", "aspect_ratio": "1:1"},
        "rows": rows,
    }
    body.update(top)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@contextlib.contextmanager
def migrated_fleet(
    log_dir: Path,
    *,
    pg_url: str,
    redis_url: str,
    s3: tuple[str, str],
    s3_env: dict[str, str],
    emulator_url: str,
    **extra: str,
) -> Iterator[Fleet]:
    """A fleet on Postgres, Redis and S3 with the vertex provider on an emulator, its database
    migrated; its processes are stopped on exit (tests start the ones they need)."""
    env = fleet_env(
        home=log_dir / "home",
        pg_url=pg_url,
        redis_url=redis_url,
        s3=s3,
        s3_env=s3_env,
        **{**vertex_settings(emulator_url), **extra},
    )
    fleet = Fleet(env=env, log_dir=log_dir)
    upgraded = fleet.cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    try:
        yield fleet
    finally:
        fleet.stop()
