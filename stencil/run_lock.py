"""Which batch a `stencil run` on this machine is running: one lock file per batch in the data dir.

`stencil run` holds an exclusive ``flock`` on ``<data dir>/runs/<batch id>.lock`` while it runs the
batch; the operating system releases it when the process ends, even by SIGKILL. So a second
`stencil run` of the same batch is refused, and `stencil resume` can tell a batch that a run is
driving from one that nothing runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from stencil.errors import StencilError
from stencil.ids import IdKind, kind_of
from stencil.settings import Settings


class BatchBusy(StencilError):
    """Another `stencil run` is running this batch."""


def lock_path(settings: Settings, batch_id: str) -> Path:
    if kind_of(batch_id) is not IdKind.batch or not batch_id.replace("_", "").isalnum():
        raise ValueError(f"not a batch id: {batch_id!r}")
    return settings.data_dir.resolve() / "runs" / f"{batch_id}.lock"


@contextlib.contextmanager
def hold(settings: Settings, batch_id: str) -> Iterator[None]:
    """Hold the batch's run lock for the block; :class:`BatchBusy` when another run holds it."""
    path = lock_path(settings, batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(path, batch_id)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: the next run makes a fresh file
        os.close(fd)


def _lock(path: Path, batch_id: str) -> int:
    """An open, exclusively locked descriptor of the file now at ``path``."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            by = f" (pid {holder})" if holder else ""
            raise BatchBusy(
                f"batch {batch_id} is already being run by another `stencil run`{by}"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed it as we opened it: lock the new file instead


def is_held(settings: Settings, batch_id: str) -> bool:
    """True when a `stencil run` on this machine is running this batch now."""
    try:
        fd = os.open(lock_path(settings, batch_id), os.O_RDONLY)
    except (OSError, ValueError):
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
