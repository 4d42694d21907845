"""Reference images: each distinct source is read, sniffed and hashed once per manifest."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from scheduler.manifest.plan import ResolvedRef
from scheduler.manifest.rows import resolve_inside
from stencil.catalog import ModelSpec
from stencil.errors import StencilError
from stencil.images import MIME_EXT, sniff_mime

Reader = Callable[[str], bytes]

GS_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class RefResolver:
    """Resolves reference sources to :class:`ResolvedRef`; keeps the bytes we must upload."""

    def __init__(
        self,
        root: Path,
        spec: ModelSpec,
        *,
        s3_reader: Reader | None = None,
        https_fetcher: Reader | None = None,
    ) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.spec = spec
        self.s3_reader = s3_reader
        self.https_fetcher = https_fetcher
        self.data: dict[str, bytes] = {}  # digest -> bytes, one entry per distinct image
        self._cache: dict[str, ResolvedRef | str] = {}

    def resolve(self, source: str) -> ResolvedRef | str:
        """The resolved reference, or the reason it is refused (cached either way)."""
        found = self._cache.get(source)
        if found is None:
            found = self._cache[source] = self._resolve(source)
        return found

    def _resolve(self, source: str) -> ResolvedRef | str:
        match = _SCHEME.match(source)
        if match is None:
            return self._local(source)
        scheme = match.group(1).lower()
        if scheme == "gs":
            return _gs(source)
        if scheme == "s3":
            if self.s3_reader is None:
                return f"{source!r}: s3:// references need an S3 endpoint configured"
            return self._fetched(source, self.s3_reader)
        if scheme == "https":
            if self.https_fetcher is None:
                return f"{source!r}: https:// references need the guarded fetcher"
            return self._fetched(source, self.https_fetcher)
        return f"{source!r}: a URL must be https (or s3:// / gs://), not {scheme}:"

    def _local(self, source: str) -> ResolvedRef | str:
        path = resolve_inside(self.root, source, self.real_root)
        if isinstance(path, str):
            return f"reference image {source!r} {path}"
        try:
            size = path.stat().st_size
            if size > self.spec.max_ref_bytes:
                return self._too_big(source, size)
            data = path.read_bytes()
        except OSError as exc:
            return f"reference image {source!r} cannot be read: {exc.strerror or exc}"
        return self._held(source, data)

    def _fetched(self, source: str, reader: Reader) -> ResolvedRef | str:
        try:
            data = reader(source)
        except (StencilError, OSError) as exc:
            return f"reference image {source!r} cannot be fetched: {exc}"
        return self._held(source, data)

    def _held(self, source: str, data: bytes) -> ResolvedRef | str:
        if len(data) > self.spec.max_ref_bytes:
            return self._too_big(source, len(data))
        mime = sniff_mime(data)
        if mime is None:
            return f"reference image {source!r} is not a PNG, JPEG or WebP image"
        digest = hashlib.sha256(data).hexdigest()
        self.data.setdefault(digest, data)
        key = f"_refs/{digest}.{MIME_EXT[mime]}"
        return ResolvedRef(
            digest=digest, mime=mime, size=len(data), source=source, key=key, uri=None
        )

    def _too_big(self, source: str, size: int) -> str:
        limit = self.spec.max_ref_bytes
        return (
            f"reference image {source!r} is {size} bytes; "
            f"{self.spec.name} takes at most {limit} bytes per image"
        )


def _gs(source: str) -> ResolvedRef | str:
    bucket, _, obj = source[len("gs://") :].partition("/")
    if not source.startswith("gs://") or not bucket or not obj:
        return f"{source!r}: a gs:// reference must look like gs://bucket/object"
    mime = GS_MIME.get(PurePosixPath(obj).suffix.lower())
    if mime is None:
        return f"{source!r}: a gs:// reference must end in .png, .jpg, .jpeg or .webp"
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    return ResolvedRef(digest=digest, mime=mime, size=0, source=source, key=None, uri=source)
