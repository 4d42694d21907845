"""A folder as the image store: atomic writes, keys that cannot escape the root."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stencil.errors import ObjectMissing, StorageError

FILE_MODE = 0o644  # mkstemp's 0600 would hide images from a web server or a second user


class LocalStorage:
    """Objects as files under one folder; keys use '/' separators."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; refuses keys that would leave the root."""
        if not key or "\\" in key or "\x00" in key:
            raise StorageError(f"invalid storage key {key!r}")
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise StorageError(f"invalid storage key {key!r}")
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root):
            raise StorageError(f"storage key {key!r} leaves the store")
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
            raise StorageError(f"cannot write {key!r} under {self.root}: {exc}") from exc

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectMissing(f"no object {key!r} under {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key!r} under {self.root}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def url(self, key: str, ttl_s: int) -> str:
        """A file:// URI (folders need no signing; ``ttl_s`` is ignored)."""
        return self.path_for(key).as_uri()

    def describe(self) -> str:
        return str(self.root)
