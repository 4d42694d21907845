"""The whole stack on loopback: Postgres, Redis, S3 (moto), the Vertex emulator, a Stencil fleet.

Services come from ``tests.services`` (the same ones the acceptance tests use). The emulator runs
as its own process so its CPU never counts as Stencil's. Each run gets a fresh database (so the
window starts from its initial value) and an empty broker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stencil.emulator import EmulatorClient
from stencil.runner import stop_group
from tests.fleet import Fleet
from tests.services import PostgresServer, RedisServer, S3Server

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "ya29.bench-token"  # a static bearer token the emulator accepts (not a secret)


def vertex_env(emulator_url: str) -> dict[str, str]:
    """Point the `vertex` provider at the emulator with a static bearer token."""
    return {
        "STENCIL_PROVIDER": "vertex",
        "STENCIL_VERTEX_PROJECT": "stencil-bench",
        "STENCIL_VERTEX_LOCATION": "us-central1",
        "STENCIL_VERTEX_ACCESS_TOKEN": TOKEN,
        "STENCIL_VERTEX_BASE_URL": emulator_url,
        "STENCIL_REQUEST_TIMEOUT_S": "30",
        "NO_GCE_CHECK": "true",
    }


@dataclass
class Emulator:
    """``python -m stencil.emulator`` as a child process."""

    process: subprocess.Popen[str]
    url: str
    client: EmulatorClient

    @classmethod
    def start(cls, log: Path, **knobs: Any) -> Emulator:
        argv = [sys.executable, "-m", "stencil.emulator", "--port", "0"]
        for name, value in knobs.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                if value:
                    argv.append(flag)
            else:
                argv += [flag, str(value)]
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        url = str(json.loads(line)["url"])
        client = EmulatorClient(url)
        client.wait_ready()
        return cls(process, url, client)

    def stop(self) -> None:
        stop_group(self.process)


class Stack:
    """Services started once; a fresh database and fleet per run."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="stencil-bench-"))
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.s3 = S3Server()
        self.emulator: Emulator | None = None

    def start(self, **knobs: Any) -> None:
        self.postgres.start()
        self.redis.start()
        self.s3.start()
        self.emulator = Emulator.start(self.dir / "emulator.log", **knobs)

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
        for service in (self.s3, self.redis, self.postgres):
            try:
                service.stop()
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def emu(self) -> Emulator:
        assert self.emulator is not None
        return self.emulator

    def fresh_database(self) -> str:
        """A new migrated database; its URL."""
        url = self.postgres.create_database()
        from models.db import engine_for
        from models.migrate import upgrade

        engine = engine_for(url)
        upgrade(engine)
        engine.dispose()
        return url

    def env(self, database_url: str, **extra: str) -> dict[str, str]:
        """Environment for Stencil processes on this stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("STENCIL_")}
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            env.pop(name, None)
        env.update(self.s3.env)
        env.update(vertex_env(self.emu.url))
        env.update(
            {
                "STENCIL_DATA_DIR": str(self.dir / "home"),
                "STENCIL_DATABASE_URL": database_url,
                "STENCIL_BROKER_URL": self.redis.url,
                "STENCIL_S3_ENDPOINT_URL": self.s3.url,
                "STENCIL_STORAGE_URL": f"s3://{self.s3.bucket}/bench",
                "PYTHONPATH": str(ROOT),
            }
        )
        env.update(extra)
        return env

    def start_fleet(self, env: dict[str, str], *, workers: int, concurrency: int) -> Fleet:
        """A scheduler and ``workers`` worker processes; returns once every worker answers."""
        self.redis.flush()
        log_dir = self.dir / "logs"
        log_dir.mkdir(exist_ok=True)
        fleet = Fleet(env=env, log_dir=log_dir)
        for n in range(workers):
            fleet.start(f"worker{n}", "worker", "--concurrency", str(concurrency))
        fleet.start("scheduler", "scheduler")
        wait_workers(self.redis.url, workers)
        return fleet


def wait_workers(broker_url: str, count: int, timeout_s: float = 60.0) -> None:
    """Wait until ``count`` Celery workers answer a ping on the broker."""
    from celery import Celery

    app = Celery("bench-ping", broker=broker_url, set_as_current=False)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5)
            if len(replies) >= count:
                return
        raise RuntimeError(f"workers did not start within {timeout_s:.0f} s")
    finally:
        app.close()
