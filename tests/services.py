"""Real services on loopback for the tests: Postgres, Redis and an S3 endpoint (moto).

Each server class has ``start()``, ``halt()`` (stop the process, keep what restart needs),
``restart()``, ``stop()`` (halt and remove everything) and ``url``. The test session owns its own
Postgres cluster and Redis on free ports; when it cannot (no ``initdb``, no ``redis-server``) it
falls back to the machine's servers on their usual ports, isolated by a database name or index.
Every server started here is stopped at session end, with ``atexit`` as a backstop.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NoReturn, Protocol

import psycopg
import pytest
import redis
from psycopg import sql

HOST = "127.0.0.1"
REDIS_BINARY = "redis-server"
START_TIMEOUT_S = 30.0
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
S3_ENV_UNSET = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


class ServiceUnavailable(RuntimeError):
    """A service could not be started or reached."""


class Service(Protocol):
    @property
    def url(self) -> str: ...

    def stop(self) -> None: ...


_running: list[Service] = []
_running_lock = threading.Lock()


def _register(service: Service) -> None:
    with _running_lock:
        if service not in _running:
            _running.append(service)


def _unregister(service: Service) -> None:
    with _running_lock:
        if service in _running:
            _running.remove(service)


@atexit.register
def stop_all() -> None:
    """Stop every service this process started (also run by atexit)."""
    with _running_lock:
        services = list(reversed(_running))
    for service in services:
        with contextlib.suppress(Exception):
            service.stop()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test locally; fail it under ``CI=true`` so CI never skips silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: service tests must not be skipped)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- Postgres


def _pg_bindir() -> Path | None:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(os.path.realpath(found))
    for candidate in candidates:
        bindir = Path(candidate).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    return None


class PostgresServer:
    """A throwaway cluster of our own, or a fresh database on the machine's server."""

    user = "postgres"

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self.dbname = "stencil"
        self.own = False
        self.dir: Path | None = None
        self._bindir: Path | None = None
        self._running = False

    @property
    def url(self) -> str:
        """The session database (SQLAlchemy/psycopg URL form)."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def admin_url(self) -> str:
        return self.url_for("postgres")

    def start(self) -> None:
        if self._running:
            return
        if self.dir is not None:  # a restart of our own cluster
            self._pg_ctl_start()
            return
        bindir = _pg_bindir()
        if bindir is not None:
            try:
                self._init_cluster(bindir)
                self._pg_ctl_start()
                self.own = True
                self.create_database(self.dbname)
                return
            except (ServiceUnavailable, OSError, subprocess.SubprocessError) as exc:
                own_error: str = str(exc)
                self.stop()
        else:
            own_error = "initdb not found"
        self._use_machine_server(own_error)

    def halt(self) -> None:
        """Stop the server process; the cluster stays for start()."""
        if not self.own:
            unavailable("restarting the machine's Postgres is not supported (no own cluster)")
        if self._running and self.dir is not None:
            self._run(self._ctl("stop", "-m", "fast"), timeout=60)
            self._running = False

    def restart(self) -> None:
        self.halt()
        self.start()

    def stop(self) -> None:
        """Stop the server and delete the cluster (or drop the session database)."""
        if self.dir is not None:
            if self._running:
                with contextlib.suppress(Exception):
                    self._run(self._ctl("stop", "-m", "immediate"), timeout=60)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        elif self._running:
            with contextlib.suppress(Exception):
                self.drop_database(self.dbname)
        self._running = False
        _unregister(self)

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """A new empty database (or a clone of ``template``); returns its URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            if self.own and conn.info.server_version >= 150000:
                query += sql.SQL(" STRATEGY FILE_COPY")  # ~10x faster than WAL_LOG with fsync off
            conn.execute(query)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(query)

    # -- own cluster

    def _as_postgres(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.user, "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise ServiceUnavailable(f"{Path(argv[0]).name} failed: {detail}")

    def _ctl(self, *args: str) -> list[str]:
        assert self._bindir is not None and self.dir is not None
        data = str(self.dir / "data")
        return self._as_postgres([str(self._bindir / "pg_ctl"), "-D", data, "-w", *args])

    def _init_cluster(self, bindir: Path) -> None:
        self._bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="stencil-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, self.user, self.user)
        initdb = [
            str(bindir / "initdb"),
            "-D",
            str(self.dir / "data"),
            "-U",
            self.user,
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        ]
        self._run(self._as_postgres(initdb), timeout=120)

    def _pg_ctl_start(self) -> None:
        assert self.dir is not None
        if not self.port:
            self.port = free_port()
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses={HOST} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.dir / "postgres.log"
        try:
            self._run(self._ctl("-l", str(log), "-o", options, "start"), timeout=60)
        except ServiceUnavailable as exc:
            raise ServiceUnavailable(f"{exc}\n{_tail(log)}") from exc
        self._running = True
        _register(self)

    # -- fallback

    def _use_machine_server(self, own_error: str) -> None:
        self.own = False
        self.port = 5432
        self.dbname = f"stencil_test_{secrets.token_hex(4)}"
        try:
            self.create_database(self.dbname)
        except psycopg.Error as exc:
            raise ServiceUnavailable(
                f"no Postgres: own cluster failed ({own_error}); "
                f"{HOST}:5432 as {self.user} failed ({exc})"
            ) from exc
        self._running = True
        _register(self)


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """A redis-server of our own without persistence, or a DB index on the machine's Redis."""

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self.db = 0
        self.own = False
        self.dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        if self._process is not None:
            return
        binary = shutil.which(REDIS_BINARY)
        if binary is None and not self.own:
            self._use_machine_server("redis-server not found")
            return
        try:
            self._spawn(binary or REDIS_BINARY)
        except ServiceUnavailable as exc:
            if self.own:
                raise
            self.stop()
            self._use_machine_server(str(exc))
            return
        self.own = True

    def halt(self) -> None:
        """Kill the server (SIGKILL): everything in it is lost, as with a crash."""
        if not self.own:
            unavailable("restarting the machine's Redis is not supported (no own server)")
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def restart(self) -> None:
        """Kill and start again, empty, on the same port."""
        self.halt()
        self.start()

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        _unregister(self)

    def flush(self) -> None:
        """Empty what the tests use: the whole server if ours, else our DB index."""
        client = self.client()
        try:
            if self.own:
                client.flushall()
            else:
                client.flushdb()
        finally:
            client.close()

    def _spawn(self, binary: str) -> None:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="stencil-redis-"))
        if not self.port:
            self.port = free_port()
        # A child process rather than --daemonize, so stop() can wait for it reliably.
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.dir),
            "--pidfile", str(self.dir / "redis.pid"),
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        _register(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceUnavailable(f"redis-server exited:\n{_tail(self.dir / 'redis.log')}")
            if self._ping():
                return
            time.sleep(0.02)
        raise ServiceUnavailable(f"redis-server did not answer on port {self.port}")

    def _ping(self) -> bool:
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _use_machine_server(self, own_error: str) -> None:
        self.own = False
        self.port = 6379
        self.db = 15
        if not self._ping():
            raise ServiceUnavailable(
                f"no Redis: own server failed ({own_error}); nothing answers on {HOST}:6379"
            )
        self.flush()


# --------------------------------------------------------------------------- S3


class S3Server:
    """moto's S3 endpoint in a thread on loopback, with one bucket created."""

    bucket = "stencil-test"

    def __init__(self) -> None:
        self.host = HOST
        self.port = 0
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 (also for subprocesses) to reach this endpoint."""
        return dict(S3_ENV)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_ENV["AWS_DEFAULT_REGION"],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def start(self) -> None:
        if self._server is not None:
            return
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ServiceUnavailable(f"moto[server] is not installed: {exc}") from exc
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        fresh = not self.port
        if fresh:
            self.port = free_port()
        elif port_open(self.port):
            raise ServiceUnavailable(f"port {self.port} is taken; cannot restart moto")
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        _register(self)
        if fresh:
            self.create_bucket(self.bucket)

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{secrets.token_hex(6)}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def halt(self) -> None:
        if self._server is not None:
            self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()  # moto's stop() leaves the socket open
            self._server = None

    def restart(self) -> None:
        """Stop and start the endpoint on the same port (moto keeps its objects in memory)."""
        self.halt()
        self.start()

    def stop(self) -> None:
        self.halt()
        _unregister(self)
