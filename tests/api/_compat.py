"""Helpers for the drop-in compatibility tests: the fleet (Postgres, Redis, moto S3, the Vertex
emulator) with the API served over TLS by uvicorn (a trustme certificate; clients trust its CA
through SSL_CERT_FILE), a scheduler and a worker, each in its own process."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import trustme

from stencil.emulator import EmulatorHandle
from tests.api._server import free_port, png
from tests.cli import ROOT, cli_json
from tests.fleet import Fleet, fleet_env, vertex_settings
from tests.services import S3_ENV, PostgresServer, RedisServer, S3Server


@dataclass
class CompatFleet:
    fleet: Fleet
    base: str  # https://127.0.0.1:<port>
    host: str  # 127.0.0.1:<port>, FAL_QUEUE_RUN_HOST
    ca: Path
    pem: Path  # the server certificate and key for 127.0.0.1
    key: str
    bucket: str
    s3_url: str
    emu: EmulatorHandle

    def client(self, key: str | None = None, scheme: str = "Bearer") -> httpx.Client:
        headers = {"Authorization": f"{scheme} {key or self.key}"}
        return httpx.Client(base_url=self.base, headers=headers, verify=self.tls(), timeout=60)

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def new_tenant_key(self, name: str) -> str:
        return str(cli_json("keys", "create", name, env=self.fleet.env)["key"])

    def stored(self, storage_key: str) -> bytes:
        s3 = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_ENV["AWS_DEFAULT_REGION"],
        )
        body = s3.get_object(Bucket=self.bucket, Key=f"out/{storage_key}")["Body"]
        return bytes(body.read())

    def items(self, request_id: str) -> list[dict[str, Any]]:
        with self.client() as client:
            return list(client.get(f"/v1/requests/{request_id}/items").json()["results"])

    def poll(self, request_id: str) -> dict[str, Any]:
        """`stencil poll` in a child process: the CLI sees the request too."""
        return dict(cli_json("poll", request_id, env=self.fleet.env))


@contextmanager
def tls_files(pem: Path, files: dict[str, bytes]) -> Iterator[str]:
    """An https server on loopback serving ``files`` (by path); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pem))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def data_uri(colour: tuple[int, int, int]) -> str:
    return "data:image/png;base64," + base64.b64encode(png(colour)).decode()


def _wait_https(base: str, ca: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"uvicorn exited:\n{log.read_text(errors='replace')}")
        try:
            if (
                httpx.get(
                    f"{base}/healthz", verify=ssl.create_default_context(cafile=str(ca)), timeout=2
                ).status_code
                == 200
            ):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"uvicorn did not answer:\n{log.read_text(errors='replace')}")


@contextmanager
def compat_fleet(
    home: Path,
    postgres: PostgresServer,
    redis: RedisServer,
    s3: S3Server,
    emu: EmulatorHandle,
    **extra: str,
) -> Iterator[CompatFleet]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path, pem = home / "ca.pem", home / "server.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    db_name = f"t_{os.urandom(6).hex()}"
    pg_url = postgres.create_database(db_name)
    redis.flush()
    bucket = s3.create_bucket()
    emu.reset(knobs=True)
    env = fleet_env(
        home=home / "home", pg_url=pg_url, redis_url=redis.url, s3=(s3.url, bucket),
        s3_env=s3.env, SSL_CERT_FILE=str(ca_path), STENCIL_WEBHOOK_ALLOW_LOOPBACK="true",
        STENCIL_FETCH_ALLOW_HOSTS='["127.0.0.1"]',  # reference URLs to the test's TLS server
        STENCIL_WEBHOOK_RETRY_S="[0, 0.5, 0.5, 0.5]", **vertex_settings(emu.url), **extra,
    )  # fmt: skip
    fleet = Fleet(env=env, log_dir=home)
    try:
        upgraded = fleet.cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        port = free_port()
        log = home / "api.log"
        with log.open("ab") as out:
            fleet.processes["api"] = process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                 "--ssl-keyfile", str(pem), "--ssl-certfile", str(pem)],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        base = f"https://127.0.0.1:{port}"
        _wait_https(base, ca_path, process, log)
        fleet.start_scheduler()
        fleet.start_worker(concurrency=4)
        key = str(cli_json("keys", "create", "compat", env=env)["key"])
        yield CompatFleet(fleet, base, f"127.0.0.1:{port}", ca_path, pem, key, bucket, s3.url, emu)
    finally:
        fleet.stop()
        postgres.drop_database(db_name)


def run_fal(compat: CompatFleet, flow: str, timeout: float = 120) -> dict[str, Any]:
    """A flow of the unmodified fal_client in a child process (it reads its hosts at import)."""
    import json

    env = {
        **compat.fleet.env,
        "FAL_QUEUE_RUN_HOST": compat.host,
        "FAL_RUN_HOST": f"127.0.0.1:{free_port()}",  # run() must never reach the queue
        "FAL_KEY": compat.key,
        "SSL_CERT_FILE": str(compat.ca),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.api._fal_flows", flow],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
