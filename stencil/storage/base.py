"""The image store protocol: a flat key space under one root (a folder or s3://bucket/prefix)."""

from __future__ import annotations

from typing import Protocol


class Storage(Protocol):
    """Where images, sidecars and reference images live. Keys use '/' separators."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write (or overwrite) one object."""
        ...

    def get(self, key: str) -> bytes:
        """Read one object; raises ``StorageError`` (``ObjectMissing`` when absent)."""
        ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str, ttl_s: int) -> str:
        """A URL that reads the object: presigned GET for S3, file:// for a folder."""
        ...

    def describe(self) -> str:
        """Where this store is, for humans (no secrets)."""
        ...
