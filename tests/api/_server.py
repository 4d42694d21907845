"""Helpers for the HTTP API tests: `stencil serve` in a child process on loopback, API keys made
with the real CLI, PNG bytes, and a webhook receiver that answers as it is told."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from stencil.runner import stop_group
from tests.cli import ROOT, cli_json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"stencil serve exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"stencil serve did not answer:\n{log.read_text(errors='replace')}")


@dataclass
class ApiServer:
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def client(self, key: str | None = None, scheme: str = "Bearer") -> httpx.Client:
        headers = {"Authorization": f"{scheme} {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def key(self, name: str, *options: str) -> str:
        return str(cli_json("keys", "create", name, *options, env=self.env)["key"])

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@contextmanager
def api_server(env: dict[str, str], log_dir: Path, *args: str) -> Iterator[ApiServer]:
    """`stencil serve` on a free loopback port until the block ends."""
    port = free_port()
    log = log_dir / f"api-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stencil", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", *args],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = ApiServer(f"http://127.0.0.1:{port}", process, log, env)
    try:
        wait_healthy(server.base, process, log)
        yield server
    finally:
        stop_group(process, grace_s=20)


def png(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def manifest(rows: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": 1,
        "name": top.pop("name", "api-test"),
        "key": "{{ sku }}",
        "template": {"prompt": "a photo of {{ sku }}", "aspect_ratio": "1:1"},
        "rows": rows,
    }
    body.update(top)
    return body


def wait_for(check: Any, timeout: float = 90, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached; last: {last}")


def wait_ended(client: httpx.Client, request_id: str, timeout: float = 120) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        view = client.get(f"/v1/requests/{request_id}").json()
        return view if view["ended"] == view["total"] and view["finished_at"] else None

    return dict(wait_for(ended, timeout, f"request {request_id} ended"))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers the statuses of ``script`` in turn (then 200)."""

    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self, port: int = 0) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]
