"""A folder as the image store: atomic writes, keys that cannot escape the root.

Write errors that will not clear by retrying (a full disk, a read-only mount, no permission, a
file where a folder should be) raise :class:`StorageRefused`; others raise :class:`StorageError`.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from stencil.errors import ObjectMissing, StorageError, StorageRefused

FILE_MODE = 0o644  # mkstemp's 0600 would hide images from a web server or a second user
REFUSALS = {  # errno -> what the user should read first
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system (or the process's file size limit)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EEXIST: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where the file should go",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many symbolic links",
}


def os_error(verb: str, key: str, root: Path, exc: OSError) -> StorageError:
    """The storage error for a failed read or write, permanent when retrying cannot help."""
    code = exc.errno or 0
    refusal = REFUSALS.get(code)
    if refusal is not None:
        name = errno.errorcode.get(code, str(code))
        return StorageRefused(f"{refusal} ({name}): cannot {verb} {key!r} under {root}")
    return StorageError(f"cannot {verb} {key!r} under {root}: {exc}")


class LocalStorage:
    """Objects as files under one folder; keys use '/' separators."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; refuses keys that would leave the root."""
        if not key or "\\" in key or "\x00" in key:
            raise StorageRefused(f"invalid storage key {key!r}")
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise StorageRefused(f"invalid storage key {key!r}")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):
            raise StorageRefused(f"storage key {key!r} leaves the store")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write through a temporary file in the same folder, then rename over the target."""
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), FILE_MODE)
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise os_error("write", key, self.root, exc) from exc

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectMissing(f"no object {key!r} under {self.root}") from exc
        except OSError as exc:
            raise os_error("read", key, self.root, exc) from exc

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def url(self, key: str, ttl_s: int) -> str:
        """A file:// URI (folders need no signing; ``ttl_s`` is ignored)."""
        return self.path_for(key).as_uri()

    def describe(self) -> str:
        return str(self.root)
