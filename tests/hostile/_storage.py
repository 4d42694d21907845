"""Broken stores for the hostile tests, each failing with the real error a user would meet.

- a full disk: a 64 KiB tmpfs, filled up, mounted over the store's folder (ENOSPC);
- a read-only store: the folder bind-mounted read-only over itself (EROFS);

both inside a private mount namespace (``unshare --mount``; ``--map-root-user`` when not root),
so nothing outside the command under test sees them, and the store is whole again when it exits.
Where no namespace can be made, a read-only store falls back to a folder without write
permission (EACCES, not for root) and a full disk is unavailable.

- S3 that refuses: a moto server in its own process with authentication on, so wrong or
  unauthorised credentials get AccessDenied / InvalidAccessKeyId from a real endpoint;
- a loopback trap standing in for the instance metadata address, counting connections.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from tests.services import free_port, port_open, unavailable

Breakage = Literal["full", "read_only"]
_SCRIPTS = {
    "full": 'd=$1; shift; mount -t tmpfs -o size=64k tmpfs "$d" || exit 97; '
    'dd if=/dev/zero of="$d/.fill" bs=4096 2>/dev/null; exec "$@"',
    "read_only": 'd=$1; shift; mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" '
    '|| exit 97; exec "$@"',
}


@functools.cache
def _unshare() -> list[str] | None:
    """The unshare command that can mount here, or None."""
    base = ["unshare", "--mount", "--propagation", "private"]
    mapped = [*base, "--map-root-user"]  # an unprivileged user's own namespace, if allowed
    for command in [base, mapped] if os.geteuid() == 0 else [mapped]:
        with tempfile.TemporaryDirectory() as folder:
            probe = [*command, "sh", "-c", 'mount -t tmpfs tmpfs "$1"', "sh", folder]
            try:
                done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return command
    return None


def broken_store_command(argv: list[str], *, folder: Path, how: Breakage) -> list[str]:
    """``argv`` run with ``folder`` (the store) broken ``how``; skips when this machine cannot."""
    folder.mkdir(parents=True, exist_ok=True)
    unshare = _unshare()
    if unshare is not None:
        return [*unshare, "sh", "-c", _SCRIPTS[how], "sh", str(folder), *argv]
    if how == "read_only" and os.geteuid() != 0:
        folder.chmod(0o555)
        return argv
    unavailable(f"cannot make a {how} store here: no mount namespace (unshare --mount)")


def store_error_words(how: Breakage) -> str:
    """What the stop reason must say for the store broken ``how`` on this machine."""
    if how == "full":
        return "no space left on device"
    return "read-only file system" if _unshare() is not None else "permission denied"


# ------------------------------------------------------------------ S3 with authentication


class AuthS3:
    """A moto S3 endpoint in its own process that checks credentials (IAM) after setup."""

    FREE_ACTIONS = 3  # create_bucket, create_user, create_access_key; then every call is checked

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self.FREE_ACTIONS)}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                unavailable(f"moto server did not start (see {log})")
            time.sleep(0.1)
        self.bucket, self.reader_env = self._setup()

    def _setup(self) -> tuple[str, dict[str, str]]:
        """A bucket, and credentials of a user with no permission on it."""
        import boto3

        admin = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", **admin)
        iam = boto3.client("iam", endpoint_url=self.url, region_name="us-east-1", **admin)
        s3.create_bucket(Bucket="guarded")
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        return "guarded", {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------ metadata address trap


class Trap:
    """A TCP listener on loopback that counts connections (a stand-in metadata address)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.hits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextmanager
def metadata_trap() -> Iterator[Trap]:
    trap = Trap()
    try:
        yield trap
    finally:
        trap.close()


def without_aws(env: dict[str, str], home: Path, trap: Trap) -> dict[str, str]:
    """``env`` with no AWS configuration at all and the metadata address at ``trap``."""
    clean = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    clean.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_SERVICE_ENDPOINT=trap.url,
    )
    return clean
